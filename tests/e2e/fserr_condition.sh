#!/usr/bin/env bash
# fserr's Node condition (ksight run --node-conditions), end to end against the
# fake API server: False at start; ext4 corruption on a mounted loop device ->
# True naming device and mount; a second error changes nothing; unmounted ->
# False; mounted again clean -> still False; corrupted again -> True;
# `mount -o remount` keeps it, umount + mount clears it; an xfs shutdown -> True;
# an injected API failure is retried and counted; without the flag nothing is
# written to nodes/status, and without an API the flag is an error.
. "$(dirname "$0")/lib.sh"

for tool in mkfs.ext4 debugfs mkfs.xfs xfs_io losetup; do
	command -v $tool >/dev/null || { not_ok "fserr_condition: $tool is missing (scripts/setup.sh)"; finish; }
done

NODE=node-fscond
TYPE=KsightFilesystemCorruption


# --- without an API, --node-conditions is an error, not a node that looks healthy
env -u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT "$KSIGHT" run --listen 127.0.0.1:0 \
	--signals fserr --node-conditions >"$WORK/noapi.out" 2>"$WORK/noapi.err"
expect_eq "no API: --node-conditions exits 1" "$?" 1
check "no API: and says why" grep -q -- "--node-conditions needs the Kubernetes API" "$WORK/noapi.err"
"$KSIGHT" run --node-conditions --no-k8s >/dev/null 2>"$WORK/nok8s.err"
expect_eq "--no-k8s --node-conditions is a usage error" "$?" 2

start_fake_api "$NODE" 900

# --- an ext4 image with a directory whose block is then overwritten on disk
MNT=$WORK/ext4
corrupted_ext4 "$MNT" || { not_ok "ext4: the corrupted image on a loop device, mounted"; finish; }

errors_count() { cat "/sys/fs/ext4/$EXT4/errors_count"; }
# corrupt: read the broken directory, wait for the superblock to count it
corrupt() {
	local before
	before=$(errors_count)
	ls "$MNT/dir" >/dev/null 2>&1
	wait_for 10 sh -c "[ \$(cat /sys/fs/ext4/$EXT4/errors_count) -gt $before ]"
}
fs_errors() {
	local v
	v=$(metric_value "ksight_fs_errors_total{device=\"$EXT4\",fstype=\"ext4\",kind=\"corruption\",source=\"ext4_error\"}")
	echo "${v:-0}"
}
status_requests() { # how many requests reached nodes/NAME/status
	ctl GET /requests | python3 -c 'import json,sys
print(sum(1 for r in json.load(sys.stdin) if r["path"].startswith("/api/v1/nodes/") and r["path"].endswith("/status")))'
}

# --- 1: without --node-conditions, nothing is written to nodes/status (while corruption is seen)
start_run plain --signals fserr --kubeconfig "$WORK/kubeconfig" --node-name "$NODE" ||
	{ not_ok "ksight run (no --node-conditions) starts"; finish; }
check "off by default: the corruption happens" corrupt
at_least "off by default: and is counted" 10 1 fs_errors
eventually "off by default: no request to nodes/$NODE/status" 2 0 status_requests
expect_eq "off by default: no gauge" "$(scrape | grep -c '^ksight_fs_node_condition')" 0
kill "$RUN_PID"; wait "$RUN_PID" 2>/dev/null
ctl POST /reset >/dev/null
# a fresh mount: the errors so far belong to the old one
umount "$MNT" && mount -o errors=continue "$EXT4_DEV" "$MNT" || { not_ok "ext4: mount again"; finish; }

# --- 2: with it
cond() { # FIELD of our condition on the fake's Node ("" when absent)
	ctl GET "/nodes/$NODE/conditions" | python3 -c 'import json,sys
c=[c for c in json.load(sys.stdin) if c["type"]==sys.argv[1]]
print(c[0].get(sys.argv[2], "") if c else "")' "$TYPE" "$1"
}
gauge() { metric_value "ksight_fs_node_condition{type=\"$TYPE\"}"; }
updates() { local v; v=$(metric_value "ksight_k8s_node_condition_updates_total{result=\"$1\"}"); echo "${v:-0}"; }

start_run cond --signals fserr --node-conditions --kubeconfig "$WORK/kubeconfig" --node-name "$NODE" ||
	{ not_ok "ksight run --node-conditions starts"; finish; }
eventually "start: the condition is written False" 10 False cond status
expect_eq "start: reason" "$(cond reason)" NoFilesystemCorruption
expect_eq "start: gauge 0" "$(gauge)" 0
check "start: heartbeat and transition times are set" sh -c "[ -n '$(cond lastHeartbeatTime)' ] && [ -n '$(cond lastTransitionTime)' ]"
expect_eq "start: kubelet's Ready condition is left alone (strategic merge by type)" \
	"$(ctl GET "/nodes/$NODE/conditions" | python3 -c 'import json,sys; print([c["type"] for c in json.load(sys.stdin)])')" \
	"['Ready', '$TYPE']"
expect_eq "start: written as a strategic-merge PATCH of nodes/$NODE/status" \
	"$(ctl GET /requests | python3 -c 'import json,sys
