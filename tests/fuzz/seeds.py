#!/usr/bin/env python3
"""Write the seed corpora of tests/fuzz/corpus/<name>/.

The seeds are small realistic inputs: kubelet's cgroup paths, a pod watch
stream, kubeconfigs, base64 of PEM, Kubernetes Events, metric programs.
Some harness inputs carry a binary header (chunk sizes, timestamps, an op
program), so they are generated here rather than written by hand; run this
after changing a harness's input layout. Files are rewritten in place;
nothing else in the directories is touched.
"""
import base64
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

UID = "8f3c2a1e-5b7d-4c9a-9e21-3d4f6a8b0c1d"
UID2 = "5f0c8c2e-1b7a-4d3e-9a6f-2c4b8d0e1f3a"
UID_MIRROR = "3c9d7e2f-6a1b-4c8d-9e0f-1a2b3c4d5e6f"
HASH = "6f1d2c3b4a5968778695a4b3c2d1e0f9"
CID = "3b1f7c9e2a4d6f8b0c1e3a5d7f9b2c4e6a8d0f1b3c5e7a9d2f4b6c8e0a1d3f5b"
CID_OLD = "7d1e5c3a9b2f4e6d8c0a1b3d5f7e9c2a4b6d8f0e1c3a5b7d9f2e4c6a8b0d1f3e"
CID_INIT = "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef"
CID_KIND = "c0ffee11d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9"

PEM = (b"-----BEGIN CERTIFICATE-----\n"
       b"MIIBdzCCAR2gAwIBAgIUJ8mVf0uQ2m1cM0z1k3xYt0Yp7nQwCgYIKoZIzj0EAwIw\n"
       b"-----END CERTIFICATE-----\n")
KEY = (b"-----BEGIN EC PRIVATE KEY-----\n"
       b"MHcCAQEEIBq3fZc2Wn5m0p9kq8kM7w2Jk1c5cQ0bq0v3bq9Yd2mFoAoGCCqGSM49\n"
       b"-----END EC PRIVATE KEY-----\n")


def write(name, fname, data):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data)


def cgroup_identity():
    u_ = UID.replace("-", "_")
    seeds = {
        "cgroupfs-burstable": f"/kubepods/burstable/pod{UID}/{CID}",
        "cgroupfs-guaranteed-crio": f"/kubepods/pod{UID}/crio-{CID}",
        "cgroupfs-conmon": f"/kubepods/besteffort/pod{UID}/crio-conmon-{CID}",
        "systemd-containerd": f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u_}.slice/cri-containerd-{CID}.scope",
        "systemd-crio": f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u_}.slice/crio-{CID}.scope",
        "systemd-docker": f"/kubepods.slice/kubepods-pod{u_}.slice/docker-{CID}.scope",
        "kind-nested": f"/system.slice/docker-{CID_KIND}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod{u_}.slice/cri-containerd-{CID}.scope/init.scope",
        "cgroup-root-kubelet": f"/kubelet/kubepods/burstable/pod{UID}/{CID}",
        "static-pod": f"/kubepods/burstable/pod{HASH}/{CID}",
        "not-a-pod": "/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service",
        "pod-only": f"/kubepods/burstable/pod{UID.upper()}",
    }
    for k, v in seeds.items():
        write("cgroup_identity", k, v)


