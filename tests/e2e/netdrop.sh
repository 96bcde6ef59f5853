#!/usr/bin/env bash
# netdrop, end to end: two network namespaces joined by a veth pair, drops made
# with nftables rules and closed ports, compared with the kernel's own
# accounting (the nft rule's counter, nstat's UdpNoPorts, TcpRetransSegs,
# TcpOutRsts of that namespace) through `ksight run`'s /metrics and
# `ksight trace netdrop -o json`.
. "$(dirname "$0")/lib.sh"

TRAFFIC="python3 $ROOT/tests/e2e/netdrop_traffic.py"
NS1=ksnd-a-$$
NS2=ksnd-b-$$
VA=ndva$$
VB=ndvb$$
A4=10.199.0.1 B4=10.199.0.2 A6=fd00:199::1 B6=fd00:199::2
DROP_PORT=9999 CLOSED_UDP=7777 CLOSED_TCP=7778 STREAM_PORT=5555 BURST_PORT=9998

in1() { ip netns exec "$NS1" "$@"; }
in2() { ip netns exec "$NS2" "$@"; }

setup_net() {
	veth_pair "$NS1" "$NS2" "$VA" "$VB" $A4 $B4 $A6 $B6 &&
	# the nft table lives in NS2 and goes with it
	in2 nft -f - <<-EOF
	table inet ksight_e2e {
		chain input {
			type filter hook input priority 0; policy accept;
			udp dport $DROP_PORT counter drop
		}
	}
	EOF
}

setup_net || { not_ok "network namespaces, veth pair and nft table are set up"; finish; }
# both ends answer before anything is measured (ARP/ND done, the links up)
wait_for 10 in1 ping -c1 -W1 -q $B4 >/dev/null || not_ok "IPv4 between the namespaces"
wait_for 10 in1 ping -6 -c1 -W1 -q $B6 >/dev/null || not_ok "IPv6 between the namespaces"
INO1=$(stat -L -c %i "/run/netns/$NS1")
INO2=$(stat -L -c %i "/run/netns/$NS2")
ok "namespaces net:[$INO1] and net:[$INO2] joined by $VA/$VB"

start_run run --signals netdrop || { not_ok "ksight run starts"; finish; }
RUN1=$RUN_PID PORT1=$PORT
ok "ksight run --signals netdrop starts"

# series REASON PROTO INODE: the drops series of a namespace
series() { echo "ksight_net_drops_total{reason=\"$1\",protocol=\"$2\",namespace=\"\",pod=\"\",netns=\"net:[$3]\"}"; }
# value SERIES: its value, 0 when absent
value() { local v; v=$(metric_value "$1"); echo "${v:-0}"; }
nft_packets() { in2 nft list chain inet ksight_e2e input | awk '/dport '"$DROP_PORT"'/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'; }
# nstat_of NS COUNTER...: the sum of the counters in that namespace (absolute, history untouched)
nstat_of() { local ns=$1; shift; ip netns exec "$ns" nstat -asz "$@" | awk 'NR > 1 { s += $2 } END { print s + 0 }'; }

expect_eq "probe info: kfree_skb uses tp_btf" \
	"$(metric_value 'ksight_probe_info{signal="netdrop",probe="kfree_skb",variant="tp_btf",state="attached"}')" 1
# the TCP points raw: their classic tracepoints' programs are skipped when nested in another's
scrape >"$WORK/probes.txt"
for p in tcp_retransmit tcp_reset_out tcp_reset_in; do
	check "probe info: $p uses tp_btf" \
		grep -q "^ksight_probe_info{signal=\"netdrop\",probe=\"$p\",variant=\"tp_btf\",state=\"attached\"} 1" \
		"$WORK/probes.txt"
done
check "probe info: tcp_retransmit's (sk, skb) form is ruled out on a kernel whose hook has err" \
	grep -q '^ksight_probe_info{signal="netdrop",probe="tcp_retransmit",variant="tp_btf_old",state="unsupported"} 1' \
	"$WORK/probes.txt"