r=[r for r in json.load(sys.stdin) if r["path"].endswith("/status") and r["method"]=="PATCH"]
print(r[0]["content_type"] if r else "none")')" "application/strategic-merge-patch+json"
t_false=$(cond lastTransitionTime)

# ext4 corruption on the mounted filesystem
sleep 1.1 # transition times have a resolution of a second
check "ext4: corrupted" corrupt
eventually "ext4: the condition goes True" 10 True cond status
expect_eq "ext4: reason" "$(cond reason)" FilesystemCorruptionDetected
msg=$(cond message)
check "ext4: the message names device, fstype, mount point and kind ($msg)" \
	sh -c "echo \"\$1\" | grep -qF \"$EXT4 (ext4 at $MNT): corruption\"" sh "$msg"
t_true=$(cond lastTransitionTime)
check "ext4: lastTransitionTime moved ($t_false -> $t_true)" [ "$t_true" != "$t_false" ]
eventually "ext4: gauge 1" 5 1 gauge
n=$(fs_errors)
sleep 1.1
check "ext4: a second error" corrupt
at_least "ext4: counted" 10 $((n + 1)) fs_errors
sleep 1
expect_eq "ext4: still True" "$(cond status)" True
expect_eq "ext4: lastTransitionTime unchanged" "$(cond lastTransitionTime)" "$t_true"

# `mount -o remount` keeps the superblock: still True
mount -o remount,ro "$MNT"
sleep 1
expect_eq "remount,ro: still True (the same mount, the same superblock)" "$(cond status)" True
mount -o remount,rw "$MNT"

# unmounted -> False
sleep 1.1
umount "$MNT"
eventually "unmount: the condition goes False" 10 False cond status
expect_eq "unmount: reason" "$(cond reason)" NoFilesystemCorruption
check "unmount: lastTransitionTime moved" [ "$(cond lastTransitionTime)" != "$t_true" ]
eventually "unmount: gauge 0" 5 0 gauge

# mounted again, nothing read: clean (a new mount ID), stays False
mount -o errors=continue "$EXT4_DEV" "$MNT" || not_ok "mount again"
sleep 2
expect_eq "mounted again clean: stays False" "$(cond status)" False
check "corrupted again" corrupt
eventually "corrupted again: True" 10 True cond status

# umount + mount at once (between two looks at mountinfo): a new mount, False
umount "$MNT" && mount -o errors=continue "$EXT4_DEV" "$MNT" || not_ok "umount + mount"
eventually "umount + mount: False" 10 False cond status

# --- 3: xfs shutdown -> True, FilesystemShutDown
XFS_IMG=$WORK/xfs.img
truncate -s 320M "$XFS_IMG"
mkfs.xfs -q -f "$XFS_IMG"
loop_attach XFS_DEV "$XFS_IMG" || { not_ok "xfs: loop device"; finish; }
XFS=$(basename "$XFS_DEV")
XMNT=$WORK/xfs
mount_at "$XMNT" "$XFS_DEV" || { not_ok "xfs: mount"; finish; }
sleep 1
expect_eq "xfs: mounted, still False" "$(cond status)" False
xfs_io -x -c shutdown "$XMNT"
eventually "xfs: shutdown -> True" 10 True cond status
expect_eq "xfs: reason" "$(cond reason)" FilesystemShutDown
check "xfs: the message names it" sh -c "echo \"\$1\" | grep -qF \"$XFS (xfs at $XMNT): shutdown\"" sh "$(cond message)"

# --- 4: the API fails twice: retried with backoff, counted, then written
failed0=$(updates failed)
ok0=$(updates success)
ctl POST /fault '{"method": "PATCH", "path_prefix": "/api/v1/nodes/", "status": 500, "count": 2}' >/dev/null
umount "$XMNT"
eventually "API failure: the condition still reaches False" 20 False cond status
expect_eq "API failure: both failures counted" "$(updates failed)" $((failed0 + 2))
at_least "API failure: and the success after them" 5 $((ok0 + 1)) updates success
expect_eq "API failure: the fake saw 2 failed PATCHes, then one that succeeded" \
	"$(ctl GET /requests | python3 -c 'import json,sys
r=[x for x in json.load(sys.stdin) if x["method"]=="PATCH" and x["path"].endswith("/status")]
print(" ".join(str(x["status"]) for x in r[-3:]))')" "500 500 200"

# --- 5: restarted while False: the transition time the Node has is kept
t_before=$(cond lastTransitionTime)
kill "$RUN_PID"; wait "$RUN_PID" 2>/dev/null
start_run again --signals fserr --node-conditions --kubeconfig "$WORK/kubeconfig" --node-name "$NODE" ||
	not_ok "ksight run --node-conditions starts again"
sleep 2
expect_eq "restart: still False" "$(cond status)" False
expect_eq "restart: lastTransitionTime kept" "$(cond lastTransitionTime)" "$t_before"

kill "$RUN_PID"; wait "$RUN_PID" 2>/dev/null
check "no warnings but the injected failures" sh -c "! grep -iE 'warn|cannot|fail' '$WORK/cond.err' | grep -v 'HTTP 500' | grep -q ."
[ -n "${FSERR_DEBUG:-}" ] && cat "$WORK/cond.err"
finish
