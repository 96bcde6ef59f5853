#!/usr/bin/env bash
# apilat, the TCP half: a TLS "API server" on 127.0.0.1, registered with --apiserver, on this
# node, so both views are measured.
#   RTT: ksight_apiserver_rtt_seconds agrees with what the client's socket says (TCP_INFO),
#     and is rate-limited (at most one sample per connection per 100 ms);
#   retransmits: nftables drops a share of the data packets each way as they arrive (a
#     namespace of its own; in the output hook the sender would see the drop as an error and
#     send again as new data, no retransmit; SYNs, bare ACKs and FINs pass, so nothing is
#     retransmitted once the client read its TCP_INFO): ksight_apiserver_retransmits_total ==
#     the socket's tcpi_total_retrans, and client + server == the namespace's Tcp RetransSegs
#     (IPv6 packets are 20 bytes longer: their bare ACKs pass at a higher length);
#   IPv6: the same RTT, client and server turns, and retransmits on ::1;
#   reset: the server resets the connection mid-stream (SO_LINGER 0) ->
#     ksight_apiserver_connection_resets_total 1, and no connect failure;
#   server side: ksight_apiserver_server_* counts the N requests, their delay, the
#     handshake, bytes, the open connection; a listener with a backlog of 1 on a registered
#     port flooded with connects: ksight_apiserver_server_listen_drops_total == the kernel's
#     ListenDrops delta (== ListenOverflows here).
. "$(dirname "$0")/lib.sh"

PY="python3 $ROOT/tests/e2e/apilat.py"
N=50


P=$(free_port)
P6=$(free_port6)
PR=$(free_port)
PR6=$(free_port)
PO=$(free_port)
NS=ksight-apitcp-$$
tls_server 127.0.0.1 "$P"
tls_server ::1 "$P6"

KUBERNETES_SERVICE_HOST='' start_run apitcp --signals apilat \
	--apiserver "127.0.0.1:$P" --apiserver "127.0.0.1:$PR" --apiserver "127.0.0.1:$PO" \
	--apiserver "[::1]:$P6" --apiserver "[::1]:$PR6" ||
	{ not_ok "ksight run starts"; finish; }

# probe_is POINT VARIANT: apilat's POINT uses VARIANT (a fresh scrape)
probe_is() {
	scrape | grep -q "^ksight_probe_info{signal=\"apilat\",probe=\"$1\",variant=\"$2\",state=\"attached\"} 1"
}
# the raw variants: their classic tracepoints' programs are skipped when nested in another's
check "probes: sock_state uses tp_btf" probe_is sock_state tp_btf
check "probes: retransmit uses tp_btf" probe_is retransmit tp_btf
# the per-connection variants: other sockets' sends and ACKs run nothing of apilat
check "probes: send uses sockops" probe_is send sockops
check "probes: rtt uses sockops" probe_is rtt sockops
check "probes: recv uses ingress" probe_is recv ingress
count_of() { # FAMILY SERIES: the histogram's count in $WORK/scrape.txt
	$PY quantile 0 "$WORK/scrape.txt" "$1{$2}" --count
}
num() { # 'name{labels}' or name, from $WORK/scrape.txt (0 if absent)
	awk -v k="$1" 'index($0, k " ") == 1 { v = $2 } END { print v == "" ? 0 : v }' "$WORK/scrape.txt"
}
within() { # NAME GOT WANT TOLERANCE
	if near "$2" "$3" "$4"; then
		ok "$1: $2 vs $3"
	else
		not_ok "$1: $2 vs $3, more than $4 off"
	fi
}

scrape >"$WORK/before.txt"
cp "$WORK/before.txt" "$WORK/scrape.txt"
srv_req0=$(num ksight_apiserver_server_requests_total)
srv_resp0=$(count_of ksight_apiserver_server_response_duration_seconds "")
srv_hs0=$(count_of ksight_apiserver_server_tls_handshake_duration_seconds "")
srv_recv0=$(num ksight_apiserver_server_received_bytes_total)
srv_sent0=$(num ksight_apiserver_server_sent_bytes_total)

# ---- RTT and the server side: N requests of 20 ms on one connection ----
T0=$SECONDS
$PY client --comm apit-rtt --host 127.0.0.1 --port "$P" --delay-ms 20 -n $N >"$WORK/rtt.json" ||
	not_ok "the RTT client completes"
