#!/usr/bin/env python3
"""Fake Kubernetes API server for ksight end-to-end tests (Python 3.11 stdlib only).

Serves a small, realistic subset of the core/v1 API over TLS (pods list/watch,
nodes, core/v1 Events, discovery for kubectl) and a plain-HTTP control API
that tests use to add pods, read posted events and inject faults.

    fake_apiserver.py --dir DIR [--port 0] [--control-port 0] [--node NODE]
                      [--lifetime 900] [--bookmark-interval 3]

DIR/ports.json ({"api": N, "control": M}) appears once both listeners are up.
See tests/k8s/README.md for the control API.  Nothing is printed on stdout;
the log is DIR/server.log.
"""

import argparse
import base64
import copy
import json
import logging
import os
import random
import re
import secrets
import select
import signal
import socket
import socketserver
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("fake-apiserver")

HISTORY_MAX = 1000
REQUEST_LOG_MAX = 200000
DEFAULT_WATCH_TIMEOUT = 1800

REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
    413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
    504: "Timeout",
}


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def now_rfc3339(t=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def parse_rfc3339(s):
    if not isinstance(s, str) or not s:
        return None
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        return None
    import calendar
    t = calendar.timegm(tuple(int(m.group(i)) for i in range(1, 7)) + (0, 0, 0))
    if m.group(7):
        t += float(m.group(7))
    tz = m.group(8)
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        t -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return t


def human_duration(secs):
    """Roughly k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(max(0, secs))
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm%ds" % (m, s % 60) if s % 60 else "%dm" % m
    if m < 180:
        return "%dm" % m
    h = s // 3600
    if h < 8:
        return "%dh%dm" % (h, m % 60) if m % 60 else "%dh" % h
    if h < 48:
        return "%dh" % h
    d = h // 24
    if h < 24 * 8:
        return "%dd%dh" % (d, h % 24) if h % 24 else "%dd" % d
    if d < 365 * 2:
        return "%dd" % d
    return "%dy" % (d // 365)


def jdump(obj):
    return json.dumps(obj, separators=(",", ":"))


def status_obj(code, message, reason=None, details=None):
    st = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason if reason is not None else REASONS.get(code, ""),
        "code": code,
    }
    if details:
        st["details"] = details
    return st


DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_RE = re.compile(r"^%s(\.%s)*$" % (DNS1123_LABEL, DNS1123_LABEL))
QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def is_dns1123_subdomain(s):
    return isinstance(s, str) and 0 < len(s) <= 253 and bool(DNS1123_SUBDOMAIN_RE.match(s))


def is_qualified_name(s):
    if not isinstance(s, str) or not s:
        return False
    parts = s.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not is_dns1123_subdomain(prefix):
            return False
    else:
        return False
    return 0 < len(name) <= 63 and bool(QUALIFIED_NAME_RE.match(name))


def get_path(obj, dotted):
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def merge_patch(target, patch, strategic=False):
    """RFC 7386 JSON merge patch (strategic: also drop "$directive" keys)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if strategic and k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v, strategic)
    return out


CONDITION_STATUSES = ("True", "False", "Unknown")


def patch_node_status(status, patch, strategic):
    """A nodes/status PATCH on a Node's status. Strategic: `conditions` merged
    by `type` as the real server does (an entry's fields merged, new types
    appended, `$patch: delete` removes one, `$`-directives dropped); JSON merge
    patch: the list replaced as a whole."""
    if not strategic:
        return merge_patch(status, patch)
    conds = patch.get("conditions") if isinstance(patch, dict) else None
    rest = {k: v for k, v in patch.items() if k != "conditions"} if isinstance(patch, dict) else patch
    out = merge_patch(status, rest, True)
    if conds is None:
        return out
    merged = [copy.deepcopy(c) for c in (status or {}).get("conditions") or []]
    for c in conds:
        i = next((n for n, old in enumerate(merged) if old.get("type") == c.get("type")), None)
        if c.get("$patch") == "delete":
            if i is not None:
                merged.pop(i)
        elif i is None:
            merged.append(merge_patch({}, c, True))
        else:
            merged[i] = merge_patch(merged[i], c, True)
    out["conditions"] = merged
    return out


def node_condition_causes(status):
    causes = []
    conds = (status or {}).get("conditions")
    if conds is None:
        return causes
    if not isinstance(conds, list):
        return [cause("FieldValueInvalid", "status.conditions", "must be a list")]
    seen = set()
    for i, c in enumerate(conds):
        f = "status.conditions[%d]" % i
        if not isinstance(c, dict):
            causes.append(cause("FieldValueInvalid", f, "must be an object"))
            continue
        if not c.get("type"):
            causes.append(cause("FieldValueRequired", f + ".type", "Required value"))
        elif c["type"] in seen:
            causes.append(cause("FieldValueDuplicate", f + ".type", "Duplicate value: %r" % c["type"]))
        seen.add(c.get("type"))
        if c.get("status") not in CONDITION_STATUSES:
            causes.append(cause("FieldValueNotSupported", f + ".status",
                                "Unsupported value: %r: supported values: \"True\", \"False\", \"Unknown\""
                                % c.get("status")))
        for t in ("lastHeartbeatTime", "lastTransitionTime"):
            if c.get(t) is not None and parse_rfc3339(c[t]) is None:
                causes.append(cause("FieldValueInvalid", "%s.%s" % (f, t), "not an RFC 3339 time"))
    return causes


def write_atomic(path, data, mode=0o644):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def parse_field_selector(sel, allowed):
    """Returns [(field, op, value)] or raises ValueError."""
    terms = []
    if not sel:
        return terms
    for term in sel.split(","):
        term = term.strip()
        if not term:
            continue
        for op in ("!=", "==", "="):
            if op in term:
                f, v = term.split(op, 1)
                f = f.strip()
                if allowed is not None and f not in allowed:
                    raise ValueError('field label not supported: %s' % f)
                terms.append((f, "!=" if op == "!=" else "=", v.strip()))
                break
        else:
            raise ValueError("invalid selector: '%s'; can't understand '%s'" % (sel, term))
    return terms


def match_fields(obj, terms, aliases=None):
    for f, op, v in terms:
        if aliases and f in aliases:
            got = aliases[f](obj)
        else:
            got = get_path(obj, f)
        got = "" if got is None else str(got)
        if (got == v) != (op == "="):
            return False
    return True


def parse_label_selector(sel):
    """Equality-based label selector: k=v, k==v, k!=v, k (exists), !k. [(key, op, value)]."""
    terms = []
    for term in (sel or "").split(","):
        term = term.strip()
        if not term:
            continue
        for op in ("!=", "==", "="):
            if op in term:
                k, v = term.split(op, 1)
                terms.append((k.strip(), "!=" if op == "!=" else "=", v.strip()))
                break
        else:
            if term.startswith("!"):
                terms.append((term[1:].strip(), "!", None))
            elif re.match(r"^[A-Za-z0-9./_-]+$", term):
                terms.append((term, "exists", None))
            else:
                raise ValueError("unable to parse requirement: %s" % term)
    return terms


def match_labels(obj, terms):
    labels = get_path(obj, "metadata.labels") or {}
    for k, op, v in terms:
        if op == "exists" and k not in labels:
            return False
        if op == "!" and k in labels:
            return False
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
    return True


POD_FIELDS = {"spec.nodeName", "metadata.name", "metadata.namespace", "status.phase",
              "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
              "status.podIP", "status.nominatedNodeName", "spec.hostNetwork"}
