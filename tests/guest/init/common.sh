# The guest's /init, first part (after the host's variables): helpers, mounts, modules,
# `ksight probes`. Then each scenario's part (init/NAME.sh), then init/end.sh.
# Everything goes to the console (ttyS0) as "@@KSIGHT ..." lines; the host parses them.
say() { echo "@@KSIGHT $*"; }
check() { # check NAME COMMAND...
	local name=$1; shift
	if "$@" >/tmp/check.out 2>&1; then say "check ok $name"
	else say "check fail $name: $(head -c 300 /tmp/check.out | tr '\n' ' ')"; fi
}
block() { # block NAME FILE: a file between markers
	say "BEGIN $1"; cat "$2"; echo; say "END $1"
}
# alive PID: running, not a zombie
alive() { [ -r /proc/$1/stat ] && [ "$(cut -d' ' -f3 /proc/$1/stat)" != Z ]; }
# wait_for SECONDS COMMAND...
wait_for() {
	local n=$(($1 * 10)); shift
	until "$@"; do
		n=$((n - 1)); [ $n -le 0 ] && return 1
		usleep 100000
	done
}

# run_started LABEL NAME: after `ksight run --listen 127.0.0.1:$PORT ... 2>/tmp/NAME.run.err &`
# and rpid=$!: until it serves /healthz (or dies); if it does not, says so, kills it, shows its
# stderr and returns 1
run_started() {
	wait_for 240 eval 'wget -q -O /dev/null http://127.0.0.1:$PORT/healthz || ! alive $rpid'
	if ! wget -q -O /dev/null http://127.0.0.1:$PORT/healthz; then
		say "check fail $1: ksight run is ready"
		kill -KILL $rpid 2>/dev/null; wait $rpid
		block $2.run.err /tmp/$2.run.err
		return 1
	fi
	say "check ok $1: ksight run is ready"
}
# run_stopped LABEL: SIGTERM to $rpid, SIGKILL if it ignores it for 30 s; its exit status said
run_stopped() {
	kill -TERM $rpid
	wait_for 30 eval '! alive $rpid' || { kill -KILL $rpid; say "$1 ksight_sigterm ignored"; }
	wait $rpid; say "$1 run_exit $?"
}

echo  # the firmware's and kernel's terminal escapes end up on the line before this one
check "mount proc" mount -t proc proc /proc
check "mount sysfs" mount -t sysfs sysfs /sys
check "mount devtmpfs" mount -t devtmpfs devtmpfs /dev
check "mount tracefs" mount -t tracefs tracefs /sys/kernel/tracing
check "mount debugfs" mount -t debugfs debugfs /sys/kernel/debug
check "mount bpffs" mount -t bpf bpf /sys/fs/bpf
check "mount cgroup2" mount -t cgroup2 cgroup2 /sys/fs/cgroup
dmesg -n 1  # keep the kernel's OOM reports off the console (they stay in dmesg)
hostname ksight-guest
# every scenario scrapes ksight run on 127.0.0.1: loopback up here, not in one scenario
check "loopback up" ip link set lo up
# in dependency order (the host resolved modules.dep); a module that fails is named, the
# scenarios that need it then fail on their own checks
for m in $MODULES; do check "insmod $m" insmod /lib/modules/$m; done
PORT=9100  # ksight run's --listen ports, one more each time

say "kernel $(uname -r)"
say "cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
# what ksight says of every probe point on this kernel (each scenario checks its signal's)
ksight probes -o json >/tmp/probes.out 2>/tmp/probes.err
say "probes exit $?"
block probes /tmp/probes.out
block probes.err /tmp/probes.err
