#!/usr/bin/env bash
# fserr, I/O errors for real: loop devices on a FUSE file (build/tests/fuse_eio)
# whose reads fail with EIO in a byte range armed here. The count is compared
# with the number of reads the FUSE server failed (the loop device's stat
# file counts no errors; the server's count is exact: each failed request
# is one failed read of the backing file). Then a partitioned loop device
# (losetup -P) whose second partition sits on the failing range: the record
# names the partition and its mount point, not the whole disk. Then a device
# detached before its record is enriched, and one removed altogether (an
# unknown major:minor).
. "$(dirname "$0")/lib.sh"

for tool in mkfs.ext4 debugfs losetup sfdisk blockdev; do
	command -v $tool >/dev/null || { not_ok "fserr_io: $tool is missing (scripts/setup.sh)"; finish; }
done
[ -x "$TOOLS/fuse_eio" ] || { not_ok "fserr_io: $TOOLS/fuse_eio is not built (libfuse3-dev, make)"; finish; }
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null
[ -e /dev/fuse ] || { not_ok "fserr_io: no /dev/fuse"; finish; }

# fuse_start DIR SIZE_MIB: a fuse_eio filesystem at DIR (DIR/disk, DIR/control), unmounted at exit
fuse_start() {
	mkdir -p "$1"
	"$TOOLS/fuse_eio" "$1" "$2" >"$WORK/fuse-$(basename "$1").log" 2>&1 &
	defer "umount -l '$1'; kill $!"
	wait_for 10 test -f "$1/control"
}
eio_reads() { awk '{ print $5 }' "$1/control"; }
# file_bytes DEV PATH: "START END" the byte range of PATH's blocks on DEV (an ext4 of 4 KiB blocks)
file_bytes() {
	debugfs -R "blocks $2" "$1" 2>/dev/null | awk '{ lo = $1; hi = $1; for (i = 1; i <= NF; i++) {
		if ($i < lo) lo = $i; if ($i > hi) hi = $i } printf "%d %d", lo * 4096, (hi + 1) * 4096 }'
}
fs_errors() { # DEVICE FSTYPE KIND SOURCE
	local v
	v=$(metric_value "ksight_fs_errors_total{device=\"$1\",fstype=\"$2\",kind=\"$3\",source=\"$4\"}")
	echo "${v:-0}"
}
trace_py() { # DEVICE PYTHON-EXPR-OVER-recs
	python3 -c 'import json,sys
recs=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
recs=[r for r in recs if r.get("device")==sys.argv[2]]
print(eval(sys.argv[3]))' "$WORK/trace.out" "$1" "$2"
}

start_run run --signals fserr --no-k8s || { not_ok "ksight run starts"; finish; }
start_trace trace fserr -o json --no-k8s || { not_ok "ksight trace starts"; finish; }
ok "ksight run and ksight trace start"

# --- 1: EIO on a whole loop device
F1=$WORK/fuse1
fuse_start "$F1" 32 || { not_ok "eio: fuse_eio mounts"; finish; }
loop_attach DEV1 "$F1/disk" --direct-io=off || { not_ok "eio: loop device on the FUSE file"; finish; }
L1=$(basename "$DEV1")
mkfs.ext4 -q -F -b 4096 -E nodiscard "$DEV1"
MNT1=$WORK/eio
mount_at "$MNT1" "$DEV1" || { not_ok "eio: mount"; finish; }
head -c 65536 /dev/urandom >"$MNT1/victim"
sync
umount "$MNT1" # the file's pages leave the page cache with the mount
read -r lo hi <<<"$(file_bytes "$DEV1" /victim)"
echo "# eio: /victim is bytes $lo..$hi of $L1"
echo "arm $lo $hi" >"$F1/control"
mount "$DEV1" "$MNT1" || { not_ok "eio: mount again with the range armed"; finish; }
m0=$(fs_errors "$L1" ext4 io block_rq_error)
r0=$(eio_reads "$F1")
t0=$(trace_py "$L1" 'len(recs)')
check "eio: reading the file fails" sh -c "! cat '$MNT1/victim' >/dev/null 2>&1"
sleep 0.5
r1=$(eio_reads "$F1")
echo "# eio: the FUSE server failed $((r1 - r0)) reads"
check "eio: the FUSE server failed reads" [ $((r1 - r0)) -gt 0 ]
# compared with the server's count read at the same moment: a late failed read counts on both sides
eio_delta() { echo $(($(fs_errors "$L1" ext4 io block_rq_error) - m0 - ($(eio_reads "$F1") - r0))); }
eventually "eio: ksight_fs_errors_total{$L1,ext4,io,block_rq_error} grew by the reads failed" 10 0 eio_delta
new_recs() { echo $(($(trace_py "$L1" 'len(recs)') - t0 - ($(eio_reads "$F1") - r0))); }
eventually "eio: one trace record per failed request (below the rate limit's burst)" 10 0 new_recs
echo "# eio: counted $(($(fs_errors "$L1" ext4 io block_rq_error) - m0)), the server failed $(($(eio_reads "$F1") - r0))"
expect_eq "eio: kind, source, errno, fstype of every record" \
	"$(trace_py "$L1" "sorted({(r['kind'], r['source'], r['errno'], r['fstype']) for r in recs[$t0:]})")" \
	"[('io', 'block_rq_error', 'EIO', 'ext4')]"
