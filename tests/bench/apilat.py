#!/usr/bin/env python3
"""apilat benchmark: the added cost per API-server request, and what unrelated
loopback TCP loses while ksight watches the API server's sockets.

Three workloads on 127.0.0.1, each a client in this process against a server
process we start (client and server pinned to different CPUs when there are two):
  apiserver rr   request/response of 64 bytes on one connection to a port
                 registered with --apiserver (both ends are measured: the client
                 side and, the listener being on this node, the server side)
  unrelated rr   the same to a port not in the set
  unrelated bulk one connection, 128 KiB writes, the receiver reading into a buffer
Each round measures every workload with nothing attached and with
`ksight run --signals apilat --no-k8s --apiserver 127.0.0.1:PORT`, in alternating
order, REPS times each, and keeps the best of them (other load on the machine only
ever slows a run down); the report gives per-condition medians over the rounds and
the medians of the paired differences: ns added per request, % lost on unrelated
traffic (target < 2%).

Then, once, the kernel's own accounting of the BPF programs (BPF_ENABLE_STATS,
on only while this benchmark holds its fd): ns per run of each apilat program
over the same workloads, and the programs' ns per API-server request and per
unrelated request/response, free of the noise of the timings above.

Run as root, alone on the machine (it shares the kernel and CPUs with any e2e test):
  python3 tests/bench/apilat.py [--quick]   (make bench runs it too)
Writes build/bench-apilat.json. Stops only processes it started.
"""
import ctypes
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
QUICK = "--quick" in sys.argv
ROUNDS = 6 if QUICK else 16
REPS = 3
RR_COUNT = 5000 if QUICK else 10000
BULK_BYTES = 1 << 30
CHUNK = 128 << 10
MSG = 64
NCPU = os.cpu_count() or 1
CLIENT_CPU = {0}
SERVER_CPU = {1} if NCPU > 1 else {0}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


# ---- the server process: `apilat.py --serve rr|bulk PORT` ----

def serve(kind, port):
    os.sched_setaffinity(0, SERVER_CPU)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(16)
    print("ready", flush=True)
    buf = bytearray(CHUNK if kind == "bulk" else MSG)
    view = memoryview(buf)
    while True:
        conn, _ = lsock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            n = conn.recv_into(view)
            if not n:
                break
            if kind == "rr":
                conn.sendall(view[:n])
        conn.close()


class Server:
    def __init__(self, kind):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", kind, str(self.port)],
                                     stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise SystemExit("bench: the %s server did not start" % kind)

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


# ---- the client side ----

def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def rr(port, count):
    """ns per request/response of MSG bytes on one connection."""
    s = connect(port)
    msg = b"q" * MSG
    buf = bytearray(MSG)
    view = memoryview(buf)
    for _ in range(200):  # warm up
        s.sendall(msg)
        s.recv_into(view)
    t0 = time.perf_counter_ns()
    for _ in range(count):
        s.sendall(msg)
        got = s.recv_into(view)
        while got < MSG:
            got += s.recv_into(view[got:])
    t = time.perf_counter_ns() - t0
    s.close()
    return t / count


def bulk(port, nbytes):
    """MB/s of one connection sending nbytes in CHUNK writes."""
    s = connect(port)
    chunk = memoryview(b"b" * CHUNK)
    t0 = time.perf_counter_ns()
    sent = 0
    while sent < nbytes:
        s.sendall(chunk)
        sent += CHUNK
    s.shutdown(socket.SHUT_WR)
    s.recv(1)  # the server closes once it has read everything
    t = time.perf_counter_ns() - t0
    s.close()
    return sent / (t / 1e9) / 1e6


class Ksight:
    def __init__(self, apiserver_port):
        self.port = free_port()
        self.proc = subprocess.Popen([KSIGHT, "run", "--signals", "apilat", "--no-k8s",
                                      "--apiserver", "127.0.0.1:%d" % apiserver_port,
                                      "--listen", "127.0.0.1:%d" % self.port],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=dict(os.environ, KUBERNETES_SERVICE_HOST=""))
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                get("http://127.0.0.1:%d/healthz" % self.port, 0.5)
                time.sleep(1)  # past its start-up work: the programs' cost only is measured
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("bench: ksight did not become ready")

    def value(self, name):
        total = 0.0
        for line in get("http://127.0.0.1:%d/metrics" % self.port).decode().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def measure(api, other, sink):
    """The best of REPS runs of each workload."""
    return {"api_rr_ns": min(rr(api.port, RR_COUNT) for _ in range(REPS)),
            "other_rr_ns": min(rr(other.port, RR_COUNT) for _ in range(REPS)),
            "bulk_mbps": max(bulk(sink.port, BULK_BYTES) for _ in range(REPS))}


SYS_BPF, BPF_ENABLE_STATS, BPF_STATS_RUN_TIME = 321, 32, 0


def enable_bpf_stats():
    """An fd that keeps run_time_ns/run_cnt counting (for as long as it is open)."""
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(8)
    fd = libc.syscall(SYS_BPF, BPF_ENABLE_STATS, attr, 8)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "BPF_ENABLE_STATS")
    return fd


def prog_stats(pid):
    """{program name: (run_cnt, run_time_ns)} of the BPF programs process pid holds
    (their fds' fdinfo; names from bpftool by id)."""
    progs = {}
    fdinfo = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fdinfo):
        try:
            fields = dict(line.split(":", 1) for line in open(os.path.join(fdinfo, fd)) if ":" in line)
        except OSError:
            continue
        if "prog_id" in fields and "run_cnt" in fields:
            progs[int(fields["prog_id"])] = (int(fields["run_cnt"]), int(fields["run_time_ns"]))
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True, check=True).stdout
    names = {p["id"]: p.get("name", "?") for p in json.loads(out)}
    return {names.get(i, str(i)): v for i, v in progs.items()}


