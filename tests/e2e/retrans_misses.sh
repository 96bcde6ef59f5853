#!/usr/bin/env bash
# No silent loss of TCP retransmits: a classic tracepoint's BPF program is skipped
# (trace_call_bpf's per-CPU bpf_prog_active guard) when the retransmit timer's softirq
# interrupts another classic tracepoint or kprobe program on that CPU; since 6.7 the kernel
# counts each skip in the program's recursion_misses, which ksight exports as
# ksight_bpf_program_misses_total. tests/e2e/bpf_hog keeps every CPU inside such a program
# while 20 connections from one namespace retransmit a one-segment send into an nft drop
# rule (rto_min 5ms: many retransmits in a few seconds), so nested runs are likely:
#   tracepoint variants (forced): ksight's count + the misses == the namespace's
#     TcpRetransSegs, exactly, for netdrop's tcp_retransmit and apilat's retransmit;
#   tp_btf variants (the default): the count == TcpRetransSegs and no misses.
. "$(dirname "$0")/lib.sh"

CONNS="python3 $ROOT/tests/e2e/retrans_conns.py"
NS1=ksrt-a-$$
NS2=ksrt-b-$$
VA=rtva$$
VB=rtvb$$
A4=10.198.0.1 B4=10.198.0.2 PORT_SRV=5556 N=20 HOG_S=3

in1() { ip netns exec "$NS1" "$@"; }
in2() { ip netns exec "$NS2" "$@"; }

setup_net() {
	veth_pair "$NS1" "$NS2" "$VA" "$VB" $A4 $B4 &&
	in1 ip route change 10.198.0.0/24 dev "$VA" rto_min 5ms &&
	in2 nft add table inet ksight_rt && in2 nft add chain inet ksight_rt input \
		'{ type filter hook input priority 0; policy accept; }'
}
setup_net || { not_ok "network namespaces, veth pair, route and nft table are set up"; finish; }
wait_for 10 in1 ping -c1 -W1 -q $B4 >/dev/null || not_ok "IPv4 between the namespaces"
INO1=$(stat -L -c %i "/run/netns/$NS1")

nstat_of() { ip netns exec "$1" nstat -asz "$2" | awk 'NR > 1 { s += $2 } END { print s + 0 }'; }
num() { awk -v k="$1" 'index($0, k " ") == 1 { v = $2 } END { print v == "" ? 0 : v }' "$2"; }
# sum NAME FILE: every series of metric NAME
sum() { awk -v k="$1{" 'index($0, k) == 1 { s += $2 } END { print s + 0 }' "$2"; }
misses() { num "ksight_bpf_program_misses_total{signal=\"$1\",program=\"$2\"}" "$3"; }
ND_SERIES="ksight_tcp_retransmits_total{namespace=\"\",pod=\"\",netns=\"net:[$INO1]\"}"

# round NAME ND_PROG AP_PROG [ksight run ARGS...]: retransmits under the hog; sets SEGS ND AP ND_MISS AP_MISS
round() {
	local name=$1 ndp=$2 app=$3 srv cli hog i
	shift 3
	KUBERNETES_SERVICE_HOST='' start_run "$name" --signals netdrop,apilat --apiserver "$B4:$PORT_SRV" "$@" ||
		{ not_ok "$name: ksight run starts"; return 1; }
	rm -f "$WORK/go" "$WORK/done"
	in2 $CONNS serve $B4 $PORT_SRV $N >"$WORK/$name.serve" &
	srv=$!
	wait_for 5 grep -q listening "$WORK/$name.serve" || { not_ok "$name: server listens"; return 1; }
	in1 $CONNS clients $B4 $PORT_SRV $N "$WORK/go" "$WORK/done" >"$WORK/$name.cli" &
	cli=$!
	wait_for 5 grep -q connected "$WORK/$name.cli" || { not_ok "$name: $N connections"; return 1; }
	scrape >"$WORK/$name.0"
	segs0=$(nstat_of "$NS1" TcpRetransSegs)
	in2 nft add rule inet ksight_rt input tcp dport $PORT_SRV counter drop
	"$TOOLS/bpf_hog" $HOG_S >"$WORK/$name.hog" &
	hog=$!
	wait_for 5 grep -q hogging "$WORK/$name.hog" || not_ok "$name: the hog runs"
	touch "$WORK/go"
	sleep $((HOG_S - 1))
	in2 nft flush chain inet ksight_rt input
	wait_for 20 grep -q received "$WORK/$name.serve" || not_ok "$name: the server got every byte"
	touch "$WORK/done"
	wait "$cli" "$srv" "$hog"
	expect_eq "$name: the server read $N x 100 bytes" "$(tail -n1 "$WORK/$name.serve")" $((N * 100))
	sleep 0.5
	SEGS=$(($(nstat_of "$NS1" TcpRetransSegs) - segs0))
	scrape >"$WORK/$name.1"
	ND=$(($(num "$ND_SERIES" "$WORK/$name.1") - $(num "$ND_SERIES" "$WORK/$name.0")))
	AP=$(($(sum ksight_apiserver_retransmits_total "$WORK/$name.1") - \
		$(sum ksight_apiserver_retransmits_total "$WORK/$name.0")))
	ND_MISS=$(($(misses netdrop "$ndp" "$WORK/$name.1") - $(misses netdrop "$ndp" "$WORK/$name.0")))
	AP_MISS=$(($(misses apilat "$app" "$WORK/$name.1") - $(misses apilat "$app" "$WORK/$name.0")))
	echo "# $name: TcpRetransSegs $SEGS; netdrop $ND + $ND_MISS missed; apilat $AP + $AP_MISS missed"
	kill -TERM "$RUN_PID"; wait "$RUN_PID"
}

