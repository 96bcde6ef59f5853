#!/usr/bin/env python3
"""Lint ksight's monitoring/ files (python3 standard library only).

  tests/monitoring/lint.py [--root DIR] [--promtool PATH]

Checks, each printed as "ok NAME: ..." or "not ok NAME: ...":
  alerts      the alert style: Ksight<Name>, severity critical|warning|info, a static
              summary, a templated description, runbook_url to an anchor of
              docs/runbook.md that exists (and a section for every alert), the alerts
              the project promises, a promtool unit test firing and one not firing
  rules       recording rules are named level:metric:operations and used by an
              alert, a dashboard or another rule
  metrics     every ksight_* metric the files query is one ksight exposes
  dashboards  unique UIDs and titles, the variables, a datasource, unit and description
              on every panel, ranges only $__rate_interval or $__range, counters only
              under rate()/increase()/irate(), every query parsed by promtool with the
              variables substituted
  kubernetes  the PodMonitor and the PrometheusRule decode as those objects, select the
              DaemonSet of deploy/, and the PrometheusRule holds the plain files' groups

YAML is read by a small parser of the block subset these files use (mappings,
sequences, plain and quoted scalars, [flow] sequences of scalars, | and >
block scalars); anything else is an error, so the files stay in that subset.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

# ---- a YAML subset ----


class YamlError(Exception):
    pass


def _scalar(text, where):
    t = text.strip()
    if t.startswith('"'):
        if not t.endswith('"') or len(t) < 2:
            raise YamlError(f"{where}: unterminated double-quoted string")
        try:
            return json.loads(t)
        except ValueError as e:
            raise YamlError(f"{where}: double-quoted string: {e}")
    if t.startswith("'"):
        if not t.endswith("'") or len(t) < 2:
            raise YamlError(f"{where}: unterminated single-quoted string")
        return t[1:-1].replace("''", "'")
    if t.startswith("[") :
        if not t.endswith("]"):
            raise YamlError(f"{where}: flow sequence must end on its line")
        inner = t[1:-1].strip()
        return [] if not inner else [_scalar(x, where) for x in _split_flow(inner, where)]
    if t.startswith("{"):
        if not t.endswith("}"):
            raise YamlError(f"{where}: flow mapping must end on its line")
        out = {}
        inner = t[1:-1].strip()
        for item in (_split_flow(inner, where) if inner else []):
            k, sep, v = item.strip().partition(": ")
            if not sep:
                raise YamlError(f"{where}: flow mapping item {item.strip()!r} is not 'key: value'")
            key = _scalar(k, where)
            if key in out:
                raise YamlError(f"{where}: duplicate key {key!r}")
            out[key] = _scalar(v, where)
        return out
    if t.startswith(("&", "*", "!", "%", "@", "`", "|", ">")):
        raise YamlError(f"{where}: unsupported YAML: {t[:20]}")
    if t in ("true", "false"):
        return t == "true"
    if t in ("null", "~", ""):
        return None
    if re.fullmatch(r"-?[0-9]+", t):
        return int(t)
    if re.fullmatch(r"-?[0-9]+\.[0-9]+", t):
        return float(t)
    if ": " in t or t.endswith(":") or " #" in t:
        raise YamlError(f"{where}: plain scalar with ': ' or ' #': quote it")
    return t


def _split_flow(inner, where):
    items, cur, q = [], "", None
    for c in inner:
        if q:
            cur += c
            if c == q:
                q = None
        elif c in "\"'":
            q = c
            cur += c
        elif c == ",":
            items.append(cur)
            cur = ""
        elif c in "[]{}":
            raise YamlError(f"{where}: nested flow collections are not supported")
        else:
            cur += c
    if q:
        raise YamlError(f"{where}: unterminated quote in flow sequence")
    items.append(cur)
    return items


def _strip_comment(s):
    """Drop a ' #' comment outside quotes."""
    q = None
    for i, c in enumerate(s):
        if q:
            if c == q:
                q = None
        elif c in "\"'" and (i == 0 or s[i - 1] in " [,:"):
            q = c
        elif c == "#" and (i == 0 or s[i - 1] == " "):
            return s[:i].rstrip()
    return s.rstrip()


class _Parser:
    def __init__(self, text, name):
        self.name = name
        self.lines = text.split("\n")
        self.i = 0
        if "\t" in text:
            for n, line in enumerate(self.lines):
                if "\t" in line[: len(line) - len(line.lstrip())]:
                    raise YamlError(f"{name}:{n + 1}: tab in indentation")

    def where(self):
        return f"{self.name}:{self.i + 1}"

    def peek(self):
        """(indent, content) of the next line that is not blank or a comment, or None."""
        while self.i < len(self.lines):
            raw = self.lines[self.i]
            s = raw.strip()
            if s and not s.startswith("#") and s != "---":
                return len(raw) - len(raw.lstrip(" ")), _strip_comment(raw.strip())
            self.i += 1
        return None

    def node(self, indent):
        p = self.peek()
        if p is None or p[0] < indent:
            return None
        ind, c = p
        if c == "-" or c.startswith("- "):
            return self.seq(ind)
        return self.mapping(ind)

    def seq(self, ind):
        out = []
        while True:
            p = self.peek()
            if p is None or p[0] != ind or not (p[1] == "-" or p[1].startswith("- ")):
                if p is not None and p[0] > ind:
                    raise YamlError(f"{self.where()}: bad indentation")
                return out
            rest = p[1][1:].lstrip(" ")
            if not rest:
                self.i += 1
                out.append(self.node(ind + 1))
                continue
            if self._is_key(rest):
                # "- key: value": a mapping whose first key sits after the dash
                col = ind + (len(p[1]) - len(rest))
                self.lines[self.i] = " " * col + rest
                out.append(self.mapping(col))
            else:
                out.append(_scalar(rest, self.where()))
                self.i += 1

    @staticmethod
    def _is_key(s):
        if s.startswith(("'", '"')):
            q = s[0]
            end = s.find(q, 1)
            return end > 0 and s[end + 1:end + 2] == ":" and (len(s) == end + 2 or s[end + 2] == " ")
        if s.startswith("["):
            return False
        m = re.match(r"[^\s:][^:]*?:(\s|$)", s)
        return bool(m)

    def mapping(self, ind):
        out = {}
        while True:
            p = self.peek()
            if p is None or p[0] < ind:
                return out
            if p[0] > ind:
                raise YamlError(f"{self.where()}: bad indentation")
            c = p[1]
            if c == "-" or c.startswith("- "):
                return out
            if not self._is_key(c):
                raise YamlError(f"{self.where()}: expected 'key: value', got {c[:40]!r}")
            if c[0] in "'\"":
                end = c.find(c[0], 1)
                key = _scalar(c[:end + 1], self.where())
                val = c[end + 2:].strip()
            else:
                k, _, val = c.partition(":")
                key = k.strip()
                val = val.strip()
            if key in out:
                raise YamlError(f"{self.where()}: duplicate key {key!r}")
            self.i += 1
            if val in ("|", "|-", "|+", ">", ">-", ">+"):
                out[key] = self.block(ind, val)
            elif val == "":
                nxt = self.peek()
                if nxt is not None and nxt[0] == ind and (nxt[1] == "-" or nxt[1].startswith("- ")):
                    out[key] = self.seq(ind)
                else:
                    out[key] = self.node(ind + 1)
            else:
                out[key] = _scalar(val, f"{self.name}:{self.i}")

    def block(self, parent, style):
        raw = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip() and len(line) - len(line.lstrip(" ")) <= parent:
                break
            raw.append(line)
            self.i += 1
        while raw and not raw[-1].strip():
            raw.pop()
        if not raw:
            return ""
        bi = min(len(x) - len(x.lstrip(" ")) for x in raw if x.strip())
        body = [x[bi:] if x.strip() else "" for x in raw]
        if style[0] == "|":
            text = "\n".join(body)
        else:
            text, prev_blank = "", True
            for x in body:
                if not x:
                    text += "\n"
                    prev_blank = True
                elif x.startswith(" "):
                    raise YamlError(f"{self.where()}: more-indented lines in a folded scalar")
                else:
                    text += ("" if prev_blank else " ") + x
                    prev_blank = False
        return text if style.endswith("-") else text + "\n"


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    p = _Parser(text, path)
    doc = p.node(0)
    if p.peek() is not None:
        raise YamlError(f"{p.where()}: unexpected content")
    return doc


# ---- reporting ----

FAILED = []


def report(name, problems, what):
    if problems:
        FAILED.append(name)
        print(f"not ok {name}: {what}")
        for pr in problems:
            print(f"#   {pr}")
    else:
        print(f"ok {name}: {what}")


# ---- PromQL helpers ----

PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or",
    "unless", "inf", "nan", "le",
}
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile",
}
COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
RATE_FUNCS = {"rate", "increase", "irate"}


def scan(expr):
    """Yield (kind, text, enclosing_function) for identifiers and ranges of a PromQL
    expression: kind "metric", "func", "range". Strings and label matchers are skipped."""
    stack = []
    pending = None  # an aggregation whose "by (...)" comes before its argument
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" else 1
            i = j + 1
            continue
        if c == "{":
            depth_q, j = None, i + 1
            while j < n:
                if depth_q:
                    if expr[j] == "\\":
                        j += 1
                    elif expr[j] == depth_q:
                        depth_q = None
                elif expr[j] in "\"'`":
                    depth_q = expr[j]
                elif expr[j] == "}":
                    break
                j += 1
            i = j + 1
            continue
        if c == "[":
            j = expr.index("]", i)
            yield "range", expr[i + 1:j], stack[-1] if stack else None
            i = j + 1
            continue
        if c == "(":
            if pending:
                stack.append(pending)
                yield "func", pending, stack[-2] if len(stack) > 1 else None
                pending = None
            else:
                stack.append("(")
            i += 1
            continue
        if c == ")":
            if stack:
                stack.pop()
            i += 1
            continue
        m = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", expr[i:])
        if m and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] in "_.$")):
            word = m.group(0)
            j = i + len(word)
            k = j
            while k < n and expr[k] == " ":
                k += 1
            if word in AGGREGATIONS and re.match(r"(by|without)\s*\(", expr[k:]):
                pending = word
                i = j
                continue
            if k < n and expr[k] == "(":
                if word in ("by", "without", "on", "ignoring", "group_left", "group_right"):
                    stack.append("labels")
                else:
                    stack.append(word)
                    yield "func", word, stack[-2] if len(stack) > 1 else None
                i = k + 1
                continue
            if word.lower() not in PROMQL_KEYWORDS and not (stack and stack[-1] == "labels"):
                # the function a selector is an argument of: the innermost call
                fn = next((s for s in reversed(stack) if s not in ("(",)), None)
                yield "metric", word, fn if stack and stack[-1] != "(" else None
            i = j
            continue
        if m:
            i += len(m.group(0))
            continue
        i += 1


def metric_names(expr):
    return {t for k, t, _ in scan(expr) if k == "metric"}


def substitute(expr, values):
    def rep(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(name)
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", rep, expr)


def promtool_parse(promtool, exprs):
    """Parse each (label, expr) with `promtool check rules` as recording rules of a
    temporary file: a list of problems."""
    if not exprs:
        return []
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "queries.yaml")
        with open(path, "w") as f:
            f.write("groups:\n")
            for n, (label, e) in enumerate(exprs):
                f.write(f"  - name: {json.dumps(label)}\n    rules:\n")
                f.write(f"      - record: lint:query_{n}:parse\n        expr: {json.dumps(e)}\n")
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        if r.returncode == 0:
            return []
        return [f"promtool: {line.strip()}" for line in (r.stdout + r.stderr).splitlines()
                if line.strip() and "Checking" not in line]


# ---- checks ----

REQUIRED_ALERTS = {
    "KsightContainerOOMKilled": None,
    "KsightFilesystemErrors": "critical",
    "KsightPacketDropsHigh": None,
    "KsightApiserverClientLatencyHigh": None,
    "KsightApiserverConnectFailures": None,
    "KsightSignalNotRunning": None,
    "KsightProbeNotAttached": None,
    "KsightRingBufferLost": None,
    "KsightKubernetesEventsFailed": None,
    "KsightTargetDown": None,
}


def github_anchor(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def runbook_anchors(root):
    path = os.path.join(root, "docs/runbook.md")
    anchors = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"(#{1,6}) (.+)", line)
            if m:
                anchors[github_anchor(m.group(2))] = (len(m.group(1)), m.group(2).strip())
    return anchors


def all_rules(doc, path, problems):
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
        problems.append(f"{path}: no groups")
        return []
    out = []
    for g in doc["groups"]:
        for r in g.get("rules") or []:
            out.append((g.get("name"), r))
    return out


def check_alerts(root, alerts_doc, rules_doc):
    problems = []
    path = "monitoring/prometheus/ksight-alerts.yaml"
    anchors = runbook_anchors(root)
    alerts = {}
    for group, r in all_rules(alerts_doc, path, problems):
        name = r.get("alert")
        if not name:
            problems.append(f"{path}: group {group}: a rule without alert (recording rules go to ksight-rules.yaml)")
            continue
        if name in alerts:
            problems.append(f"{name}: defined twice")
        alerts[name] = r
        if not re.fullmatch(r"Ksight[A-Z][A-Za-z0-9]+", name):
            problems.append(f"{name}: not Ksight<UpperCamelCase>")
        sev = (r.get("labels") or {}).get("severity")
        if sev not in ("critical", "warning", "info"):
            problems.append(f"{name}: severity {sev!r} is not critical, warning or info")
        want = REQUIRED_ALERTS.get(name)
        if want and sev != want:
            problems.append(f"{name}: severity {sev}, must be {want}")
        ann = r.get("annotations") or {}
        for key in ("summary", "description", "runbook_url"):
            if not isinstance(ann.get(key), str) or not ann[key].strip():
                problems.append(f"{name}: no {key} annotation")
        extra = set(ann) - {"summary", "description", "runbook_url"}
        if extra:
            problems.append(f"{name}: unexpected annotations {sorted(extra)}")
        s = ann.get("summary") or ""
        if "{{" in s or "$" in s:
            problems.append(f"{name}: summary must be static (no template): {s!r}")
        if s and not s.endswith("."):
            problems.append(f"{name}: summary is a sentence: end it with a period")
        d = ann.get("description") or ""
        if d and "{{" not in d:
            problems.append(f"{name}: description must be templated ({{{{ $labels... }}}}, {{{{ $value }}}})")
        if d and not re.search(r"\$labels\.node\b", d):
            problems.append(f"{name}: description must name the node ($labels.node)")
        url = ann.get("runbook_url") or ""
        m = re.fullmatch(r"https://\S+/docs/runbook\.md#([a-z0-9-]+)", url)
        if not m:
            problems.append(f"{name}: runbook_url {url!r} is not .../docs/runbook.md#anchor")
        else:
            if m.group(1) != name.lower():
                problems.append(f"{name}: runbook anchor #{m.group(1)} is not #{name.lower()}")
            if m.group(1) not in anchors:
                problems.append(f"{name}: docs/runbook.md has no section #{m.group(1)}")
            elif anchors[m.group(1)][0] != 2:
                problems.append(f"{name}: #{m.group(1)} must be a '## ' section")
        if "for" in r and not re.fullmatch(r"[0-9]+[smh]", str(r["for"])):
            problems.append(f"{name}: for {r['for']!r} is not a duration")
        for k in r:
            if k not in ("alert", "expr", "for", "labels", "annotations"):
                problems.append(f"{name}: unexpected key {k!r}")
    for name in REQUIRED_ALERTS:
        if name not in alerts:
            problems.append(f"missing alert {name}")
    for a, (level, title) in anchors.items():
        if level == 2 and title.startswith("Ksight") and title not in alerts:
            problems.append(f"docs/runbook.md: section {title} has no alert")

    # a promtool unit test firing and one not firing, for every alert
    fired, quiet = set(), set()
    tests = sorted(glob.glob(os.path.join(root, "tests/monitoring/*.test.yaml")))
    for t in tests:
        doc = load_yaml(t)
        rf = [os.path.normpath(os.path.join(os.path.dirname(t), x)) for x in doc.get("rule_files") or []]
        if os.path.join(root, "monitoring/prometheus/ksight-alerts.yaml") not in rf:
            problems.append(f"{os.path.relpath(t, root)}: does not load ksight-alerts.yaml")
        for case in doc.get("tests") or []:
            for at in case.get("alert_rule_test") or []:
                (fired if at.get("exp_alerts") else quiet).add(at.get("alertname"))
    for name in alerts:
        if name not in fired:
            problems.append(f"{name}: no promtool unit test where it fires")
        if name not in quiet:
            problems.append(f"{name}: no promtool unit test where it does not fire")
    report("alerts", problems, f"{len(alerts)} alerts: style, runbook sections, unit tests firing and not "
           f"({len(tests)} test files)")
    return alerts


def check_rules(root, alerts_doc, rules_doc, dashboards):
    problems = []
    path = "monitoring/prometheus/ksight-rules.yaml"
    records = {}
    for group, r in all_rules(rules_doc, path, problems):
        name = r.get("record")
        if not name:
            problems.append(f"{path}: group {group}: a rule without record (alerts go to ksight-alerts.yaml)")
            continue
        if not re.fullmatch(r"[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*", name):
            problems.append(f"{name}: not level:metric:operations")
        elif "ksight_" not in name.split(":")[1]:
            problems.append(f"{name}: the metric part must name the ksight metric")
        records[name] = r.get("expr", "")
    used = set()
    for _, r in all_rules(alerts_doc, "alerts", problems):
        used |= metric_names(r.get("expr", ""))
    for name, expr in records.items():
        used |= metric_names(expr) - {name}
    for d in dashboards.values():
        for _, e in panel_exprs(d):
            used |= metric_names(e)
    for name in records:
        if name not in used:
            problems.append(f"{name}: used by no alert, dashboard or rule")
    report("rules", problems, f"{len(records)} recording rules: level:metric:operations, each used")
    return records


# metrics a dashboard or rule may name before the code exposes them (none now)
PLANNED_METRICS: set = set()


def exposed_metrics(root):
    names = set()
    for path in glob.glob(os.path.join(root, "user/**/*.[ch]"), recursive=True):
        with open(path, encoding="utf-8", errors="replace") as f:
            names |= set(re.findall(r'"((?:ksight|process)_[a-z0-9_]+)"', f.read()))
    # the k8s families are registered with a prefix
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("| `ksight_"):
                names |= set(re.findall(r"`(ksight_[a-z0-9_]+)`", line.split("|")[1]))
    return names


def base_metric(name):
    for suf in ("_bucket", "_count", "_sum"):
        if name.endswith(suf):
            return name[: -len(suf)]
    return name


def check_metrics(root, alerts_doc, rules_doc, dashboards, records):
    problems = []
    known = exposed_metrics(root) | PLANNED_METRICS | {"up", "ALERTS", "time", "vector"}
    sources = []
    for p, doc in (("alerts", alerts_doc), ("rules", rules_doc)):
        for _, r in all_rules(doc, p, problems):
            sources.append((f"{p}: {r.get('alert') or r.get('record')}", r.get("expr", "")))
    for uid, d in dashboards.items():
        for where, e in panel_exprs(d):
            sources.append((f"{uid}: {where}", e))
    n = 0
    for where, e in sources:
        for m in metric_names(e):
            n += 1
            if ":" in m:
                if m not in records:
                    problems.append(f"{where}: recording rule {m} does not exist")
            elif m not in known and base_metric(m) not in known:
                problems.append(f"{where}: {m} is not a metric ksight exposes")
    report("metrics", problems, f"{n} metric references: every one exposed by ksight (or a recording rule)")


def panel_queries(d):
    """(where, kind, expr) of every query of a dashboard: panel targets and variables."""
    out = []
    for p in d.get("panels", []):
        for sub in [p] + p.get("panels", []):
            for t in sub.get("targets", []) or []:
                out.append((f"panel {sub.get('id')} {sub.get('title')!r} {t.get('refId')}", "target", t.get("expr", "")))
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            out.append((f"variable {v.get('name')}", "variable", q or ""))
    return out


def panel_exprs(d):
    """(where, expr) of every PromQL expression of a dashboard (a variable's selector)."""
    out = []
    for where, kind, e in panel_queries(d):
        if kind == "variable":
            e = variable_selector(e)
            if e is None:
                continue
        out.append((where, e))
    return out


SUBST = {
    "__rate_interval": "1m", "__interval": "30s", "__range": "1h", "__range_s": "3600",
    "datasource": "prometheus", "quantile": "0.99",
    "job": "ksight", "node": ".*", "namespace": ".*", "pod": ".*",
}


def variable_selector(q):
    """The PromQL inside a label_values()/query_result() variable query."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q)
    if m:
        return m.group(1)
    m = re.fullmatch(r"\s*query_result\((.*)\)\s*", q)
    return m.group(1) if m else None


def check_dashboards(root, promtool):
    problems = []
    files = sorted(glob.glob(os.path.join(root, "monitoring/grafana/*.json")))
    dashboards, uids, titles = {}, {}, {}
    queries = []
    npanels = 0
    if len(files) < 2:
        problems.append("monitoring/grafana/: the node health and API server clients dashboards")
    for path in files:
        rel = os.path.relpath(path, root)
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except ValueError as e:
            problems.append(f"{rel}: not JSON: {e}")
            continue
        uid = d.get("uid")
        if not uid or not re.fullmatch(r"[a-z0-9-]{1,40}", uid):
            problems.append(f"{rel}: uid {uid!r} must be fixed, [a-z0-9-]{{1,40}}")
        if uid in uids:
            problems.append(f"{rel}: uid {uid} also in {uids[uid]}")
        uids[uid] = rel
        if d.get("title") in titles:
            problems.append(f"{rel}: title also in {titles[d.get('title')]}")
        titles[d.get("title")] = rel
        if "id" in d and d["id"] is not None:
            problems.append(f"{rel}: an exported dashboard has no id (it is the Grafana instance's)")
        if not d.get("description"):
            problems.append(f"{rel}: no description")
        dashboards[uid] = d
        variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
        for want in ("datasource", "job", "node", "namespace", "pod"):
            if want not in variables:
                problems.append(f"{rel}: no ${want} variable")
        if variables.get("datasource", {}).get("type") != "datasource":
            problems.append(f"{rel}: $datasource must be a datasource variable")
        for name, v in variables.items():
            if v.get("type") == "query":
                ds = v.get("datasource") or {}
                if ds.get("uid") != "${datasource}":
                    problems.append(f"{rel}: variable {name} does not use ${{datasource}}")
        ids = set()
        for p in d.get("panels", []):
            for sub in [p] + p.get("panels", []):
                pid = sub.get("id")
                if pid in ids:
                    problems.append(f"{rel}: panel id {pid} twice")
                ids.add(pid)
                if sub.get("type") == "row":
                    continue
                npanels += 1
                w = f"{rel}: panel {pid} {sub.get('title')!r}"
                if not (sub.get("description") or "").strip():
                    problems.append(f"{w}: no description")
                unit = ((sub.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
                if not unit:
                    problems.append(f"{w}: no unit")
                if (sub.get("datasource") or {}).get("uid") != "${datasource}":
                    problems.append(f"{w}: datasource is not ${{datasource}}")
                if not sub.get("targets"):
                    problems.append(f"{w}: no query")
                for t in sub.get("targets") or []:
                    if (t.get("datasource") or {}).get("uid") != "${datasource}":
                        problems.append(f"{w} {t.get('refId')}: datasource is not ${{datasource}}")
        for where, kind, e in panel_queries(d):
            w = f"{rel}: {where}"
            if kind == "variable":
                sel = variable_selector(e)
                if sel is None:
                    problems.append(f"{w}: not label_values(...)/query_result(...)")
                    continue
                e = sel
            if not e.strip():
                problems.append(f"{w}: empty query")
                continue
            for k, text, fn in scan(e):
                if k == "range" and text not in ("$__rate_interval", "$__range"):
                    problems.append(f"{w}: range [{text}]: use [$__rate_interval] (or [$__range] for totals)")
                if k == "range" and text == "$__range" and fn != "increase":
                    problems.append(f"{w}: [$__range] only under increase()")
                # a variable only lists label values: any series will do
                if k == "metric" and kind == "target" and text.endswith(COUNTER_SUFFIXES) and fn not in RATE_FUNCS:
                    problems.append(f"{w}: counter {text} outside rate()/increase()")
            if kind == "target" and "job=~\"$job\"" not in e and "ALERTS" not in e:
                problems.append(f"{w}: does not select job=~\"$job\"")
            try:
                queries.append((w, substitute(e, SUBST)))
            except KeyError as k:
                problems.append(f"{w}: unknown variable ${k.args[0]}")
    problems += promtool_parse(promtool, queries)
    report("dashboards", problems, f"{len(dashboards)} dashboards, {npanels} panels, {len(queries)} queries "
           "parsed by promtool with variables substituted")
    return dashboards


def check_kubernetes(root, alerts_doc, rules_doc):
    problems = []
    ds = load_yaml(os.path.join(root, "deploy/daemonset.yaml"))
    tmpl = ds["spec"]["template"]
    pod_labels = tmpl["metadata"]["labels"]
    ports = {p.get("name") for c in tmpl["spec"]["containers"] for p in c.get("ports", [])}
    ds_ns = ds["metadata"]["namespace"]

    def meta(obj, rel):
        if obj.get("apiVersion") != "monitoring.coreos.com/v1":
            problems.append(f"{rel}: apiVersion {obj.get('apiVersion')!r}, want monitoring.coreos.com/v1")
        m = obj.get("metadata") or {}
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", str(m.get("name", ""))):
            problems.append(f"{rel}: metadata.name {m.get('name')!r} is not a DNS label")
        if not m.get("namespace"):
            problems.append(f"{rel}: no metadata.namespace")
        for k, v in (m.get("labels") or {}).items():
            if not isinstance(v, str):
                problems.append(f"{rel}: label {k} is not a string")
        for k in obj:
            if k not in ("apiVersion", "kind", "metadata", "spec"):
                problems.append(f"{rel}: unknown top-level field {k}")
        if not isinstance(obj.get("spec"), dict):
            problems.append(f"{rel}: no spec")
            return False
        return True

    files = sorted(glob.glob(os.path.join(root, "monitoring/kubernetes/*.yaml")))
    kinds = {}
    for path in files:
        rel = os.path.relpath(path, root)
        obj = load_yaml(path)
        kind = obj.get("kind")
        kinds[kind] = rel
        if kind == "PodMonitor":
            if not meta(obj, rel):
                continue
            spec = obj["spec"]
            allowed = {"jobLabel", "podTargetLabels", "podMetricsEndpoints", "selector", "namespaceSelector",
                       "sampleLimit", "targetLimit", "labelLimit", "labelNameLengthLimit",
                       "labelValueLengthLimit", "attachMetadata"}
            for k in set(spec) - allowed:
                problems.append(f"{rel}: spec.{k} is not a PodMonitor field")
            sel = (spec.get("selector") or {}).get("matchLabels") or {}
            if not sel:
                problems.append(f"{rel}: spec.selector.matchLabels is required")
            for k, v in sel.items():
                if pod_labels.get(k) != v:
                    problems.append(f"{rel}: selector {k}={v} does not match the DaemonSet's pods {pod_labels}")
            if spec.get("jobLabel") and spec["jobLabel"] not in pod_labels:
                problems.append(f"{rel}: jobLabel {spec['jobLabel']} is not a label of the pods")
            names = (spec.get("namespaceSelector") or {}).get("matchNames") or []
            if ds_ns not in names and not (spec.get("namespaceSelector") or {}).get("any"):
                problems.append(f"{rel}: namespaceSelector does not include {ds_ns}")
            eps = spec.get("podMetricsEndpoints") or []
            if not eps:
                problems.append(f"{rel}: spec.podMetricsEndpoints is required")
            ep_fields = {"port", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout",
                         "honorLabels", "honorTimestamps", "relabelings", "metricRelabelings",
                         "bearerTokenSecret", "basicAuth", "tlsConfig", "followRedirects", "enableHttp2",
                         "filterRunning", "proxyUrl", "oauth2", "authorization"}
            relabel_fields = {"sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement",
                              "action"}
            for ep in eps:
                for k in set(ep) - ep_fields:
                    problems.append(f"{rel}: podMetricsEndpoints.{k} is not a field")
                if ep.get("port") not in ports:
                    problems.append(f"{rel}: port {ep.get('port')!r} is not a container port of the DaemonSet {ports}")
                for f in ("interval", "scrapeTimeout"):
                    if f in ep and not re.fullmatch(r"[0-9]+(ms|s|m|h)", str(ep[f])):
                        problems.append(f"{rel}: {f} {ep[f]!r} is not a duration")
                for rl in ep.get("relabelings") or []:
                    for k in set(rl) - relabel_fields:
                        problems.append(f"{rel}: relabeling field {k} is unknown")
                    if not isinstance(rl.get("sourceLabels", []), list):
                        problems.append(f"{rel}: relabeling sourceLabels must be a list")
                targets = {rl.get("targetLabel") for rl in ep.get("relabelings") or []}
                if "node" not in targets:
                    problems.append(f"{rel}: no relabeling to the node label the alerts and dashboards use")
        elif kind == "PrometheusRule":
            if not meta(obj, rel):
                continue
            spec = obj["spec"]
            for k in set(spec) - {"groups"}:
                problems.append(f"{rel}: spec.{k} is not a PrometheusRule field")
            groups = spec.get("groups") or []
            gnames = [g.get("name") for g in groups]
            if len(set(gnames)) != len(gnames):
                problems.append(f"{rel}: group names are not unique")
            for g in groups:
                for k in set(g) - {"name", "interval", "rules", "partial_response_strategy", "limit"}:
                    problems.append(f"{rel}: group field {k} is unknown")
                for r in g.get("rules") or []:
                    if ("alert" in r) == ("record" in r):
                        problems.append(f"{rel}: a rule needs exactly one of alert and record")
                    if not isinstance(r.get("expr"), str) or not r["expr"].strip():
                        problems.append(f"{rel}: a rule without expr")
                    for k in set(r) - {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}:
                        problems.append(f"{rel}: rule field {k} is unknown")
            plain = (rules_doc.get("groups") or []) + (alerts_doc.get("groups") or [])
            if _without_runbook(groups) != _without_runbook(plain):
                problems.append(f"{rel}: its groups are not those of monitoring/prometheus/ (run scripts/gen-prometheusrule.sh)")
        else:
            problems.append(f"{rel}: kind {kind!r}, want PodMonitor, ServiceMonitor or PrometheusRule")
    for want in ("PrometheusRule",):
        if want not in kinds:
            problems.append(f"monitoring/kubernetes/: no {want}")
    if "PodMonitor" not in kinds and "ServiceMonitor" not in kinds:
        problems.append("monitoring/kubernetes/: no PodMonitor or ServiceMonitor")
    report("kubernetes", problems, f"{len(files)} objects decode as {', '.join(sorted(k for k in kinds if k))} "
           "and select deploy/'s DaemonSet")


def _without_runbook(groups):
    """The groups with runbook_url cut to its anchor (the generator may move the base)."""
    out = json.loads(json.dumps(groups))
    for g in out:
        for r in g.get("rules") or []:
            ann = r.get("annotations") or {}
            if "runbook_url" in ann:
                ann["runbook_url"] = ann["runbook_url"].rsplit("#", 1)[-1]
    return out


def check_parser(root):
    """With PyYAML present (not needed), the subset parser must agree with it."""
    try:
        import yaml  # noqa: F401
    except ImportError:
        return
    problems = []
    paths = (glob.glob(os.path.join(root, "monitoring/**/*.yaml"), recursive=True)
             + glob.glob(os.path.join(root, "tests/monitoring/*.yaml")) + [os.path.join(root, "deploy/daemonset.yaml")])
    for path in sorted(paths):
        with open(path) as f:
            ref = yaml.safe_load(f)
        if load_yaml(path) != ref:
            problems.append(f"{os.path.relpath(path, root)}: the subset parser reads it differently from PyYAML")
    report("yaml-parser", problems, f"the subset parser reads {len(paths)} files as PyYAML does")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
    ap.add_argument("--promtool", default="promtool")
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    try:
        alerts_doc = load_yaml(os.path.join(root, "monitoring/prometheus/ksight-alerts.yaml"))
        rules_doc = load_yaml(os.path.join(root, "monitoring/prometheus/ksight-rules.yaml"))
        check_parser(root)
        dashboards = check_dashboards(root, a.promtool)
        check_alerts(root, alerts_doc, rules_doc)
        records = check_rules(root, alerts_doc, rules_doc, dashboards)
        check_metrics(root, alerts_doc, rules_doc, dashboards, records)
        check_kubernetes(root, alerts_doc, rules_doc)
    except (YamlError, OSError, KeyError, TypeError, AttributeError) as e:
        print(f"not ok lint: {type(e).__name__}: {e}")
        return 1
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