ELAPSED=$((SECONDS - T0 + 1))
scrape >"$WORK/scrape.txt"
rtt_n=$(count_of ksight_apiserver_rtt_seconds "$(series apit-rtt)")
check "RTT: samples taken ($rtt_n)" test "${rtt_n:-0}" -ge 1
check "RTT: at most one sample per 100 ms ($rtt_n in ${ELAPSED}s)" test "${rtt_n:-0}" -le $((ELAPSED * 10 + 1))
want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rtt_p50"])' "$WORK/rtt.json")
got=$($PY quantile 0.5 "$WORK/scrape.txt" "ksight_apiserver_rtt_seconds{$(series apit-rtt)}")
within "RTT: histogram_quantile(0.5) vs the socket's own median tcpi_rtt" "$got" "$want" 0.25
# the kernel's own byte counts of the client's socket: every byte once (sent: acknowledged)
# bytes_exact LABEL COMM JSON: with or without losses. tcpi_bytes_acked, read before the close,
# counts the SYN's sequence number too (the SYN-ACK acknowledged it): the data is one less.
bytes_exact() {
	local tcpi="import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])"
	expect_eq "$1: sent bytes == its socket's tcpi_bytes_acked - 1 (the SYN)" \
		"$(num "ksight_apiserver_sent_bytes_total{$(series "$2")}")" \
		"$(($(python3 -c "$tcpi" "$3" bytes_acked) - 1))"
	expect_eq "$1: received bytes == its socket's tcpi_bytes_received" \
		"$(num "ksight_apiserver_received_bytes_total{$(series "$2")}")" "$(python3 -c "$tcpi" "$3" bytes_received)"
}
bytes_exact client apit-rtt "$WORK/rtt.json"
# the server's side of that one connection (nothing else talks to it meanwhile): what it received
# is what the client sent, what it sent what the client received (its last bytes are counted once
# the client's ACK or FIN is in: eventually)
srv_delta() { # FAMILY BASE
	scrape >"$WORK/srv.txt"
	awk -v k="$1" -v b="$2" 'index($0, k " ") == 1 { v = $2 } END { print (v == "" ? 0 : v) - b }' "$WORK/srv.txt"
}
tcpi_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/rtt.json" "$1"; }
eventually "server: received bytes == the client's tcpi_bytes_acked - 1" 5 "$(($(tcpi_of bytes_acked) - 1))" \
	srv_delta ksight_apiserver_server_received_bytes_total "$srv_recv0"
eventually "server: sent bytes == the client's tcpi_bytes_received" 5 "$(tcpi_of bytes_received)" \
	srv_delta ksight_apiserver_server_sent_bytes_total "$srv_sent0"

expect_eq "server: $N requests" $(($(num ksight_apiserver_server_requests_total) - srv_req0)) $N
expect_eq "server: $N response samples" \
	$(($(count_of ksight_apiserver_server_response_duration_seconds "") - srv_resp0)) $N
expect_eq "server: one TLS handshake" \
	$(($(count_of ksight_apiserver_server_tls_handshake_duration_seconds "") - srv_hs0)) 1
got=$($PY quantile 0.5 "$WORK/scrape.txt" "ksight_apiserver_server_response_duration_seconds{}")
within "server: histogram_quantile(0.5) of the turn vs its 20 ms delay" "$got" 0.020 0.15
# each request is "GET 20\n" in one TLS 1.3 record (7 + 22 bytes), after a handshake of a few KB
got=$(($(num ksight_apiserver_server_received_bytes_total) - srv_recv0))
check "server: received bytes, the $N requests and the handshake ($got)" \
	awk -v g="$got" -v n=$N 'BEGIN { exit !(g >= n * 29 && g <= n * 29 + 8192) }'
expect_eq "server: no per-client labels" \
	"$(grep -c '^ksight_apiserver_server_requests_total{' "$WORK/scrape.txt")" 0
$PY client --comm apit-hold --host 127.0.0.1 --port "$P" --delay-ms 1 -n 1 --hold 3 >/dev/null &
HOLD=$!
eventually "server: the open connection is counted" 5 1 metric_value ksight_apiserver_server_connections
wait $HOLD
eventually "server: and no longer once closed" 5 0 metric_value ksight_apiserver_server_connections

# ---- IPv6: RTT, both sides' turns ----
scrape >"$WORK/scrape.txt"
srv_req0=$(num ksight_apiserver_server_requests_total)
$PY client --comm apit-rtt6 --host ::1 --port "$P6" --delay-ms 20 -n 20 >"$WORK/rtt6.json" ||
	not_ok "the IPv6 client completes"