def pod(uid, name, ns, containers, hash_=None, init=None):
    statuses = []
    for cname, cid, old in containers:
        st = {"name": cname, "ready": True, "restartCount": 1 if old else 0,
              "state": {"running": {"startedAt": "2026-09-30T10:15:03Z"}},
              "image": "shop/checkout:2.1", "containerID": "containerd://" + cid}
        if old:
            st["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                              "containerID": "containerd://" + old}}
        statuses.append(st)
    meta = {"name": name, "namespace": ns, "uid": uid, "resourceVersion": "48213",
            "labels": {"app": name.split("-")[0]}}
    if hash_:
        meta["annotations"] = {"kubernetes.io/config.hash": hash_,
                               "kubernetes.io/config.mirror": hash_,
                               "kubernetes.io/config.source": "file"}
    status = {"phase": "Running", "containerStatuses": statuses}
    if init:
        status["initContainerStatuses"] = [{"name": "init-db", "state": {"terminated": {
            "exitCode": 0, "containerID": "containerd://" + init}}, "containerID": "containerd://" + init}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": "node-1", "containers": [{"name": c[0]} for c in containers]},
            "status": status}


def line(obj):
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def watch_decoder():
    checkout = pod(UID2, "checkout-7d9c6b5f4-x2kqp", "shop", [("app", CID, CID_OLD)], init=CID_INIT)
    restarted = pod(UID2, "checkout-7d9c6b5f4-x2kqp", "shop", [("app", CID_INIT.replace("1", "9"), CID)])
    mirror = pod(UID_MIRROR, "kube-apiserver-node-1", "kube-system", [("kube-apiserver", CID_KIND, None)], hash_=HASH)
    stream = (line({"type": "ADDED", "object": checkout}) +
              line({"type": "ADDED", "object": mirror}) +
              line({"type": "MODIFIED", "object": restarted}) +
              line({"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "48300"}}}) +
              line({"type": "DELETED", "object": restarted}) +
              line({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                                "message": "too old resource version: 48213 (48990)"}}))
    # flags, max_line seed, 4 chunk lengths (1 + b; 255: the rest)
    write("watch_decoder", "stream-whole", bytes([0, 0, 255, 255, 255, 255]) + stream)
    write("watch_decoder", "stream-chunks", bytes([0, 0, 16, 200, 7, 63]) + stream)
    write("watch_decoder", "stream-stop-reset", bytes([0x02 | 0x04 | 0x10, 0, 100, 150, 90, 255]) + stream)
    write("watch_decoder", "stream-small-lines", bytes([0x01 | 0x08, 60, 31, 255, 255, 255]) + stream)
    podlist = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "48213"},
               "items": [checkout, mirror]}
    write("watch_decoder", "list", bytes([0x08, 0, 255, 255, 255, 255]) + line(podlist) +
          line({"type": "DELETED", "object": mirror}))
    junk = (b"\r\n\n" + line({"type": "ADDED", "object": {"metadata": {"uid": UID, "name": "a", "namespace": "b"}}})[:-1] +
            b"\r\n" + b'{"type":"ADDED","object":{"metadata":{"uid":"x"}}} trailing\n' +
            b"[1,2,3]\n" + b'{"type":"MODIFIED","object":' + b"[" * 70 + b"]" * 70 + b"}\n" +
            b'{"type":"NEWTYPE","object":{}}\n' + b'{"cut":"mid-object' + b"\n" +
            line({"metadata": {"uid": UID.upper().replace("-", "_"), "name": "bare", "namespace": "default"},
                  "status": {"containerStatuses": [{"name": "c", "containerID": "cri-o://" + CID}]}}) +
            b'{"type":"ADDED","object":{"metadata":{"uid":"a\\u0000b","name":"n","namespace":"d"}}}\n')
    write("watch_decoder", "junk", bytes([0, 0, 3, 9, 27, 81]) + junk)


def kubeconfig():
    ca = base64.b64encode(PEM).decode()
    crt = base64.b64encode(PEM).decode()
    key = base64.b64encode(KEY).decode()
    write("kubeconfig", "token-ca-data", f"""apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: {ca}
contexts:
- name: prod
  context:
    cluster: prod
    user: admin
    namespace: kube-system
current-context: prod
users:
- name: admin
  user:
    token: eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJzdWIiOiJrc2lnaHQifQ.c2ln
""")
    write("kubeconfig", "client-cert-data", f"""apiVersion: v1
kind: Config
current-context: kind-kind
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: https://[::1]:36421
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    user: kind-kind
  name: kind-kind
users:
- name: kind-kind
  user:
    client-certificate-data: {crt}
    client-key-data: {key}
preferences: {{}}
""")
    write("kubeconfig", "files-relative", """apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev
  cluster:
    server: "https://api.dev.example.com"
    certificate-authority: ca.crt
- name: other
  cluster:
    server: https://other:443
    certificate-authority: sub/ca.crt
contexts:
- name: dev
  context: {cluster: dev, user: dev}
users:
- name: dev
  user:
    tokenFile: token
    client-certificate: client.crt
    client-key: client.key
""")
    write("kubeconfig", "flow-json", json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://k:6443", "certificate-authority": "./ca.crt"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "ns"}}],
        "users": [{"name": "u", "user": {"token": "abc"}}]}))
    write("kubeconfig", "anchors", """current-context: &ctx a
clusters:
- name: &cl c1
  cluster: &clbody
    server: https://example.com:8443
contexts:
- name: *ctx
  context: {cluster: *cl, user: ~}
- name: b
  context: {cluster: c1}
users:
- name: u
  user: *clbody
""")
    write("kubeconfig", "rejected-insecure", """current-context: x
clusters:
- name: x
  cluster:
    server: https://x
    insecure-skip-tls-verify: yes
contexts:
- name: x
  context:
    cluster: x
    user: x
users:
- name: x
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: aws
""")
    write("kubeconfig", "rejected-misc", f"""current-context: x
clusters:
- name: x
  cluster:
    server: "https://x\\0y"
    certificate-authority-data: {base64.b64encode(b"not pem").decode()}
    tls-server-name: api
contexts:
- name: x
  context:
    cluster: x
    user: x
users:
- name: x
  user:
    username: admin
    password: secret
    auth-provider: {{name: oidc}}
""")
    write("kubeconfig", "no-context", "apiVersion: v1\nkind: Config\nclusters: []\n")


