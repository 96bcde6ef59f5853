#!/usr/bin/env bash
# Kubernetes, end to end, against tests/k8s/fake_apiserver.py (HTTPS, its own CA,
# bearer tokens): pod names on metrics and trace lines, OOM kills as Events on the
# right Pod (aggregated, retried through faults), token rotation, a wrong CA, and
# the deploy/ manifests decoded by a real kubectl.
. "$(dirname "$0")/lib.sh"

NODE=node-e2e
start_fake_api "$NODE" 900

POD_UID=7a1c2d3e-4b5a-4c6d-8e7f-0123456789ab
CID=$(printf 'b16b00b5%.0s' 1 2 3 4 5 6 7 8)
POD_CG=ksight-k8s/kubepods/burstable/pod$POD_UID/$CID
W_UID=8b2d3e4f-5c6b-4d7e-9f80-123456789abc
W_CID=$(printf 'c0ffee11%.0s' 1 2 3 4 5 6 7 8)
W_CG=ksight-k8s/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${W_UID//-/_}.slice/cri-containerd-$W_CID.scope
LATE_UID=9c3e4f50-6d7c-4e8f-a091-23456789abcd
LATE_CID=$(printf 'dead10cc%.0s' 1 2 3 4 5 6 7 8)
LATE_CG=ksight-k8s/kubepods/besteffort/pod$LATE_UID/$LATE_CID
PLAIN_CG=ksight-k8s/plain
for cg in "$POD_CG" "$W_CG" "$LATE_CG" "$PLAIN_CG"; do make_memcg "$cg" $((32 * 1024 * 1024)); done

ctl POST /pods "$(pod_json prod api-7d9c "$POD_UID" app "$CID")" >/dev/null
ctl POST /pods "$(pod_json batch worker-5f6 "$W_UID" worker "$W_CID")" >/dev/null

# py SCRIPT ARGS...: a python3 check over the fake server's state; exit status is the verdict
events_json() { ctl GET /events; }
py() { python3 -c "$@"; }
# how many Events match kind/name/reason, and the count of the newest
event_count() { # KIND NAME -> "objects:count"
	events_json | py 'import json,sys
ev=[e for e in json.load(sys.stdin) if e["involvedObject"]["kind"]==sys.argv[1] and e["involvedObject"]["name"]==sys.argv[2] and e["reason"]=="ProcessOOMKilled"]
print("%d:%d" % (len(ev), ev[-1]["count"] if ev else 0))' "$1" "$2"
}

# --- a wrong CA: a clear error, and no request reaches the server
sed "s|$D/ca.crt|$D/other-ca.crt|" "$WORK/kubeconfig" >"$WORK/kubeconfig-wrong-ca"
ctl DELETE /requests >/dev/null
start_run wrongca --signals oom --kubeconfig "$WORK/kubeconfig-wrong-ca" --node-name "$NODE" || not_ok "ksight starts with a wrong CA"
check "wrong CA: says the certificate is not signed by the CA" wait_for 10 grep -q "not signed by the CA" "$WORK/wrongca.err"
expect_eq "wrong CA: no request reached the API server" "$(ctl GET /requests | py 'import json,sys; print(len(json.load(sys.stdin)))')" 0
kill "$RUN_PID"; wait "$RUN_PID" 2>/dev/null

# --- the agent, with names and Events
start_run run --signals oom --kubeconfig "$WORK/kubeconfig" --node-name "$NODE" || { not_ok "ksight run starts"; finish; }
start_trace trace oom -o json --kubeconfig "$WORK/kubeconfig" --node-name "$NODE" || not_ok "ksight trace starts"
eventually "pods listed: the cache has both pods" 15 2 metric_value ksight_k8s_pods
check "says where the API is" grep -q "Kubernetes API: https://127.0.0.1:$API (kubeconfig" "$WORK/run.err"

pid=$(oom_kill "$POD_CG")
eventually "one kill: one Event on the Pod" 15 "1:1" event_count Pod api-7d9c
check "one kill: the Event's fields" py 'import json,sys
e=[e for e in json.load(sys.stdin) if e["involvedObject"]["kind"]=="Pod"][0]
o=e["involvedObject"]
assert (o["namespace"],o["name"],o["uid"],o.get("fieldPath"),o.get("apiVersion"))==("prod","api-7d9c",sys.argv[1],"spec.containers{app}","v1"), o
assert e["metadata"]["namespace"]=="prod" and e["type"]=="Warning" and e["reason"]=="ProcessOOMKilled", e
assert e["source"]=={"component":"ksight","host":sys.argv[2]}, e["source"]
assert e["reportingComponent"]=="ksight" and e["reportingInstance"]==sys.argv[2], e
m=e["message"]
assert "memhog (pid %s)" % sys.argv[3] in m and "container app" in m and "limit of 32.0MiB" in m, m
assert e["firstTimestamp"].endswith("Z") and e["lastTimestamp"].endswith("Z"), e' "$POD_UID" "$NODE" "$pid" < <(events_json)
series='ksight_oom_kills_total{namespace="prod",pod="api-7d9c",container="app",cgroup="",constraint="memcg"}'
expect_eq "one kill: metric labelled with the pod's names" "$(metric_value "$series")" 1
check "one kill: trace line has the names" wait_for 5 grep -q '"namespace":"prod","pod":"api-7d9c","container":"app"' "$WORK/trace.out"
expect_eq "one kill: counted as created" "$(metric_value 'ksight_k8s_events_total{result="created"}')" 1

oom_kill "$POD_CG" >/dev/null
oom_kill "$POD_CG" >/dev/null
eventually "three kills: still one Event, count 3" 15 "1:3" event_count Pod api-7d9c
check "three kills: PATCHed with a strategic merge patch" py 'import json,sys
p=[r for r in json.load(sys.stdin) if r["method"]=="PATCH"]
assert len(p)==2 and all(r["content_type"]=="application/strategic-merge-patch+json" and r["status"]==200 for r in p), p
assert set(p[-1]["body"])=={"count","lastTimestamp","message"} and p[-1]["body"]["count"]==3, p[-1]' < <(ctl GET /requests)
check "kubectl get events lists it" sh -c "kubectl --kubeconfig '$WORK/kubeconfig' --cache-dir '$WORK/kcache' get events -n prod 2>&1 | grep -q 'ProcessOOMKilled.*pod/api-7d9c'"

# --- the API server down during a kill: the Event arrives once it is back
ctl POST /down '{"seconds": 4}' >/dev/null
oom_kill "$POD_CG" >/dev/null
eventually "server down: the kill is counted at once" 5 4 metric_value "$series"
eventually "server down: the Event arrives when it is back" 40 "1:4" event_count Pod api-7d9c
at_least "server down: retries were counted" 5 1 metric_value 'ksight_k8s_events_total{result="retried"}'

# --- 429 with Retry-After: honoured
ctl POST /fault '{"method":"PATCH","status":429,"retry_after":2,"count":1}' >/dev/null
oom_kill "$POD_CG" >/dev/null
eventually "429: the Event arrives after Retry-After" 30 "1:5" event_count Pod api-7d9c
check "429: the retry waited at least 2 s" py 'import json,sys
p=[r for r in json.load(sys.stdin) if r["method"]=="PATCH"]
i=[k for k,r in enumerate(p) if r["status"]==429][-1]
assert p[i+1]["status"]==200 and p[i+1]["time"]-p[i]["time"]>=1.9, p[i:]' < <(ctl GET /requests)

# --- the token rotates: the new one is used
ctl POST /rotate-token '{}' >/dev/null
newtoken=$(cat "$D/token")
oom_kill "$POD_CG" >/dev/null
eventually "rotated token: the Event still arrives" 30 "1:6" event_count Pod api-7d9c
check "rotated token: requests carry the new token" py 'import json,sys
p=[r for r in json.load(sys.stdin) if r["method"]=="PATCH" and r["status"]==200]
assert p[-1]["token"]==sys.argv[1], p[-1]["token"]' "$newtoken" < <(ctl GET /requests)

# --- 409 on create: a new name, and the Event is there
ctl POST /fault '{"method":"POST","status":409,"count":1}' >/dev/null
oom_kill "$W_CG" >/dev/null
eventually "409: the Event on the other Pod arrives under a new name" 30 "1:1" event_count Pod worker-5f6
check "409: on the right container" sh -c "curl -sf http://127.0.0.1:$CTL/events | grep -q 'spec.containers{worker}'"

# --- outside pods: an Event on the Node
oom_kill "$PLAIN_CG" >/dev/null
eventually "non-pod kill: an Event on the Node" 15 "1:1" event_count Node "$NODE"
check "non-pod kill: in namespace default, named like kubelet does" py 'import json,sys
e=[e for e in json.load(sys.stdin) if e["involvedObject"]["kind"]=="Node"][0]
assert e["metadata"]["namespace"]=="default" and e["involvedObject"]["name"]==sys.argv[1] and e["involvedObject"]["uid"]==sys.argv[1], e
assert "cgroup /ksight-k8s/plain" in e["message"], e["message"]' "$NODE" < <(events_json)

# --- the watch expires (410): re-list, and a pod added later resolves
ctl POST /watch '{"action":"gone"}' >/dev/null
at_least "410: the watch restarts with a re-list" 15 1 metric_value 'ksight_k8s_watch_restarts_total{reason="expired"}'
ctl POST /watch '{"action":"garbage"}' >/dev/null
ctl POST /watch '{"action":"close"}' >/dev/null
ctl POST /pods "$(pod_json late late-1 "$LATE_UID" sidecar "$LATE_CID")" >/dev/null
eventually "after garbage and a cut stream: the new pod is cached" 30 3 metric_value ksight_k8s_pods
at_least "the malformed line was counted" 15 1 metric_value 'ksight_k8s_watch_lines_dropped_total{reason="malformed"}'
oom_kill "$LATE_CG" >/dev/null
eventually "a pod added after the re-list: its Event" 15 "1:1" event_count Pod late-1

# --- an API server that accepts and never answers: the signals keep running
ctl POST /hang '{"seconds": 20}' >/dev/null
before=$(grep -c '^{' "$WORK/trace.out")
oom_kill "$POD_CG" >/dev/null
at_least "hung API: the trace still prints the kill" 5 $((before + 1)) grep -c '^{' "$WORK/trace.out"
eventually "hung API: /metrics still counts it" 5 7 metric_value "$series"

# --- the manifests decode as the objects they claim to be
kubectl --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/kcache" --request-timeout=5s create --dry-run=client --validate=false \
	-o json -f "$ROOT/deploy/" >"$WORK/manifests.json" 2>"$WORK/manifests.err" || true
ctl POST /reset >/dev/null
[ -s "$WORK/manifests.json" ] || kubectl --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/kcache" create \
	--dry-run=client --validate=false -o json -f "$ROOT/deploy/" >"$WORK/manifests.json" 2>"$WORK/manifests.err"
check "deploy/: kubectl decodes every manifest" py 'import json,sys
text=open(sys.argv[1]).read(); dec=json.JSONDecoder(); objs=[]; i=0
while i < len(text):
    if text[i].isspace(): i+=1; continue
    o,i=dec.raw_decode(text,i); objs.append(o)
kinds=sorted(o["kind"] for o in objs)
assert kinds==["ClusterRole","ClusterRoleBinding","DaemonSet","Namespace","Service","ServiceAccount"], kinds
ds=[o for o in objs if o["kind"]=="DaemonSet"][0]; spec=ds["spec"]["template"]["spec"]; c=spec["containers"][0]
assert spec["hostPID"] is True and spec["serviceAccountName"]=="ksight"
assert {"operator":"Exists"} in spec["tolerations"]
assert [e for e in c["env"] if e["name"]=="NODE_NAME"][0]["valueFrom"]["fieldRef"]["fieldPath"]=="spec.nodeName"
assert c["livenessProbe"]["httpGet"]["path"]=="/healthz" and c["readinessProbe"]["httpGet"]["path"]=="/healthz"
mounts={m["mountPath"] for m in c["volumeMounts"]}
assert {"/sys/kernel/btf","/sys/kernel/tracing","/sys/fs/bpf","/sys/fs/cgroup"} <= mounts, mounts
role=[o for o in objs if o["kind"]=="ClusterRole"][0]
rules={(r["resources"][0], tuple(r["verbs"])) for r in role["rules"]}
assert rules=={("pods",("get","list","watch")),("events",("create","patch")),("nodes",("get",)),
               ("nodes/status",("get","patch")),("endpointslices",("list","watch")),
               ("persistentvolumes",("get","list","watch"))}, rules
groups={r["resources"][0]: r["apiGroups"] for r in role["rules"]}
assert groups["endpointslices"]==["discovery.k8s.io"] and all(g==[""] for k,g in groups.items() if k!="endpointslices"), groups' "$WORK/manifests.json" \
	|| sed 's/^/#   /' "$WORK/manifests.err"

# --- SIGTERM: pending Events are flushed, exit 0
kill -TERM "$RUN_PID"; wait "$RUN_PID"; rc=$?
expect_eq "run exits 0 on SIGTERM" "$rc" 0

# --- no API configured, and --no-k8s: said once, signals run
env -u KUBERNETES_SERVICE_HOST "$KSIGHT" trace oom --node-name x >"$WORK/noapi.out" 2>"$WORK/noapi.err" &
p=$!; wait_for 10 grep -q "ready in" "$WORK/noapi.err"; kill -INT $p; wait $p
expect_eq "no API configuration: said once" "$(grep -c 'no Kubernetes API' "$WORK/noapi.err")" 1
"$KSIGHT" trace oom --no-k8s >"$WORK/nok8s.out" 2>"$WORK/nok8s.err" &
p=$!; wait_for 10 grep -q "ready in" "$WORK/nok8s.err"; kill -INT $p; wait $p
expect_eq "--no-k8s: said once" "$(grep -c 'not using the Kubernetes API (--no-k8s)' "$WORK/nok8s.err")" 1

finish
