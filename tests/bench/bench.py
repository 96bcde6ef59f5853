"""ksight benchmarks; see run.sh. Prints a table and writes the numbers as JSON.

Usage: bench.py [--quick] [--json FILE]   (FILE: build/bench.json by default)

Start-up and footprint: ksight (all four signals) and node_exporter are started
in alternating order, RUNS rounds, each on its own free port and stopped by its
pid; every figure is the median with its spread (min, quartiles, max) over the
rounds. Nothing the benchmark did not start is stopped.
"""
import calendar
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KSIGHT = os.path.join(ROOT, "build", "ksight")
MEMHOG = os.path.join(ROOT, "build", "tests", "memhog")
MEMCG = "/sys/fs/cgroup/memory/ksight-bench"
QUICK = "--quick" in sys.argv
IDLE_SECONDS = 10 if QUICK else 60
RUNS = 7 if QUICK else 15
JSON_OUT = os.path.join(ROOT, "build", "bench.json")
if "--json" in sys.argv:
    i = sys.argv.index("--json")
    if i + 1 >= len(sys.argv):
        raise SystemExit("bench: --json needs a file name")
    JSON_OUT = sys.argv[i + 1]
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_http(url, deadline_s=20):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if get(url, 0.5)[0] == 200:
                return True
        except OSError:
            time.sleep(0.001)
    return False


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def spread(values):
    """The median and how far the rounds spread around it."""
    v = sorted(values)
    q = statistics.quantiles(v, n=4) if len(v) >= 2 else [v[0]] * 3
    return {"median": statistics.median(v), "min": v[0], "p25": q[0], "p75": q[2], "max": v[-1], "n": len(v)}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


