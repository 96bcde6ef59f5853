#!/usr/bin/env bash
# apilat: a TLS "API server" on 127.0.0.1 and ::1, registered with --apiserver. Clients
# measure their own request -> first byte latencies on one kept-alive connection each
# (server delays 2, 20, 200 ms): the response histogram counts exactly N (the handshake
# turn apart), and p50/p99 computed from the scraped buckets as histogram_quantile does
# are within 15% of the client's; a closed registered port -> cause="refused", SYNs
# dropped by nftables -> cause="timeout"; a server
# on a port not in the set -> no series at all; a client in a kubelet-shaped cgroup ->
# its pod's names (from the fake API server); a host process -> comm; a watch (events
# pushed unasked) -> one sample, its bytes counted.
. "$(dirname "$0")/lib.sh"

PY="python3 $ROOT/tests/e2e/apilat.py"
# 100 each: p99 is then the second largest sample, not the largest (one outlier of the
# client's own, e.g. a preemption between its clock and its syscall, is tolerated)
N=100
NODE=node-apilat
POD_UID=7a1c2d3e-4b5a-4c6d-8e7f-0123456789ab
CID=$(printf 'c0ffee00%.0s' 1 2 3 4 5 6 7 8)


P4=$(free_port)
P6=$(free_port6)
POTHER=$(free_port)
PCLOSED=$(free_port)
PTIMEOUT=$(free_port)
NS=ksight-apilat-$$
tls_server 127.0.0.1 "$P4"
tls_server ::1 "$P6"
tls_server 127.0.0.1 "$POTHER"

fake_api_pod "$NODE" "ksight-apilat-$$"

KUBERNETES_SERVICE_HOST='' start_run apilat --signals apilat --kubeconfig "$D/kubeconfig" --node-name "$NODE" \
	--apiserver "127.0.0.1:$P4" --apiserver "[::1]:$P6" --apiserver "127.0.0.1:$PCLOSED" --apiserver "127.0.0.1:$PTIMEOUT" ||
	{ not_ok "ksight run starts"; finish; }
eventually "the pod is cached" 15 1 metric_value ksight_k8s_pods

client() { # COMM HOST PORT DELAY_MS: the client's JSON in $WORK/COMM.json
	$PY client --comm "$1" --host "$2" --port "$3" --delay-ms "$4" -n $N >"$WORK/$1.json" ||
		not_ok "client $1 completes"
}
# the 200 ms one (20 s) alongside the others: each client is its own series
client apil-v4-200 127.0.0.1 "$P4" 200 &
SLOW=$!
client apil-v4-2 127.0.0.1 "$P4" 2
client apil-v4-20 127.0.0.1 "$P4" 20
client apil-v6-20 ::1 "$P6" 20
client apil-other 127.0.0.1 "$POTHER" 2
expect_eq "a connect to the closed registered port is refused" \
	"$($PY connect --comm apil-refused --host 127.0.0.1 --port "$PCLOSED")" refused
# a SYN dropped by nftables (in a namespace of its own, on its loopback): ETIMEDOUT after
# one retransmit (TCP_SYNCNT 1, about 3 s) -> cause="timeout"
defer "ip netns del $NS"
if ip netns add "$NS" && ip -n "$NS" link set lo up &&
	printf 'table inet apilat {\n chain out {\n  type filter hook output priority 0;\n  tcp dport %s tcp flags & (syn | ack) == syn drop\n }\n}\n' \
		"$PTIMEOUT" | ip netns exec "$NS" nft -f -; then
	expect_eq "a connect whose SYNs nftables drops times out" \
		"$(ip netns exec "$NS" $PY connect --comm apil-timeout --host 127.0.0.1 --port "$PTIMEOUT" --syncnt 1)" timeout
else
	not_ok "a network namespace with an nftables SYN drop is made"
fi
ip netns del "$NS" 2>/dev/null
# the pod's client: in its container's cgroup from before it connects
in_cg2 "$CG" \
	$PY client --comm apil-pod --host 127.0.0.1 --port "$P4" --delay-ms 20 -n $N >"$WORK/apil-pod.json" ||
	not_ok "the pod's client completes"
wait $SLOW

