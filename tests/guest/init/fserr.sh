# fserr, for each variant of a probe point that this kernel can take, forced with --probe:
# - ext4_error: a directory block overwritten on a loop device's ext4 (errors=continue), read
#   FSERR_READS times -> ksight_fs_errors_total grows by the superblock's errors_count delta;
# - block_error: a loop device on a full tmpfs, written with O_DIRECT -> kind io, ENOSPC;
#   (5.10 has no block:block_rq_error: only the block_rq_complete fallback, "complete");
# - xfs_shutdown (where the xfs module loads): a directory block corrupted with xfs_db, read,
#   then `xfs_io -x -c shutdown` -> corruption counted as the kernel's own xfs health events
#   (ftrace) count them, and exactly one shutdown.
# What this kernel has is recorded first: the host checks `ksight probes` against it.
EV=/sys/kernel/tracing/events
TR=/sys/kernel/tracing
for t in ext4/ext4_error ext4/ext4_shutdown block/block_rq_error block/block_rq_complete xfs/xfs_force_shutdown; do
	[ -d $EV/$t ] && echo $t
done >/tmp/fserr.tps
awk '$3 == "__ext4_error" || $3 == "xfs_do_force_shutdown" { print $3 }' /proc/kallsyms | sort -u >>/tmp/fserr.tps
grep -qw xfs /proc/filesystems && echo xfs-loaded >>/tmp/fserr.tps
# xfs's own types (xfs_mount, its tracepoints' records) are in the module's BTF (5.11+)
[ -e /sys/kernel/btf/xfs ] && echo xfs-btf >>/tmp/fserr.tps
block fserr.have /tmp/fserr.tps
have() { grep -qx "$1" /tmp/fserr.tps; }
# a program the kernel refuses: libbpf's own account (the verifier's log) for the report
if grep -q load_failed /tmp/probes.out; then
	ksight probes fserr -v >/tmp/fserr.verbose 2>&1
	grep -v '^libbpf: prog .*: -- BEGIN\|^libbpf: prog .*: -- END' /tmp/fserr.verbose | tail -n 60 >/tmp/fserr.verbose.tail
	block fserr.verbose /tmp/fserr.verbose.tail
fi

FS=/tmp/fs
mkdir -p $FS /mnt/ext4 /mnt/xfs /mnt/tiny
check "fserr: tmpfs for the images" mount -t tmpfs -o size=400M tmpfs $FS

