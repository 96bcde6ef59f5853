#!/usr/bin/env bash
# netdrop's pod labels: a long-lived process in a kubelet-shaped pod cgroup lives in a
# network namespace; the pod is listed by the fake API server -> the drops made in that
# namespace carry the pod's names (netns empty), as many as the kernel's UdpNoPorts
# there; the host's namespace stays `host`.
. "$(dirname "$0")/lib.sh"

TRAFFIC="python3 $ROOT/tests/e2e/netdrop_traffic.py"
NODE=node-netdrop
NS=ksnd-pod-$$
POD_UID=3d1c2d3e-4b5a-4c6d-8e7f-0123456789ab
CID=$(printf 'abad1dea%.0s' 1 2 3 4 5 6 7 8)
POD_CG=ksight-netdrop/kubepods/besteffort/pod$POD_UID/$CID

start_fake_api "$NODE" 300
ctl POST /pods "$(pod_json shop cart-1 "$POD_UID" cart "$CID")" >/dev/null

# pod_netns NS CGROUP: a network namespace whose only process (the pod's "container", a sleep,
# like a pause container) is in the pod's cgroup; $HOLDER its pid, $INO the namespace's inode
pod_netns() {
	ip netns add "$1" || return 1
	defer "ip netns del $1"
	ip -n "$1" link set lo up
	make_memcg "$2" $((256 * 1024 * 1024))
	sh -c 'echo $$ > "$1/cgroup.procs" && exec ip netns exec "$2" sleep 300' sh "$MEMCG/$2" "$1" &
	HOLDER=$!
	defer "kill $HOLDER 2>/dev/null"
	INO=$(stat -L -c %i "/run/netns/$1")
}

pod_netns "$NS" "$POD_CG" || { not_ok "network namespace is created"; finish; }

start_run run --signals netdrop --kubeconfig "$D/kubeconfig" --node-name "$NODE" ||
	{ not_ok "ksight run starts"; finish; }
eventually "the pod is cached" 15 1 metric_value ksight_k8s_pods

ip netns exec "$NS" $TRAFFIC udp 127.0.0.1 7777 150 >/dev/null
ip netns exec "$NS" $TRAFFIC udp ::1 7777 50 >/dev/null
noports=$(ip netns exec "$NS" nstat -asz UdpNoPorts Udp6NoPorts | awk 'NR > 1 { s += $2 } END { print s + 0 }')
expect_eq "the kernel counted 200 UdpNoPorts in the pod's namespace" "$noports" 200
eventually "NO_SOCKET/udp of the pod carries its names, equal to UdpNoPorts" 10 "$noports" \
	metric_value 'ksight_net_drops_total{reason="NO_SOCKET",protocol="udp",namespace="shop",pod="cart-1",netns=""}'
expect_eq "no series of that namespace by inode" \
	"$(scrape | grep -c "netns=\"net:\[$INO\]\"")" 0
check "the host namespace is labelled host" sh -c "curl -sf http://127.0.0.1:$PORT/metrics | grep -q 'netns=\"host\"' || \
	{ python3 $ROOT/tests/e2e/netdrop_traffic.py udp 127.0.0.1 7779 3 >/dev/null; sleep 1; curl -sf http://127.0.0.1:$PORT/metrics | grep -q 'netns=\"host\"'; }"

# --- the trace's --pod and --namespace filters pick the pod's drops, and only those
start_trace trace-pod netdrop -o json --pod cart-1 --kubeconfig "$D/kubeconfig" --node-name "$NODE" ||
	not_ok "ksight trace netdrop --pod starts"
start_trace trace-other netdrop -o json --pod no-such-pod --kubeconfig "$D/kubeconfig" --node-name "$NODE" ||
	not_ok "ksight trace netdrop --pod no-such-pod starts"
start_trace trace-ns netdrop -o json --namespace shop --kubeconfig "$D/kubeconfig" --node-name "$NODE" ||
	not_ok "ksight trace netdrop --namespace starts"
