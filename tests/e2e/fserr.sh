#!/usr/bin/env bash
# fserr, end to end, on loop devices and images made here: ext4 corruption
# counted exactly against the superblock's errors_count (also in a storm the
# kernel log rate-limits), xfs corruption and shutdown, ENOSPC from a loop
# device on a full tmpfs, a pod volume bind-mounted under a kubelet-shaped
# root -> the Event on that Pod, a CSI volume whose PV's claimRef names the
# PVC in the trace and the Pod's Event, and the per-device record rate limit.
# Elsewhere: FUSE-backed EIO, partitions, devices gone (fserr_io.sh), the Node
# condition, the 6.1 guest.
. "$(dirname "$0")/lib.sh"

for tool in mkfs.ext4 debugfs mkfs.xfs xfs_db xfs_io losetup dmesg; do
	command -v $tool >/dev/null || { not_ok "fserr: $tool is missing (scripts/setup.sh)"; finish; }
done

NODE=node-fserr
POD_UID=5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9
KROOT=$WORK/kubelet
mkdir -p "$KROOT/pods/$POD_UID/volumes/kubernetes.io~empty-dir/scratch"

# --- the fake API server, with the pod whose volume will sit on the failing disk
D=$WORK/api
mkdir -p "$D"
python3 "$ROOT/tests/k8s/fake_apiserver.py" --dir "$D" --node "$NODE" --lifetime 900 &
defer "kill $!"
wait_for 30 test -f "$D/ports.json" || { not_ok "fake API server starts"; finish; }
CTL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$D/ports.json")
ctl POST /pods "$(pod_json data db-0 "$POD_UID" db "$(printf 'abcdef01%.0s' 1 2 3 4 5 6 7 8)")" >/dev/null


# --- an ext4 image with a directory whose block is then overwritten on disk
EXT4_MNT=$WORK/ext4
corrupted_ext4 "$EXT4_MNT" || { not_ok "ext4: the corrupted image on a loop device, mounted"; finish; }
EXT4_MINOR=$(($(stat -c '0x%T' "$EXT4_DEV")))
check "ext4: the image is corrupted at directory block $BLOCK and mounted errors=continue" \
	grep -qx "errors=continue" "/proc/fs/ext4/$EXT4/options"

start_run run --signals fserr --kubeconfig "$D/kubeconfig" --node-name "$NODE" --kubelet-root "$KROOT" ||
	{ not_ok "ksight run starts"; finish; }
start_trace trace fserr -o json --kubeconfig "$D/kubeconfig" --node-name "$NODE" --kubelet-root "$KROOT" ||
	{ not_ok "ksight trace starts"; finish; }
start_trace text fserr --no-k8s --kubelet-root "$KROOT" || not_ok "ksight trace (text) starts"
ok "ksight run and ksight trace start"
eventually "the pod is listed" 15 1 metric_value ksight_k8s_pods

errors_count() { cat "/sys/fs/ext4/$EXT4/errors_count"; }
fs_errors() { # DEVICE FSTYPE KIND SOURCE
	local v
	v=$(metric_value "ksight_fs_errors_total{device=\"$1\",fstype=\"$2\",kind=\"$3\",source=\"$4\"}")
	echo "${v:-0}"
}
ext4_errors() { fs_errors "$EXT4" ext4 corruption ext4_error; }
log_lines() { dmesg | grep -c "EXT4-fs error (device $EXT4)"; }
# jq-less JSON: python over the trace's lines of one device
trace_py() { # DEVICE PYTHON-EXPR-OVER-recs
	python3 -c 'import json,sys
recs=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
recs=[r for r in recs if r.get("device")==sys.argv[2]]
print(eval(sys.argv[3]))' "$WORK/trace.out" "$1" "$2"
}

# --- 1: one read of the broken directory
count0=$(errors_count)
expect_eq "ext4: /metrics has the errors recorded before start-up" \
	"$(metric_value "ksight_fs_recorded_errors{device=\"$EXT4\",fstype=\"ext4\"}")" "$count0"
