#!/usr/bin/env bash
# user/k8s/pod_resolver.c on the real kernel: a process in a network namespace
# of its own (ip netns add) and in kubelet-shaped cgroups (a v1 memory cgroup,
# and the v2 hierarchy, /sys/fs/cgroup/unified on this hybrid host) resolves to
# its pod, by netns inode and by cgroup id (by file handle and by walking the
# hierarchy, which must agree); the host's netns resolves to "host".
. "$(dirname "$0")/lib.sh"

TOOL=$TOOLS/pod_resolve
POD_UID=3e1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b
CID=$(printf 'feedface%.0s' 1 2 3 4 5 6 7 8)
CG=ksight-resolver/kubepods/burstable/pod$POD_UID/$CID
NS=ksight-resolver-$$

V2=
for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
	[ "$(stat -f -c %T "$d" 2>/dev/null)" = cgroup2fs ] && { V2=$d; break; }
done

make_memcg "$CG" $((64 * 1024 * 1024))
if [ -n "$V2" ]; then
	mkdir -p "$V2/$CG"
	defer "p='$CG'; while [ \"\$p\" != . ]; do rmdir '$V2'/\"\$p\" 2>/dev/null; p=\$(dirname \"\$p\"); done"
fi
ip netns add "$NS" || { not_ok "ip netns add"; finish; }
defer "ip netns del '$NS'"

# join the cgroups first: ip netns exec remounts /sys; it execs sleep in the same process
sh -c 'echo $$ >"$1/cgroup.procs" && { [ -z "$2" ] || echo $$ >"$2/cgroup.procs"; } && exec ip netns exec "$3" sleep 120' \
	sh "$MEMCG/$CG" "${V2:+$V2/$CG}" "$NS" &
SLEEP=$!
defer "kill $SLEEP"
wait_for 5 sh -c "[ \"\$(cat /proc/$SLEEP/comm 2>/dev/null)\" = sleep ]" || { not_ok "the process runs in the netns"; finish; }

ino=$(stat -L -c %i "/proc/$SLEEP/ns/net")
host_ino=$(stat -L -c %i /proc/self/ns/net)
check "the process has a netns of its own" test "$ino" != "$host_ino"
expect_eq "netns inode -> the pod" "$("$TOOL" netns "$ino")" "pod $POD_UID $CID"
expect_eq "the host's netns -> host" "$("$TOOL" netns "$host_ino")" "host"
expect_eq "an inode no process has -> not found" "$("$TOOL" netns 1)" "error ENOENT"

if [ -n "$V2" ]; then
	# on cgroup v2 the id bpf_get_current_cgroup_id() returns is the directory's inode
	cgid=$(stat -c %i "$V2/$CG")
	expect_eq "cgroup id -> the pod (file handle)" "$("$TOOL" cgroup "$cgid")" "pod $POD_UID $CID"
	expect_eq "cgroup id -> the pod (walk)" "$("$TOOL" --walk cgroup "$cgid")" "pod $POD_UID $CID"
	expect_eq "the root cgroup -> host" "$("$TOOL" cgroup "$(stat -c %i "$V2")")" "host"
	parent=$(stat -c %i "$V2/ksight-resolver")
	expect_eq "a cgroup outside pods -> its path" "$("$TOOL" cgroup "$parent")" "none /ksight-resolver"
else
	echo "# no cgroup2 mount: cgroup id checks skipped"
fi

kill "$SLEEP"; wait "$SLEEP" 2>/dev/null
expect_eq "the process is gone: its netns is not found" "$("$TOOL" netns "$ino")" "error ENOENT"
finish
