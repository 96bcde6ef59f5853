#!/usr/bin/env bash
# apilat's recv=ingress: the receive hook (a cgroup_skb program) is attached to the cgroups
# of API-server connections, and to no other, as the kernel's own records show:
#  - before any connection, no cgroup has it; a client in a cgroup of its own and the TLS
#    "API server" in another: both cgroups have it, the root does not, and the client's N
#    requests are timed exactly (N response samples, one handshake, p50/p99 within 15% of the
#    client's own, bytes equal to its socket's tcpi_bytes_acked - 1 and tcpi_bytes_received);
#  - unrelated TCP in a third cgroup, and in this shell's: the program does not run at all
#    (its run count, kept by the kernel with BPF_ENABLE_STATS, does not move);
#  - a client in a cgroup where the attach is refused (an exclusive program on its parent,
#    another tool's): logged, its N requests counted exactly from its bytes, none timed;
#  - a cgroup removed: its link is let go (the kernel's link list);
#  - ksight_apiserver_receive_hook_cgroups says how many cgroups have it, and were refused.
. "$(dirname "$0")/lib.sh"

PY="python3 $ROOT/tests/e2e/apilat.py"
N=50
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
BASE=ksight-e2e-rx-$$
make_cg2 "$BASE/server" || { not_ok "cgroup v2 directories are made"; finish; }
CG_S=$CG
make_cg2 "$BASE/client" && CG_A=$CG
make_cg2 "$BASE/other" && CG_B=$CG
make_cg2 "$BASE/excl/client" && CG_X=$CG

# the kernel's run counts of BPF programs, kept while this holds BPF_ENABLE_STATS' fd
python3 -c 'import ctypes, os, time
nr = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
attr = ctypes.create_string_buffer(8)  # type BPF_STATS_RUN_TIME (0)
fd = ctypes.CDLL(None, use_errno=True).syscall(nr, 32, attr, 8)  # BPF_ENABLE_STATS
print("on" if fd >= 0 else "off", flush=True)
time.sleep(900)' >"$WORK/stats" &
defer "kill $!"
wait_for 5 grep -q on "$WORK/stats" || { not_ok "BPF_ENABLE_STATS"; finish; }

