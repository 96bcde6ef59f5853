# The guest's /init, last part: the kernel log, then off.
dmesg >/tmp/dmesg.out
block dmesg /tmp/dmesg.out
say DONE
poweroff -f