expect_eq "eio: the mount point" "$(trace_py "$L1" "sorted({tuple(r['mountpoints']) for r in recs[$t0:]})")" "[('$MNT1',)]"
expect_eq "eio: every record's sector is in the armed range" \
	"$(trace_py "$L1" "all($lo <= r['sector'] * 512 < $hi for r in recs[$t0:])")" True
echo disarm >"$F1/control"
check "eio: disarmed, the file reads again" sh -c "cat '$MNT1/victim' >/dev/null"
umount "$MNT1"

# --- 2: a partitioned loop device: the error names the partition and its mount point
F2=$WORK/fuse2
fuse_start "$F2" 48 || { not_ok "partition: fuse_eio mounts"; finish; }
loop_attach DEV2 "$F2/disk" --direct-io=off -P || { not_ok "partition: loop device"; finish; }
L2=$(basename "$DEV2")
printf 'label: dos\nstart=2048, size=32768, type=83\nstart=34816, type=83\n' | sfdisk -q "$DEV2" >/dev/null 2>&1
P2=${L2}p2
# sfdisk's re-read does not always add them (seen on a loop device on FUSE): partx does
wait_for 2 test -e "/sys/class/block/$P2" || partx -a "$DEV2" 2>/dev/null
wait_for 10 test -b "/dev/$P2" || { not_ok "partition: /dev/$P2 appears"; finish; }
p2start=$(cat "/sys/class/block/$L2/$P2/start")
mkfs.ext4 -q -F -b 4096 -E nodiscard "/dev/${L2}p1"
mkfs.ext4 -q -F -b 4096 -E nodiscard "/dev/$P2"
MNTP1=$WORK/part1
MNTP2=$WORK/part2
mount_at "$MNTP1" "/dev/${L2}p1" || not_ok "partition: mount p1"
mount_at "$MNTP2" "/dev/$P2" || { not_ok "partition: mount p2"; finish; }
head -c 65536 /dev/urandom >"$MNTP2/victim"
sync
umount "$MNTP2"
read -r plo phi <<<"$(file_bytes "/dev/$P2" /victim)"
lo=$((p2start * 512 + plo))
hi=$((p2start * 512 + phi))
echo "# partition: $P2 starts at sector $p2start; /victim is bytes $lo..$hi of $L2"
echo "arm $lo $hi" >"$F2/control"
mount "/dev/$P2" "$MNTP2" || { not_ok "partition: mount p2 again with the range armed"; finish; }
r0=$(eio_reads "$F2")
m0=$(fs_errors "$L2" "" io block_rq_error)
check "partition: reading the file fails" sh -c "! cat '$MNTP2/victim' >/dev/null 2>&1"
sleep 0.5
r1=$(eio_reads "$F2")
check "partition: the FUSE server failed reads" [ $((r1 - r0)) -gt 0 ]
check "partition: trace has records naming the partition" wait_for 10 sh -c "grep -q '\"device\":\"$P2\"' '$WORK/trace.out'"
sleep 0.5
expect_eq "partition: no record names the whole disk" "$(trace_py "$L2" 'len(recs)')" 0
expect_eq "partition: records name $P2 at its mount point, ext4, EIO" \
	"$(trace_py "$P2" 'sorted({(r["device"], tuple(r["mountpoints"]), r["fstype"], r["errno"]) for r in recs})')" \
	"[('$P2', ('$MNTP2',), 'ext4', 'EIO')]"
