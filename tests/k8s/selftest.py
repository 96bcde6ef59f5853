#!/usr/bin/env python3
"""Self-test of fake_apiserver.py: starts it in a temp dir, exercises every feature,
ends with "N passed, N failed".  Local only (127.0.0.1), bounded in time.

    python3 tests/k8s/selftest.py [--kubectl]   # --kubectl: also run kubectl checks
"""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
passed = failed = 0


def check(label, cond, extra=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   %s" % label)
    else:
        failed += 1
        print("FAIL %s %s" % (label, extra))


class Fake:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="fake-apiserver-")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_apiserver.py"),
                                      "--dir", self.dir, "--lifetime", "300"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(200):
            if os.path.exists(os.path.join(self.dir, "ports.json")):
                break
            time.sleep(0.05)
        p = json.load(open(os.path.join(self.dir, "ports.json")))
        self.api, self.ctl_port = p["api"], p["control"]
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.crt"))

    def token(self):
        return open(os.path.join(self.dir, "token")).read().strip()

    def conn(self, timeout=10):
        return http.client.HTTPSConnection("127.0.0.1", self.api, context=self.ctx, timeout=timeout)

    def req(self, method, path, body=None, ct="application/json", token=None, timeout=10):
        c = self.conn(timeout)
        h = {"Authorization": "Bearer " + (token or self.token())}
        if body is not None:
            h["Content-Type"] = ct
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            data = json.loads(data)
        except ValueError:
            pass
        return r.status, dict(r.getheaders()), data

    def ctl(self, method, path, body=None):
        rq = urllib.request.Request("http://127.0.0.1:%d%s" % (self.ctl_port, path), method=method,
                                    data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(rq, timeout=10) as r:
            return json.loads(r.read())

    def watch(self, query, out, timeout=30):
        """Run a watch in a thread, appending parsed lines (or raw strings) to out."""
        def run():
            try:
                c = self.conn(timeout)
                c.request("GET", "/api/v1/pods?watch=1&" + query,
                          headers={"Authorization": "Bearer " + self.token()})
                r = c.getresponse()
                for line in r:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        out.append(line.decode(errors="replace"))
                out.append("END")
            except Exception as e:  # noqa: BLE001 - recorded for the checks
                out.append("EXC:%s" % type(e).__name__)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def stop(self):
        try:
            self.ctl("POST", "/shutdown")
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        out = self.proc.stdout.read() + self.proc.stderr.read()
        check("nothing on stdout/stderr", out == b"", out[:200])
        shutil.rmtree(self.dir, ignore_errors=True)


def pod(uid, name, node="node-1"):
    return {"metadata": {"uid": uid, "namespace": "shop", "name": name}, "spec": {"nodeName": node},
            "status": {"containerStatuses": [{"name": "app", "containerID": "containerd://" + uid}]}}


def event(name, ns="shop", **kw):
    e = {"metadata": {"name": name},
         "involvedObject": {"kind": "Pod", "namespace": ns, "name": "p1", "uid": "u1",
                            "apiVersion": "v1"},
         "reason": "ProcessOOMKilled", "message": "killed", "type": "Warning", "count": 1,
         "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
         "source": {"component": "ksight", "host": "node-1"}, "eventTime": None}
    e.update(kw)
    return e


def types(lines):
    return [x["type"] if isinstance(x, dict) else x for x in lines]


def main():
    f = Fake()
    try:
        d = f.dir
        for name in ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key",
                     "other-ca.crt", "tokens", "token", "sa/token", "sa/ca.crt", "sa/namespace",
                     "kubeconfig", "kubeconfig-data", "kubeconfig-cert", "kubeconfig-wrong-ca"):
            check("file " + name, os.path.exists(os.path.join(d, name)))
        check("sa/namespace", open(os.path.join(d, "sa/namespace")).read() == "ksight")

        # auth
        s, _, b = f.req("GET", "/version")
        check("version", s == 200 and b["gitVersion"].startswith("v1."))
        s, _, b = f.req("GET", "/api/v1/pods", token="bad")
        check("bad token 401", s == 401 and b["kind"] == "Status" and b["reason"] == "Unauthorized")
        cctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
        cctx.load_cert_chain(os.path.join(d, "client.crt"), os.path.join(d, "client.key"))
        c = http.client.HTTPSConnection("127.0.0.1", f.api, context=cctx, timeout=5)
        c.request("GET", "/api/v1/nodes/node-1")
        r = c.getresponse()
        node = json.loads(r.read())
        check("client cert auth", r.status == 200 and node["metadata"]["uid"])
        wctx = ssl.create_default_context(cafile=os.path.join(d, "other-ca.crt"))
        try:
            http.client.HTTPSConnection("127.0.0.1", f.api, context=wctx, timeout=5).request("GET", "/")
            check("wrong CA rejected", False)
        except ssl.SSLError:
            check("wrong CA rejected", True)
        s, _, n2 = f.req("GET", "/api/v1/nodes/node-1")
        check("node uid stable", n2["metadata"]["uid"] == node["metadata"]["uid"])

        # pods + watch
        f.ctl("POST", "/pods", pod("u1", "p1"))
        f.ctl("POST", "/pods", pod("u2", "p2", "node-2"))
        s, _, lst = f.req("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1")
        check("pod list filtered", s == 200 and lst["kind"] == "PodList" and
              [p["metadata"]["name"] for p in lst["items"]] == ["p1"])
        rv = lst["metadata"]["resourceVersion"]
        out = []
        t = f.watch("fieldSelector=spec.nodeName%%3Dnode-1&resourceVersion=%s"
                    "&allowWatchBookmarks=true&timeoutSeconds=5" % rv, out)
        time.sleep(0.3)
        f.ctl("POST", "/pods", pod("u3", "p3"))
        f.ctl("POST", "/pods", pod("u3", "p3"))
        f.ctl("POST", "/pods", pod("u2", "p2"))          # moves onto node-1
        f.ctl("DELETE", "/pods/u3")
        t.join(10)
        ty = types(out)
        check("watch events", ty[:4] == ["ADDED", "MODIFIED", "ADDED", "DELETED"], ty)
        check("watch bookmark + clean end", "BOOKMARK" in ty and ty[-1] == "END", ty)
        out = []
        f.watch("resourceVersion=0&timeoutSeconds=1", out).join(5)
        check("watch rv=0 initial ADDED", types(out).count("ADDED") == 2, types(out))

        # watch actions
        out = []
        t = f.watch("resourceVersion=%s&timeoutSeconds=20" % f.ctl("GET", "/state")["rv"], out)
        time.sleep(0.3)
        check("watch garbage", f.ctl("POST", "/watch", {"action": "garbage"})["watchers"] == 1)
        time.sleep(0.3)
        f.ctl("POST", "/watch", {"action": "gone"})
        t.join(5)
        check("garbage line then 410", len(out) == 3 and isinstance(out[0], str) and
              out[1]["type"] == "ERROR" and out[1]["object"]["code"] == 410 and out[2] == "END",
              out)
        out = []
        f.watch("resourceVersion=%s&timeoutSeconds=5" % rv, out).join(5)
        check("old RV after gone -> 410", types(out) == ["ERROR", "END"] and
              out[0]["object"]["reason"] == "Expired", out)
        raw = f.ctx.wrap_socket(socket.create_connection(("127.0.0.1", f.api), timeout=5),
                                server_hostname="localhost")
        raw.sendall(("GET /api/v1/pods?watch=1&resourceVersion=%s&timeoutSeconds=20 HTTP/1.1\r\n"
                     "Host: localhost\r\nAuthorization: Bearer %s\r\n\r\n"
                     % (f.ctl("GET", "/state")["rv"], f.token())).encode())
        time.sleep(0.3)
        f.ctl("POST", "/watch", {"action": "close"})
        data = b""
        try:
            while True:
                chunk = raw.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ssl.SSLError, OSError):
            pass
        raw.close()
        body = data.split(b"\r\n\r\n", 1)[-1]
        check("close mid-object (half line, no final chunk)",
              b"chunked" in data and b'{"type":"MODIFIED"' in body and
              not body.endswith(b"0\r\n\r\n") and not body.rstrip().endswith(b"}"), data[-120:])

        # events
        s, _, b = f.req("POST", "/api/v1/namespaces/shop/events", event("p1.1"))
        check("event create 201", s == 201 and b["metadata"]["resourceVersion"])
        s, _, b = f.req("POST", "/api/v1/namespaces/shop/events", event("p1.1"))
        check("event dup 409", s == 409 and b["reason"] == "AlreadyExists")
        s, _, b = f.req("POST", "/api/v1/namespaces/other/events", event("p1.2"))
        check("event ns mismatch 422", s == 422 and b["reason"] == "Invalid")
        s, _, b = f.req("POST", "/api/v1/namespaces/shop/events", event("p1.3", reason=""))
        check("event empty reason 422", s == 422)
        s, _, b = f.req("POST", "/api/v1/namespaces/shop/events",
                        event("p1.4", eventTime="2026-01-01T00:00:00.000000Z", action="Kill",
                              reportingComponent="ksight", reportingInstance="node-1",
                              message="x" * 1025))
        check("eventTime + 1025-byte message 422", s == 422 and "message" in b["message"])
        s, _, b = f.req("POST", "/api/v1/namespaces/default/events",
                        event("n.1", involvedObject={"kind": "Node", "name": "node-1",
                                                     "uid": node["metadata"]["uid"],
                                                     "apiVersion": "v1"}))
        check("node event in default", s == 201)
        s, _, b = f.req("PATCH", "/api/v1/namespaces/shop/events/p1.1",
                        {"count": 3, "lastTimestamp": "2026-01-01T00:05:00Z", "message": "again"},
                        "application/strategic-merge-patch+json")
        check("event patch smp", s == 200 and b["count"] == 3 and b["message"] == "again")
        s, _, b = f.req("PATCH", "/api/v1/namespaces/shop/events/p1.1", {"count": 4},
                        "application/merge-patch+json")
        check("event patch merge", s == 200 and b["count"] == 4)
        s, _, b = f.req("PATCH", "/api/v1/namespaces/shop/events/nope", {"count": 4},
                        "application/merge-patch+json")
        check("event patch 404", s == 404 and b["reason"] == "NotFound")
        s, _, b = f.req("GET", "/api/v1/events")
        check("event list", s == 200 and b["kind"] == "EventList" and len(b["items"]) == 2)
        check("control /events", len(f.ctl("GET", "/events")) == 2)
        reqs = f.ctl("GET", "/requests")
        check("request log", any(q["method"] == "PATCH" and q["body"] == {"count": 4} and
                                 q["content_type"] == "application/merge-patch+json"
                                 for q in reqs))

        # faults
        f.ctl("POST", "/fault", {"method": "POST", "path_prefix": "/api/v1/namespaces",
                                 "status": 429, "retry_after": 2, "count": 2})
        r1 = f.req("POST", "/api/v1/namespaces/shop/events", event("f.1"))
        r2 = f.req("POST", "/api/v1/namespaces/shop/events", event("f.1"))
        r3 = f.req("POST", "/api/v1/namespaces/shop/events", event("f.1"))
        check("fault 429 x2 + Retry-After", (r1[0], r2[0], r3[0]) == (429, 429, 201) and
              r1[1].get("Retry-After") == "2" and r1[2]["reason"] == "TooManyRequests")
        f.ctl("POST", "/fault", {"status": 500, "count": -1, "delay_s": 0.5})
        t0 = time.time()
        s1 = f.req("GET", "/api/v1/nodes/node-1")[0]
        s2 = f.req("GET", "/api/v1/nodes/node-1")[0]
        check("fault -1 with delay", s1 == s2 == 500 and time.time() - t0 >= 1.0)
        f.ctl("DELETE", "/fault")
        check("fault cleared", f.req("GET", "/api/v1/nodes/node-1")[0] == 200)

        # hang
        f.ctl("POST", "/hang", {"seconds": 1.5})
        t0 = time.time()
        try:
            f.req("GET", "/api/v1/nodes/node-1")
            check("hang", False)
        except (http.client.HTTPException, OSError):
            check("hang: no answer, closed after window", 1.3 <= time.time() - t0 <= 3)

        # down
        f.ctl("POST", "/down", {"seconds": 1.5})
        try:
            socket.create_connection(("127.0.0.1", f.api), timeout=2).close()
            check("down refuses", False)
        except ConnectionRefusedError:
            check("down refuses", True)
        time.sleep(2)
        check("up again", f.req("GET", "/api/v1/nodes/node-1")[0] == 200)

        # token rotation
        old = f.token()
        with open(os.path.join(d, "tokens"), "w") as fh:
            fh.write("rotated\n")
        check("revoked token 401", f.req("GET", "/version", token=old)[0] == 401)
        check("new token 200", f.req("GET", "/version", token="rotated")[0] == 200)
        tok = f.ctl("POST", "/rotate-token", {})["token"]
        check("rotate-token", f.token() == tok and f.req("GET", "/version")[0] == 200)

        # history overflow -> 410
        s, _, lst = f.req("GET", "/api/v1/pods")
        rv0 = lst["metadata"]["resourceVersion"]
        for i in range(1005):
            f.ctl("POST", "/pods", pod("h%d" % (i % 5), "h%d" % (i % 5)))
        out = []
        f.watch("resourceVersion=%s&timeoutSeconds=2" % rv0, out).join(5)
        check("RV older than history -> 410", types(out) == ["ERROR", "END"], types(out)[:3])

        f.ctl("POST", "/reset")
        check("reset", f.ctl("GET", "/events") == [] and f.ctl("GET", "/requests") == [])

        if "--kubectl" in sys.argv and shutil.which("kubectl"):
            env = dict(os.environ, HOME=d)
            k = ["kubectl", "--kubeconfig", os.path.join(d, "kubeconfig"), "--cache-dir",
                 os.path.join(d, "kcache")]
            f.req("POST", "/api/v1/namespaces/shop/events", event("k.1", reason="KubectlSeesMe"))
            p = subprocess.run(k + ["get", "events", "-A"], env=env, capture_output=True,
                               text=True, timeout=60)
            check("kubectl get events -A", p.returncode == 0 and "KubectlSeesMe" in p.stdout,
                  p.stderr)
            man = os.path.join(d, "m.yaml")
            with open(man, "w") as fh:
                fh.write("apiVersion: v1\nkind: Namespace\nmetadata: {name: ksight}\n---\n"
                         "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ksight, "
                         "namespace: ksight}\nspec:\n  selector: {matchLabels: {app: k}}\n"
                         "  template:\n    metadata: {labels: {app: k}}\n    spec:\n"
                         "      containers: [{name: k, image: k}]\n")
            p = subprocess.run(k + ["create", "--dry-run=client", "-o", "json", "-f", man],
                               env=env, capture_output=True, text=True, timeout=60)
            check("kubectl create --dry-run=client", p.returncode == 0 and
                  '"DaemonSet"' in p.stdout, p.stderr)
    finally:
        f.stop()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