EVENT_FIELDS = {"metadata.name", "metadata.namespace", "involvedObject.kind",
                "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                "involvedObject.apiVersion", "involvedObject.resourceVersion",
                "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}
EVENT_ALIASES = {"source": lambda o: get_path(o, "source.component")}


# --------------------------------------------------------------------------
# certificates, tokens, kubeconfigs
# --------------------------------------------------------------------------

OPENSSL_CNF = """
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


def run_openssl(args, cwd):
    p = subprocess.run(["openssl"] + args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), p.stderr))


def make_certs(d):
    cnf = os.path.join(d, ".openssl.cnf")
    with open(cnf, "w") as f:
        f.write(OPENSSL_CNF)
    key = ["-newkey", "rsa:2048", "-nodes"]

    def ca(name, cn):
        run_openssl(["req", "-x509", "-new"] + key + ["-keyout", name + ".key", "-out", name + ".crt",
                     "-days", "3650", "-sha256", "-subj", "/CN=" + cn, "-config", cnf,
                     "-extensions", "v3_ca"], d)

    def leaf(name, subj, ext):
        run_openssl(["req", "-new"] + key + ["-keyout", name + ".key", "-out", name + ".csr",
                     "-subj", subj, "-config", cnf], d)
        run_openssl(["x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                     "-set_serial", "0x" + secrets.token_hex(12), "-days", "825", "-sha256",
                     "-extfile", cnf, "-extensions", ext, "-out", name + ".crt"], d)
        os.unlink(os.path.join(d, name + ".csr"))

    ca("ca", "ksight-fake-apiserver-ca")
    leaf("server", "/CN=localhost", "v3_server")
    leaf("client", "/O=system:masters/CN=ksight", "v3_client")
    ca("other-ca", "ksight-unrelated-ca")
    os.unlink(os.path.join(d, "other-ca.key"))
    os.unlink(cnf)
    for k in ("ca.key", "server.key", "client.key"):
        os.chmod(os.path.join(d, k), 0o600)


def b64file(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def kubeconfig_yaml(server, cluster_lines, user_lines, namespace="ksight"):
    def ind(lines, n):
        return "".join(" " * n + l + "\n" for l in lines)
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- name: fake\n"
        "  cluster:\n"
        "    server: %s\n" % server
        + ind(cluster_lines, 4)
        + "contexts:\n"
        "- name: fake\n"
        "  context:\n"
        "    cluster: fake\n"
        "    user: ksight\n"
        "    namespace: %s\n" % namespace
        + "current-context: fake\n"
        "preferences: {}\n"
        "users:\n"
        "- name: ksight\n"
        "  user:\n"
        + ind(user_lines, 4)
    )


def write_kubeconfigs(d, port, token, ipv6=False):
    server = "https://127.0.0.1:%d" % port
    ca_path = os.path.join(d, "ca.crt")
    tok = ["token: %s" % token]
    write_atomic(os.path.join(d, "kubeconfig"), kubeconfig_yaml(
        server, ["certificate-authority: %s" % ca_path], tok), 0o600)
    write_atomic(os.path.join(d, "kubeconfig-data"), kubeconfig_yaml(
        server, ["certificate-authority-data: %s" % b64file(ca_path)], tok), 0o600)
    write_atomic(os.path.join(d, "kubeconfig-cert"), kubeconfig_yaml(
        server, ["certificate-authority-data: %s" % b64file(ca_path)],
        ["client-certificate-data: %s" % b64file(os.path.join(d, "client.crt")),
         "client-key-data: %s" % b64file(os.path.join(d, "client.key"))]), 0o600)
    write_atomic(os.path.join(d, "kubeconfig-wrong-ca"), kubeconfig_yaml(
        server, ["certificate-authority: %s" % os.path.join(d, "other-ca.crt")], tok), 0o600)
    if ipv6:
        write_atomic(os.path.join(d, "kubeconfig-ipv6"), kubeconfig_yaml(
            "https://[::1]:%d" % port, ["certificate-authority: %s" % ca_path], tok), 0o600)


def write_token_files(d, token, keep=()):
    lines = list(keep) + [token]
    write_atomic(os.path.join(d, "tokens"), "\n".join(lines) + "\n", 0o600)
    write_atomic(os.path.join(d, "token"), token + "\n", 0o600)
    write_atomic(os.path.join(d, "sa", "token"), token, 0o600)


# --------------------------------------------------------------------------
# shared state
# --------------------------------------------------------------------------

class Watcher:
    def __init__(self, desc):
        self.desc = desc
        self.actions = []


class State:
    def __init__(self, args):
        self.args = args
        self.dir = args.dir
        self.node = args.node
        self.cond = threading.Condition(threading.RLock())
        self.rv = 1
        self.pods = {}                 # uid -> pod
        self.history = deque()         # (rv, type, old, new, resource) pod and slice changes
        self.slices = {}               # (ns, name) -> EndpointSlice
        self.floor = self.rv           # watches from an RV below this get 410
        self.events = {}               # (ns, name) -> event (insertion order)
        self.pvs = {}                  # name -> PersistentVolume (cluster-scoped)
        self.requests = []
        self.faults = []
        self.hang_until = 0.0
        self.down_until = 0.0
        self.watchers = set()
        self.stopping = False
        self.started = time.time()
        self.node_created = now_rfc3339()
        self.node_status = {}          # name -> status as nodes/status PATCHes left it
        self.node_rv = {}              # name -> its resourceVersion, bumped by each PATCH

    # ---- resource versions / history (call with cond held) ----
    def bump(self):
        self.rv += 1
        return self.rv

    def record_pod_change(self, typ, old, new, resource="pods"):
        rv = self.rv
        self.history.append((rv, typ, old, new, resource))
        while len(self.history) > HISTORY_MAX:
            evicted = self.history.popleft()
            self.floor = evicted[0]
        self.cond.notify_all()

    def node_uid(self, name):
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, "node.%s.ksight-fake-apiserver" % name))

    def node_names(self):
        names = {self.node}
        for p in self.pods.values():
            n = get_path(p, "spec.nodeName")
            if n:
                names.add(n)
        return sorted(names)

    def node_obj(self, name):
        obj = self.base_node_obj(name)
        if name in self.node_status:
            obj["status"] = copy.deepcopy(self.node_status[name])
            obj["metadata"]["resourceVersion"] = str(self.node_rv[name])
        return obj

    def base_node_obj(self, name):
        return {
            "kind": "Node", "apiVersion": "v1",
            "metadata": {
                "name": name, "uid": self.node_uid(name), "resourceVersion": "1",
                "creationTimestamp": self.node_created,
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64"},
            },
            "spec": {},
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status",
                                "lastHeartbeatTime": now_rfc3339(),
                                "lastTransitionTime": self.node_created}],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                              {"type": "Hostname", "address": name}],
                "nodeInfo": {"kubeletVersion": self.args.server_version,
                             "operatingSystem": "linux", "architecture": "amd64"},
            },
        }

    def valid_tokens(self):
        try:
            with open(os.path.join(self.dir, "tokens")) as f:
                return {l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")}
        except OSError:
            return set()

    def log_request(self, entry):
        with self.cond:
            if len(self.requests) >= REQUEST_LOG_MAX:
                del self.requests[: REQUEST_LOG_MAX // 10]
            self.requests.append(entry)

    def take_fault(self, method, path, is_watch):
        with self.cond:
            for f in self.faults:
                if f.get("method") and f["method"].upper() != method:
                    continue
                if f.get("path_prefix") and not path.startswith(f["path_prefix"]):
                    continue
                if f.get("watch") is not None and bool(f["watch"]) != is_watch:
                    continue
                if f.get("count", 1) > 0:
                    f["count"] = f.get("count", 1) - 1
                    if f["count"] == 0:
                        self.faults.remove(f)
                f["hits"] = f.get("hits", 0) + 1
                return dict(f)
        return None


# --------------------------------------------------------------------------
# discovery documents
# --------------------------------------------------------------------------

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def res(name, singular, kind, namespaced, verbs=ALL_VERBS, short=None, cats=None):
    r = {"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind,
         "verbs": list(verbs)}
    if short:
        r["shortNames"] = short
    if cats:
        r["categories"] = cats
    return r


CORE_V1 = [
    res("bindings", "binding", "Binding", True, ["create"]),
    res("configmaps", "configmap", "ConfigMap", True, short=["cm"]),
    res("endpoints", "endpoints", "Endpoints", True, short=["ep"]),
    res("events", "event", "Event", True, short=["ev"]),
    res("namespaces", "namespace", "Namespace", False,
        ["create", "delete", "get", "list", "patch", "update", "watch"], short=["ns"]),
    res("nodes", "node", "Node", False, short=["no"]),
    res("nodes/status", "", "Node", False, ["get", "patch", "update"]),
    res("persistentvolumes", "persistentvolume", "PersistentVolume", False, short=["pv"]),
    res("pods", "pod", "Pod", True, short=["po"], cats=["all"]),
    res("pods/log", "", "Pod", True, ["get"]),
    res("pods/status", "", "Pod", True, ["get", "patch", "update"]),
    res("secrets", "secret", "Secret", True),
    res("serviceaccounts", "serviceaccount", "ServiceAccount", True, short=["sa"]),
    res("serviceaccounts/token", "", "TokenRequest", True, ["create"]),
    res("services", "service", "Service", True,
        ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        short=["svc"], cats=["all"]),
]

GROUPS = {
    "apps": {"v1": [
        res("controllerrevisions", "controllerrevision", "ControllerRevision", True),
        res("daemonsets", "daemonset", "DaemonSet", True, short=["ds"], cats=["all"]),
        res("daemonsets/status", "", "DaemonSet", True, ["get", "patch", "update"]),
        res("deployments", "deployment", "Deployment", True, short=["deploy"], cats=["all"]),
        res("deployments/scale", "", "Scale", True, ["get", "patch", "update"]),
        res("deployments/status", "", "Deployment", True, ["get", "patch", "update"]),
        res("replicasets", "replicaset", "ReplicaSet", True, short=["rs"], cats=["all"]),
        res("statefulsets", "statefulset", "StatefulSet", True, short=["sts"], cats=["all"]),
    ]},
    "rbac.authorization.k8s.io": {"v1": [
        res("clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", False),
        res("clusterroles", "clusterrole", "ClusterRole", False),
        res("rolebindings", "rolebinding", "RoleBinding", True),
        res("roles", "role", "Role", True),
    ]},
}


def group_doc(name):
    vs = sorted(GROUPS[name])
    return {"name": name,
            "versions": [{"groupVersion": "%s/%s" % (name, v), "version": v} for v in vs],
            "preferredVersion": {"groupVersion": "%s/%s" % (name, vs[0]), "version": vs[0]}}


def resource_list(gv, resources):
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}


def all_group_versions():
    out = {"api/v1": ("", "v1", CORE_V1)}
    for g, vs in GROUPS.items():
        for v, resources in vs.items():
            out["apis/%s/%s" % (g, v)] = (g, v, resources)
    return out


def openapi_v3_root():
    """Just enough for kubectl's fieldValidation probe (see README)."""
    return {"paths": {k: {"serverRelativeURL": "/openapi/v3/%s?hash=FAKE%s" %
                          (k, k.replace("/", "").replace(".", "").upper())}
                      for k in all_group_versions()}}


def openapi_v3_gv(key, server_version):
    group, version, resources = all_group_versions()[key]
    prefix = "/api/v1" if not group else "/apis/%s/%s" % (group, version)
    fv = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True},
          "description": "fieldValidation instructs the server on how to handle objects in the "
                         "request containing unknown or duplicate fields."}
    paths = {}
    for r in resources:
        if "/" in r["name"] or "patch" not in r["verbs"]:
            continue
        base = prefix + ("/namespaces/{namespace}/" if r["namespaced"] else "/") + r["name"] + "/{name}"
        gvk = {"group": group, "version": version, "kind": r["kind"]}
        op = lambda verb: {
            "operationId": "%s%s" % (verb, r["kind"]),
            "parameters": [fv] if verb in ("patch", "put", "post") else [],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": verb, "x-kubernetes-group-version-kind": gvk}
        paths[base] = {"get": op("get"), "put": op("put"), "patch": op("patch")}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": server_version},
            "paths": paths, "components": {"schemas": {}}}