# --- 1: an nft counter drop rule, IPv4 and IPv6
NF=$(series NETFILTER_DROP udp "$INO2")
before=$(value "$NF")
in1 $TRAFFIC udp $B4 $DROP_PORT 300 >/dev/null
in1 $TRAFFIC udp $B6 $DROP_PORT 200 >/dev/null
expect_eq "nft: the rule counted every datagram" "$(nft_packets)" 500
eventually "nft: NETFILTER_DROP/udp of net:[$INO2] grew by the rule's counter" 5 $((before + $(nft_packets))) \
	value "$NF"
expect_eq "nft: nothing counted in the sender's namespace" "$(value "$(series NETFILTER_DROP udp "$INO1")")" 0

# --- 2: UDP and TCP to closed ports
NOSOCK_UDP=$(series NO_SOCKET udp "$INO2")
NOSOCK_TCP=$(series NO_SOCKET tcp "$INO2")
RST_SENT="ksight_tcp_resets_total{direction=\"sent\",namespace=\"\",pod=\"\",netns=\"net:[$INO2]\"}"
RST_RECV="ksight_tcp_resets_total{direction=\"received\",namespace=\"\",pod=\"\",netns=\"net:[$INO1]\"}"
in1 $TRAFFIC udp $B4 $CLOSED_UDP 120 >/dev/null
in1 $TRAFFIC udp $B6 $CLOSED_UDP 80 >/dev/null
noports=$(nstat_of "$NS2" UdpNoPorts Udp6NoPorts)
expect_eq "closed UDP port: the kernel counted 200 UdpNoPorts" "$noports" 200
eventually "closed UDP port: NO_SOCKET/udp equals UdpNoPorts + Udp6NoPorts" 5 "$noports" value "$NOSOCK_UDP"
# resets LABEL: 70 connects to a closed port; the resets both ways against TcpOutRsts and the connects
resets() {
	local label=$1 sent0 recv0 rsts0 refused outrsts
	sent0=$(value "$RST_SENT") recv0=$(value "$RST_RECV") rsts0=$(nstat_of "$NS2" TcpOutRsts)
	refused=$(( $(in1 $TRAFFIC syn $B4 $CLOSED_TCP 40) + $(in1 $TRAFFIC syn $B6 $CLOSED_TCP 30) ))
	expect_eq "$label: every connect to a closed TCP port was refused" "$refused" 70
	outrsts=$(($(nstat_of "$NS2" TcpOutRsts) - rsts0))
	eventually "$label: resets sent grew by TcpOutRsts' growth ($outrsts)" 5 $((sent0 + outrsts)) value "$RST_SENT"
	eventually "$label: the client's namespace received 70 more resets" 5 $((recv0 + 70)) value "$RST_RECV"
}
resets "closed TCP port"
eventually "closed TCP port: NO_SOCKET/tcp equals the SYNs sent" 5 70 value "$NOSOCK_TCP"
expect_eq "closed TCP port: TcpOutRsts counts every reset sent" "$(nstat_of "$NS2" TcpOutRsts)" "$(value "$RST_SENT")"

