#!/usr/bin/env bash
# The pod LIST of a full node, against tests/k8s/fake_apiserver.py: 1,000 pods of
# ~9.4 KiB each (managedFields, env, volumes, like real ones: a 9.4 MB PodList),
# the agent syncs all of them, and its peak RSS (VmHWM) stays under a bound
# that leaves deploy/daemonset.yaml's memory limit room.
#
# The bound: the agent's peak is its start-up (parsing the kernel's BTF), about
# 29 MiB VmHWM here with 0, 1,000 or 5,000 pods; once synced its RSS is ~14 MiB
# plus ~1.2 KiB per cached pod. A LIST parsed into one json-c tree cost ~30x the
# body (the code before the streaming decoder peaked at 286 MiB for these 9.4 MB
# and kept it), which the decoder removes: it holds one item at a time. 40 MiB
# leaves a third over the measured peak. The memory cgroup's peak (what the
# DaemonSet's limit counts) must stay under half that limit.
# KSIGHT_LIST_MAX_HWM_KIB overrides the bound, KSIGHT_LIST_PODS the pod count.
. "$(dirname "$0")/lib.sh"

NODE=node-list
PODS=${KSIGHT_LIST_PODS:-1000}
MAX_HWM_KIB=${KSIGHT_LIST_MAX_HWM_KIB:-40960}
start_fake_api "$NODE" 600

# PODS pods on our node (and 50 on another, which the field selector leaves out)
python3 - "$NODE" "$PODS" >"$WORK/pods.json" <<'PY'
import json, sys, uuid
node, n = sys.argv[1], int(sys.argv[2])

def pod(i, node):
    uid = str(uuid.UUID(int=i + 1))
    name = "web-%05d-7d9c6b5f4-x%04d" % (i, i)
    ns = "team-%02d" % (i % 40)
    labels = {"app.kubernetes.io/name": "web-%d" % (i % 97), "app.kubernetes.io/part-of": "shop",
              "pod-template-hash": "7d9c6b5f4", "team": ns}
    env = [{"name": "SETTING_%02d" % k, "value": "value-%d-%d" % (i, k)} for k in range(24)]
    fields_env = {"k:{\"name\":\"SETTING_%02d\"}" % k: {".": {}, "f:name": {}, "f:value": {}} for k in range(24)}
    ctr = lambda c: {
        "name": c, "image": "registry.example.com/shop/%s:1.%d.0" % (c, i % 13),
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "env": env, "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "volumeMounts": [{"name": "kube-api-access-%05d" % i, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                          "readOnly": True}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent"}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid, "labels": labels,
            "generateName": name[:-5], "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-%05d-7d9c6b5f4" % i,
                                 "uid": str(uuid.UUID(int=10**9 + i)), "controller": True, "blockOwnerDeletion": True}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                 "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {"f:" + k: {} for k in labels}},
                              "f:spec": {"f:containers": {"k:{\"name\":\"%s\"}" % c: {"f:env": fields_env, "f:image": {}}
                                                          for c in ("app", "proxy")}}}},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-01-01T00:00:05Z",
                 "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"%s\"}" % t: {".": {}, "f:status": {}, "f:type": {}}
                                                            for t in ("Ready", "Initialized", "ContainersReady", "PodScheduled")},
                                           "f:containerStatuses": {}, "f:podIP": {}}}},
            ]},
        "spec": {"nodeName": node, "containers": [ctr("app"), ctr("proxy")], "serviceAccountName": "web",
                 "volumes": [{"name": "kube-api-access-%05d" % i, "projected": {"sources": [
                     {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                     {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                                  "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "podIP": "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255),
                   "conditions": [{"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"}
                                  for t in ("Ready", "Initialized", "ContainersReady", "PodScheduled")],
                   "containerStatuses": [{"name": c, "ready": True, "restartCount": 0, "image": "x", "imageID": "y",
                                          "containerID": "containerd://%064x" % (i * 2 + k + 1),
                                          "state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}}}
                                         for k, c in enumerate(("app", "proxy"))]}}

pods = [pod(i, node) for i in range(n)] + [pod(n + i, "other-node") for i in range(50)]
json.dump(pods, sys.stdout)
PY
size=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(len(json.dumps(p[0])))' "$WORK/pods.json")
echo "# $PODS pods of $size bytes each on $NODE"
curl -sf -X POST "http://127.0.0.1:$CTL/pods" -H 'Content-Type: application/json' \
	--data-binary "@$WORK/pods.json" >/dev/null || { not_ok "the fake API server stores the pods"; finish; }

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$RUN_PID/status"; }

# the agent in a memory cgroup of its own, as in its pod: the limit there counts
# what the kernel charges it (RSS, page cache, BPF maps), not only the RSS
AGENT_CG=ksight-list/agent
make_memcg "$AGENT_CG" $((1024 * 1024 * 1024))
cat >"$WORK/ksight-in-cg" <<SH
#!/bin/sh
echo \$\$ >"$MEMCG/$AGENT_CG/cgroup.procs" && exec "$KSIGHT" "\$@"
SH
chmod +x "$WORK/ksight-in-cg"
KSIGHT=$WORK/ksight-in-cg

start_run list --signals "${KSIGHT_LIST_SIGNALS:-oom}" --kubeconfig "$WORK/kubeconfig" --node-name "$NODE" || { not_ok "ksight run starts"; finish; }
eventually "every pod of the node is cached" 60 "$PODS" metric_value ksight_k8s_pods
check "synced: says so" wait_for 10 grep -q ": $PODS pods on node $NODE" "$WORK/list.err"
# a re-list after a 410 lists the whole node again: the peak must hold through it
curl -sf -X POST "http://127.0.0.1:$CTL/watch" -d '{"action":"gone"}' >/dev/null
at_least "410: re-listed" 30 1 metric_value 'ksight_k8s_watch_restarts_total{reason="expired"}'
pods_state() { echo "$(metric_value ksight_k8s_pods):$(metric_value ksight_k8s_pods_deleted)"; }
eventually "after the re-list: every pod still cached, none tombstoned" 30 "$PODS:0" pods_state
expect_eq "synced is said once, not again after the re-list" "$(grep -c "pods on node $NODE" "$WORK/list.err")" 1
hwm=$(hwm_kib)
rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$RUN_PID/status")
cg_peak=$(($(cat "$MEMCG/$AGENT_CG/memory.max_usage_in_bytes") / 1024))
echo "# VmHWM ${hwm} KiB, VmRSS ${rss} KiB, memory cgroup peak ${cg_peak} KiB after listing $PODS pods twice (bound ${MAX_HWM_KIB} KiB)"
check "peak RSS with $PODS pods stays under ${MAX_HWM_KIB} KiB (got ${hwm} KiB)" test "${hwm:-999999999}" -lt "$MAX_HWM_KIB"
# what the kernel charged the agent, against the limit its pod runs under
limit_mib=$(awk '/limits:/ { l = 1 } l && /memory:/ { sub(/Mi/, "", $2); print $2; exit }' "$ROOT/deploy/daemonset.yaml")
check "memory cgroup peak ${cg_peak} KiB is under half the DaemonSet's limit (${limit_mib} MiB)" \
	test "$cg_peak" -lt $((${limit_mib:-0} * 1024 / 2))

finish