def b64():
    write("base64", "pem", b"\x00" + base64.encodebytes(PEM))
    write("base64", "nopad", base64.b64encode(b"ksight!!").rstrip(b"="))
    write("base64", "crlf-wrapped", base64.encodebytes(KEY * 2).replace(b"\n", b"\r\n"))
    write("base64", "padding", b"QQ==\n")
    write("base64", "bad-after-pad", b"QQ==QQ==")


def event(flags, count, first_raw, last_raw, fields):
    return (bytes([flags]) + struct.pack("<IQQ", count & 0xffffffff, first_raw, last_raw) +
            b"\0".join(f.encode() if isinstance(f, str) else f for f in fields))


def event_bodies():
    now = 1 << 61   # the harness maps this to 2026-09-30T10:15:02Z
    msg = ("Process memhog (pid 4242) in container app was killed by the OOM killer: its memory "
           "cgroup reached its limit of 32.0MiB (usage 32.0MiB); rss anon 31.5MiB, file 1.0MiB, "
           "shmem 0B; oom_score_adj 999")
    pod_fields = ["Warning", "ProcessOOMKilled", msg, "app", "Pod", "shop", "checkout-7d9c6b5f4-x2kqp",
                  "a41b2cd5-5451-4bbc-b740-c908d58d652e", "spec.containers{app}",
                  "checkout-7d9c6b5f4-x2kqp.18a2b3c4d5e6f708", "ksight", "node-1"]
    write("event_bodies", "pod-oom", event(0, 1, now, now, pod_fields))
    write("event_bodies", "node-oom", event(0xfc, 3, now - 600 * 10**9, now, [
        "Warning", "ProcessOOMKilled",
        "Process java (pid 77) in cgroup /system.slice/app.service was killed by the OOM killer: "
        "the node ran out of memory", "", "Node", "", "node-1", "node-1", "", "node-1.18a2b3c4d5e6f709",
        "ksight", "node-1"]))
    # multi-byte characters straddling the 1024-byte limit
    long_msg = "x" * 1022 + "é" + "€" + "😀" * 3
    write("event_bodies", "utf8-cut", event(0x40, 7, now, now + 10**9, pod_fields[:2] + [long_msg] + pod_fields[3:]))
    write("event_bodies", "utf8-4byte", event(0, 2, now, now, pod_fields[:2] + ["y" * 1021 + "😀😀"] + pod_fields[3:]))
    write("event_bodies", "escapes", event(0x10, 0x7fffffff, now, now, [
        "Normal", "Tab\tReason", 'quote " backslash \\ newline \n ctrl \x01\x1f del \x7f slash /',
        "", "Pod", "Bad_NS", "../x", "", "", "a/b?c", "", "h" * 200]))
    write("event_bodies", "invalid-utf8", event(0x02, 0, now, now, [
        b"Warning", b"R", b"\xff\xfe\xc3(\xe2\x82 \xf0\x9f\x98", b"", b"Pod"]))
    write("event_bodies", "raw-times", event(0x01, 5, 0x7fffffffffffffff, 0x8000000000000000, pod_fields))


METRIC_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:0123456789"


