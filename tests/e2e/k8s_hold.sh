#!/usr/bin/env bash
# Events for a pod the cache does not know yet: the pod UID is in the cgroup
# path, but the first pod LIST has not answered. The fake API server delays
# that LIST by 3 s; a real OOM kill in a kubelet-shaped pod cgroup in that
# window must still give an Event on the Pod (held, then re-resolved), and a
# kill in a pod the API never learns must reach the Node, with the pod UID in
# the message, once the hold bound (10 s) is up. A pod that appears after its kill
# (watch lag) gets the Event too, and SIGTERM posts what is held.
. "$(dirname "$0")/lib.sh"

NODE=node-hold
start_fake_api "$NODE" 300
py() { python3 -c "$@"; }

POD_UID=3f0e2a1b-7c6d-4e5f-9a8b-0c1d2e3f4a5b
CID=$(printf 'feedf00d%.0s' 1 2 3 4 5 6 7 8)
POD_CG=ksight-hold/kubepods/burstable/pod$POD_UID/$CID
GHOST_UID=4a1f3b2c-8d7e-4f60-ab9c-1d2e3f4a5b6c
GHOST_CID=$(printf 'abad1dea%.0s' 1 2 3 4 5 6 7 8)
GHOST_CG=ksight-hold/kubepods/besteffort/pod$GHOST_UID/$GHOST_CID
LATE_UID=5b2a4c3d-9e8f-4071-bcad-2e3f4a5b6c7d
LATE_CID=$(printf 'c0c0a000%.0s' 1 2 3 4 5 6 7 8)
LATE_CG=ksight-hold/kubepods/burstable/pod$LATE_UID/$LATE_CID
for cg in "$POD_CG" "$GHOST_CG" "$LATE_CG"; do make_memcg "$cg" $((32 * 1024 * 1024)); done

ctl POST /pods "$(pod_json prod slow-1 "$POD_UID" app "$CID")" >/dev/null
# the first pod LIST (not the watch) answers 3 s late
ctl POST /fault '{"method":"GET","path_prefix":"/api/v1/pods","status":null,"delay_s":3,"watch":false,"count":1}' >/dev/null

# events on KIND/NAME with reason ProcessOOMKilled, as "objects:count"
event_count() {
	ctl GET /events | py 'import json,sys
ev=[e for e in json.load(sys.stdin) if e["involvedObject"]["kind"]==sys.argv[1] and e["involvedObject"]["name"]==sys.argv[2] and e["reason"]=="ProcessOOMKilled"]
print("%d:%d" % (len(ev), ev[-1]["count"] if ev else 0))' "$1" "$2"
}
pod_lists_answered() {
	ctl GET /requests | py 'import json,sys
print(len([r for r in json.load(sys.stdin) if r["method"]=="GET" and r["path"]=="/api/v1/pods" and not r["watch"]]))'
}

start_run run --signals oom --kubeconfig "$WORK/kubeconfig" --node-name "$NODE" || { not_ok "ksight run starts"; finish; }

# --- a kill before the first LIST answers: held, then on the Pod
pid=$(oom_kill "$POD_CG")
expect_eq "the kill came before the pod LIST answered" "$(pod_lists_answered)" 0
eventually "held kill: the pods are listed after the delay" 15 1 metric_value ksight_k8s_pods
eventually "held kill: one Event on the Pod" 15 "1:1" event_count Pod slow-1
check "held kill: the Event's involvedObject is the Pod, re-resolved" py 'import json,sys
ev=[e for e in json.load(sys.stdin) if e["reason"]=="ProcessOOMKilled"]
assert len(ev)==1, ev
o=ev[0]["involvedObject"]
assert (o["kind"],o["namespace"],o["name"],o["uid"],o.get("fieldPath"))==("Pod","prod","slow-1",sys.argv[1],"spec.containers{app}"), o
assert ev[0]["metadata"]["namespace"]=="prod", ev[0]["metadata"]
assert "(pid %s)" % sys.argv[2] in ev[0]["message"], ev[0]["message"]' "$POD_UID" "$pid" < <(ctl GET /events)
expect_eq "held kill: no Event on the Node" "$(event_count Node "$NODE")" "0:0"
expect_eq "held kill: counted as resolved" "$(metric_value 'ksight_k8s_events_held_total{outcome="resolved"}')" 1

# --- a second kill in the now known pod: the same Event, count 2 (the series key did not change)
oom_kill "$POD_CG" >/dev/null
eventually "a later kill: aggregated with the held one" 15 "1:2" event_count Pod slow-1

# --- a kill in a pod the API never learns: on the Node after the hold bound, with the pod UID
start=$SECONDS
oom_kill "$GHOST_CG" >/dev/null
eventually "unknown pod: an Event on the Node once the hold is up" 25 "1:1" event_count Node "$NODE"
waited=$((SECONDS - start))
check "unknown pod: held about 10 s first (waited ${waited}s)" test "$waited" -ge 9 -a "$waited" -le 16
check "unknown pod: the message names the pod UID" py 'import json,sys
e=[e for e in json.load(sys.stdin) if e["involvedObject"]["kind"]=="Node"][0]
assert sys.argv[1] in e["message"], e["message"]' "$GHOST_UID" < <(ctl GET /events)
expect_eq "unknown pod: counted as timeout" "$(metric_value 'ksight_k8s_events_held_total{outcome="timeout"}')" 1

# --- watch lag: the cache is synced, the kill comes before the pod's watch event
oom_kill "$LATE_CG" >/dev/null
sleep 2
ctl POST /pods "$(pod_json batch late-1 "$LATE_UID" job "$LATE_CID")" >/dev/null
eventually "a pod that appears 2 s after its kill: the Event is on it" 15 "1:1" event_count Pod late-1
check "a pod that appears later: on its container" py 'import json,sys
e=[e for e in json.load(sys.stdin) if e["involvedObject"]["name"]=="late-1"][0]
assert e["involvedObject"].get("fieldPath")=="spec.containers{job}" and e["involvedObject"]["uid"]==sys.argv[1], e' \
	"$LATE_UID" < <(ctl GET /events)
expect_eq "a pod that appears later: counted as resolved" "$(metric_value 'ksight_k8s_events_held_total{outcome="resolved"}')" 2

# --- SIGTERM while an Event is held: it is posted (on the Node) before the agent exits
oom_kill "$GHOST_CG" >/dev/null
kill -TERM "$RUN_PID"; wait "$RUN_PID"; rc=$?
expect_eq "run exits 0 on SIGTERM" "$rc" 0
expect_eq "SIGTERM: the held Event reached the Node (count 2)" "$(event_count Node "$NODE")" "1:2"

finish