# --------------------------------------------------------------------------
# Table rendering for kubectl (Accept: application/json;as=Table;...)
# --------------------------------------------------------------------------

def wants_table(accept):
    return "as=Table" in (accept or "")


def partial_meta(obj):
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def event_table(items, rv):
    cols = [("Last Seen", 0, ""), ("Type", 0, ""), ("Reason", 0, ""), ("Object", 0, ""),
            ("Subobject", 1, ""), ("Source", 1, ""), ("Message", 0, ""),
            ("First Seen", 1, ""), ("Count", 1, ""), ("Name", 1, "name")]
    now = time.time()
    rows = []
    for e in items:
        first = parse_rfc3339(e.get("firstTimestamp"))
        last = parse_rfc3339(e.get("lastTimestamp")) or parse_rfc3339(e.get("eventTime")) or first
        cnt = e.get("count") or 0
        since = lambda t: human_duration(now - t) if t else "<unknown>"
        if cnt > 1 and first:
            seen = "%s (x%d over %s)" % (since(last), cnt, since(first))
        else:
            seen = since(last)
        io = e.get("involvedObject") or {}
        src = e.get("source") or {}
        src_s = ", ".join(x for x in (src.get("component"), src.get("host")) if x)
        rows.append({"cells": [seen, e.get("type", ""), e.get("reason", ""),
                               "%s/%s" % (str(io.get("kind", "")).lower(), io.get("name", "")),
                               io.get("fieldPath", ""), src_s, e.get("message", ""),
                               since(first), cnt, get_path(e, "metadata.name") or ""],
                     "object": partial_meta(e)})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": [{"name": n, "type": "integer" if n == "Count" else "string",
                                   "format": f, "description": n, "priority": p}
                                  for n, p, f in cols],
            "rows": rows}


def pod_table(items, rv):
    now = time.time()
    rows = []
    for p in items:
        cs = get_path(p, "status.containerStatuses") or []
        ready = sum(1 for c in cs if c.get("ready"))
        total = len(get_path(p, "spec.containers") or cs)
        restarts = sum(int(c.get("restartCount") or 0) for c in cs)
        created = parse_rfc3339(get_path(p, "metadata.creationTimestamp"))
        rows.append({"cells": [get_path(p, "metadata.name"), "%d/%d" % (ready, total),
                               get_path(p, "status.phase") or "Running", restarts,
                               human_duration(now - created) if created else "<unknown>",
                               get_path(p, "status.podIP") or "<none>",
                               get_path(p, "spec.nodeName") or "<none>"],
                     "object": partial_meta(p)})
    cols = [("Name", 0, "name", "string"), ("Ready", 0, "", "string"), ("Status", 0, "", "string"),
            ("Restarts", 0, "", "integer"), ("Age", 0, "", "string"), ("IP", 1, "", "string"),
            ("Node", 1, "", "string")]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": [{"name": n, "type": t, "format": f, "description": n,
                                   "priority": pr} for n, pr, f, t in cols],
            "rows": rows}


def generic_table(items, rv):
    now = time.time()
    rows = []
    for o in items:
        created = parse_rfc3339(get_path(o, "metadata.creationTimestamp"))
        rows.append({"cells": [get_path(o, "metadata.name"),
                               human_duration(now - created) if created else "<unknown>"],
                     "object": partial_meta(o)})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": [{"name": "Name", "type": "string", "format": "name",
                                   "description": "Name", "priority": 0},
                                  {"name": "Age", "type": "string", "format": "",
                                   "description": "Age", "priority": 0}],
            "rows": rows}


# --------------------------------------------------------------------------
# event validation (legacyValidateEvent + generic create rules)
# --------------------------------------------------------------------------

def cause(reason, field, message):
    return {"reason": reason, "message": message, "field": field}


def validate_event(ev, ns):
    """Returns a list of causes (empty = valid)."""
    causes = []
    meta = ev.get("metadata") or {}
    name = meta.get("name") or ""
    if not name:
        causes.append(cause("FieldValueRequired", "metadata.name",
                            "Required value: name or generateName is required"))
    elif name in (".", "..") or "/" in name or "%" in name:
        causes.append(cause("FieldValueInvalid", "metadata.name",
                            'Invalid value: "%s": may not contain \'/\' or \'%%\' and may not be '
                            '\'.\' or \'..\'' % name))
    io = ev.get("involvedObject")
    if not isinstance(io, dict) or not io:
        causes.append(cause("FieldValueRequired", "involvedObject", "Required value"))
        io = {}
    io_ns = io.get("namespace") or ""
    event_time = ev.get("eventTime")
    if not event_time:
        if not io_ns:
            if ns not in ("", "default"):
                causes.append(cause("FieldValueInvalid", "involvedObject.namespace",
                                    'Invalid value: "%s": does not match event.namespace' % io_ns))
        elif ns != io_ns:
            causes.append(cause("FieldValueInvalid", "involvedObject.namespace",
                                'Invalid value: "%s": does not match event.namespace' % io_ns))
    else:
        if not io_ns and ns not in ("default", "kube-system"):
            causes.append(cause("FieldValueInvalid", "involvedObject.namespace",
                                'Invalid value: "%s": does not match event.namespace' % io_ns))
        rc = ev.get("reportingComponent") or ""
        if not rc:
            causes.append(cause("FieldValueRequired", "reportingComponent", "Required value"))
        elif not is_qualified_name(rc):
            causes.append(cause("FieldValueInvalid", "reportingComponent",
                                'Invalid value: "%s": must be a qualified name' % rc))
        ri = ev.get("reportingInstance") or ""
        if not ri:
            causes.append(cause("FieldValueRequired", "reportingInstance", "Required value"))
        elif len(ri) > 128:
            causes.append(cause("FieldValueInvalid", "reportingInstance",
                                "Invalid value: \"\": can have at most 128 characters"))
        act = ev.get("action") or ""
        if not act:
            causes.append(cause("FieldValueRequired", "action", "Required value"))
        elif len(act) > 128:
            causes.append(cause("FieldValueInvalid", "action",
                                "Invalid value: \"\": can have at most 128 characters"))
        if len(ev.get("reason") or "") > 128:
            causes.append(cause("FieldValueInvalid", "reason",
                                "Invalid value: \"\": can have at most 128 characters"))
        if len((ev.get("message") or "").encode()) > 1024:
            causes.append(cause("FieldValueInvalid", "message",
                                "Invalid value: \"\": can have at most 1024 characters"))
    # stricter than the real server when eventTime is null (see README)
    if not ev.get("reason"):
        causes.append(cause("FieldValueRequired", "reason", "Required value"))
    if not ev.get("message"):
        causes.append(cause("FieldValueRequired", "message", "Required value"))
    if ns and not is_dns1123_subdomain(ns):
        causes.append(cause("FieldValueInvalid", "metadata.namespace",
                            'Invalid value: "%s": a lowercase RFC 1123 subdomain' % ns))
    for k in ("count",):
        if k in ev and ev[k] is not None and not isinstance(ev[k], int):
            causes.append(cause("FieldValueInvalid", k, "Invalid value: must be an integer"))
    return causes


def invalid_status(kind, name, causes):
    msg = '%s "%s" is invalid: [%s]' % (kind, name, ", ".join(
        "%s: %s" % (c["field"], c["message"]) for c in causes))
    if len(causes) == 1:
        msg = '%s "%s" is invalid: %s: %s' % (kind, name, causes[0]["field"], causes[0]["message"])
    return status_obj(422, msg, "Invalid", {"name": name, "kind": kind, "causes": causes})


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------

