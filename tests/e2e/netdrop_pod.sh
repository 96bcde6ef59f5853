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

ip netns add "$NS" || { not_ok "network namespace is created"; finish; }
defer "ip netns del $NS"
ip -n "$NS" link set lo up
make_memcg "$POD_CG" $((256 * 1024 * 1024))
# the pod's "container": a sleep in the pod's cgroup and namespace, like a pause container
sh -c 'echo $$ > "$1/cgroup.procs" && exec ip netns exec "$2" sleep 300' sh "$MEMCG/$POD_CG" "$NS" &
HOLDER=$!
defer "kill $HOLDER"
INO=$(stat -L -c %i "/run/netns/$NS")

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
finish
