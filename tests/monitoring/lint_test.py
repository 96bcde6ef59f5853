#!/usr/bin/env python3
"""The lint must catch what it claims to: each case copies the files lint.py reads,
breaks one thing, and expects lint.py to fail naming it. Prints "ok NAME: ..." or
"not ok NAME: ..." per case."""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../.."))
COPY = ["monitoring", "docs", "tests/monitoring", "deploy", "user", "README.md"]

NODE = "monitoring/grafana/ksight-node-health.json"
API = "monitoring/grafana/ksight-apiserver-clients.json"
ALERTS = "monitoring/prometheus/ksight-alerts.yaml"
PODMON = "monitoring/kubernetes/podmonitor.yaml"
PRULE = "monitoring/kubernetes/prometheusrule.yaml"

# name, file, text to replace, replacement, what the lint must say
CASES = [
    ("fixed-range", NODE, 'pod=~\\"$pod\\"}[$__rate_interval]))"', 'pod=~\\"$pod\\"}[5m]))"', "range [5m]"),
    ("range-outside-increase", NODE, "[$__range])))", "[$__rate_interval]) + 0 * rate(ksight_oom_kills_total[$__range])))", "[$__range] only under increase()"),
    ("bare-counter", NODE, 'sum by (direction) (rate(ksight_tcp_resets_total{job=~\\"$job\\", node=~\\"$node\\", namespace=~\\"$namespace\\", pod=~\\"$pod\\"}[$__rate_interval]))',
     'sum by (direction) (ksight_tcp_resets_total{job=~\\"$job\\", node=~\\"$node\\", namespace=~\\"$namespace\\", pod=~\\"$pod\\"})', "counter ksight_tcp_resets_total outside"),
    ("counter-in-sum-of-rate", NODE, 'sum by (direction) (rate(ksight_tcp_resets_total{job=~\\"$job\\", node=~\\"$node\\", namespace=~\\"$namespace\\", pod=~\\"$pod\\"}[$__rate_interval]))',
     'sum by (direction) (rate(ksight_tcp_resets_total{job=~\\"$job\\", node=~\\"$node\\", namespace=~\\"$namespace\\", pod=~\\"$pod\\"}[$__rate_interval]) + ksight_tcp_resets_total{job=~\\"$job\\"})', "counter ksight_tcp_resets_total outside"),
    ("no-unit", NODE, '"unit": "pps"', '"unit": ""', "no unit"),
    ("no-description", API, '"description": "Connections to an API server endpoint open now, per client (ksight_apiserver_connections)."', '"description": ""', "no description"),
    ("same-uid", API, '"uid": "ksight-apiserver-clients"', '"uid": "ksight-node-health"', "uid ksight-node-health also in"),
    ("unparsable-query", NODE, 'sum(up{job=~\\"$job\\", node=~\\"$node\\"})', 'sum(up{job=~\\"$job\\", node=~\\"$node\\"}', "promtool"),
    ("unknown-variable", NODE, 'sum(up{job=~\\"$job\\", node=~\\"$node\\"})', 'sum(up{job=~\\"$job\\", node=~\\"$nodes\\"})', "unknown variable $nodes"),
    ("unknown-metric", API, "ksight_apiserver_sent_bytes_total{", "ksight_apiserver_send_bytes_total{", "ksight_apiserver_send_bytes_total is not a metric"),
    ("templated-summary", ALERTS, "summary: A process was killed by the OOM killer.", "summary: A process was killed in {{ $labels.pod }}.", "summary must be static"),
    ("static-description", ALERTS, "ksight target {{ $labels.instance }} on node {{ $labels.node }} has been down", "a ksight target has been down", "description must be templated"),
    ("no-runbook-section", ALERTS, "runbook.md#ksighttargetdown", "runbook.md#ksighttargetgone", "#ksighttargetgone is not #ksighttargetdown"),
    ("bad-severity", ALERTS, "severity: critical", "severity: page", "severity 'page'"),
    ("no-quiet-test", "tests/monitoring/agent.test.yaml", """      - eval_time: 8m
        alertname: KsightTargetDown
        exp_alerts: []
""", "", "KsightTargetDown: no promtool unit test where it does not fire"),
    ("podmonitor-port", PODMON, "- port: metrics", "- port: http-metrics", "is not a container port"),
    ("podmonitor-selector", PODMON, "      app.kubernetes.io/name: ksight\n  podMetricsEndpoints", "      app: ksight\n  podMetricsEndpoints", "does not match the DaemonSet"),
    ("podmonitor-apiversion", PODMON, "apiVersion: monitoring.coreos.com/v1", "apiVersion: monitoring.coreos.com/v1beta1", "apiVersion"),
    ("prometheusrule-stale", ALERTS, "expr: ksight_fs_recorded_errors > 0", "expr: ksight_fs_recorded_errors > 1", "run scripts/gen-prometheusrule.sh"),
    ("prometheusrule-field", PRULE, "    - name: ksight.rules\n", "    - name: ksight.rules\n      tenant: x\n", "group field tenant"),
]


def run(root):
    r = subprocess.run([sys.executable, os.path.join(root, "tests/monitoring/lint.py"), "--root", root],
                       capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def main():
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "base")
        for p in COPY:
            src, dst = os.path.join(ROOT, p), os.path.join(base, p)
            if os.path.isdir(src):
                shutil.copytree(src, dst)
            else:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy(src, dst)
        rc, out = run(base)
        if rc == 0:
            print("ok lint-clean: the lint passes the files as committed")
        else:
            failed += 1
            print("not ok lint-clean: the lint fails the files as committed")
            print("".join("#   " + line + "\n" for line in out.splitlines()))
        for name, path, old, new, want in CASES:
            root = os.path.join(tmp, name)
            shutil.copytree(base, root)
            f = os.path.join(root, path)
            with open(f) as fh:
                text = fh.read()
            if old not in text:
                failed += 1
                print(f"not ok lint-{name}: the text to break is not in {path} (update the case)")
                continue
            with open(f, "w") as fh:
                fh.write(text.replace(old, new, 1))
            rc, out = run(root)
            if rc != 0 and want in out:
                print(f"ok lint-{name}: {path} broken, the lint says {want!r}")
            else:
                failed += 1
                print(f"not ok lint-{name}: {path} broken, the lint did not say {want!r} (rc {rc})")
                print("".join("#   " + line + "\n" for line in out.splitlines()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