class ClientGone(Exception):
    pass


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-apiserver"
    sys_version = ""

    def log_message(self, fmt, *a):
        log.info("%s %s", self.client_address[0], fmt % a)

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = b""
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_bytes(self, code, data, ctype="application/json", headers=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        # one write for headers + body (no Nagle/delayed-ACK stall)
        if self.command != "HEAD":
            self._headers_buffer.append(b"\r\n" + data)
            self.flush_headers()
        else:
            self.end_headers()

    def send_json(self, code, obj, headers=None):
        self.send_bytes(code, (jdump(obj) + "\n").encode(), headers=headers)

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET


class QuietBindMixin:
    def server_bind(self):
        # HTTPServer.server_bind would call socket.getfqdn() (a DNS lookup)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class ApiServer(QuietBindMixin, ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, addr, state, ssl_ctx):
        self.state = state
        self.ssl_ctx = ssl_ctx
        self.conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, ApiHandler)

    def handle_error(self, request, client_address):
        et, ev, _ = sys.exc_info()
        if isinstance(ev, (ssl.SSLError, ConnectionError, socket.timeout, ClientGone, OSError)):
            log.info("connection %s: %s: %s", client_address, et.__name__, ev)
        else:
            log.error("error on %s:\n%s", client_address, traceback.format_exc())

    def drop_all_connections(self):
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            hard_close(c)