# --- 3: data segments dropped on an established connection -> retransmits
RETRANS="ksight_tcp_retransmits_total{namespace=\"\",pod=\"\",netns=\"net:[$INO1]\"}"
# stream LABEL: 3 s of a connection's data dropped; the retransmits' growth against TcpRetransSegs'
stream() {
	local label=$1 rbefore sbefore retrans
	rbefore=$(value "$RETRANS") sbefore=$(nstat_of "$NS1" TcpRetransSegs)
	rm -f "$WORK/go" "$WORK/close"
	in2 $TRAFFIC serve $B4 $STREAM_PORT >"$WORK/serve.out" &
	SERVE_PID=$!
	defer "kill $SERVE_PID"
	wait_for 5 grep -q listening "$WORK/serve.out"
	in1 $TRAFFIC stream $B4 $STREAM_PORT 200000 "$WORK/go" "$WORK/close" >"$WORK/stream.out" 2>&1 &
	STREAM_PID=$!
	defer "kill $STREAM_PID"
	wait_for 5 grep -q connected "$WORK/stream.out" || not_ok "$label: connected"
	# established: now drop what the client sends, and let it retransmit for a while
	in2 nft add rule inet ksight_e2e input tcp dport $STREAM_PORT counter drop
	touch "$WORK/go"
	sleep 3
	in2 nft flush chain inet ksight_e2e input
	in2 nft add rule inet ksight_e2e input udp dport $DROP_PORT counter drop
	check "$label: the data got through once the rule was gone" wait_for 30 grep -q sent "$WORK/stream.out"
	touch "$WORK/close"
	wait_for 10 grep -qx 200000 "$WORK/serve.out" || not_ok "$label: the server read all 200000 bytes"
	wait "$STREAM_PID" 2>/dev/null
	retrans=$(($(nstat_of "$NS1" TcpRetransSegs) - sbefore))
	at_least "$label: the sender retransmitted" 1 1 echo "$retrans"
	eventually "$label: retransmits grew by TcpRetransSegs' growth in the sender's namespace ($retrans)" 5 \
		$((rbefore + retrans)) value "$RETRANS"
}
stream "stream"
expect_eq "stream: TcpRetransSegs of the sender's namespace counts every retransmit" \
	"$(nstat_of "$NS1" TcpRetransSegs)" "$(value "$RETRANS")"

# --- 4: the host's namespace is labelled host
HOST_NOSOCK='ksight_net_drops_total{reason="NO_SOCKET",protocol="udp",namespace="",pod="",netns="host"}'
hbefore=$(value "$HOST_NOSOCK")
closed=$(free_port)
$TRAFFIC udp 127.0.0.1 "$closed" 25 >/dev/null
at_least "host: NO_SOCKET/udp of the host namespace labelled host grew by 25" 5 $((hbefore + 25)) value "$HOST_NOSOCK"

# --- 5: the trace shows the dropped packets; the kernel's own tracepoint output says where they were freed
TRACEFS=/sys/kernel/tracing
[ -d $TRACEFS/instances ] || TRACEFS=/sys/kernel/debug/tracing
INSTANCE=$TRACEFS/instances/ksight-e2e-$$
mkdir "$INSTANCE" && defer "echo 0 >'$INSTANCE/events/skb/kfree_skb/enable'; rmdir '$INSTANCE'"
echo 1 >"$INSTANCE/events/skb/kfree_skb/enable"
start_trace trace netdrop -o json --reason NETFILTER_DROP || not_ok "ksight trace netdrop starts"
# drops of another reason, which the kernel's filter keeps out of the ring and the bucket
in1 $TRAFFIC udp $B4 $CLOSED_UDP 4 >/dev/null
in1 $TRAFFIC udp $B4 $DROP_PORT 3 40001 >/dev/null
in1 $TRAFFIC udp $B6 $DROP_PORT 3 40002 >/dev/null
check "trace: six drops printed" wait_for 10 sh -c "[ \$(grep -c '^{' '$WORK/trace.out') -ge 6 ]"
kill -INT "$TRACE_PID"; wait "$TRACE_PID"
echo 0 >"$INSTANCE/events/skb/kfree_skb/enable"
# "... location=nft_do_chain+0x3e8/0x5d0 reason: NETFILTER_DROP": the function and offset
kernel_location=$(awk '/reason: NETFILTER_DROP/ { for (i = 1; i <= NF; i++) if ($i ~ /^location=/) { sub(/^location=/, "", $i); sub(/\/.*/, "", $i); print $i; exit } }' "$INSTANCE/trace")
check "trace: the kernel's tracepoint printed the location ($kernel_location)" [ -n "$kernel_location" ]
python3 - "$WORK/trace.out" "$A4" "$B4" "$A6" "$B6" "$VB" "$INO2" "$kernel_location" <<-'EOF' >"$WORK/trace.check"
	import json, sys
	path, a4, b4, a6, b6, ifname, ino, location = sys.argv[1:]
	recs = [json.loads(l) for l in open(path) if l.startswith("{")]
	want = [("ipv4", a4, b4, 40001)] * 3 + [("ipv6", a6, b6, 40002)] * 3
	bad = []
	if len(recs) != 6:
	    bad.append("%d records" % len(recs))
	for r, (fam, s, d, sport) in zip(recs, want):
	    got = (r["signal"], r["reason"], r["protocol"], r["family"], r["saddr"], r["daddr"], r["sport"], r["dport"],
	           r["ifname"], r["location"], r["netns"])
	    exp = ("netdrop", "NETFILTER_DROP", "udp", fam, s, d, sport, 9999, ifname, location, "net:[%s]" % ino)
	    if got != exp:
	        bad.append("%s != %s" % (got, exp))
	print("ok" if not bad else "; ".join(bad))
	EOF