# fserr_run NAME PROBE=VARIANT: ksight run with only that variant of that point, and a trace
fserr_run() {
	PORT=$((PORT + 1))
	ksight run --listen 127.0.0.1:$PORT --signals fserr --probe fserr/$2 >/tmp/$1.run.out 2>/tmp/$1.run.err &
	rpid=$!
	ksight trace fserr -o json --probe fserr/$2 >/tmp/$1.trace 2>/tmp/$1.trace.err &
	tpid=$!
	fname=$1
	run_ready() { wget -q -O /dev/null http://127.0.0.1:$PORT/healthz || ! alive $rpid; }
	trace_ready() { grep -q 'ready in' /tmp/$fname.trace.err || ! alive $tpid; }
	wait_for 240 run_ready; wait_for 240 trace_ready
	if wget -q -O /dev/null http://127.0.0.1:$PORT/healthz && grep -q 'ready in' /tmp/$1.trace.err; then
		say "check ok $1: ksight run and trace are ready"
		return 0
	fi
	say "check fail $1: ksight run and trace are ready"
	block $1.run.err /tmp/$1.run.err
	block $1.trace.err /tmp/$1.trace.err
	kill -KILL $rpid $tpid 2>/dev/null; wait $rpid $tpid
	return 1
}
# fserr_scrape NAME: ksight's fserr metrics now
fserr_scrape() {
	wget -q -O /tmp/$1.all http://127.0.0.1:$PORT/metrics
	grep -E '^ksight_(fs_|probe_info\{signal="fserr"|ringbuf_(lost|records)_total\{signal="fserr"\})' /tmp/$1.all
}
# fserr_stop NAME: stop both, print what they said
fserr_stop() {
	sleep 1  # records still in flight
	kill -INT $tpid; kill -TERM $rpid
	wait_for 30 eval '! alive $tpid && ! alive $rpid' || { kill -KILL $tpid $rpid; say "fserr $1 sigint ignored"; }
	wait $tpid; say "fserr $1 trace_exit $?"
	wait $rpid; say "fserr $1 run_exit $?"
	block $1.trace /tmp/$1.trace
	block $1.run.err /tmp/$1.run.err
}

# --- ext4: a directory whose block is then overwritten on disk
E=$FS/ext4.img
truncate -s 32M $E && mkfs.ext4 -q -F -b 4096 $E >/tmp/mkfs.out 2>&1
dev=$(losetup -f) && losetup $dev $E
EXT4=${dev#/dev/}
if mount -o errors=continue $dev /mnt/ext4; then
	mkdir /mnt/ext4/dir
	i=0; while [ $i -lt 40 ]; do : >/mnt/ext4/dir/file-$i; i=$((i + 1)); done
	umount /mnt/ext4
	BLOCK=$(debugfs -R 'blocks /dir' $dev 2>/dev/null | awk '{ print $1 }')
	dd if=/dev/urandom of=$dev bs=4096 seek=$BLOCK count=1 conv=notrunc,fsync status=none
	blockdev --flushbufs $dev
	check "fserr ext4: mount the image corrupted at block $BLOCK, errors=continue" \
		mount -o errors=continue $dev /mnt/ext4
else
	say "check fail fserr ext4: mount a fresh ext4 on $dev: $(head -c 200 /tmp/mkfs.out)"
fi
say "fserr ext4 device $EXT4 $(cat /sys/block/$EXT4/dev)"
EXT4_VARIANTS=""
have ext4/ext4_error && EXT4_VARIANTS="tracepoint"
have __ext4_error && EXT4_VARIANTS="$EXT4_VARIANTS kprobe"
say "fserr ext4 variants $EXT4_VARIANTS"
for v in $EXT4_VARIANTS; do
	n=fserr-ext4-$v
	fserr_run $n ext4_error=$v || continue
	c0=$(cat /sys/fs/ext4/$EXT4/errors_count)
	fserr_scrape $n >/tmp/$n.before
	i=0; while [ $i -lt $FSERR_READS ]; do ls /mnt/ext4/dir >/dev/null 2>&1; i=$((i + 1)); done
	# the superblock's count is written by a work item: wait until it has moved and settled
	wait_for 20 sh -c "[ \$(cat /sys/fs/ext4/$EXT4/errors_count) -gt $c0 ]"
	c1=-1
	until [ "$c1" = "$(cat /sys/fs/ext4/$EXT4/errors_count)" ]; do c1=$(cat /sys/fs/ext4/$EXT4/errors_count); sleep 1; done
	sleep 1
	fserr_scrape $n >/tmp/$n.after
	say "fserr $n errors_count $c0 $c1"
	block $n.before /tmp/$n.before
	block $n.after /tmp/$n.after
	fserr_stop $n
done
dmesg | grep "EXT4-fs error (device $EXT4)" | tail -n 3 >/tmp/ext4.log
block fserr-ext4.log /tmp/ext4.log

# --- block I/O errors: a loop device whose backing file lives on a full tmpfs -> ENOSPC
check "fserr io: an 8M tmpfs" mount -t tmpfs -o size=8M tmpfs /mnt/tiny
truncate -s 64M /mnt/tiny/backing.img
dev=$(losetup -f) && losetup $dev /mnt/tiny/backing.img
IO=${dev#/dev/}
say "fserr io device $IO $(cat /sys/block/$IO/dev)"
IO_VARIANTS="complete"
have block/block_rq_error && IO_VARIANTS="tracepoint complete"
say "fserr io variants $IO_VARIANTS"
for v in $IO_VARIANTS; do
	n=fserr-io-$v
	fserr_run $n block_error=$v || continue
	# the kernel's own account of each failed request: block_rq_complete's (and
	# block_rq_error's) error field, through ftrace
	echo 0 >$TR/tracing_on; echo >$TR/trace; : >$TR/set_event
	for e in $EV/block/block_rq_complete $EV/block/block_rq_error; do [ -d $e ] && echo 1 >$e/enable; done
	echo 1 >$TR/tracing_on
	# the first 8M fill the tmpfs, the rest fail (dd stops at the first failed write)
	dd if=/dev/zero of=$dev bs=1M count=16 oflag=direct status=none 2>/tmp/$n.dd
	say "fserr $n dd_exit $?"
	sleep 1
	echo 0 >$TR/tracing_on
	grep -E 'block_rq_(complete|error):' $TR/trace >/tmp/$n.ftrace
	: >$TR/set_event
	block $n.ftrace /tmp/$n.ftrace
	fserr_scrape $n >/tmp/$n.after
	block $n.after /tmp/$n.after
	fserr_stop $n
done

# --- XFS, where the module loaded: corruption, then a shutdown, once per xfs_shutdown variant
XFS_VARIANTS=""
if have xfs-loaded; then
	X=$FS/xfs.img
	truncate -s 320M $X && mkfs.xfs -q -f $X >/tmp/mkfs.out 2>&1 || say "check fail fserr xfs: mkfs.xfs: $(head -c 200 /tmp/mkfs.out)"
	dev=$(losetup -f) && losetup $dev $X
	XFS=${dev#/dev/}
	say "fserr xfs device $XFS $(cat /sys/block/$XFS/dev)"
	if mount $dev /mnt/xfs; then
		mkdir /mnt/xfs/dir
		i=0; while [ $i -lt 300 ]; do : >/mnt/xfs/dir/a-longer-file-name-$i; i=$((i + 1)); done
		ino=$(stat -c %i /mnt/xfs/dir)
		umount /mnt/xfs
		xfs_db -x -c "inode $ino" -c "dblock 0" -c "write -d dhdr.hdr.magic 0" $dev >/tmp/xfs_db.out 2>&1
		say "fserr xfs xfs_db_exit $?"
	else
		say "check fail fserr xfs: mount a fresh xfs on $dev"
	fi
	have xfs/xfs_force_shutdown && XFS_VARIANTS="tracepoint"
	have xfs_do_force_shutdown && XFS_VARIANTS="$XFS_VARIANTS kprobe"
fi
say "fserr xfs variants $XFS_VARIANTS"
for v in $XFS_VARIANTS; do
	n=fserr-xfs-$v
	check "$n: mount the corrupted xfs" mount $dev /mnt/xfs || continue
	fserr_run $n xfs_shutdown=$v || { umount /mnt/xfs; continue; }
	# the kernel's own count: its xfs health events and shutdowns, through ftrace
	echo 0 >$TR/tracing_on; echo >$TR/trace; : >$TR/set_event
	for e in $EV/xfs/xfs_*_mark_sick $EV/xfs/xfs_*_mark_corrupt $EV/xfs/xfs_*_unfixed_corruption \
		$EV/xfs/xfs_btree_corrupt $EV/xfs/xfs_force_shutdown; do
		[ -d $e ] && echo 1 >$e/enable
	done
	echo 1 >$TR/tracing_on
	ls /mnt/xfs/dir >/dev/null 2>&1
	say "fserr $n ls_exit $?"
	xfs_io -x -c shutdown /mnt/xfs
	say "fserr $n shutdown_exit $?"
	sleep 1
	echo 0 >$TR/tracing_on
	grep -E 'xfs_[a-z_]*(mark_sick|mark_corrupt|unfixed_corruption|btree_corrupt|force_shutdown):' $TR/trace >/tmp/$n.ftrace
	: >$TR/set_event
	fserr_scrape $n >/tmp/$n.after
	block $n.ftrace /tmp/$n.ftrace
	block $n.after /tmp/$n.after
	fserr_stop $n
	umount /mnt/xfs
done