class Program:
    """Encoder for fuzz_exposition's op program."""

    def __init__(self, cap):
        self.b = bytearray([cap - 1])

    def s(self, data, limit):
        data = data.encode() if isinstance(data, str) else data
        assert len(data) <= limit
        self.b += bytes([len(data)]) + data

    def name(self, text, label=False):
        # the harness maps byte b to METRIC_CHARS[b % 64] (labels: b % 63);
        # add the modulus so that 'a' is not byte 0, which would end the string
        mod = 63 if label else 64
        self.s(bytes(METRIC_CHARS.index(c) % mod + mod for c in text), 24)

    def value(self, v):
        if isinstance(v, int) and 0 <= v < 256:
            self.b += bytes([0, v])
        elif v in ("nan", "inf", "-inf"):
            self.b += bytes([4, ("nan", "inf", "-inf").index(v)])
        else:
            self.b += bytes([1]) + struct.pack("<d", v)

    def family(self, typ, name, help_, labels=(), buckets=()):
        flags = {"counter": 0, "gauge": 1, "histogram": 2}[typ] | (len(labels) << 5)
        self.b += bytes([0, flags])
        self.name(name)
        self.s(help_, 64)
        for label in labels:
            self.b += bytes([0])
            self.name(label, True)
        if typ == "histogram":
            self.b += bytes([len(buckets)])
            for v in buckets:
                self.value(v)

    def update(self, op, fam, values, v, counts=None):
        self.b += bytes([{"add": 1, "set": 2, "observe": 3, "counter_set": 4, "hist_set": 5}[op], fam])
        for val in values:
            self.s(val, 64)
        self.value(v)
        for c in counts or ():
            self.b += bytes([3]) + struct.pack("<I", c)

    def render(self):
        self.b += bytes([7])

    def clear(self, fam):
        self.b += bytes([6, fam])

    def remove(self, fam, values):
        self.b += bytes([6, 0x40 | fam])
        for val in values:
            self.s(val, 64)

    def forget(self, fam, pairs):
        # pairs of (index of one of the family's labels, value)
        self.b += bytes([6, 0x80 | fam, len(pairs)])
        for idx, val in pairs:
            self.b += bytes([idx])
            self.s(val, 64)