sleep 1 # their pod caches sync
ip netns exec "$NS" $TRAFFIC udp 127.0.0.1 7777 5 >/dev/null
$TRAFFIC udp 127.0.0.1 7779 5 >/dev/null # host drops, which no filter here takes
check "trace --pod cart-1: the pod's 5 drops" wait_for 10 sh -c "[ \$(grep -c '\"pod\":\"cart-1\"' '$WORK/trace-pod.out') -ge 5 ]"
check "trace --namespace shop: the pod's 5 drops" wait_for 10 sh -c "[ \$(grep -c '\"namespace\":\"shop\"' '$WORK/trace-ns.out') -ge 5 ]"
sleep 1
expect_eq "trace --pod cart-1: nothing of another pod or the host" "$(grep '^{' "$WORK/trace-pod.out" | grep -vc '"pod":"cart-1"')" 0
expect_eq "trace --namespace shop: nothing of another namespace" "$(grep '^{' "$WORK/trace-ns.out" | grep -vc '"namespace":"shop"')" 0
expect_eq "trace --pod no-such-pod: nothing" "$(grep -c '^{' "$WORK/trace-other.out")" 0

# --- a namespace whose pod the cache learns later: its series moves to the pod, no frozen duplicate
NS2=ksnd-late-$$
POD2_UID=7e1c2d3e-4b5a-4c6d-8e7f-0123456789ac
CID2=$(printf 'beefcafe%.0s' 1 2 3 4 5 6 7 8)
POD2_CG=ksight-netdrop/kubepods/besteffort/pod$POD2_UID/$CID2
CART_INO=$INO
pod_netns "$NS2" "$POD2_CG" || not_ok "a second pod's network namespace is created"
HOLDER2=$HOLDER INO2=$INO INO=$CART_INO
ip netns exec "$NS2" $TRAFFIC udp 127.0.0.1 7777 30 >/dev/null
BY_INODE="ksight_net_drops_total{reason=\"NO_SOCKET\",protocol=\"udp\",namespace=\"\",pod=\"\",netns=\"net:[$INO2]\"}"
BY_POD='ksight_net_drops_total{reason="NO_SOCKET",protocol="udp",namespace="shop",pod="late-1",netns=""}'
eventually "a pod the cache does not know yet: its namespace by inode" 10 30 metric_value "$BY_INODE"
ctl POST /pods "$(pod_json shop late-1 "$POD2_UID" late "$CID2")" >/dev/null
eventually "once the pod is cached: the same 30 drops under its names" 10 30 metric_value "$BY_POD"
expect_eq "... and the series by inode is gone" "$(scrape | grep -c "netns=\"net:\[$INO2\]\"")" 0

# --- the pod goes (its processes end): its namespace's series go, and do not come back by inode
kill "$HOLDER2"; wait "$HOLDER2" 2>/dev/null
ctl DELETE "/pods/$POD2_UID" >/dev/null
# the resolver keeps what it found for 30 s; then no process lives in that namespace
eventually "a gone pod's namespace: its series removed" 45 0 sh -c "curl -sf http://127.0.0.1:$PORT/metrics | grep -c 'pod=\"late-1\"'"
expect_eq "... and not made again by inode" "$(scrape | grep -c "netns=\"net:\[$INO2\]\"")" 0
sleep 2
expect_eq "... nor on a later scrape" "$(scrape | grep -c "net:\[$INO2\]\|pod=\"late-1\"")" 0
expect_eq "... its deleted keys are not counted as evicted" "$(metric_value 'ksight_net_drop_keys_evicted_total{map="drops"}')" 0
noports=$(ip netns exec "$NS" nstat -asz UdpNoPorts Udp6NoPorts | awk 'NR > 1 { s += $2 } END { print s + 0 }')
eventually "the other pod's series stays, equal to its UdpNoPorts ($noports)" 5 "$noports" \
	metric_value 'ksight_net_drops_total{reason="NO_SOCKET",protocol="udp",namespace="shop",pod="cart-1",netns=""}'
finish