expect_eq "partition: and the disk they were on" "$(trace_py "$P2" 'sorted({r.get("disk") for r in recs})')" "['$L2']"
expect_eq "partition: major:minor are the partition's" \
	"$(trace_py "$P2" 'sorted({"%d:%d" % (r["major"], r["minor"]) for r in recs})')" \
	"['$(cat "/sys/class/block/$P2/dev")']"
part_recs() { echo $(($(trace_py "$P2" 'len(recs)') - ($(eio_reads "$F2") - r0))); }
eventually "partition: one record per failed request" 10 0 part_recs
# the count is the kernel's, per request on the disk: block_rq_error gives the disk's dev_t (the
# disk itself holds no filesystem: no fstype); the records above say which partition
part_delta() { echo $(($(fs_errors "$L2" "" io block_rq_error) - m0 - ($(eio_reads "$F2") - r0))); }
eventually "partition: ksight_fs_errors_total counts them on the disk the kernel names" 10 0 part_delta
echo "# partition: counted $(($(fs_errors "$L2" "" io block_rq_error) - m0)), the server failed $(($(eio_reads "$F2") - r0))"

# --- 3: an unknown major:minor: a loop device this ksight trace never saw (a number not used
# above: loop0 and the partitioned disk are still attached), removed altogether
# (LOOP_CTL_REMOVE: no sysfs entry left) before the record is read -> named by its numbers
loop_attach DEV3 "$F1/disk" --direct-io=off || not_ok "unknown: loop device"
L3=$(basename "$DEV3")
N3=$(cat "/sys/class/block/$L3/dev")
echo "arm 0 4096" >"$F1/control"
kill -STOP "$TRACE_PID"
dd if="$DEV3" of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null
losetup -d "$DEV3"
python3 -c 'import fcntl,os,sys,time
fd = os.open("/dev/loop-control", os.O_RDWR)
for _ in range(50):  # the detach finishes asynchronously: EBUSY until it has
    try:
        fcntl.ioctl(fd, 0x4C81, int(sys.argv[1])); break  # LOOP_CTL_REMOVE
    except OSError:
        time.sleep(0.1)' "${N3#*:}"
check "unknown: $L3 ($N3) has no sysfs entry left" sh -c "! test -e /sys/dev/block/$N3"
kill -CONT "$TRACE_PID"
check "unknown: the record names the device by its numbers" wait_for 10 sh -c "grep -q '\"device\":\"$N3\"' '$WORK/trace.out'"
expect_eq "unknown: major, minor, no mount, EIO" \
	"$(trace_py "$N3" '[("%d:%d" % (r["major"], r["minor"]), r["mountpoints"], r["fstype"], r["errno"], r["disk"]) for r in recs]')" \
	"[('$N3', [], '', 'EIO', None)]"
echo disarm >"$F1/control"

# --- 4: detached before its record is enriched: ksight trace stopped, the error, the device gone
echo disarm >"$F2/control"
cat "$MNTP2/victim" >/dev/null
umount "$MNTP2"
echo "arm $lo $hi" >"$F2/control"
before=$(trace_py "$L2" 'len(recs)')
n2=$(trace_py "$P2" 'len(recs)')
kill -STOP "$TRACE_PID"
r0=$(eio_reads "$F2")
dd if="/dev/$P2" of=/dev/null bs=4096 skip=$((plo / 4096)) count=1 iflag=direct status=none 2>/dev/null
r1=$(eio_reads "$F2")
umount "$MNTP1"
losetup -d "$DEV2"
wait_for 5 sh -c "! test -e /sys/class/block/$P2"
check "detached: the partitions are gone before ksight trace reads the record" sh -c "! test -e /sys/class/block/$P2"
kill -CONT "$TRACE_PID"
got_new() { echo $(($(trace_py "$L2" 'len(recs)') + $(trace_py "$P2" 'len(recs)') - before - n2)); }
eventually "detached: the record still comes ($((r1 - r0)) failed read)" 10 $((r1 - r0)) got_new
expect_eq "detached: it names the disk (the partition table is gone), not mounted, EIO" \
	"$(trace_py "$L2" '[(r["device"], r["mountpoints"], r["errno"]) for r in recs[-1:]]')" "[('$L2', [], 'EIO')]"

check "ksight run is still serving" curl -sf "http://127.0.0.1:$PORT/healthz" -o /dev/null
kill "$TRACE_PID" "$RUN_PID"; wait "$TRACE_PID" "$RUN_PID" 2>/dev/null
check "no warnings from ksight run" sh -c "! grep -qiE 'warn|cannot|fail' '$WORK/run.err'"
finish