# runs: how many times apilat_recv_ingress ran
runs() {
	bpftool prog show -j | python3 -c 'import json, sys
print(sum(p.get("run_cnt", 0) for p in json.load(sys.stdin) if p.get("name") == "apilat_recv_ingress"))'
}
# hooked DIR: does cgroup DIR itself have the receive hook attached?
hooked() { bpftool cgroup show "$1" | grep -qw apilat_recv_ingress; }
# links: the receive hook's cgroup links
links() {
	local ids
	ids=$(bpftool prog show -j | python3 -c 'import json, sys
print(" ".join(str(p["id"]) for p in json.load(sys.stdin) if p.get("name") == "apilat_recv_ingress"))')
	bpftool link show -j | python3 -c 'import json, sys
ids = set(int(i) for i in sys.argv[1:])
print(sum(1 for l in json.load(sys.stdin) if l.get("type") == "cgroup" and l.get("prog_id") in ids))' $ids
}
num() { metric_value "$1"; }
tcpi() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

P=$(free_port)
POTHER=$(free_port)
tls_server 127.0.0.1 "$P" "" "$CG_S"
tls_server 127.0.0.1 "$POTHER" "" "$CG_B"

# another tool's exclusive program on the parent of CG_X: nothing can be attached below it
cat >"$WORK/pass.c" <<'EOF'
__attribute__((section("cgroup_skb/ingress"), used)) int pass(void *skb) { return 1; }
char _license[] __attribute__((section("license"), used)) = "GPL";
EOF
PIN=/sys/fs/bpf/ksight-e2e-pass-$$
if clang -O2 -target bpf -c "$WORK/pass.c" -o "$WORK/pass.o" && bpftool prog load "$WORK/pass.o" "$PIN" type cgroup/skb &&
	defer "rm -f $PIN" && bpftool cgroup attach "$(dirname "$CG_X")" ingress pinned "$PIN"; then
	defer "bpftool cgroup detach $(dirname "$CG_X") ingress pinned $PIN"
	ok "an exclusive program is attached to the parent of a cgroup"
else
	not_ok "an exclusive program is attached to the parent of a cgroup"
fi

KUBERNETES_SERVICE_HOST='' start_run rx --no-k8s --signals apilat --apiserver "127.0.0.1:$P" ||
	{ not_ok "ksight run starts"; finish; }
check "probes: recv uses ingress" \
	sh -c "curl -sf http://127.0.0.1:$PORT/metrics | grep -q '^ksight_probe_info{signal=\"apilat\",probe=\"recv\",variant=\"ingress\",state=\"attached\"} 1'"
expect_eq "before any API-server connection, the receive hook is in no cgroup" "$(links)" 0

# ---- a client in a cgroup of its own, the server in another ----
r0=$(runs)
in_cg2 "$CG_A" $PY client --comm rx-a --host 127.0.0.1 --port "$P" --delay-ms 5 -n $N >"$WORK/a.json" ||
	not_ok "the client completes"
r1=$(runs)
check "the receive hook ran for the client's and the server's segments ($((r1 - r0)) runs)" test $((r1 - r0)) -ge $((2 * N))
check "the client's cgroup has the receive hook" hooked "$CG_A"
check "the server's cgroup has it" hooked "$CG_S"
check "the root cgroup has not" eval '! hooked "$CGROOT"'
check "nor a cgroup without API-server connections" eval '! hooked "$CG_B"'
scrape >"$WORK/scrape.txt"
A=$(series rx-a)
expect_eq "client: $N response samples" "$(num "ksight_apiserver_response_duration_seconds_count{$A}")" $N
expect_eq "client: $N requests" "$(num "ksight_apiserver_requests_total{$A}")" $N
expect_eq "client: one TLS handshake" "$(num "ksight_apiserver_tls_handshake_duration_seconds_count{$A}")" 1
quantiles_within client "$A" "$WORK/a.json"
expect_eq "client: sent bytes == tcpi_bytes_acked - 1 (the SYN)" "$(num "ksight_apiserver_sent_bytes_total{$A}")" \
	$(($(tcpi "$WORK/a.json" bytes_acked) - 1))
expect_eq "client: received bytes == tcpi_bytes_received" "$(num "ksight_apiserver_received_bytes_total{$A}")" \
	"$(tcpi "$WORK/a.json" bytes_received)"
expect_eq "server: $N response samples" "$(num ksight_apiserver_server_response_duration_seconds_count)" $N
expect_eq "the metrics say two cgroups have the hook" "$(num 'ksight_apiserver_receive_hook_cgroups{state="attached"}')" 2

# ---- unrelated TCP: in a cgroup of its own, and in this shell's (the root here) ----
r0=$(runs)
in_cg2 "$CG_B" $PY client --comm rx-b --host 127.0.0.1 --port "$POTHER" --delay-ms 1 -n $N >"$WORK/b.json" ||
	not_ok "the unrelated client completes"
$PY client --comm rx-host --host 127.0.0.1 --port "$POTHER" --delay-ms 1 -n $N >"$WORK/h.json" ||
	not_ok "the unrelated host client completes"
r1=$(runs)
check "unrelated traffic went both ways ($(tcpi "$WORK/b.json" bytes_received) and $(tcpi "$WORK/h.json" bytes_received) bytes received)" \
	test "$(tcpi "$WORK/b.json" bytes_received)" -gt $((N * 1000)) -a "$(tcpi "$WORK/h.json" bytes_received)" -gt $((N * 1000))
expect_eq "the receive hook did not run for unrelated traffic" $((r1 - r0)) 0

# ---- the attach refused: counted, not timed ----
in_cg2 "$CG_X" $PY client --comm rx-x --host 127.0.0.1 --port "$P" --delay-ms 5 -n $N >"$WORK/x.json" ||
	not_ok "the refused cgroup's client completes"
scrape >"$WORK/scrape.txt"
X=$(series rx-x)
check "the refusal is logged" grep -q "cannot attach the receive hook to cgroup .*: Operation not permitted" "$WORK/rx.err"
check "the refused cgroup has no receive hook" eval '! hooked "$CG_X"'
expect_eq "the metrics say one cgroup was refused" "$(num 'ksight_apiserver_receive_hook_cgroups{state="refused"}')" 1
expect_eq "refused: $N requests all the same (from its bytes)" "$(num "ksight_apiserver_requests_total{$X}")" $N
expect_eq "refused: no response sample" "$(num "ksight_apiserver_response_duration_seconds_count{$X}")" ""
expect_eq "refused: no handshake sample" "$(num "ksight_apiserver_tls_handshake_duration_seconds_count{$X}")" ""
expect_eq "refused: received bytes == tcpi_bytes_received" "$(num "ksight_apiserver_received_bytes_total{$X}")" \
	"$(tcpi "$WORK/x.json" bytes_received)"

# ---- a removed cgroup is let go (swept every 10 s) ----
expect_eq "two cgroups have the receive hook (the client's, the server's)" "$(links)" 2
rmdir "$CG_A" || not_ok "the client's cgroup is removed"
eventually "the removed cgroup's link is let go" 25 1 links
eventually "the metrics say one cgroup has the hook" 5 1 num 'ksight_apiserver_receive_hook_cgroups{state="attached"}'
finish