def stats_delta(after, before):
    return {k: (v[0] - before.get(k, (0, 0))[0], v[1] - before.get(k, (0, 0))[1]) for k, v in after.items()}


def program_costs(api, other, sink):
    """ns spent in apilat's programs per API-server request and per unrelated request/response."""
    fd = enable_bpf_stats()
    tool = Ksight(api.port)
    try:
        out = {}
        for name, port in (("apiserver rr", api.port), ("unrelated rr", other.port)):
            before = prog_stats(tool.proc.pid)
            rr(port, RR_COUNT)
            d = stats_delta(prog_stats(tool.proc.pid), before)
            out[name] = {"per_program": d, "ns_per_request": sum(v[1] for v in d.values()) / RR_COUNT}
        before = prog_stats(tool.proc.pid)
        bulk(sink.port, BULK_BYTES)
        d = stats_delta(prog_stats(tool.proc.pid), before)
        out["unrelated bulk"] = {"per_program": d, "ns_per_mib": sum(v[1] for v in d.values()) / (BULK_BYTES >> 20)}
    finally:
        tool.stop()
        os.close(fd)
    return out


def main():
    if os.geteuid():
        raise SystemExit("bench: needs root")
    os.sched_setaffinity(0, CLIENT_CPU)
    servers = []
    try:
        api, other, sink = Server("rr"), Server("rr"), Server("bulk")
        servers = [api, other, sink]
        costs = program_costs(api, other, sink)
        for name, c in costs.items():
            per = ", ".join("%s %.0f ns x %d" % (k, v[1] / v[0] if v[0] else 0, v[0])
                            for k, v in sorted(c["per_program"].items()) if v[0])
            if "ns_per_request" in c:
                print("programs, %s: %.0f ns per request (%s)" % (name, c["ns_per_request"], per), flush=True)
            else:
                print("programs, %s: %.0f ns per MiB (%s)" % (name, c["ns_per_mib"], per), flush=True)
        rounds = {"none": [], "ksight": []}
        for r in range(ROUNDS):
            for kind in (["none", "ksight"] if r % 2 == 0 else ["ksight", "none"]):
                tool = Ksight(api.port) if kind == "ksight" else None
                try:
                    before = tool.value("ksight_apiserver_requests_total") if tool else 0
                    m = measure(api, other, sink)
                    if tool:
                        counted = tool.value("ksight_apiserver_requests_total") - before
                        # the first turn of a connection is taken for its TLS handshake
                        if counted < REPS * RR_COUNT:
                            raise SystemExit("bench: ksight counted %d of %d requests" %
                                             (counted, REPS * RR_COUNT))
                        if tool.value("ksight_apiserver_server_requests_total") < REPS * RR_COUNT:
                            raise SystemExit("bench: ksight's server side missed requests")
                finally:
                    if tool:
                        tool.stop()
                rounds[kind].append(m)
            print("round %2d: api rr %.0f / %.0f ns, other rr %.0f / %.0f ns, bulk %.0f / %.0f MB/s "
                  "(none / ksight)" % (r + 1, rounds["none"][-1]["api_rr_ns"], rounds["ksight"][-1]["api_rr_ns"],
                                       rounds["none"][-1]["other_rr_ns"], rounds["ksight"][-1]["other_rr_ns"],
                                       rounds["none"][-1]["bulk_mbps"], rounds["ksight"][-1]["bulk_mbps"]),
                  flush=True)
    finally:
        for s in servers:
            s.stop()
    keys = ("api_rr_ns", "other_rr_ns", "bulk_mbps")
    med = {k: {c: statistics.median(m[k] for m in rounds[c]) for c in rounds} for k in keys}
    paired = {k: [rounds["ksight"][i][k] - rounds["none"][i][k] for i in range(ROUNDS)] for k in keys}
    added_api = statistics.median(paired["api_rr_ns"])
    loss_rr = statistics.median(paired["other_rr_ns"]) / med["other_rr_ns"]["none"] * 100
    rel_api = added_api / med["api_rr_ns"]["none"] * 100
    loss_bulk = -statistics.median(paired["bulk_mbps"]) / med["bulk_mbps"]["none"] * 100
    print()
    print("apilat, median of %d rounds (best of %d runs of %d request/responses, of %d MiB bulk):" %
          (ROUNDS, REPS, RR_COUNT, BULK_BYTES >> 20))
    print("  apiserver rr    %8.0f ns without, %8.0f ns with: %+.0f ns (%+.2f%%) per request, both ends measured" %
          (med["api_rr_ns"]["none"], med["api_rr_ns"]["ksight"], added_api, rel_api))
    print("  unrelated rr    %8.0f ns without, %8.0f ns with: %+.2f%% time per request" %
          (med["other_rr_ns"]["none"], med["other_rr_ns"]["ksight"], loss_rr))
    print("  unrelated bulk  %8.0f MB/s without, %8.0f MB/s with: %.2f%% throughput lost" %
          (med["bulk_mbps"]["none"], med["bulk_mbps"]["ksight"], loss_bulk))
    print("  target: under 2%% loss on unrelated traffic: %s" %
          ("met" if max(loss_rr, loss_bulk) < 2 else "NOT met"))
    result = {"program_costs": costs, "rounds": ROUNDS, "reps": REPS, "rr_count": RR_COUNT, "bulk_bytes": BULK_BYTES, "per_round": rounds,
              "median": med, "added_ns_per_api_request": added_api, "unrelated_rr_loss_pct": loss_rr,
              "unrelated_bulk_loss_pct": loss_bulk}
    with open(os.path.join(ROOT, "build", "bench-apilat.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