expect_eq "trace: addresses, ports, reason, interface, location, netns of each drop" "$(cat "$WORK/trace.check")" ok
check "trace: the exit line counts what was sampled" grep -q "netdrop: 6 drops sampled, 0 held back" "$WORK/trace.err"

out=$(timeout 20 "$KSIGHT" trace netdrop --reason NO_SUCH_REASON 2>&1); rc=$?
expect_eq "trace: an unknown --reason is refused" "$rc" 1
check "trace: ... saying why" grep -q "netdrop: --reason NO_SUCH_REASON: this kernel has no such drop reason" <<<"$out"

# --- 6: a burst of 100k drops: the trace is rate-limited in the kernel, the metrics stay exact.
# Dropped in the sender's output hook, so every datagram reaches the rule (no backlog in between).
RATE=50
ncpu=$(nproc)
in1 nft -f - <<-EOF
	table inet ksight_e2e_out {
		chain output {
			type filter hook output priority 0; policy accept;
			udp dport $BURST_PORT counter drop
		}
	}
	EOF
out_packets() { in1 nft list chain inet ksight_e2e_out output | awk '/dport '"$BURST_PORT"'/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'; }
NF1=$(series NETFILTER_DROP udp "$INO1")
mbefore=$(value "$NF1")
start_trace burst netdrop -o json --reason NETFILTER_DROP --trace-rate $RATE || not_ok "burst: trace starts"
t0=$(date +%s.%N)
in1 "$TOOLS/netdrop_flood" $B4 $BURST_PORT 100000 >/dev/null
t1=$(date +%s.%N)
sleep 0.5
kill -INT "$TRACE_PID"; wait "$TRACE_PID"
shown=$(grep -c '^{' "$WORK/burst.out")
read -r sampled held lost < <(sed -n 's/.*netdrop: \([0-9]*\) drops sampled, \([0-9]*\) held back by the rate limit, \([0-9]*\) lost.*/\1 \2 \3/p' "$WORK/burst.err")
# from the trace's start (the bucket starts full) to the end of the sends, on every CPU
limit=$(python3 -c "import math; print(int($RATE + math.ceil(($t1 - $t0 + 1) * $RATE) * $ncpu))")
expect_eq "burst: the nft rule dropped 100000" "$(out_packets)" 100000
eventually "burst: NETFILTER_DROP/udp of the sender's namespace grew by exactly 100000" 5 $((mbefore + 100000)) \
	value "$NF1"
check "burst: $shown trace lines <= burst + rate x seconds x CPUs ($limit)" [ "$shown" -le "$limit" ]
check "burst: the burst was shown ($shown >= $RATE)" [ "$shown" -ge "$RATE" ]
expect_eq "burst: every sampled record was printed" "$shown" "${sampled:-?}"
expect_eq "burst: nothing lost to the ring buffer" "${lost:-?}" 0
expect_eq "burst: sampled + held back = the 100000 drops" "$(( ${sampled:-0} + ${held:-0} ))" 100000

# --- 7: the tracepoint variants count the same
start_run tp --signals netdrop --probe netdrop/kfree_skb=tracepoint --probe netdrop/tcp_retransmit=tracepoint \
	--probe netdrop/tcp_reset_out=tracepoint --probe netdrop/tcp_reset_in=tracepoint ||
	not_ok "tracepoint variant: ksight run starts"