def exposition():
    p = Program(8)
    p.family("counter", "ksight_oom_kills_total", "Processes killed by the kernel's OOM killer.",
             ["namespace", "pod", "container", "cgroup", "constraint"])
    p.update("add", 0, ["shop", "checkout-7d9c6b5f4-x2kqp", "app", "", "memcg"], 1)
    p.update("add", 0, ["", "", "", "/system.slice/app.service", "global"], 1)
    p.update("add", 0, ["", "", "", '/odd/"quoted"\\back\nslash', "unknown"], 1)
    p.update("add", 0, ["shop", "checkout-7d9c6b5f4-x2kqp", "app", "", "memcg"], 1)
    p.family("gauge", "ksight_k8s_pods", "Pods of this node in the pod-name cache (not deleted).")
    p.update("set", 1, [], 42)
    p.render()
    write("exposition", "oom-kills", bytes(p.b))

    p = Program(2)
    p.family("histogram", "ksight_scrape_seconds", "Scrape latency.\nSecond line \\ backslash.",
             ["path"], [0.001, 0.01, 0.1, 1.0])
    for v in (0.0005, 0.01, 0.3, 7.0, "nan", "inf"):
        p.update("observe", 0, ["/metrics"], v)
    p.update("hist_set", 0, ["/healthz"], 2.5, [1, 2, 3, 4, 5])
    p.update("observe", 0, ["/x"], 0.02)  # over the cap of 2: folds into "other"
    p.render()
    p.clear(0)
    p.render()
    write("exposition", "histogram", bytes(p.b))

    p = Program(1)
    p.family("gauge", "process_open_fds", "Number of open file descriptors.", ["kind"])
    for v in (-0.0, 0.1, 1e21, 9007199254740993.0, 5e-324, "-inf", "nan", 1.7976931348623157e308):
        p.update("set", 0, ["fd"], v)
    p.update("set", 0, ["pipe"], 3)  # over the cap of 1
    p.family("counter", "ksight_events_total", "Records decoded by user space.", ["signal"])
    p.update("counter_set", 1, ["oom"], 12345678901234567890.0)
    p.update("add", 1, ["oom"], "nan")  # rejected
    write("exposition", "numbers", bytes(p.b))

    p = Program(4)
    p.family("counter", "ksight_oom_kills_total", "x", ["cgroup"])
    p.update("add", 0, ["/user.slice/caf\xe9-\U0001F600".encode()], 1)
    p.update("add", 0, [b"/tmp/\xff\xfe-not-utf8"], 1)  # Prometheus rejects this: see crashes/
    p.render()
    write("exposition", "utf8", bytes(p.b))

    # totals set at each scrape beyond the cap, a deleted pod forgotten
    p = Program(2)
    p.family("counter", "ksight_lost_total", "Totals set at each scrape.", ["namespace", "pod", "container"])
    for scrape in (1, 2, 3):
        for i in range(1, 6):
            p.update("counter_set", 0, ["shop", "web-%d" % i, "app"], i * scrape)
        p.render()
    p.update("counter_set", 0, ["shop", "web-4", "app"], 1)  # a reset
    p.update("add", 0, ["other", "other", "other"], 2)
    p.forget(0, [(0, "shop"), (1, "web-1")])
    p.update("counter_set", 0, ["shop", "web-6", "app"], 9)  # room again: a real series
    p.update("counter_set", 0, ["shop", "web-3", "app"], 20)  # folded before: stays folded
    p.remove(0, ["shop", "web-2", "app"])
    p.remove(0, ["other", "other", "other"])
    p.family("gauge", "ksight_pod_bytes", "A gauge per pod.", ["pod"])
    for i, v in enumerate((1, 2.5, -4, 0.1, 7)):
        p.update("set", 1, ["pod-%d" % i], v)
    p.update("set", 1, ["pod-3"], 0.2)
    p.family("histogram", "ksight_lat_seconds", "Histograms set wholesale.", ["pod"], [0.01, 0.1])
    for i in range(4):
        p.update("hist_set", 2, ["pod-%d" % i], 0.5 * i, [i, 1, 2])
    p.update("hist_set", 2, ["pod-3"], 0.25, [1, 0, 0])  # a reset
    p.render()
    p.forget(1, [(0, "pod-0")])
    p.forget(0, [(0, "other"), (1, "other")])
    p.render()
    write("exposition", "fold-forget", bytes(p.b))

    # more folded label sets than the registry tracks (64): entries are reused after two renders
    p = Program(1)
    p.family("counter", "ksight_lost_total", "x", ["pod"])
    p.family("gauge", "ksight_pod_bytes", "y", ["pod"])
    for i in range(70):
        p.update("counter_set", 0, ["p%d" % i], i)
        if i % 20 == 19:
            p.render()
            p.render()
    for i in range(66):
        p.update("set", 1, ["p%d" % i], 1)
    p.render()
    p.render()
    for i in range(66, 70):
        p.update("set", 1, ["p%d" % i], 2)
        p.update("counter_set", 0, ["p%d" % i], 100)
    p.render()
    write("exposition", "fold-many", bytes(p.b))

    # the all-"other" label set first, then enough series for the lookup table to grow
    p = Program(8)
    p.family("counter", "ksight_lost_total", "x", ["pod"])
    p.update("counter_set", 0, ["other"], 5)
    for i in range(9):
        p.update("counter_set", 0, ["p%d" % i], 1)
    p.update("counter_set", 0, ["other"], 1)
    p.render()
    write("exposition", "other-first", bytes(p.b))

    # a gauge family rebuilt at each scrape with more label sets than the cap
    p = Program(1)
    p.family("gauge", "ksight_pod_bytes", "y", ["pod"])
    for scrape in range(1, 4):
        p.clear(0)
        for pod, v in (("x", 1), ("y", scrape), ("z", 10)):
            p.update("set", 0, [pod], v)
        p.render()
    p.clear(0)
    p.update("set", 0, ["z"], 3)  # folded before, room now: a series
    p.update("set", 0, ["x"], 4)
    p.render()
    write("exposition", "rebuild", bytes(p.b))


def crashes():
    """Known bugs (tests/fuzz/crashes/<name>/, replayed by `make fuzz-crashes`)."""
    d = os.path.join(HERE, "crashes", "exposition")
    os.makedirs(d, exist_ok=True)
    # a memory cgroup named with bytes that are not UTF-8 (mkdir in any
    # delegated cgroup subtree can do that) ends up as the cgroup label value
    p = Program(8)
    p.family("counter", "ksight_oom_kills_total", "x", ["cgroup"])
    p.update("add", 0, [b"/user.slice/user-1000.slice/user@1000.service/\xff"], 1)
    with open(os.path.join(d, "label-value-not-utf8"), "wb") as f:
        f.write(bytes(p.b))
    # two cgroups whose names differ only in bytes that are not UTF-8 must not
    # render as two series with the same labels (what replacing each such
    # byte by U+FFFD in the output alone does)
    p = Program(8)
    p.family("counter", "ksight_oom_kills_total", "x", ["cgroup"])
    p.update("add", 0, [b"/ksight/caf\xe9"], 1)
    p.update("add", 0, [b"/ksight/caf\xe8"], 1)
    with open(os.path.join(d, "label-values-collide"), "wb") as f:
        f.write(bytes(p.b))


if __name__ == "__main__":
    cgroup_identity()
    watch_decoder()
    kubeconfig()
    b64()
    event_bodies()
    exposition()
    crashes()