class Agent:
    """ksight run or node_exporter on a free port."""

    def __init__(self, kind):
        self.port = free_port()
        if kind == "ksight":
            cmd = [KSIGHT, "run", "--listen", f"127.0.0.1:{self.port}"]
            self.ready = f"http://127.0.0.1:{self.port}/healthz"
        else:
            cmd = ["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{self.port}"]
            self.ready = f"http://127.0.0.1:{self.port}/metrics"
        self.metrics = f"http://127.0.0.1:{self.port}/metrics"
        self.log = tempfile.TemporaryFile()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log)
        if not wait_http(self.ready):
            self.stop()  # ours: started above
            raise SystemExit(f"bench: {kind} did not become ready")
        self.startup_ms = (time.monotonic() - t0) * 1000

    def self_reported_ready_ms(self):
        """ksight's own "ready in N ms" (from main(): no exec, no dynamic linking, no polling)."""
        self.log.seek(0)
        m = re.search(rb"ready in (\d+) ms", self.log.read())
        return float(m.group(1)) if m else None

    def stop(self):
        """Only the process this object started, by its pid."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


KINDS = ("ksight", "node_exporter")


def bench_startup_and_footprint():
    """Start each kind RUNS times, alternating which goes first; then both idle side by side."""
    rounds = {k: {"startup_ms": [], "rss_kib_after_start": [], "rss_kib_peak": []} for k in KINDS}
    for r in range(RUNS):
        for kind in (KINDS if r % 2 == 0 else KINDS[::-1]):
            a = Agent(kind)
            get(a.metrics)  # what a first Prometheus scrape leaves
            rounds[kind]["startup_ms"].append(a.startup_ms)
            rounds[kind]["rss_kib_after_start"].append(rss_kib(a.proc.pid))
            rounds[kind]["rss_kib_peak"].append(status_kib(a.proc.pid, "VmHWM"))
            if kind == "ksight":
                rounds[kind].setdefault("self_reported_ready_ms", []).append(a.self_reported_ready_ms() or 0)
            a.stop()
    out = {k: {name: spread(v) for name, v in rounds[k].items()} for k in KINDS}
    for k in KINDS:
        out[k]["rounds"] = rounds[k]
    # idle: both running at once, under the same conditions, scraped every 15 s like by Prometheus
    agents = {k: Agent(k) for k in KINDS}
    try:
        for a in agents.values():
            get(a.metrics)
        cpu0 = {k: cpu_seconds(a.proc.pid) for k, a in agents.items()}
        t_end = time.monotonic() + IDLE_SECONDS
        while time.monotonic() < t_end:
            for a in agents.values():
                get(a.metrics)
            time.sleep(min(15, max(0, t_end - time.monotonic())))
        for k, a in agents.items():
            out[k]["idle_cpu_percent"] = 100 * (cpu_seconds(a.proc.pid) - cpu0[k]) / IDLE_SECONDS
            out[k]["rss_kib_after_idle"] = rss_kib(a.proc.pid)
        # scrape cost, many times, alternating between the two
        many = {k: [] for k in KINDS}
        body = {}
        for _ in range(200):
            for k, a in agents.items():
                t0 = time.monotonic()
                _, body[k] = get(a.metrics)
                many[k].append((time.monotonic() - t0) * 1000)
        for k in KINDS:
            out[k]["scrape_ms"] = spread(many[k])
            out[k]["scrape_bytes"] = len(body[k])
    finally:
        for a in agents.values():
            a.stop()
    return out


def setup_memcg():
    os.makedirs(MEMCG, exist_ok=True)
    with open(f"{MEMCG}/memory.limit_in_bytes", "w") as f:
        f.write(str(32 << 20))


def bench_kill_to_trace():
    """Kernel kill time (the event's own timestamp) to the moment a reader has the line."""
    import queue
    import threading

    setup_memcg()
    trace = subprocess.Popen([KSIGHT, "trace", "oom", "-o", "json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, bufsize=1)
    while "ready in" not in trace.stderr.readline():
        pass
    lines = queue.Queue()

    def reader():  # stamps each line the moment it arrives
        for line in trace.stdout:
            lines.put((time.time_ns(), line))

    threading.Thread(target=reader, daemon=True).start()
    trace_lat, wait_lat = [], []
    try:
        for _ in range(RUNS):
            victim = subprocess.Popen(["sh", "-c", f'echo $$ > {MEMCG}/cgroup.procs && exec "$0"', MEMHOG],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            victim.wait()
            t_wait = time.time_ns()
            t_line, line = lines.get(timeout=10)
            t_kill = iso_to_ns(json.loads(line)["time"])
            trace_lat.append((t_line - t_kill) / 1e6)
            wait_lat.append((t_wait - t_kill) / 1e6)
    finally:
        trace.send_signal(signal.SIGINT)
        trace.wait(10)
        os.rmdir(MEMCG)
    return {
        "kill_to_trace_ms_median": statistics.median(trace_lat),
        "kill_to_trace_ms_max": max(trace_lat),
        "kill_to_waitpid_ms_median": statistics.median(wait_lat),
        "first_kill_to_trace_ms": trace_lat[0],
    }


def iso_to_ns(s):
    # 2026-11-27T03:02:57.313213431Z
    secs, frac = s.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(secs, "%Y-%m-%dT%H:%M:%S")) * 10**9 + int(frac.ljust(9, "0"))


def environment():
    def run(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""
    return {
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
        "commit": run("git", "rev-parse", "--short", "HEAD"),
        "ksight": run(KSIGHT, "--version"),
        "node_exporter": run("prometheus-node-exporter", "--version").splitlines()[0:1],
        "quick": QUICK,
        "rounds": RUNS,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def others():
    """Processes the benchmark did not start that share a name with what it starts."""
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm.startswith(("prometheus-node", "ksight", "node_exporter")):
                found.add(int(pid))
    return found


def fmt(s):
    return f"{s['median']:9.1f} [{s['min']:.1f}..{s['max']:.1f}]"


def main():
    res = {"environment": environment()}
    before = others()
    res.update(bench_startup_and_footprint())
    res["oom"] = bench_kill_to_trace()
    k, n, o = res["ksight"], res["node_exporter"], res["oom"]
    res["ratios"] = {
        "startup": k["startup_ms"]["median"] / n["startup_ms"]["median"],
        "rss_after_start": k["rss_kib_after_start"]["median"] / n["rss_kib_after_start"]["median"],
        "rss_after_idle": k["rss_kib_after_idle"] / n["rss_kib_after_idle"],
    }
    # issue 10's targets: start -> ready within 2x node_exporter's, RSS within half of it
    res["targets"] = {"startup_within_2x": res["ratios"]["startup"] <= 2.0,
                      "rss_within_half": res["ratios"]["rss_after_start"] <= 0.5}
    print(f"{RUNS} rounds, alternating; median [min..max]")
    print(f"{'measure':46} {'ksight':>24} {'node_exporter':>24} {'ratio':>7}")
    rows = [
        ("start to ready (ms)", k["startup_ms"], n["startup_ms"]),
        ("RSS after start and a scrape (KiB)", k["rss_kib_after_start"], n["rss_kib_after_start"]),
        ("peak RSS during start (KiB)", k["rss_kib_peak"], n["rss_kib_peak"]),
        ("scrape /metrics (ms, 200 each)", k["scrape_ms"], n["scrape_ms"]),
    ]
    for name, a, b in rows:
        print(f"{name:46} {fmt(a):>24} {fmt(b):>24} {a['median'] / b['median']:7.3f}")
    print(f"{'  ksight: its own ready in N ms (ms)':46} {fmt(k['self_reported_ready_ms']):>24}")
    for name, key in ((f"RSS after {IDLE_SECONDS} s idle (KiB)", "rss_kib_after_idle"),
                      (f"CPU while idle, {IDLE_SECONDS} s, 15 s scrapes (% of a core)", "idle_cpu_percent"),
                      ("scrape body (bytes)", "scrape_bytes")):
        ratio = f"{k[key] / n[key]:7.3f}" if n[key] else "    n/a"
        print(f"{name:46} {k[key]:24.3f} {n[key]:24.3f} {ratio}")
    print(f"target start <= 2x node_exporter: {'met' if res['targets']['startup_within_2x'] else 'NOT met'} "
          f"({res['ratios']['startup']:.2f}x); RSS <= 0.5x: "
          f"{'met' if res['targets']['rss_within_half'] else 'NOT met'} ({res['ratios']['rss_after_start']:.2f}x)")
    print()
    print(f"{'OOM kill -> trace line (ms, median of %d)' % RUNS:58} {o['kill_to_trace_ms_median']:10.3f}")
    print(f"{'OOM kill -> trace line, first kill (ms; reads kallsyms)':58} {o['first_kill_to_trace_ms']:10.3f}")
    print(f"{'OOM kill -> parent waitpid() returns (ms, median)':58} {o['kill_to_waitpid_ms_median']:10.3f}")
    print(f"{'ratio trace / waitpid':58} {o['kill_to_trace_ms_median'] / o['kill_to_waitpid_ms_median']:10.3f}")
    # a benchmark never stops what it did not start: whatever ran before still runs
    gone = [pid for pid in before if not os.path.exists(f"/proc/{pid}")]
    res["foreign_processes"] = {"before": len(before), "gone": len(gone)}
    print(f"processes of the same names not started by the benchmark: {len(before)}, "
          f"{'none stopped' if not gone else '%d gone (stopped by someone else?)' % len(gone)}")
    os.makedirs(os.path.dirname(os.path.abspath(JSON_OUT)), exist_ok=True)
    with open(JSON_OUT, "w") as f:
        json.dump(res, f, indent=1)
    print(f"(JSON: {JSON_OUT})")


if __name__ == "__main__":
    main()