scrape >"$WORK/scrape.txt"
expect_eq "IPv6: 20 responses of the client" "$(count_of ksight_apiserver_response_duration_seconds "$(series apit-rtt6)")" 20
expect_eq "IPv6: 20 requests on the server side" $(($(num ksight_apiserver_server_requests_total) - srv_req0)) 20
got=$($PY quantile 0.5 "$WORK/scrape.txt" "ksight_apiserver_response_duration_seconds{$(series apit-rtt6)}")
want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["p50"])' "$WORK/rtt6.json")
within "IPv6: histogram_quantile(0.5) vs the client's own p50" "$got" "$want" 0.15
check "IPv6: RTT samples taken" test "$(count_of ksight_apiserver_rtt_seconds "$(series apit-rtt6)")" -ge 1
want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rtt_p50"])' "$WORK/rtt6.json")
got=$($PY quantile 0.5 "$WORK/scrape.txt" "ksight_apiserver_rtt_seconds{$(series apit-rtt6)}")
within "IPv6: RTT histogram_quantile(0.5) vs the socket's own median tcpi_rtt" "$got" "$want" 0.25

# ---- reset mid-stream ----
expect_eq "reset: the client sees ECONNRESET" \
	"$($PY client --comm apit-reset --host 127.0.0.1 --port "$P" --delay-ms 0 -n 0 --reset)" reset
scrape >"$WORK/scrape.txt"
expect_eq "reset: one connection reset" "$(num "ksight_apiserver_connection_resets_total{$(series apit-reset)}")" 1
expect_eq "reset: not a connect failure" "$(grep -c 'comm="apit-reset",cause=' "$WORK/scrape.txt")" 0
expect_eq "reset: the RTT client had none" "$(num "ksight_apiserver_connection_resets_total{$(series apit-rtt)}")" 0

# ---- retransmits: 10% of the data packets each way lost on arrival, in a namespace of its own ----
defer "ip netns del $NS"
if ip netns add "$NS" && ip -n "$NS" link set lo up &&
	printf 'table inet apitcp {\n chain in {\n  type filter hook input priority 0;\n  tcp dport %s meta length > 64 numgen random mod 100 < 10 drop\n  tcp sport %s meta length > 64 numgen random mod 100 < 10 drop\n  tcp dport %s meta length > 84 numgen random mod 100 < 10 drop\n  tcp sport %s meta length > 84 numgen random mod 100 < 10 drop\n }\n}\n' \
		"$PR" "$PR" "$PR6" "$PR6" | ip netns exec "$NS" nft -f -; then
	tls_server 127.0.0.1 "$PR" "$NS"
	tls_server ::1 "$PR6" "$NS"
	cp "$WORK/before.txt" "$WORK/scrape.txt"
	scrape >"$WORK/scrape.txt"
	# retrans4 LABEL COMM: IPv4 retransmits against tcpi_total_retrans and the namespace's RetransSegs
	retrans4() {
		local label=$1 comm=$2 srv_retr0 segs0 segs want got srv
		scrape >"$WORK/scrape.txt"
		srv_retr0=$(num ksight_apiserver_server_retransmits_total)
		segs0=$(ip netns exec "$NS" $PY netstat Tcp:RetransSegs)
		ip netns exec "$NS" $PY client --comm "$comm" --host 127.0.0.1 --port "$PR" --delay-ms 1 -n 40 \
			>"$WORK/retr.json" || not_ok "$label: the retransmit client completes"
		sleep 1 # the last retransmit timers of the server (its data is all acknowledged by then)
		segs=$(($(ip netns exec "$NS" $PY netstat Tcp:RetransSegs) - segs0))
		want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total_retrans"])' "$WORK/retr.json")
		scrape >"$WORK/scrape.txt"
		got=$(num "ksight_apiserver_retransmits_total{$(series "$comm")}")
		check "$label: the client retransmitted ($want)" test "${want:-0}" -ge 1
		expect_eq "$label: the client's counter == its socket's tcpi_total_retrans" "$got" "$want"
		srv=$(($(num ksight_apiserver_server_retransmits_total) - srv_retr0))
		check "$label: the server retransmitted ($srv)" test "$srv" -ge 1
		expect_eq "$label: client + server ($got + $srv) == the namespace's RetransSegs" $((got + srv)) "$segs"
		bytes_exact "$label" "$comm" "$WORK/retr.json"
		# retransmits each way open no turn and answer none: the 40 requests, each answered once
		expect_eq "$label: 40 requests, none made by a retransmit" \
			"$(num "ksight_apiserver_requests_total{$(series "$comm")}")" 40
		expect_eq "$label: 40 responses" "$(count_of ksight_apiserver_response_duration_seconds "$(series "$comm")")" 40
	}
	retrans4 retransmits apit-retr
	# the same over IPv6 (RetransSegs counts both families)
	srv_retr0=$(num ksight_apiserver_server_retransmits_total)
	segs0=$(ip netns exec "$NS" $PY netstat Tcp:RetransSegs)
	ip netns exec "$NS" $PY client --comm apit-retr6 --host ::1 --port "$PR6" --delay-ms 1 -n 40 \
		>"$WORK/retr6.json" || not_ok "the IPv6 retransmit client completes"
	sleep 1
	segs=$(($(ip netns exec "$NS" $PY netstat Tcp:RetransSegs) - segs0))
	want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total_retrans"])' "$WORK/retr6.json")
	scrape >"$WORK/scrape.txt"
	got=$(num "ksight_apiserver_retransmits_total{$(series apit-retr6)}")
	check "retransmits, IPv6: the client retransmitted ($want)" test "${want:-0}" -ge 1
	expect_eq "retransmits, IPv6: the client's counter == its socket's tcpi_total_retrans" "$got" "$want"
	srv=$(($(num ksight_apiserver_server_retransmits_total) - srv_retr0))
	expect_eq "retransmits, IPv6: client + server ($got + $srv) == the namespace's RetransSegs" $((got + srv)) "$segs"
	bytes_exact "retransmits, IPv6" apit-retr6 "$WORK/retr6.json"