# accurate NAME LABELS JSON: count N, p50 and p99 within 15% of the client's own
accurate() {
	local name=$1 labels=$2 json=$3
	scrape >"$WORK/scrape.txt"
	expect_eq "$name: response histogram counts $N (handshake excluded)" \
		"$($PY quantile 0 "$WORK/scrape.txt" "ksight_apiserver_response_duration_seconds{$labels}" --count)" $N
	expect_eq "$name: $N requests" "$(metric_value "ksight_apiserver_requests_total{$labels}")" $N
	expect_eq "$name: one TLS handshake" \
		"$($PY quantile 0 "$WORK/scrape.txt" "ksight_apiserver_tls_handshake_duration_seconds{$labels}" --count)" 1
	expect_eq "$name: one connect" \
		"$($PY quantile 0 "$WORK/scrape.txt" "ksight_apiserver_connect_duration_seconds{$labels}" --count)" 1
	quantiles_within "$name" "$labels" "$json"
}

accurate "IPv4, 2 ms" "$(series apil-v4-2)" "$WORK/apil-v4-2.json"
accurate "IPv4, 20 ms" "$(series apil-v4-20)" "$WORK/apil-v4-20.json"
accurate "IPv4, 200 ms" "$(series apil-v4-200)" "$WORK/apil-v4-200.json"
accurate "IPv6, 20 ms" "$(series apil-v6-20)" "$WORK/apil-v6-20.json"
accurate "pod client" "$(series '' shop cart-1 cart)" "$WORK/apil-pod.json"

scrape >"$WORK/scrape.txt"
expect_eq "the refused connect counts as cause=refused" \
	"$(metric_value "ksight_apiserver_connect_failures_total{$(series apil-refused),cause=\"refused\"}")" 1
expect_eq "the dropped SYNs count as cause=timeout" \
	"$(metric_value "ksight_apiserver_connect_failures_total{$(series apil-timeout),cause=\"timeout\"}")" 1
expect_eq "no other cause for them" "$(grep -c 'comm="apil-timeout",cause="[a-z]*"' "$WORK/scrape.txt")" 1
expect_eq "a port not in the set makes no series" "$(grep -c 'comm="apil-other"' "$WORK/scrape.txt")" 0
expect_eq "the pod's client is not labelled by comm" "$(grep -c 'comm="apil-pod"' "$WORK/scrape.txt")" 0
# TLS 1.3 with AES-GCM: each 1000-byte answer is one record of 1000 + 22 bytes; the handshake a few KB
got=$(metric_value "ksight_apiserver_received_bytes_total{$(series apil-v4-20)}")
check "received bytes: the $N answers and the handshake ($got)" \
	awk -v g="$got" -v n=$N 'BEGIN { exit !(g >= n * 1022 && g <= n * 1022 + 8192) }'

# a watch: one request, then 10 events the server pushes 100 ms apart, unasked: one
# response sample (the request's first event), every event's bytes counted
expect_eq "the watch client gets its 10 events" \
	"$($PY client --comm apil-watch --host 127.0.0.1 --port "$P4" --delay-ms 0 -n 0 --watch 10)" '{"events": 10}'
scrape >"$WORK/scrape.txt"
expect_eq "a watch: pushed events make no response sample" \
	"$($PY quantile 0 "$WORK/scrape.txt" "ksight_apiserver_response_duration_seconds{$(series apil-watch)}" --count)" 1
expect_eq "a watch: one request" "$(metric_value "ksight_apiserver_requests_total{$(series apil-watch)}")" 1
got=$(metric_value "ksight_apiserver_received_bytes_total{$(series apil-watch)}")
check "a watch: the pushed events' bytes are counted ($got)" \
	awk -v g="$got" 'BEGIN { exit !(g >= 10 * 1022 && g <= 10 * 1022 + 8192) }'

# the connection gauge: 1 while a client holds its connection, gone when it closes
$PY client --comm apil-hold --host 127.0.0.1 --port "$P4" --delay-ms 1 -n 1 --hold 3 >/dev/null &
HOLD=$!
eventually "an open connection is counted" 5 1 metric_value "ksight_apiserver_connections{$(series apil-hold)}"
wait $HOLD
eventually "a closed one is not" 5 "" metric_value "ksight_apiserver_connections{$(series apil-hold)}"
finish