# attached ROUND VARIANT NETDROP_PROGRAM: what every round checks first, of its scrapes $WORK/ROUND.[01]
attached() {
	expect_eq "$2: netdrop's tcp_retransmit attached" \
		"$(num "ksight_probe_info{signal=\"netdrop\",probe=\"tcp_retransmit\",variant=\"$2\",state=\"attached\"}" "$WORK/$1.0")" 1
	expect_eq "$2: apilat's retransmit attached" \
		"$(num "ksight_probe_info{signal=\"apilat\",probe=\"retransmit\",variant=\"$2\",state=\"attached\"}" "$WORK/$1.0")" 1
	check "$2: the program's misses are exported" \
		grep -q "^ksight_bpf_program_misses_total{signal=\"netdrop\",program=\"$3\"} " "$WORK/$1.1"
	check "$2: the connections retransmitted ($SEGS >= $N)" test "$SEGS" -ge $N
}

# --- the tracepoint variants: what they miss is counted
# (apilat's send=tp_btf: with send=sockops, the retransmits of established connections are counted
# by their RETRANS_CB and the retransmit point only sees the SYNs')
round tp netdrop_tcp_retransmit_tp apilat_retransmit \
	--probe netdrop/tcp_retransmit=tracepoint --probe apilat/retransmit=tracepoint --probe apilat/send=tp_btf
attached tp tracepoint netdrop_tcp_retransmit_tp
expect_eq "tracepoint: netdrop counted + missed ($ND + $ND_MISS) == TcpRetransSegs" $((ND + ND_MISS)) "$SEGS"
expect_eq "tracepoint: apilat counted + missed ($AP + $AP_MISS) == TcpRetransSegs" $((AP + AP_MISS)) "$SEGS"
# Kernels before 6.7 do not count these skips (the metric stays 0): the sums above fail if any happened.
if printf '6.7\n%s\n' "$(uname -r)" | sort -VC; then
	check "tracepoint: the hog made runs skipped ($ND_MISS netdrop, $AP_MISS apilat)" \
		test "$ND_MISS" -ge 1 -a "$AP_MISS" -ge 1
else
	echo "# tracepoint: kernel $(uname -r) before 6.7 counts no skipped tracepoint run"
fi

# --- the tp_btf variants (the default): nothing skipped
round btf netdrop_tcp_retransmit_btf apilat_retransmit_btf --probe apilat/send=tp_btf
attached btf tp_btf netdrop_tcp_retransmit_btf
expect_eq "tp_btf: netdrop counted == TcpRetransSegs" "$ND" "$SEGS"
expect_eq "tp_btf: apilat counted == TcpRetransSegs" "$AP" "$SEGS"
expect_eq "tp_btf: no netdrop retransmit run skipped" "$ND_MISS" 0
expect_eq "tp_btf: no apilat retransmit run skipped" "$AP_MISS" 0
finish