log0=$(log_lines)
ls "$EXT4_MNT/dir" >/dev/null 2>&1
check "ext4: the read failed, the superblock counts it" wait_for 10 sh -c "[ \$(cat /sys/fs/ext4/$EXT4/errors_count) -gt $count0 ]"
sleep 0.5
count1=$(errors_count)
eventually "ext4: ksight_fs_errors_total = errors_count delta ($((count1 - count0)))" 5 $((count1 - count0)) ext4_errors
# the kernel's own log line names function and line: the record must say the same
logline=$(dmesg | grep "EXT4-fs error (device $EXT4)" | tail -1)
want_fn=$(sed -E 's/.*\(device [^)]*\): ([a-z0-9_]+):([0-9]+):.*/\1/' <<<"$logline")
want_line=$(sed -E 's/.*\(device [^)]*\): ([a-z0-9_]+):([0-9]+):.*/\2/' <<<"$logline")
check "ext4: trace printed the record" wait_for 10 sh -c "grep -q '\"device\":\"$EXT4\"' '$WORK/trace.out'"
expect_eq "ext4: function as the kernel log says" "$(trace_py "$EXT4" 'recs[0]["function"]')" "$want_fn"
expect_eq "ext4: line as the kernel log says" "$(trace_py "$EXT4" 'recs[0]["line"]')" "$want_line"
expect_eq "ext4: kind, source, fstype" "$(trace_py "$EXT4" 'recs[0]["kind"]+" "+recs[0]["source"]+" "+recs[0]["fstype"]')" \
	"corruption ext4_error ext4"
expect_eq "ext4: major:minor decoded the kernel's way" "$(trace_py "$EXT4" '"%d:%d" % (recs[0]["major"], recs[0]["minor"])')" \
	"7:$EXT4_MINOR"
expect_eq "ext4: mount point" "$(trace_py "$EXT4" 'recs[0]["mountpoints"]')" "['$EXT4_MNT']"
expect_eq "ext4: no errno (ext4 gives none), no pods yet" "$(trace_py "$EXT4" '(recs[0]["errno"], recs[0]["pods"])')" "(None, [])"
check "ext4: the text trace has the columns" wait_for 5 grep -qE \
	"fserr .* $EXT4 +ext4 +$EXT4_MNT +corruption +ext4_error +$want_fn:$want_line +- +-\$" "$WORK/text.out"
expect_eq "ext4: first Event on the Node" "$(ctl GET /events | python3 -c 'import json,sys
ev=[e for e in json.load(sys.stdin) if e["involvedObject"]["kind"]=="Node" and e["reason"]=="FilesystemCorruptionDetected"]
print(len(ev) == 1 and sys.argv[1] in ev[0]["message"] and sys.argv[2] in ev[0]["message"] and sys.argv[3] in ev[0]["message"])' "$EXT4" "$EXT4_MNT" "$want_fn")" True

# --- 2: the same filesystem bind-mounted as a pod's volume: the mount is followed, the Pod gets the Event
VOL=$KROOT/pods/$POD_UID/volumes/kubernetes.io~empty-dir/scratch
mount_at "$VOL" --bind "$EXT4_MNT" || not_ok "pod volume: bind mount"
before=$(trace_py "$EXT4" 'len(recs)')
ls "$VOL/dir" >/dev/null 2>&1
check "pod volume: a second record" wait_for 10 sh -c "[ \$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if sys.argv[2] in l))' '$WORK/trace.out' '\"device\":\"$EXT4\"') -gt $before ]"
expect_eq "pod volume: the trace names the pod" "$(trace_py "$EXT4" 'recs[-1]["pods"]')" "['data/db-0']"
expect_eq "pod volume: and its volume" "$(trace_py "$EXT4" '(recs[-1]["volumes"][0]["volume"], recs[-1]["volumes"][0]["plugin"])')" \
	"('scratch', 'kubernetes.io~empty-dir')"
