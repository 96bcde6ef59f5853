"""ksight benchmarks; see run.sh. Prints a table and writes build/bench.json."""
import calendar
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KSIGHT = os.path.join(ROOT, "build", "ksight")
MEMHOG = os.path.join(ROOT, "build", "tests", "memhog")
MEMCG = "/sys/fs/cgroup/memory/ksight-bench"
QUICK = "--quick" in sys.argv
IDLE_SECONDS = 10 if QUICK else 60
RUNS = 5 if QUICK else 10
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


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


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
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_http(self.ready):
            raise SystemExit(f"bench: {kind} did not become ready")
        self.startup_ms = (time.monotonic() - t0) * 1000

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


def bench_startup_and_footprint():
    out = {}
    for kind in ("ksight", "node_exporter"):
        starts = []
        for _ in range(RUNS):
            a = Agent(kind)
            starts.append(a.startup_ms)
            a.stop()
        a = Agent(kind)
        get(a.metrics)
        rss_start = rss_kib(a.proc.pid)
        cpu0 = cpu_seconds(a.proc.pid)
        scrapes = []
        t_end = time.monotonic() + IDLE_SECONDS
        while time.monotonic() < t_end:  # a Prometheus scraping every 15 s
            t0 = time.monotonic()
            get(a.metrics)
            scrapes.append((time.monotonic() - t0) * 1000)
            time.sleep(min(15, max(0, t_end - time.monotonic())))
        cpu = cpu_seconds(a.proc.pid) - cpu0
        # scrape cost on its own, many times
        many = []
        for _ in range(200):
            t0 = time.monotonic()
            _, body = get(a.metrics)
            many.append((time.monotonic() - t0) * 1000)
        out[kind] = {
            "startup_ms_median": statistics.median(starts),
            "rss_kib_after_start": rss_start,
            "rss_kib_after_idle": rss_kib(a.proc.pid),
            "idle_cpu_percent": 100 * cpu / IDLE_SECONDS,
            "scrape_ms_median": statistics.median(many),
            "scrape_bytes": len(body),
        }
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


def main():
    res = bench_startup_and_footprint()
    res["oom"] = bench_kill_to_trace()
    k, n, o = res["ksight"], res["node_exporter"], res["oom"]
    rows = [
        ("start to ready (ms, median)", k["startup_ms_median"], n["startup_ms_median"]),
        ("RSS after start (KiB)", k["rss_kib_after_start"], n["rss_kib_after_start"]),
        (f"RSS after {IDLE_SECONDS} s idle (KiB)", k["rss_kib_after_idle"], n["rss_kib_after_idle"]),
        (f"CPU while idle, {IDLE_SECONDS} s, 15 s scrapes (% of a core)", k["idle_cpu_percent"], n["idle_cpu_percent"]),
        ("scrape /metrics (ms, median of 200)", k["scrape_ms_median"], n["scrape_ms_median"]),
        ("scrape body (bytes)", k["scrape_bytes"], n["scrape_bytes"]),
    ]
    print(f"{'measure':58} {'ksight':>10} {'node_exporter':>14} {'ratio':>7}")
    for name, a, b in rows:
        ratio = a / b if b else float("nan")
        print(f"{name:58} {a:10.3f} {b:14.3f} {ratio:7.3f}")
    print()
    print(f"{'OOM kill -> trace line (ms, median of %d)' % RUNS:58} {o['kill_to_trace_ms_median']:10.3f}")
    print(f"{'OOM kill -> trace line, first kill (ms; reads kallsyms)':58} {o['first_kill_to_trace_ms']:10.3f}")
    print(f"{'OOM kill -> parent waitpid() returns (ms, median)':58} {o['kill_to_waitpid_ms_median']:10.3f}")
    print(f"{'ratio trace / waitpid':58} {o['kill_to_trace_ms_median'] / o['kill_to_waitpid_ms_median']:10.3f}")
    with open(os.path.join(ROOT, "build", "bench.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
