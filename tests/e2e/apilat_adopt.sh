#!/usr/bin/env bash
# apilat: connections open before ksight started are adopted. Clients on 127.0.0.1 and ::1
# (one of them in a kubelet-shaped pod cgroup) connect to the registered TLS "API server",
# finish their handshake and a few requests, and wait; ksight starts; then each sends N
# requests. Per client: the connection is counted while it waits; the response histogram
# counts exactly N, p50/p99 as histogram_quantile computes them are within 15% of the
# client's own; no connect or handshake sample (ksight saw neither); sent and received
# bytes equal what the socket itself counted after ksight started (tcpi_bytes_acked and
# tcpi_bytes_received, from the client's go to its close); the pod's client is labelled by
# its pod, a host one by comm. A connection to a port not in the set is not adopted. Then
# without the API: the server side's view of the same, exact against the clients' sockets;
# and a client and a server each in a network namespace of its own (ksight in neither).
. "$(dirname "$0")/lib.sh"

PY="python3 $ROOT/tests/e2e/apilat.py"
# 100 each: p99 is then the second largest sample, not the largest (one outlier of the
# client's own, a preemption between its clock and its syscall, is tolerated)
N=100
NODE=node-apiadopt
POD_UID=3b9c4d2e-1a5f-4e6d-9c7b-abcdef012345
CID=$(printf 'adc0ffee%.0s' 1 2 3 4 5 6 7 8)

P4=$(free_port)
P6=$(free_port6)
POTHER=$(free_port)
tls_server 127.0.0.1 "$P4"
tls_server ::1 "$P6"
tls_server 127.0.0.1 "$POTHER"

fake_api_pod "$NODE" "ksight-apiadopt-$$"

GO=$WORK/go
early() { # COMM HOST PORT DELAY_MS [in_cg2 DIR]: connected, 3 requests done, waiting for $GO
	local comm=$1 host=$2 port=$3 delay=$4; shift 4
	"$@" $PY client --comm "$comm" --host "$host" --port "$port" --delay-ms "$delay" -n $N \
		--pre 3 --ready "$WORK/$comm.ready" --go "$GO" >"$WORK/$comm.json" ||
		not_ok "client $comm completes"
}
early apad-v4 127.0.0.1 "$P4" 20 &
C1=$!
early apad-v6 ::1 "$P6" 2 &
C2=$!
early apad-pod 127.0.0.1 "$P4" 20 in_cg2 "$CG" &
C3=$!
early apad-other 127.0.0.1 "$POTHER" 2 &
C4=$!
defer "kill $C1 $C2 $C3 $C4"
for c in apad-v4 apad-v6 apad-pod apad-other; do
	wait_for 20 test -f "$WORK/$c.ready" || not_ok "client $c is connected and waiting"
done

KUBERNETES_SERVICE_HOST='' start_run adopt --signals apilat --kubeconfig "$D/kubeconfig" --node-name "$NODE" \
	--apiserver "127.0.0.1:$P4" --apiserver "[::1]:$P6" || { not_ok "ksight run starts"; finish; }
eventually "the pod is cached" 15 1 metric_value ksight_k8s_pods
check "probes: adopt uses iter" sh -c "curl -sf http://127.0.0.1:$PORT/metrics |
	grep -q '^ksight_probe_info{signal=\"apilat\",probe=\"adopt\",variant=\"iter\",state=\"attached\"} 1'"
# the three clients' connections, and the three the TLS servers accepted (server side: their
# local address is in the set)
# (the adoption runs at the warm-up, after /healthz is up: waited for)
check "the log says 6 connections open before ksight started are followed" wait_for 10 \
	grep -q "apilat: following 6 API-server connections open before ksight started" "$WORK/adopt.err"

for s in "$(series apad-v4)" "$(series apad-v6)" "$(series '' shop cart-1 cart)"; do
	expect_eq "an adopted connection is open: {$s}" "$(metric_value "ksight_apiserver_connections{$s}")" 1