expect_eq "pod volume: both mount points" "$(trace_py "$EXT4" 'sorted(recs[-1]["mountpoints"])')" "$(python3 -c 'import sys; print(sorted(sys.argv[1:]))' "$EXT4_MNT" "$VOL")"
pod_event() {
	ctl GET /events | python3 -c 'import json,sys
ev=[e for e in json.load(sys.stdin) if e["involvedObject"]["kind"]=="Pod" and e["involvedObject"]["name"]=="db-0"]
ok=[e for e in ev if e["reason"]=="FilesystemCorruptionDetected" and e["involvedObject"]["namespace"]=="data"
    and e["involvedObject"]["uid"]==sys.argv[1] and "Volume scratch" in e["message"] and sys.argv[2] in e["message"]]
print("%d/%d" % (len(ok), len(ev)))' "$POD_UID" "$EXT4"
}
eventually "pod volume: one Event on the Pod, naming volume and device" 15 "1/1" pod_event
node_count() {
	ctl GET /events | python3 -c 'import json,sys
ev=[e for e in json.load(sys.stdin) if e["involvedObject"]["kind"]=="Node" and e["reason"]=="FilesystemCorruptionDetected"]
print("%d:%d" % (len(ev), ev[0]["count"] if ev else 0))'
}
eventually "pod volume: the Node Event is the same signature, not re-sent within a minute" 15 "1:1" node_count

# --- 2b: a CSI volume of another pod: the PV's spec.claimRef names the PVC, in the trace and in the Pod's Event
POD2_UID=6f7a8b9c-0d1e-4f2a-b3c4-d5e6f7a8b9c0
ctl POST /pods "$(pod_json data db-1 "$POD2_UID" db "$(printf 'bcdef012%.0s' 1 2 3 4 5 6 7 8)")" >/dev/null
ctl POST /persistentvolumes '{"metadata":{"name":"pv-xyz"},"spec":{"capacity":{"storage":"32Mi"},"csi":{"driver":"test.csi.example","volumeHandle":"h-1"},"claimRef":{"kind":"PersistentVolumeClaim","namespace":"data","name":"claim"}}}' >/dev/null
CSI=$KROOT/pods/$POD2_UID/volumes/kubernetes.io~csi/pv-xyz/mount
mount_at "$CSI" --bind "$EXT4_MNT" || not_ok "csi volume: bind mount"
eventually "csi volume: the second pod is listed" 15 2 metric_value ksight_k8s_pods
before=$(trace_py "$EXT4" 'len(recs)')
ls "$CSI/dir" >/dev/null 2>&1
check "csi volume: a new record" wait_for 10 sh -c "[ \$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if sys.argv[2] in l))' '$WORK/trace.out' '\"device\":\"$EXT4\"') -gt $before ]"
expect_eq "csi volume: the trace's volumes entry names pod, PV and PVC" \
	"$(trace_py "$EXT4" "[(v['pod'], v['plugin'], v['volume'], v['pv'], v['pvc']) for v in recs[-1]['volumes'] if v['pod_uid']=='$POD2_UID']")" \
	"[('data/db-1', 'kubernetes.io~csi', 'pv-xyz', 'pv-xyz', 'data/claim')]"
expect_eq "csi volume: a volume without a PV has no PVC" \
	"$(trace_py "$EXT4" '[v["pvc"] for v in recs[-1]["volumes"] if v["volume"]=="scratch"]')" "[None]"