scrape >"$WORK/probes.txt"
for p in kfree_skb tcp_retransmit tcp_reset_out tcp_reset_in; do
	check "tracepoint variant: $p attached" \
		grep -q "^ksight_probe_info{signal=\"netdrop\",probe=\"$p\",variant=\"tracepoint\",state=\"attached\"} 1" \
		"$WORK/probes.txt"
done
tbefore=$(value "$NF")
in1 $TRAFFIC udp $B6 $DROP_PORT 77 >/dev/null
eventually "tracepoint variant: NETFILTER_DROP/udp grew by 77" 5 $((tbefore + 77)) value "$NF"
resets "tracepoint variant"
stream "tracepoint variant, stream"

# --- delivered packets are not drops: no CONSUMED / NOT_DROPPED_YET series, whatever passed
in1 ping -c 50 -i 0.01 -q 127.0.0.1 >/dev/null
in1 ping -6 -c 50 -i 0.01 -q ::1 >/dev/null
expect_eq "delivered packets: no CONSUMED or NOT_DROPPED_YET series" \
	"$(scrape | grep -cE '^ksight_net_drops_total\{reason="(SKB_)?(CONSUMED|NOT_DROPPED_YET)"')" 0

# --- exposition, a clean stop
check "exposition passes promtool" bash -c "set -o pipefail; curl -sf http://127.0.0.1:$PORT/metrics | promtool check metrics"
expect_eq "no drop keys evicted" "$(metric_value 'ksight_net_drop_keys_evicted_total{map="drops"}')" 0
kill -TERM "$RUN_PID"; wait "$RUN_PID"; rc=$?
expect_eq "run exits 0 on SIGTERM" "$rc" 0

# --- 8: a full map: the LRU evicts the oldest keys, says how many, and counting goes on
EXTRA=()
for i in 1 2 3 4 5 6 7 8; do
	ns=ksnd-x$i-$$
	ip netns add "$ns" && defer "ip netns del $ns" && ip netns exec "$ns" ip link set lo up && EXTRA+=("$ns")
done
KSIGHT_NETDROP_MAX_KEYS=4 start_run lru --signals netdrop || not_ok "full map: ksight run with 4 keys starts"
for ns in "${EXTRA[@]}"; do
	ip netns exec "$ns" $TRAFFIC udp 127.0.0.1 $CLOSED_UDP 3 >/dev/null
done
last=$(stat -L -c %i "/run/netns/${EXTRA[7]}")
at_least "full map: 8 namespaces' keys in a map of 4: at least 4 evicted" 5 4 \
	metric_value 'ksight_net_drop_keys_evicted_total{map="drops"}'
ip netns exec "${EXTRA[7]}" $TRAFFIC udp 127.0.0.1 $CLOSED_UDP 5 >/dev/null
eventually "full map: the newest namespace still counts exactly" 5 8 value "$(series NO_SOCKET udp "$last")"
check "full map: said once in the log, with what to do" \
	sh -c "[ \$(grep -c 'netdrop: the drops map is full: .*KSIGHT_NETDROP_MAX_KEYS' '$WORK/lru.err') -eq 1 ]"
kill -TERM "$RUN_PID"; wait "$RUN_PID"

# --- a namespace that is gone before the scrape: what the kernel counted in it is still there
PORT=$PORT1
GONE=ksnd-gone-$$
ip netns add "$GONE" && ip netns exec "$GONE" ip link set lo up
GONE_INO=$(stat -L -c %i "/run/netns/$GONE")
ip netns exec "$GONE" $TRAFFIC udp 127.0.0.1 $CLOSED_UDP 9 >/dev/null
gone_noports=$(nstat_of "$GONE" UdpNoPorts)
ip netns del "$GONE"
eventually "a namespace deleted before the scrape: its 9 drops ($gone_noports UdpNoPorts) still counted" 5 "$gone_noports" \
	value "$(series NO_SOCKET udp "$GONE_INO")"

kill -TERM "$RUN1"; wait "$RUN1"
# a raw tracepoint's program is freed a moment after its link (an RCU grace period)
check "no netdrop program left attached" wait_for 5 sh -c "! bpftool prog show | grep -q netdrop_"
finish