done

touch "$GO"
wait $C1 $C2 $C3 $C4
sleep 0.5 # the closes' last segments
scrape >"$WORK/scrape.txt"
num() { awk -v k="$1" 'index($0, k " ") == 1 { v = $2 } END { print v == "" ? 0 : v }' "$WORK/scrape.txt"; }
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

adopted() { # NAME LABELS JSON
	local name=$1 labels=$2 json=$3
	expect_eq "$name: response histogram counts the $N requests made after ksight started" \
		"$($PY quantile 0 "$WORK/scrape.txt" "ksight_apiserver_response_duration_seconds{$labels}" --count)" $N
	expect_eq "$name: $N requests" "$(num "ksight_apiserver_requests_total{$labels}")" $N
	expect_eq "$name: no handshake sample (it was over before ksight started)" \
		"$(grep -c "^ksight_apiserver_tls_handshake_duration_seconds_count{$labels}" "$WORK/scrape.txt")" 0
	expect_eq "$name: no connect sample" \
		"$(grep -c "^ksight_apiserver_connect_duration_seconds_count{$labels}" "$WORK/scrape.txt")" 0
	quantiles_within "$name" "$labels" "$json"
	expect_eq "$name: sent bytes == what its socket had acknowledged since ksight started (tcpi_bytes_acked)" \
		"$(num "ksight_apiserver_sent_bytes_total{$labels}")" \
		"$(($(field "$json" bytes_acked) - $(field "$json" base_acked)))"
	expect_eq "$name: received bytes == what its socket received since ksight started (tcpi_bytes_received)" \
		"$(num "ksight_apiserver_received_bytes_total{$labels}")" \
		"$(($(field "$json" bytes_received) - $(field "$json" base_received)))"
	expect_eq "$name: closed, not counted open" "$(num "ksight_apiserver_connections{$labels}")" 0
}
adopted "IPv4, host process" "$(series apad-v4)" "$WORK/apad-v4.json"
adopted "IPv6, host process" "$(series apad-v6)" "$WORK/apad-v6.json"
adopted "pod client" "$(series '' shop cart-1 cart)" "$WORK/apad-pod.json"
expect_eq "the pod's client is not labelled by comm" "$(grep -c 'comm="apad-pod"' "$WORK/scrape.txt")" 0
expect_eq "a connection to a port not in the set is not adopted" "$(grep -c 'comm="apad-other"' "$WORK/scrape.txt")" 0
kill "$RUN_PID"; wait "$RUN_PID" 2>/dev/null

# ---- the server side: ksight without the (fake) API, whose own connections the kubeconfig's
# server would add to the server side's counts; two clients' connections, adopted at both ends
rm -f "$GO"
early apad-s4 127.0.0.1 "$P4" 20 &
C1=$!
early apad-s6 ::1 "$P6" 2 &
C2=$!
defer "kill $C1 $C2"
for c in apad-s4 apad-s6; do
	wait_for 20 test -f "$WORK/$c.ready" || not_ok "client $c is connected and waiting"
done
KUBERNETES_SERVICE_HOST='' start_run adopt2 --signals apilat --no-k8s \
	--apiserver "127.0.0.1:$P4" --apiserver "[::1]:$P6" || { not_ok "ksight run starts again"; finish; }
check "the log says 4 connections (2 clients', 2 the servers accepted) are followed" wait_for 10 \
	grep -q "apilat: following 4 API-server connections open before ksight started" "$WORK/adopt2.err"