def hard_close(sock):
    """Shut the TCP connection down without a TLS close_notify or HTTP response."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class ApiHandler(BaseHandler):
    timeout = 120  # idle keep-alive / slow request limit

    def setup(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.settimeout(15)
        self.request = self.server.ssl_ctx.wrap_socket(self.request, server_side=True)
        self.request.settimeout(self.timeout)
        with self.server.conns_lock:
            self.server.conns.add(self.request)
        super().setup()

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        with self.server.conns_lock:
            self.server.conns.discard(self.request)

    # ---- main entry ----
    def dispatch(self):
        st = self.server.state
        self.t0 = time.time()
        u = urlsplit(self.path)
        self.upath = unquote(u.path)
        self.query_raw = u.query
        self.q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        self.body_raw = b""
        try:
            self.body_raw = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        self.body = None
        if self.body_raw:
            try:
                self.body = json.loads(self.body_raw)
            except ValueError:
                self.body = None
        auth = self.headers.get("Authorization") or ""
        self.token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        self.client_cn = None
        try:
            pc = self.connection.getpeercert()
            if pc:
                for rdn in pc.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            self.client_cn = v
        except (ValueError, OSError, AttributeError):
            pass
        self.logged = False
        self.is_watch = self.q.get("watch", "").lower() in ("1", "true") or \
            self.upath.startswith("/api/v1/watch/")

        # hang: accept the request, never answer, close when the window ends
        with st.cond:
            hang_until = st.hang_until
        if time.time() < hang_until:
            self.log_req(None, hung=True)
            log.info("hanging %s %s until %.1f", self.command, self.path, hang_until)
            while time.time() < hang_until and not st.stopping:
                time.sleep(min(0.2, max(0.0, hang_until - time.time())))
            self.close_connection = True
            hard_close(self.connection)
            return

        # authentication
        if not self.client_cn and (not self.token or self.token not in st.valid_tokens()):
            return self.reply(401, status_obj(401, "Unauthorized"))

        # injected faults
        fault = st.take_fault(self.command, self.upath, self.is_watch)
        if fault:
            delay = float(fault.get("delay_s") or 0)
            if delay > 0:
                time.sleep(delay)
            code = fault.get("status")
            if code == 0:
                self.log_req(0, fault=True)
                self.close_connection = True
                hard_close(self.connection)
                return
            if code:
                code = int(code)
                hdrs = {}
                details = None
                ra = fault.get("retry_after")
                if ra is not None:
                    hdrs["Retry-After"] = str(int(ra))
                    details = {"retryAfterSeconds": int(ra)}
                msg = fault.get("message") or "fake apiserver: injected fault (%d)" % code
                return self.reply(code, status_obj(code, msg, fault.get("reason"), details),
                                  hdrs, fault=True)
        try:
            self.route()
        except ClientGone:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except Exception:
            log.error("handler error for %s %s:\n%s", self.command, self.path,
                      traceback.format_exc())
            if not self.logged:
                self.reply(500, status_obj(500, "internal error in fake apiserver"))

    def log_req(self, status, **extra):
        if self.logged:
            return
        self.logged = True
        e = {
            "method": self.command, "path": self.upath, "query": self.q,
            "content_type": self.headers.get("Content-Type"),
            "body": self.body, "status": status, "token": self.token,
            "client_cn": self.client_cn, "user_agent": self.headers.get("User-Agent"),
            "accept": self.headers.get("Accept"), "watch": self.is_watch,
            "time": self.t0,
        }
        if self.body is None and self.body_raw:
            e["body_raw"] = self.body_raw.decode("utf-8", "replace")
        e.update(extra)
        self.server.state.log_request(e)

    def reply(self, code, obj, headers=None, **extra):
        self.log_req(code, **extra)
        self.send_json(code, obj, headers)

    def not_found(self, what=None):
        if what:
            kind, name = what
            return self.reply(404, status_obj(404, '%s "%s" not found' % (kind, name), "NotFound",
                                              {"name": name, "kind": kind}))
        return self.reply(404, status_obj(404, "the server could not find the requested resource",
                                          "NotFound"))

    def method_not_allowed(self):
        return self.reply(405, status_obj(405, "the server does not allow this method on the "
                                          "requested resource", "MethodNotAllowed"))

    # ---- routing ----
    def route(self):
        st = self.server.state
        p = self.upath.rstrip("/") or "/"
        parts = [x for x in p.split("/") if x]
        m = self.command
        accept = self.headers.get("Accept") or ""

        if p in ("/healthz", "/livez", "/readyz"):
            self.log_req(200)
            return self.send_bytes(200, b"ok", "text/plain; charset=utf-8")
        if p == "/version":
            v = st.args.server_version
            mm = re.match(r"v?(\d+)\.(\d+)", v)
            return self.reply(200, {
                "major": mm.group(1), "minor": mm.group(2), "gitVersion": v,
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.23.6", "compiler": "gc", "platform": "linux/amd64"})
        if p == "/openapi/v3":
            return self.reply(200, openapi_v3_root())
        if p.startswith("/openapi/v3/") and p[len("/openapi/v3/"):] in all_group_versions():
            return self.reply(200, openapi_v3_gv(p[len("/openapi/v3/"):], st.args.server_version))
        if p == "/api":
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"],
                                    "serverAddressByClientCIDRs": [
                                        {"clientCIDR": "0.0.0.0/0",
                                         "serverAddress": "127.0.0.1:%d" % self.server.server_port}]})
        if p == "/api/v1":
            return self.reply(200, resource_list("v1", CORE_V1))
        if p == "/apis":
            return self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                    "groups": [group_doc(g) for g in GROUPS]})
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in GROUPS:
            d = group_doc(parts[1])
            d.update({"kind": "APIGroup", "apiVersion": "v1"})
            return self.reply(200, d)
        if len(parts) == 3 and parts[0] == "apis" and parts[1] in GROUPS and parts[2] in GROUPS[parts[1]]:
            return self.reply(200, resource_list("%s/%s" % (parts[1], parts[2]),
                                                 GROUPS[parts[1]][parts[2]]))
        if parts[:3] == ["apis", "discovery.k8s.io", "v1"]:
            rest = parts[3:]
            if rest and rest[0] == "watch":
                rest = rest[1:]
            if rest == ["endpointslices"]:
                return self.slices_collection(None) if m in ("GET", "HEAD") else self.method_not_allowed()
            if len(rest) == 3 and rest[0] == "namespaces" and rest[2] == "endpointslices":
                return self.slices_collection(rest[1]) if m in ("GET", "HEAD") else self.method_not_allowed()
            return self.not_found()
        if len(parts) < 3 or parts[:2] != ["api", "v1"]:
            return self.not_found()

        rest = parts[2:]
        if rest[0] == "watch":
            rest = rest[1:]
            if not rest:
                return self.not_found()
        # /api/v1/pods, /api/v1/namespaces/NS/pods[/NAME]
        if rest == ["pods"]:
            return self.pods_collection(None) if m in ("GET", "HEAD") else self.method_not_allowed()
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "pods":
            ns = rest[1]
            if len(rest) == 3:
                return self.pods_collection(ns) if m in ("GET", "HEAD") else self.method_not_allowed()
            if len(rest) == 4:
                if m not in ("GET", "HEAD"):
                    return self.method_not_allowed()
                with st.cond:
                    for pod in st.pods.values():
                        if get_path(pod, "metadata.namespace") == ns and \
                                get_path(pod, "metadata.name") == rest[3]:
                            if wants_table(accept):
                                return self.reply(200, pod_table([copy.deepcopy(pod)], str(st.rv)))
                            return self.reply(200, copy.deepcopy(pod))
                return self.not_found(("pods", rest[3]))
            return self.not_found()
        if rest == ["nodes"]:
            if m not in ("GET", "HEAD"):
                return self.method_not_allowed()
            with st.cond:
                items = [st.node_obj(n) for n in st.node_names()]
                rv = str(st.rv)
            if wants_table(accept):
                return self.reply(200, generic_table(items, rv))
            return self.reply(200, {"kind": "NodeList", "apiVersion": "v1",
                                    "metadata": {"resourceVersion": rv}, "items": items})
        if len(rest) == 3 and rest[0] == "nodes" and rest[2] == "status":
            with st.cond:
                names = st.node_names()
            if rest[1] not in names:
                return self.not_found(("nodes", rest[1]))
            if m in ("GET", "HEAD"):
                with st.cond:
                    return self.reply(200, st.node_obj(rest[1]))
            if m == "PATCH":
                return self.node_status_patch(rest[1])
            return self.method_not_allowed()
        if len(rest) == 2 and rest[0] == "nodes":
            if m not in ("GET", "HEAD"):
                return self.method_not_allowed()
            with st.cond:
                names = st.node_names()
            if rest[1] not in names:
                return self.not_found(("nodes", rest[1]))
            if wants_table(accept):
                return self.reply(200, generic_table([st.node_obj(rest[1])], str(st.rv)))
            return self.reply(200, st.node_obj(rest[1]))
        if rest == ["namespaces"]:
            with st.cond:
                nss = sorted({"default", "kube-system", "ksight"} |
                             {get_path(p, "metadata.namespace") for p in st.pods.values()} |
                             {k[0] for k in st.events})
            items = [self.ns_obj(n) for n in nss]
            if wants_table(accept):
                return self.reply(200, generic_table(items, str(st.rv)))
            return self.reply(200, {"kind": "NamespaceList", "apiVersion": "v1",
                                    "metadata": {"resourceVersion": str(st.rv)}, "items": items})
        if len(rest) == 2 and rest[0] == "namespaces":
            if m not in ("GET", "HEAD"):
                return self.method_not_allowed()
            return self.reply(200, self.ns_obj(rest[1]))
        # /api/v1/persistentvolumes[/NAME]: GET and LIST (cluster-scoped; the control API stores them)
        if rest == ["persistentvolumes"]:
            if m not in ("GET", "HEAD"):
                return self.method_not_allowed()
            with st.cond:
                items = [copy.deepcopy(v) for v in st.pvs.values()]
                rv = str(st.rv)
            if wants_table(accept):
                return self.reply(200, generic_table(items, rv))
            return self.reply(200, {"kind": "PersistentVolumeList", "apiVersion": "v1",
                                    "metadata": {"resourceVersion": rv}, "items": items})
        if len(rest) == 2 and rest[0] == "persistentvolumes":
            if m not in ("GET", "HEAD"):
                return self.method_not_allowed()
            with st.cond:
                pv = copy.deepcopy(st.pvs.get(rest[1]))
            if pv is None:
                return self.not_found(("persistentvolumes", rest[1]))
            if wants_table(accept):
                return self.reply(200, generic_table([pv], pv["metadata"]["resourceVersion"]))
            return self.reply(200, pv)
        if rest == ["events"]:
            return self.events_list(None) if m in ("GET", "HEAD") else self.method_not_allowed()
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "events":
            ns = rest[1]
            if len(rest) == 3:
                if m in ("GET", "HEAD"):
                    return self.events_list(ns)
                if m == "POST":
                    return self.event_create(ns)
                return self.method_not_allowed()
            if len(rest) == 4:
                name = rest[3]
                if m in ("GET", "HEAD"):
                    with st.cond:
                        ev = st.events.get((ns, name))
                        ev = copy.deepcopy(ev) if ev else None
                    if not ev:
                        return self.not_found(("events", name))
                    if wants_table(accept):
                        return self.reply(200, event_table([ev], ev["metadata"]["resourceVersion"]))
                    return self.reply(200, ev)
                if m == "PATCH":
                    return self.event_patch(ns, name)
                if m == "PUT":
                    return self.event_put(ns, name)
                if m == "DELETE":
                    with st.cond:
                        ev = st.events.pop((ns, name), None)
                        if ev:
                            st.bump()
                    if not ev:
                        return self.not_found(("events", name))
                    return self.reply(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                            "status": "Success",
                                            "details": {"name": name, "kind": "events",
                                                        "uid": get_path(ev, "metadata.uid")}})
                return self.method_not_allowed()
        return self.not_found()

    def ns_obj(self, name):
        return {"kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": name,
                             "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, "ns.%s.fake" % name)),
                             "resourceVersion": "1",
                             "creationTimestamp": self.server.state.node_created,
                             "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    # ---- events ----
    def events_list(self, ns):
        st = self.server.state
        if self.is_watch:
            return self.reply(405, status_obj(405, "fake apiserver: watching events is not "
                                              "supported", "MethodNotAllowed"))
        try:
            terms = parse_field_selector(self.q.get("fieldSelector"), EVENT_FIELDS)
        except ValueError as e:
            return self.reply(400, status_obj(400, str(e)))
        with st.cond:
            items = [copy.deepcopy(e) for (ens, _), e in st.events.items()
                     if (ns is None or ens == ns) and match_fields(e, terms, EVENT_ALIASES)]
            rv = str(st.rv)
        if wants_table(self.headers.get("Accept")):
            return self.reply(200, event_table(items, rv))
        return self.reply(200, {"kind": "EventList", "apiVersion": "v1",
                                "metadata": {"resourceVersion": rv}, "items": items})

    def require_json_object(self):
        if not isinstance(self.body, dict):
            self.reply(400, status_obj(400, "the body of the request was in an unknown format - "
                                       "accepted media types include: application/json, "
                                       "application/yaml, application/vnd.kubernetes.protobuf"))
            return False
        return True

    def check_kind(self, obj):
        k, av = obj.get("kind"), obj.get("apiVersion")
        if (k and k != "Event") or (av and av != "v1"):
            self.reply(400, status_obj(400, "the API version in the data (%s) does not match the "
                                       "expected API version (v1)" % av if av != "v1" else
                                       "Event in version \"v1\" cannot be handled as a %s" % k))
            return False
        return True

    def event_create(self, ns):
        st = self.server.state
        if not self.require_json_object() or not self.check_kind(self.body):
            return
        ev = copy.deepcopy(self.body)
        meta = ev.setdefault("metadata", {})
        if not isinstance(meta, dict):
            return self.reply(400, status_obj(400, "metadata must be an object"))
        if meta.get("namespace") and meta["namespace"] != ns:
            return self.reply(400, status_obj(400, "the namespace of the provided object does not "
                                              "match the namespace sent on the request"))
        meta["namespace"] = ns
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        name = meta.get("name") or ""
        causes = validate_event(ev, ns)
        if causes:
            return self.reply(422, invalid_status("Event", name, causes))
        if meta.get("resourceVersion"):
            return self.reply(500, status_obj(500, "resourceVersion should not be set on objects "
                                              "to be created", "InternalError"))
        ev["kind"], ev["apiVersion"] = "Event", "v1"
        with st.cond:
            if (ns, name) in st.events:
                return self.reply(409, status_obj(409, 'events "%s" already exists' % name,
                                                  "AlreadyExists",
                                                  {"name": name, "kind": "events"}))
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta["resourceVersion"] = str(st.bump())
            meta.pop("managedFields", None)
            st.events[(ns, name)] = ev
            out = copy.deepcopy(ev)
        log.info("event created %s/%s reason=%s count=%s", ns, name, ev.get("reason"),
                 ev.get("count"))
        return self.reply(201, out)

    def event_patch(self, ns, name):
        st = self.server.state
        ct = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ct not in ("application/strategic-merge-patch+json", "application/merge-patch+json"):
            return self.reply(415, status_obj(415, "the body of the request was in an unknown "
                                              "format - accepted media types include: "
                                              "application/json-patch+json, "
                                              "application/merge-patch+json, "
                                              "application/apply-patch+yaml, "
                                              "application/strategic-merge-patch+json",
                                              "UnsupportedMediaType"))
        if not self.require_json_object():
            return
        with st.cond:
            cur = st.events.get((ns, name))
            if cur is None:
                return self.not_found(("events", name))
            if self.stale_resource_version(cur, name):
                return
            new = merge_patch(cur, self.body, ct.startswith("application/strategic"))
            return self.store_update(ns, name, cur, new)

    def node_status_patch(self, name):
        st = self.server.state
        ct = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ct not in ("application/strategic-merge-patch+json", "application/merge-patch+json"):
            return self.reply(415, status_obj(415, "the body of the request was in an unknown "
                                              "format - accepted media types include: "
                                              "application/json-patch+json, "
                                              "application/merge-patch+json, "
                                              "application/apply-patch+yaml, "
                                              "application/strategic-merge-patch+json",
                                              "UnsupportedMediaType"))
        if not self.require_json_object():
            return
        patch = self.body.get("status")
        if patch is not None and not isinstance(patch, dict):
            return self.reply(422, invalid_status("Node", name, [
                cause("FieldValueInvalid", "status", "must be an object")]))
        with st.cond:
            cur = st.node_obj(name)
            new = patch_node_status(cur["status"], patch or {}, ct.startswith("application/strategic"))
            causes = node_condition_causes(new)
            if causes:
                return self.reply(422, invalid_status("Node", name, causes))
            st.node_status[name] = new
            st.node_rv[name] = st.bump()
            out = st.node_obj(name)
        log.info("node %s status patched: %s", name,
                 ["%s=%s" % (c.get("type"), c.get("status")) for c in new.get("conditions") or []])
        return self.reply(200, out)

    def event_put(self, ns, name):
        st = self.server.state
        if not self.require_json_object() or not self.check_kind(self.body):
            return
        with st.cond:
            cur = st.events.get((ns, name))
            if cur is None:
                return self.not_found(("events", name))
            if self.stale_resource_version(cur, name):
                return
            return self.store_update(ns, name, cur, copy.deepcopy(self.body))

    def stale_resource_version(self, cur, name):
        """A write naming an old metadata.resourceVersion gets 409 Conflict, as the real server does."""
        prv = get_path(self.body, "metadata.resourceVersion")
        if not prv or prv == cur["metadata"].get("resourceVersion"):
            return False
        self.reply(409, status_obj(
            409, 'Operation cannot be fulfilled on events "%s": the object has been '
            'modified; please apply your changes to the latest version and try again'
            % name, "Conflict", {"name": name, "kind": "events"}))
        return True

    def store_update(self, ns, name, cur, new):
        st = self.server.state
        meta = new.get("metadata")
        if not isinstance(meta, dict):
            meta = new["metadata"] = {}
        if meta.get("name", name) != name:
            return self.reply(400, status_obj(400, "the name of the object (%s) does not match "
                                              "the name on the URL (%s)" % (meta.get("name"), name)))
        if meta.get("namespace", ns) != ns:
            return self.reply(400, status_obj(400, "the namespace of the provided object does not "
                                              "match the namespace sent on the request"))
        meta["name"], meta["namespace"] = name, ns
        for k in ("uid", "creationTimestamp"):
            meta[k] = cur["metadata"].get(k)
        new["kind"], new["apiVersion"] = "Event", "v1"
        causes = validate_event(new, ns)
        if causes:
            return self.reply(422, invalid_status("Event", name, causes))
        meta["resourceVersion"] = str(st.bump())
        st.events[(ns, name)] = new
        log.info("event updated %s/%s count=%s", ns, name, new.get("count"))
        return self.reply(200, copy.deepcopy(new))

    # ---- pods ----
    def pods_collection(self, ns):
        st = self.server.state
        try:
            terms = parse_field_selector(self.q.get("fieldSelector"), POD_FIELDS)
        except ValueError as e:
            return self.reply(400, status_obj(400, str(e)))
        if ns:
            terms = terms + [("metadata.namespace", "=", ns)]
        if self.is_watch:
            return self.serve_watch(terms)
        rvq = self.q.get("resourceVersion", "")
        if rvq and not rvq.isdigit():
            return self.reply(400, status_obj(400, "invalid resource version: %s" % rvq))
        with st.cond:
            items = [copy.deepcopy(p) for p in st.pods.values() if match_fields(p, terms)]
            rv = str(st.rv)
        if wants_table(self.headers.get("Accept")):
            return self.reply(200, pod_table(items, rv))
        return self.reply(200, {"kind": "PodList", "apiVersion": "v1",
                                "metadata": {"resourceVersion": rv}, "items": items})

    # ---- endpointslices ----
    def slices_collection(self, ns):
        st = self.server.state
        try:
            terms = parse_field_selector(self.q.get("fieldSelector"), {"metadata.name", "metadata.namespace"})
            labels = parse_label_selector(self.q.get("labelSelector"))
        except ValueError as e:
            return self.reply(400, status_obj(400, str(e)))
        if ns:
            terms = terms + [("metadata.namespace", "=", ns)]
        if self.is_watch:
            return self.serve_watch(terms, "endpointslices", labels)
        rvq = self.q.get("resourceVersion", "")
        if rvq and not rvq.isdigit():
            return self.reply(400, status_obj(400, "invalid resource version: %s" % rvq))
        with st.cond:
            items = [copy.deepcopy(o) for o in st.slices.values()
                     if match_fields(o, terms) and match_labels(o, labels)]
            rv = str(st.rv)
        return self.reply(200, {"kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1",
                                "metadata": {"resourceVersion": rv}, "items": items})

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        except (OSError, ValueError) as e:
            raise ClientGone(str(e))

    def send_event(self, typ, obj):
        self.chunk(jdump({"type": typ, "object": obj}) + "\n")

    def end_chunks(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, ValueError) as e:
            raise ClientGone(str(e))

    def client_closed(self):
        """True if the peer closed (or sent something) while we stream."""
        sock = self.connection
        try:
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                return False
            r, _, _ = select.select([sock], [], [], 0)
            if not r:
                return False
            sock.settimeout(0.2)
            try:
                data = sock.recv(1)
            finally:
                sock.settimeout(self.timeout)
            return data == b""
        except ssl.SSLWantReadError:
            return False
        except (OSError, ValueError, socket.timeout):
            return True

    def serve_watch(self, terms, resource="pods", labels=()):
        st = self.server.state
        kind, api_version = (("EndpointSlice", "discovery.k8s.io/v1") if resource == "endpointslices"
                             else ("Pod", "v1"))
        store = st.slices if resource == "endpointslices" else st.pods
        rvq = self.q.get("resourceVersion", "")
        bookmarks = self.q.get("allowWatchBookmarks", "").lower() in ("1", "true")
        try:
            timeout = float(self.q.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        except ValueError:
            return self.reply(400, status_obj(400, "invalid timeoutSeconds"))
        if rvq and not rvq.isdigit():
            return self.reply(400, status_obj(400, "invalid resource version: %s" % rvq))

        def visible(obj):
            return obj is not None and match_fields(obj, terms) and match_labels(obj, labels)

        send_initial = self.q.get("sendInitialEvents", "").lower() in ("1", "true")
        w = Watcher("%s %s" % (self.command, self.path))
        expired = None
        initial = []
        with st.cond:
            cur = st.rv
            if send_initial or rvq in ("", "0"):
                initial = [copy.deepcopy(p) for p in store.values() if visible(p)]
                pos = cur
            else:
                r = int(rvq)
                if r < st.floor:
                    expired = "too old resource version: %d (%d)" % (r, st.floor)
                elif r > cur:
                    expired = "too large resource version: %d, current: %d" % (r, cur)
                pos = r
            st.watchers.add(w)
        try:
            self.log_req(200, expired=bool(expired))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            if expired:
                log.info("watch %s: %s", self.path, expired)
                self.send_event("ERROR", status_obj(410, expired, "Expired"))
                self.end_chunks()
                return
            for p in initial:
                self.send_event("ADDED", p)
            if send_initial and bookmarks:
                self.send_event("BOOKMARK", {"kind": kind, "apiVersion": api_version, "metadata": {
                    "resourceVersion": str(pos),
                    "annotations": {"k8s.io/initial-events-end": "true"}}})
            self.connection.settimeout(30)
            t_end = time.time() + timeout
            bm_every = st.args.bookmark_interval
            next_bm = time.time() + bm_every
            last_probe = time.time()
            while True:
                now = time.time()
                with st.cond:
                    pending = (w.actions or st.stopping or pos < st.floor or
                               (st.history and st.history[-1][0] > pos) or now >= t_end or
                               (bookmarks and now >= next_bm))
                    if not pending:
                        wake = min(t_end, next_bm if bookmarks else t_end, now + 1.0)
                        st.cond.wait(max(0.01, wake - now))
                    actions, w.actions = w.actions, []
                    too_old = pos < st.floor
                    floor = st.floor
                    changes = [h for h in st.history if h[0] > pos] if not too_old else []
                    if changes:
                        last_rv = changes[-1][0]
                        changes = [h for h in changes if h[4] == resource]
                        if not changes:
                            pos = last_rv
                    cur = st.rv
                    stopping = st.stopping
                if not actions and not changes and not too_old and time.time() - last_probe >= 1.0:
                    last_probe = time.time()
                    if self.client_closed():
                        raise ClientGone("client closed watch")
                for a in actions:
                    act = a.get("action")
                    if act == "gone":
                        self.send_event("ERROR", status_obj(
                            410, "too old resource version: %d (%d)" % (pos, floor), "Expired"))
                        self.end_chunks()
                        return
                    if act == "close":
                        sample = None
                        with st.cond:
                            for p in store.values():
                                if visible(p):
                                    sample = copy.deepcopy(p)
                                    break
                        line = jdump({"type": "MODIFIED", "object": sample or {
                            "kind": "Pod", "apiVersion": "v1",
                            "metadata": {"name": "half-written", "namespace": "default",
                                         "resourceVersion": str(cur)}}})
                        self.chunk(line[: max(1, len(line) // 2)])
                        log.info("watch %s: closing abruptly mid-object", self.path)
                        self.close_connection = True
                        hard_close(self.connection)
                        return
                    if act == "garbage":
                        self.chunk('{"type":"MODIFIED","object":{"kind":"Pod",,garbage}}\n')
                if too_old:
                    self.send_event("ERROR", status_obj(
                        410, "too old resource version: %d (%d)" % (pos, floor), "Expired"))
                    self.end_chunks()
                    return
                for rv, typ, old, new, _ in changes:
                    vo, vn = visible(old), visible(new)
                    if typ == "ADDED" and vn:
                        self.send_event("ADDED", new)
                    elif typ == "MODIFIED":
                        if vo and vn:
                            self.send_event("MODIFIED", new)
                        elif vn:
                            self.send_event("ADDED", new)
                        elif vo:
                            self.send_event("DELETED", new)
                    elif typ == "DELETED" and vo:
                        self.send_event("DELETED", new)
                    pos = rv
                now = time.time()
                if stopping or now >= t_end:
                    self.end_chunks()
                    return
                if bookmarks and now >= next_bm:
                    self.send_event("BOOKMARK", {"kind": kind, "apiVersion": api_version,
                                                 "metadata": {"resourceVersion": str(cur)}})
                    pos = max(pos, cur)
                    next_bm = now + bm_every
        finally:
            with st.cond:
                st.watchers.discard(w)
            try:
                self.connection.settimeout(self.timeout)
            except OSError:
                pass


# --------------------------------------------------------------------------
# API listener management (down / up)
# --------------------------------------------------------------------------

class ApiListener:
    """The TLS API listener(s): 127.0.0.1 and, with --ipv6, [::1] on the same port."""

    def __init__(self, state, ssl_ctx, port, ipv6=False):
        self.state = state
        self.ssl_ctx = ssl_ctx
        self.ipv6 = ipv6
        self.lock = threading.Lock()
        self.servers = []
        self.port = port
        self.gen = 0
        for attempt in range(20):
            try:
                self.start()
                return
            except OSError:
                if port != 0 or attempt == 19:   # fixed port: no retry; port 0: the ::1 side
                    raise                        # of a random port was taken, pick another
                self.port = 0

    def start(self):
        servers = []
        try:
            srv = ApiServer(("127.0.0.1", self.port), self.state, self.ssl_ctx)
            servers.append(srv)
            if self.ipv6:
                servers.append(ApiServer6(("::1", srv.server_port), self.state, self.ssl_ctx))
        except OSError:
            for x in servers:
                x.server_close()
            raise
        self.port = servers[0].server_port
        self.servers = servers
        for srv in servers:
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                             daemon=True, name="api-serve").start()
        log.info("API listening on 127.0.0.1:%d%s", self.port,
                 " and [::1]:%d" % self.port if self.ipv6 else "")

    @property
    def server(self):
        return self.servers[0] if self.servers else None

    def stop(self):
        servers, self.servers = self.servers, []
        for srv in servers:
            srv.shutdown()
            srv.server_close()
            srv.drop_all_connections()
        with self.state.cond:
            self.state.cond.notify_all()

    def down(self, seconds):
        with self.lock:
            self.gen += 1
            gen = self.gen
            self.stop()
            with self.state.cond:
                self.state.down_until = time.time() + seconds
            log.info("API down for %.1fs", seconds)

        def up():
            time.sleep(seconds)
            with self.lock:
                if self.gen != gen or self.servers or self.state.stopping:
                    return
                for i in range(50):
                    try:
                        self.start()
                        break
                    except OSError as e:
                        log.warning("re-listen failed: %s", e)
                        time.sleep(0.1)
                with self.state.cond:
                    self.state.down_until = 0.0
        threading.Thread(target=up, daemon=True, name="api-up").start()

    def drop_all(self):
        with self.lock:
            for srv in self.servers:
                srv.drop_all_connections()


# --------------------------------------------------------------------------
# control server
# --------------------------------------------------------------------------

class ApiServer6(ApiServer):
    address_family = socket.AF_INET6


class ControlServer(QuietBindMixin, ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        log.error("control error:\n%s", traceback.format_exc())


class ControlHandler(BaseHandler):
    timeout = 60

    def bad(self, msg, code=400):
        self.send_json(code, {"error": msg})

    def dispatch(self):
        st = self.server.state
        u = urlsplit(self.path)
        path = unquote(u.path).rstrip("/") or "/"
        parts = [x for x in path.split("/") if x]
        m = self.command
        try:
            raw = self.read_body()
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            return self.bad("body is not valid JSON")
        try:
            return self.route(st, m, path, parts, body)
        except Exception:
            log.error("control handler error:\n%s", traceback.format_exc())
            return self.bad(traceback.format_exc(limit=3), 500)

    def route(self, st, m, path, parts, body):
        if path == "/healthz" and m == "GET":
            return self.send_json(200, {"ok": True})
        if path == "/pods":
            if m == "GET":
                with st.cond:
                    return self.send_json(200, list(st.pods.values()))
            if m == "POST" and isinstance(body, list):
                # many pods in one request (a node full of pods), answered with a count
                for pod in body:
                    err = self.pod_check(pod)
                    if err:
                        return self.bad(err)
                for pod in body:
                    self.pod_store(st, pod)
                return self.send_json(200, {"stored": len(body)})
            if m == "POST":
                return self.pod_upsert(st, body)
            if m == "DELETE":
                with st.cond:
                    uids = list(st.pods)
                for uid in uids:
                    self.pod_delete(st, uid)
                return self.send_json(200, {"deleted": len(uids)})
        if len(parts) == 2 and parts[0] == "pods" and m == "DELETE":
            obj = self.pod_delete(st, parts[1])
            if obj is None:
                return self.bad("no pod with uid %s" % parts[1], 404)
            return self.send_json(200, obj)
        if path == "/persistentvolumes":
            if m == "GET":
                with st.cond:
                    return self.send_json(200, list(st.pvs.values()))
            if m == "POST":
                return self.pv_upsert(st, body)
        if len(parts) == 2 and parts[0] == "persistentvolumes" and m == "DELETE":
            with st.cond:
                pv = st.pvs.pop(parts[1], None)
                if pv:
                    st.bump()
            if pv is None:
                return self.bad("no persistentvolume %s" % parts[1], 404)
            return self.send_json(200, pv)
        if path == "/endpointslices":
            if m == "GET":
                with st.cond:
                    return self.send_json(200, list(st.slices.values()))
            if m == "POST":
                return self.slice_upsert(st, body)
        if len(parts) == 3 and parts[0] == "endpointslices" and m == "DELETE":
            obj = self.slice_delete(st, parts[1], parts[2])
            if obj is None:
                return self.bad("no endpointslice %s/%s" % (parts[1], parts[2]), 404)
            return self.send_json(200, obj)
        if path == "/events":
            if m == "GET":
                with st.cond:
                    return self.send_json(200, list(st.events.values()))
            if m == "DELETE":
                with st.cond:
                    n = len(st.events)
                    st.events.clear()
                    st.bump()
                return self.send_json(200, {"deleted": n})
        if len(parts) == 3 and parts[0] == "events" and m == "DELETE":
            with st.cond:
                ev = st.events.pop((parts[1], parts[2]), None)
                if ev:
                    st.bump()
            if not ev:
                return self.bad("no event %s/%s" % (parts[1], parts[2]), 404)
            return self.send_json(200, ev)
        if path == "/requests" and m == "GET":
            with st.cond:
                return self.send_json(200, list(st.requests))
        if path == "/requests" and m == "DELETE":
            with st.cond:
                st.requests.clear()
            return self.send_json(200, {"ok": True})
        if path == "/reset" and m == "POST":
            with st.cond:
                st.events.clear()
                st.requests.clear()
                st.faults.clear()
                st.node_status.clear()
                st.hang_until = 0.0
                st.bump()
            log.info("reset")
            return self.send_json(200, {"ok": True})
        if path == "/fault":
            if m == "POST":
                if not isinstance(body, dict):
                    return self.bad("body must be a JSON object")
                f = {"method": (body.get("method") or None), "path_prefix": body.get("path_prefix"),
                     "status": body.get("status", 500), "retry_after": body.get("retry_after"),
                     "count": int(body.get("count", 1) if body.get("count") is not None else 1),
                     "delay_s": float(body.get("delay_s") or 0), "watch": body.get("watch"),
                     "reason": body.get("reason"), "message": body.get("message")}
                if f["count"] == 0:
                    return self.bad("count must be >0 or -1")
                with st.cond:
                    st.faults.append(f)
                log.info("fault added %s", f)
                return self.send_json(200, f)
            if m == "DELETE":
                with st.cond:
                    st.faults.clear()
                return self.send_json(200, {"ok": True})
            if m == "GET":
                with st.cond:
                    return self.send_json(200, list(st.faults))
        if path == "/hang" and m == "POST":
            secs = float((body or {}).get("seconds", 0))
            with st.cond:
                st.hang_until = time.time() + secs
            log.info("hang for %.1fs", secs)
            return self.send_json(200, {"hang_until": st.hang_until})
        if path == "/down" and m == "POST":
            secs = float((body or {}).get("seconds", 0))
            self.server.api.down(secs)
            return self.send_json(200, {"down_for": secs, "port": self.server.api.port})
        if path == "/watch" and m == "POST":
            act = (body or {}).get("action")
            if act not in ("gone", "close", "garbage"):
                return self.bad("action must be gone, close or garbage")
            with st.cond:
                ws = list(st.watchers)
                for w in ws:
                    w.actions.append({"action": act})
                if act == "gone":
                    st.history.clear()
                    st.floor = st.bump()
                st.cond.notify_all()
            log.info("watch action %s on %d watchers", act, len(ws))
            return self.send_json(200, {"watchers": len(ws)})
        if path == "/watchers" and m == "GET":
            with st.cond:
                return self.send_json(200, [w.desc for w in st.watchers])
        if path == "/nodes" and m == "GET":
            with st.cond:
                return self.send_json(200, [st.node_obj(n) for n in st.node_names()])
        if len(parts) == 3 and parts[0] == "nodes" and parts[2] == "conditions" and m == "GET":
            with st.cond:
                if parts[1] not in st.node_names():
                    return self.bad("no node %s" % parts[1], 404)
                return self.send_json(200, st.node_obj(parts[1])["status"].get("conditions") or [])
        if path == "/rotate-token" and m == "POST":
            keep_old = bool((body or {}).get("keep_old"))
            tok = (body or {}).get("token") or secrets.token_urlsafe(32)
            keep = sorted(st.valid_tokens()) if keep_old else []
            write_token_files(st.dir, tok, [k for k in keep if k != tok])
            write_kubeconfigs(st.dir, self.server.api.port, tok, st.args.ipv6)
            log.info("token rotated (keep_old=%s)", keep_old)
            return self.send_json(200, {"token": tok})
        if path == "/state" and m == "GET":
            with st.cond:
                return self.send_json(200, {
                    "rv": st.rv, "floor": st.floor, "pods": len(st.pods),
                    "events": len(st.events), "requests": len(st.requests),
                    "faults": st.faults, "hang_until": st.hang_until,
                    "down_until": st.down_until, "watchers": len(st.watchers),
                    "api_port": self.server.api.port, "node": st.node,
                    "node_uid": st.node_uid(st.node)})
        if path == "/shutdown" and m == "POST":
            self.send_json(200, {"ok": True})
            self.server.stop_event.set()
            return
        return self.bad("no such control endpoint: %s %s" % (m, path), 404)

    def pod_check(self, pod):
        if not isinstance(pod, dict):
            return "body must be a Pod object"
        for f in ("metadata.uid", "metadata.namespace", "metadata.name", "spec.nodeName"):
            if not get_path(pod, f):
                return "pod needs %s" % f
        cs = get_path(pod, "status.containerStatuses")
        if cs is not None:
            if not isinstance(cs, list) or not all(isinstance(c, dict) and c.get("name") for c in cs):
                return "status.containerStatuses must be a list of {name, containerID}"
        return None

    def pod_upsert(self, st, pod):
        err = self.pod_check(pod)
        if err:
            return self.bad(err)
        typ, pod = self.pod_store(st, pod)
        return self.send_json(200, {"type": typ, "object": pod})

    def pod_store(self, st, pod):
        pod = copy.deepcopy(pod)
        pod["kind"], pod["apiVersion"] = "Pod", "v1"
        meta = pod["metadata"]
        uid = meta["uid"]
        with st.cond:
            old = st.pods.get(uid)
            meta.setdefault("creationTimestamp",
                            old["metadata"].get("creationTimestamp") if old else now_rfc3339())
            meta["resourceVersion"] = str(st.bump())
            st.pods[uid] = pod
            typ = "MODIFIED" if old else "ADDED"
            st.record_pod_change(typ, old, copy.deepcopy(pod))
        log.info("pod %s %s/%s uid=%s node=%s rv=%s", typ, meta["namespace"], meta["name"], uid,
                 pod["spec"]["nodeName"], meta["resourceVersion"])
        return typ, pod

    def slice_upsert(self, st, obj):
        if not isinstance(obj, dict) or not get_path(obj, "metadata.namespace") or \
                not get_path(obj, "metadata.name"):
            return self.bad("body must be an EndpointSlice with metadata.namespace and metadata.name")
        obj = copy.deepcopy(obj)
        obj["kind"], obj["apiVersion"] = "EndpointSlice", "discovery.k8s.io/v1"
        obj.setdefault("addressType", "IPv4")
        obj.setdefault("endpoints", [])
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        with st.cond:
            old = st.slices.get(key)
            meta.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
            meta.setdefault("creationTimestamp",
                            old["metadata"].get("creationTimestamp") if old else now_rfc3339())
            meta["resourceVersion"] = str(st.bump())
            st.slices[key] = obj
            typ = "MODIFIED" if old else "ADDED"
            st.record_pod_change(typ, old, copy.deepcopy(obj), "endpointslices")
        log.info("endpointslice %s %s/%s rv=%s", typ, key[0], key[1], meta["resourceVersion"])
        return self.send_json(200, {"type": typ, "object": obj})

    def pv_upsert(self, st, obj):
        # no watch of PVs (ksight GETs them): stored, not recorded in the change history
        if not isinstance(obj, dict) or not get_path(obj, "metadata.name"):
            return self.bad("body must be a PersistentVolume with metadata.name")
        obj = copy.deepcopy(obj)
        obj["kind"], obj["apiVersion"] = "PersistentVolume", "v1"
        obj.setdefault("spec", {})
        meta = obj["metadata"]
        meta.pop("namespace", None)
        with st.cond:
            old = st.pvs.get(meta["name"])
            meta.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
            meta.setdefault("creationTimestamp",
                            old["metadata"].get("creationTimestamp") if old else now_rfc3339())
            meta["resourceVersion"] = str(st.bump())
            st.pvs[meta["name"]] = obj
            typ = "MODIFIED" if old else "ADDED"
        log.info("persistentvolume %s %s rv=%s", typ, meta["name"], meta["resourceVersion"])
        return self.send_json(200, {"type": typ, "object": obj})

    def slice_delete(self, st, ns, name):
        with st.cond:
            old = st.slices.pop((ns, name), None)
            if old is None:
                return None
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(st.bump())
            st.record_pod_change("DELETED", old, gone, "endpointslices")
        log.info("endpointslice DELETED %s/%s", ns, name)
        return gone

    def pod_delete(self, st, uid):
        with st.cond:
            old = st.pods.pop(uid, None)
            if old is None:
                return None
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(st.bump())
            st.record_pod_change("DELETED", old, gone)
        log.info("pod DELETED uid=%s", uid)
        return gone


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--node", default="node-1")
    ap.add_argument("--lifetime", type=float, default=900)
    ap.add_argument("--bookmark-interval", type=float, default=3.0)
    ap.add_argument("--server-version", default="v1.32.4")
    ap.add_argument("--ipv6", action="store_true",
                    help="also listen on [::1] (same port) and write DIR/kubeconfig-ipv6")
    args = ap.parse_args()
    args.dir = os.path.abspath(args.dir)
    os.makedirs(os.path.join(args.dir, "sa"), exist_ok=True)
    ports_file = os.path.join(args.dir, "ports.json")
    try:
        os.unlink(ports_file)
    except FileNotFoundError:
        pass

    logging.basicConfig(filename=os.path.join(args.dir, "server.log"), level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    log.info("starting: %s", vars(args))

    make_certs(args.dir)
    token = secrets.token_urlsafe(32)
    write_token_files(args.dir, token)
    with open(os.path.join(args.dir, "ca.crt"), "rb") as f:
        write_atomic(os.path.join(args.dir, "sa", "ca.crt"), f.read())
    write_atomic(os.path.join(args.dir, "sa", "namespace"), "ksight")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(os.path.join(args.dir, "server.crt"), os.path.join(args.dir, "server.key"))
    ctx.load_verify_locations(os.path.join(args.dir, "ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])

    state = State(args)
    stop_event = threading.Event()

    control = ControlServer(("127.0.0.1", args.control_port), ControlHandler)
    control.state = state
    control.stop_event = stop_event
    api = ApiListener(state, ctx, args.port, args.ipv6)
    control.api = api
    threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                     name="control-serve").start()
    write_kubeconfigs(args.dir, api.port, token, args.ipv6)
    write_atomic(os.path.join(args.dir, "env"),
                 "KUBERNETES_SERVICE_HOST=127.0.0.1\nKUBERNETES_SERVICE_PORT=%d\n" % api.port)
    write_atomic(ports_file, jdump({"api": api.port, "control": control.server_port}) + "\n")
    log.info("ready: api=%d control=%d", api.port, control.server_port)

    def on_signal(signum, frame):
        stop_event.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop_event.wait(args.lifetime)
    log.info("stopping (lifetime %.0fs or signal)", args.lifetime)
    with state.cond:
        state.stopping = True
        state.cond.notify_all()
    try:
        os.unlink(ports_file)
    except OSError:
        pass
    try:
        with api.lock:
            api.stop()
        control.shutdown()
        control.server_close()
    except Exception:
        log.error("shutdown error:\n%s", traceback.format_exc())
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()