else
	not_ok "a network namespace with an nftables random drop is made"
fi

# ---- the accept queue of a registered port overflows ----
read -r ovf0 drops0 <<<"$($PY netstat TcpExt:ListenOverflows TcpExt:ListenDrops)"
scrape >"$WORK/scrape.txt"
k0=$(num ksight_apiserver_server_listen_drops_total)
$PY overflow --host 127.0.0.1 --port "$PO" -n 20 --ready "$WORK/ovf.ready" --done "$WORK/ovf.done" &
OVF=$!
wait_for 15 test -f "$WORK/ovf.ready" || not_ok "the overflow helper runs"
read -r ovf drops <<<"$($PY netstat TcpExt:ListenOverflows TcpExt:ListenDrops)"
scrape >"$WORK/scrape.txt"
touch "$WORK/ovf.done"
wait $OVF
k=$(($(num ksight_apiserver_server_listen_drops_total) - k0))
check "overflow: the kernel dropped handshakes ($((drops - drops0)))" test $((drops - drops0)) -ge 1
expect_eq "overflow: listen drops == the kernel's ListenDrops delta" "$k" $((drops - drops0))
expect_eq "overflow: == its ListenOverflows delta too" "$k" $((ovf - ovf0))

# ---- recv=segment (tcp_probe: a program on every socket's received segments), forced: the
# fallback times and counts the same ----
KUBERNETES_SERVICE_HOST='' start_run apitcp-seg --signals apilat --apiserver "127.0.0.1:$P" --probe apilat/recv=segment ||
	{ not_ok "segment: ksight run starts"; finish; }
check "segment: recv uses segment" probe_is recv segment
$PY client --comm apit-seg --host 127.0.0.1 --port "$P" --delay-ms 20 -n $N >"$WORK/seg.json" ||
	not_ok "segment: the client completes"
scrape >"$WORK/scrape.txt"
expect_eq "segment: $N response samples" "$(count_of ksight_apiserver_response_duration_seconds "$(series apit-seg)")" $N
quantiles_within segment "$(series apit-seg)" "$WORK/seg.json"
bytes_exact segment apit-seg "$WORK/seg.json"

# ---- the tracepoint variants, forced, count the same (send=tp_btf: with send=sockops an established
# connection's retransmits are counted by its RETRANS_CB, the retransmit point's only before) ----
if [ -n "$(type -t retrans4)" ]; then
	KUBERNETES_SERVICE_HOST='' start_run apitcp-tp --signals apilat --apiserver "127.0.0.1:$PR" \
		--probe apilat/sock_state=tracepoint --probe apilat/retransmit=tracepoint --probe apilat/send=tp_btf ||
		{ not_ok "tracepoint variants: ksight run starts"; finish; }
	check "tracepoint variants: sock_state attached" probe_is sock_state tracepoint
	check "tracepoint variants: retransmit attached" probe_is retransmit tracepoint
	# recv=segment goes with send=sockops only: the next recv variant instead
	check "tracepoint variants: with send=tp_btf, recv is tp_btf, not segment" probe_is recv tp_btf
	retrans4 "tracepoint variants, retransmits" apit-retr-tp
fi
finish