expect_eq "server side: the two adopted connections are open" "$(metric_value ksight_apiserver_server_connections)" 2
touch "$GO"
wait $C1 $C2
total() { # FIELD: the two clients' FIELD minus their base_FIELD
	echo $(($(field "$WORK/apad-s4.json" "$1") - $(field "$WORK/apad-s4.json" "base_${1#bytes_}") +
		$(field "$WORK/apad-s6.json" "$1") - $(field "$WORK/apad-s6.json" "base_${1#bytes_}")))
}
eventually "server side: closed, none open" 5 0 metric_value ksight_apiserver_server_connections
scrape >"$WORK/scrape.txt"
expect_eq "server side: the 2 x $N requests asked after ksight started" "$(num ksight_apiserver_server_requests_total)" $((2 * N))
expect_eq "server side: as many response samples, no handshake sample" \
	"$($PY quantile 0 "$WORK/scrape.txt" "ksight_apiserver_server_response_duration_seconds{}" --count) $(num ksight_apiserver_server_tls_handshake_duration_seconds_count)" \
	"$((2 * N)) 0"
eventually "server side: received bytes == what the clients' sockets had acknowledged since ksight started" 5 \
	"$(total bytes_acked)" metric_value ksight_apiserver_server_received_bytes_total
eventually "server side: sent bytes == what the clients' sockets received since ksight started" 5 \
	"$(total bytes_received)" metric_value ksight_apiserver_server_sent_bytes_total
kill "$RUN_PID"; wait "$RUN_PID" 2>/dev/null

# ---- network namespaces: a pod's connections are in its own (the tcp iterator walks one
# namespace, ksight's: it enters each other one the first pass found); the server in one, the
# client in another, joined by a veth pair; ksight in neither
NSS=ksa-s-$$ NSC=ksa-c-$$
if veth_pair "$NSS" "$NSC" ksa-s-$$ ksa-c-$$ 10.203.7.1 10.203.7.2; then
	PN=$(free_port)
	tls_server 10.203.7.1 "$PN" "$NSS"
	rm -f "$GO"
	early apad-ns 10.203.7.1 "$PN" 20 ip netns exec "$NSC" &
	C1=$!
	defer "kill $C1"
	wait_for 20 test -f "$WORK/apad-ns.ready" || not_ok "client apad-ns is connected and waiting"
	KUBERNETES_SERVICE_HOST='' start_run adopt3 --signals apilat --no-k8s --apiserver "10.203.7.1:$PN" ||
		{ not_ok "ksight run starts a third time"; finish; }
	check "namespaces: both ends, each in a namespace of its own, are followed" wait_for 10 \
		grep -q "apilat: following 2 API-server connections open before ksight started" "$WORK/adopt3.err"
	expect_eq "namespaces: the client's connection is open" "$(metric_value "ksight_apiserver_connections{$(series apad-ns)}")" 1
	expect_eq "namespaces: the server's is open" "$(metric_value ksight_apiserver_server_connections)" 1
	touch "$GO"
	wait $C1
	eventually "namespaces: closed" 5 "" metric_value "ksight_apiserver_connections{$(series apad-ns)}"
	scrape >"$WORK/scrape.txt"
	expect_eq "namespaces: the client's $N requests and as many response samples" \
		"$(num "ksight_apiserver_requests_total{$(series apad-ns)}") $($PY quantile 0 "$WORK/scrape.txt" "ksight_apiserver_response_duration_seconds{$(series apad-ns)}" --count)" \
		"$N $N"
	expect_eq "namespaces: the client's bytes since ksight started, each way" \
		"$(num "ksight_apiserver_sent_bytes_total{$(series apad-ns)}") $(num "ksight_apiserver_received_bytes_total{$(series apad-ns)}")" \
		"$(($(field "$WORK/apad-ns.json" bytes_acked) - $(field "$WORK/apad-ns.json" base_acked))) $(($(field "$WORK/apad-ns.json" bytes_received) - $(field "$WORK/apad-ns.json" base_received)))"
	expect_eq "namespaces: the server side's $N requests" "$(num ksight_apiserver_server_requests_total)" $N
else
	not_ok "two network namespaces joined by a veth pair are made"
fi
finish