expect_eq "csi volume: both pods in the trace" "$(trace_py "$EXT4" 'sorted(recs[-1]["pods"])')" "['data/db-0', 'data/db-1']"
pvc_event() {
	ctl GET /events | python3 -c 'import json,sys
ev=[e for e in json.load(sys.stdin) if e["involvedObject"]["kind"]=="Pod" and e["involvedObject"]["name"]=="db-1"]
ok=[e for e in ev if e["involvedObject"]["uid"]==sys.argv[1] and
    "Volume pv-xyz (PersistentVolume pv-xyz, PersistentVolumeClaim data/claim) of this pod is on " + sys.argv[2] in e["message"]]
print("%d/%d" % (len(ok), len(ev)))' "$POD2_UID" "$EXT4"
}
eventually "csi volume: the Event on that Pod names the PVC" 15 "1/1" pvc_event
pv_gets() { ctl GET /requests | python3 -c 'import json,sys
print(sum(1 for r in json.load(sys.stdin) if "/persistentvolumes/pv-xyz" in json.dumps(r)))'; }
ls "$CSI/dir" >/dev/null 2>&1
sleep 1
# ksight run and ksight trace each asked once; the second error is answered from their caches
expect_eq "csi volume: the PV is read once per agent, then cached" "$(pv_gets)" 2

# --- 3: an error storm: more errors than the kernel prints, more than the rate limit lets through
STORM=${FSERR_STORM:-100000}
count2=$(errors_count)
metric2=$(ext4_errors)
log2=$(log_lines)
recs2=$(trace_py "$EXT4" 'len(recs)')
t0=$(date +%s.%N)
failed=$("$TOOLS/fserr_storm" "$EXT4_MNT/dir" "$STORM")
elapsed=$(python3 -c "import math,sys; print(math.ceil(float(sys.argv[2]) - float(sys.argv[1])) + 1)" "$t0" "$(date +%s.%N)")
expect_eq "storm: every one of the $STORM reads failed" "$failed" "$STORM"
# the superblock's count is updated by a work item: wait until it has them all
wait_for 20 sh -c "[ \$(cat /sys/fs/ext4/$EXT4/errors_count) -ge $((count2 + STORM)) ]"
sleep 1
count3=$(errors_count)
echo "# storm: $((count3 - count2)) errors in ${elapsed}s"
ext4_delta() { echo $(($(ext4_errors) - metric2)); }
eventually "storm: ksight_fs_errors_total grew by the errors_count delta ($((count3 - count2)))" 10 \
	$((count3 - count2)) ext4_delta
logged=$(($(log_lines) - log2))
check "storm: the kernel log printed fewer lines ($logged) than errors ($((count3 - count2)))" [ "$logged" -lt $((count3 - count2)) ]
sleep 1
recs=$(($(trace_py "$EXT4" 'len(recs)') - recs2))
# burst 20, then 10 a second
check "storm: records bounded by the rate limit ($recs <= 20 + 10 x ${elapsed}s)" [ "$recs" -le $((20 + 10 * elapsed)) ]
check "storm: records were suppressed" [ "$recs" -lt $((count3 - count2)) ]
sup=$(metric_value "ksight_fs_records_suppressed_total{device=\"$EXT4\"}")
check "storm: suppressed records counted per device (${sup:-none})" [ "${sup:-0}" -gt 0 ]
# ksight run's own books balance exactly: every error was a record or a suppression
balance() {
	scrape | awk '/^ksight_fs_errors_total\{/ { e += $2 } /^ksight_fs_records_suppressed_total\{/ { s += $2 }
		/^ksight_ringbuf_records_total\{signal="fserr"\}/ { r = $2 } /^ksight_ringbuf_lost_total\{signal="fserr"\}/ { l = $2 }
		END { printf "%d", e - s - r - l }'
}
eventually "storm: errors = records + suppressed + lost (run's metrics)" 5 0 balance
eventually "storm: nothing lost to a full ring buffer" 5 0 metric_value 'ksight_ringbuf_lost_total{signal="fserr"}'

# --- 4: XFS: a directory block corrupted with xfs_db, then a shutdown
XFS_IMG=$WORK/xfs.img
truncate -s 320M "$XFS_IMG"
mkfs.xfs -q -f "$XFS_IMG"
loop_attach XFS_DEV "$XFS_IMG" || { not_ok "xfs: loop device"; finish; }
XFS=$(basename "$XFS_DEV")
XFS_MNT=$WORK/xfs
mount_at "$XFS_MNT" "$XFS_DEV" || { not_ok "xfs: mount"; finish; }
mkdir "$XFS_MNT/dir"
for i in $(seq 1 300); do : >"$XFS_MNT/dir/a-longer-file-name-$i"; done
ino=$(stat -c %i "$XFS_MNT/dir")
umount "$XFS_MNT"
xfs_db -x -c "inode $ino" -c "dblock 0" -c "write -d dhdr.hdr.magic 0" "$XFS_DEV" >/dev/null 2>&1
mount "$XFS_DEV" "$XFS_MNT" || { not_ok "xfs: mount the corrupted image"; finish; }
ls "$XFS_MNT/dir" >/dev/null 2>&1
check "xfs: reading the directory fails" sh -c "! ls '$XFS_MNT/dir' >/dev/null 2>&1"
xfs_corruption() {
	scrape | awk -v d="$XFS" 'index($0, "ksight_fs_errors_total{device=\"" d "\",fstype=\"xfs\",kind=\"corruption\"") == 1 { s += $2 } END { print s + 0 }'
}
at_least "xfs: corruption counted on the device" 10 1 xfs_corruption
check "xfs: trace has a corruption record with the mount point" wait_for 5 sh -c "[ \"\$(python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if l.startswith(\"{\")]
print(any(x[\"device\"]==sys.argv[2] and x[\"kind\"]==\"corruption\" and x[\"source\"].startswith(\"xfs_\") and x[\"mountpoints\"]==[sys.argv[3]] for x in r))' '$WORK/trace.out' '$XFS' '$XFS_MNT')\" = True ]"
xfs_io -x -c shutdown "$XFS_MNT"
eventually "xfs: xfs_io shutdown -> shutdown counted once" 10 1 fs_errors "$XFS" xfs shutdown xfs_force_shutdown
check "xfs: the shutdown record names the source file" wait_for 5 sh -c "[ \"\$(python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if l.startswith(\"{\")]
print(any(x[\"device\"]==sys.argv[2] and x[\"kind\"]==\"shutdown\" and x[\"function\"].endswith(\"xfs_fsops.c\") for x in r))' '$WORK/trace.out' '$XFS')\" = True ]"
shutdown_event() {
	ctl GET /events | python3 -c 'import json,sys
ev=[e for e in json.load(sys.stdin) if e["involvedObject"]["kind"]=="Node" and e["reason"]=="FilesystemShutDown" and sys.argv[1] in e["message"]]
print(len(ev))' "$XFS"
}
eventually "xfs: a FilesystemShutDown Event on the Node" 15 1 shutdown_event

# --- 5: I/O errors for real: a loop device on a file in a tmpfs that fills up
TMPFS=$WORK/tiny
mount_at "$TMPFS" -t tmpfs -o size=8M tmpfs || { not_ok "enospc: tmpfs"; finish; }
truncate -s 64M "$TMPFS/backing.img"
loop_attach IO_DEV "$TMPFS/backing.img" || { not_ok "enospc: loop device"; finish; }
IO=$(basename "$IO_DEV")
dd if=/dev/zero of="$IO_DEV" bs=1M count=16 oflag=direct status=none 2>/dev/null
check "enospc: the write failed" [ $? -ne 0 ]
io_errors() { fs_errors "$IO" "" io block_rq_error; }
at_least "enospc: io errors counted on the device" 10 1 io_errors
check "enospc: trace records say ENOSPC on the device" wait_for 5 sh -c "[ \"\$(python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if l.startswith(\"{\")]
r=[x for x in r if x[\"device\"]==sys.argv[2]]
print(len(r) > 0 and all(x[\"kind\"]==\"io\" and x[\"errno\"]==\"ENOSPC\" and x[\"source\"]==\"block_rq_error\" for x in r))' '$WORK/trace.out' '$IO')\" = True ]"
expect_eq "enospc: below the burst, one record per counted error" "$(trace_py "$IO" 'len(recs)')" "$(io_errors)"
n=$(io_errors)
losetup -d "$IO_DEV"
expect_eq "enospc: the detached device keeps its name and count" "$(io_errors)" "$n"

# --- 6: xfs absent (its tracepoints hidden as while the module is not loaded): the rest attaches
# in a mount namespace of its own, an events/ with only the ext4 and block categories
EV=$WORK/events
mkdir -p "$EV"
unshare -m sh -c "mount -t tmpfs none '$EV' && for c in ext4 block; do mkdir '$EV/'\$c &&
	mount --bind /sys/kernel/tracing/events/\$c '$EV/'\$c || exit 1; done &&
	mount --rbind '$EV' /sys/kernel/tracing/events && exec '$KSIGHT' probes fserr" >"$WORK/noxfs.out" 2>&1
check "no xfs: ksight probes fserr succeeds" [ $? -eq 0 ]
check "no xfs: it says the xfs module is not loaded" \
	grep -qE "^ +xfs_shutdown +tracepoint +unsupported +.*no xfs events at all \(the xfs module is not loaded\)" "$WORK/noxfs.out"
check "no xfs: ext4 and block still attach" sh -c "grep -qE '^fserr +ext4_error +tracepoint +attached' '$WORK/noxfs.out' &&
	grep -qE '^ +block_error +tracepoint +attached' '$WORK/noxfs.out'"

# --- 7: xfs appearing after start-up (a module loaded later): its points attach on a later scrape
# (the collector retries every 30 s), and its errors are counted with the rest
REAL=$WORK/real-events
EV2=$WORK/events2
mkdir -p "$REAL" "$EV2"
PORT2=$(free_port)
unshare -m sh -c "mount --bind /sys/kernel/tracing/events '$REAL' && mount -t tmpfs none '$EV2' &&
	for c in ext4 block; do mkdir '$EV2/'\$c && mount --bind '$REAL/'\$c '$EV2/'\$c || exit 1; done &&
	mount --rbind '$EV2' /sys/kernel/tracing/events &&
	exec '$KSIGHT' run --signals fserr --no-k8s --listen 127.0.0.1:$PORT2" >"$WORK/late.out" 2>"$WORK/late.err" &
LATE_PID=$!
defer "kill $LATE_PID; wait $LATE_PID"
late_state() { # POINT: the state of its tracepoint variant in ksight_probe_info
	curl -sf "http://127.0.0.1:$PORT2/metrics" | sed -n "s/^ksight_probe_info{signal=\"fserr\",probe=\"$1\",variant=\"tracepoint\",state=\"\([a-z_]*\)\"} 1$/\1/p"
}
if wait_for 20 curl -sf "http://127.0.0.1:$PORT2/healthz" -o /dev/null; then
	expect_eq "late xfs: at start-up without xfs, xfs_shutdown is unsupported" "$(late_state xfs_shutdown)" unsupported
	nsenter -t "$LATE_PID" -m sh -c "mkdir /sys/kernel/tracing/events/xfs && mount --bind '$REAL/xfs' /sys/kernel/tracing/events/xfs"
	t0=$SECONDS
	eventually "late xfs: xfs_shutdown attached within the 30 s retry" 40 attached late_state xfs_shutdown
	echo "# late xfs: attached after $((SECONDS - t0)) s"
	expect_eq "late xfs: and the corruption points" "$(late_state xfs_fs) $(late_state xfs_inode) $(late_state xfs_group) $(late_state xfs_btree)" \
		"attached attached attached attached"
	check "late xfs: logged" grep -q "fserr: attached 5 xfs probe points now that xfs is loaded" "$WORK/late.err"
	LATE_IMG=$WORK/late-xfs.img
	truncate -s 320M "$LATE_IMG"
	mkfs.xfs -q -f "$LATE_IMG"
	loop_attach LATE_DEV "$LATE_IMG" || not_ok "late xfs: loop device"
	mount_at "$WORK/late-xfs" "$LATE_DEV" || not_ok "late xfs: mount"
	xfs_io -x -c shutdown "$WORK/late-xfs"
	late_shutdowns() {
		curl -sf "http://127.0.0.1:$PORT2/metrics" |
			awk -v k="ksight_fs_errors_total{device=\"$(basename "$LATE_DEV")\",fstype=\"xfs\",kind=\"shutdown\",source=\"xfs_force_shutdown\"}" 'index($0, k " ") == 1 { print $2 }'
	}
	eventually "late xfs: a shutdown afterwards is counted" 10 1 late_shutdowns
	late_records() { curl -sf "http://127.0.0.1:$PORT2/metrics" | awk '/^ksight_ringbuf_records_total\{signal="fserr"\}/ { print $2 }'; }
	at_least "late xfs: and its record reached the shared ring buffer" 5 1 late_records
else
	not_ok "late xfs: ksight run (in its own mount namespace) starts"; sed 's/^/#   /' "$WORK/late.err"
fi

# --- the other signals are unaffected, and the agent still answers
check "ksight run is still serving" curl -sf "http://127.0.0.1:$PORT/healthz" -o /dev/null
kill "$TRACE_PID" "$RUN_PID"; wait "$TRACE_PID" "$RUN_PID" 2>/dev/null
check "no warnings from ksight run" sh -c "! grep -qiE 'warn|cannot|fail' '$WORK/run.err'"
[ -n "${FSERR_DEBUG:-}" ] && { cat "$WORK/run.err"; ctl GET /events | python3 -m json.tool | grep -E "reason|message|count"; grep -c . "$WORK/trace.out"; }
finish
