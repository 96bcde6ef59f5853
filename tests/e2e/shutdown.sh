#!/usr/bin/env bash
# Stopping loses nothing: an OOM kill and SIGTERM right after it (within 50 ms) -> the
# kill's Event still reaches the API server before ksight exits, also when the API
# answers slowly; and ksight exits 0, within the recorder's flush bound.
. "$(dirname "$0")/lib.sh"

NODE=node-stop
start_fake_api "$NODE" 600

POD_UID=5e1c2d3e-4b5a-4c6d-8e7f-0123456789ab
CID=$(printf 'feedf00d%.0s' 1 2 3 4 5 6 7 8)
POD_CG=ksight-stop/kubepods/burstable/pod$POD_UID/$CID
make_memcg "$POD_CG" $((32 * 1024 * 1024))
ctl POST /pods "$(pod_json shop cart-1 "$POD_UID" cart "$CID")" >/dev/null

# Events on the Pod with reason ProcessOOMKilled: "objects:count"
pod_events() {
	ctl GET /events | python3 -c 'import json,sys
ev=[e for e in json.load(sys.stdin) if e["involvedObject"]["kind"]=="Pod" and e["involvedObject"]["name"]=="cart-1" and e["reason"]=="ProcessOOMKilled"]
print("%d:%d" % (len(ev), sum(e["count"] for e in ev)))'
}

# kill_then_stop NAME: a kill, SIGTERM to ksight as soon as the victim is reaped, wait for the exit
kill_then_stop() {
	local name=$1 rc t0 t1
	start_run "$name" --signals oom --kubeconfig "$D/kubeconfig" --node-name "$NODE" ||
		{ not_ok "$name: ksight run starts"; return; }
	eventually "$name: the pod is cached" 15 1 metric_value ksight_k8s_pods
	oom_kill "$POD_CG" >/dev/null
	kill -TERM "$RUN_PID"
	t0=$(date +%s%N)
	wait "$RUN_PID"; rc=$?
	t1=$(date +%s%N)
	expect_eq "$name: exits 0" "$rc" 0
	check "$name: stops within the flush bound (took $(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt 8000
}

ctl POST /reset >/dev/null
kill_then_stop prompt
expect_eq "prompt API: the kill's Event reached the Pod before the exit" "$(pod_events)" "1:1"

# the API takes 2 s for each Event POST: it is still in flight at SIGTERM
ctl POST /reset >/dev/null
ctl POST /fault '{"method":"POST","path_prefix":"/api/v1/namespaces/shop/events","status":null,"delay_s":2,"count":-1}' >/dev/null
kill_then_stop slow
expect_eq "slow API: the kill's Event reached the Pod before the exit" "$(pod_events)" "1:1"
ctl DELETE /fault >/dev/null
check "ksight said it was stopping" grep -q "stopping: detaching every probe" "$WORK/slow.err"
finish
