#!/usr/bin/env python3
"""netdrop benchmark: the added cost per dropped packet, and scrape time with 1,000 series.

Cost per drop: one thread (pinned to one CPU) sends one-byte UDP datagrams that
an nft rule in the output hook of a private network namespace drops, so each
send is one kfree_skb(NETFILTER_DROP) in the sender's own context. Measured
with nothing attached, with `ksight run --signals netdrop`, and with
  bpftrace -e 'tracepoint:skb:kfree_skb { @[args->reason] = count(); }'
in rotating order within every round, many rounds; the added cost is
(ns per send with the tool) - (ns per send with nothing), paired per round,
and the report gives medians and the ratio ksight / bpftrace.

Scrape time: drops in 990 short-lived network namespaces (one series each),
then /metrics fetched many times; compared with the same agent before.

Run as root, alone on the machine (it shares the kernel and CPUs with any e2e test):
  python3 tests/bench/netdrop.py [--quick]   (make bench runs it too)
Writes build/bench-netdrop.json. Stops only processes it started.
"""
import ctypes
import fcntl
import json
import os
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KSIGHT = os.path.join(ROOT, "build", "ksight")
FLOOD = os.path.join(ROOT, "build", "tests", "netdrop_flood")
QUICK = "--quick" in sys.argv
ROUNDS = 4 if QUICK else 12
REPS = 3                       # floods per condition per round (median taken)
PACKETS = 100000 if QUICK else 200000
NS = "ksnd-bench-%d" % os.getpid()
PORT_DROP = 9
BPFTRACE = "tracepoint:skb:kfree_skb { @[args->reason] = count(); }"
CPU = str(min(1, os.cpu_count() - 1))


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def setup_netns():
    sh("ip", "netns", "add", NS)
    sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
    rules = ("table inet ksight_bench {\n chain output {\n"
             "  type filter hook output priority 0; policy accept;\n"
             "  udp dport %d counter drop\n }\n}\n" % PORT_DROP)
    subprocess.run(["ip", "netns", "exec", NS, "nft", "-f", "-"], input=rules, text=True, check=True)


def flood(n):
    """ns per send of n datagrams, from the pinned CPU inside the namespace."""
    out = sh("ip", "netns", "exec", NS, "taskset", "-c", CPU, FLOOD, "127.0.0.1", str(PORT_DROP), str(n))
    return int(out) / n


class Tool:
    """One condition: nothing, ksight or bpftrace, started and stopped by us."""

    def __init__(self, kind):
        self.kind = kind
        self.proc = None
        if kind == "ksight":
            self.port = free_port()
            self.proc = subprocess.Popen([KSIGHT, "run", "--signals", "netdrop", "--no-k8s",
                                          "--listen", "127.0.0.1:%d" % self.port],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.wait(lambda: get("http://127.0.0.1:%d/healthz" % self.port, 0.5) is not None)
        elif kind == "bpftrace":
            self.proc = subprocess.Popen(["bpftrace", "-e", BPFTRACE], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            # "Attaching 1 probe..." once attached
            line = self.proc.stdout.readline()
            if "Attaching" not in line:
                raise SystemExit("bench: bpftrace did not attach: %r" % line)
            time.sleep(0.2)

    def wait(self, ok, seconds=20):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                if ok():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise SystemExit("bench: %s did not become ready" % self.kind)

    def netfilter_drops(self):
        """ksight's NETFILTER_DROP count summed over every series (a check that it counts)."""
        total = 0.0
        for line in get("http://127.0.0.1:%d/metrics" % self.port).decode().splitlines():
            if line.startswith('ksight_net_drops_total{reason="NETFILTER_DROP"'):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self):
        if not self.proc:
            return ""
        self.proc.send_signal(signal.SIGINT if self.kind == "bpftrace" else signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.proc = None
        return out or ""


def cost_per_drop():
    kinds = ["none", "ksight", "bpftrace"]
    per_round = {k: [] for k in kinds}
    for r in range(ROUNDS):
        order = kinds[r % 3:] + kinds[:r % 3]
        for kind in order:
            tool = Tool(kind)
            flood(PACKETS // 5)  # warm caches, maps and the bucket
            before = tool.netfilter_drops() if kind == "ksight" else 0
            samples = [flood(PACKETS) for _ in range(REPS)]
            if kind == "ksight":
                counted = tool.netfilter_drops() - before
                if counted < REPS * PACKETS:
                    raise SystemExit("bench: ksight counted %d of %d drops" % (counted, REPS * PACKETS))
            out = tool.stop()
            if kind == "bpftrace" and "@[" not in out:
                raise SystemExit("bench: bpftrace printed no counts")
            per_round[kind].append(statistics.median(samples))
        print("round %2d: none %.0f ns, ksight %.0f ns, bpftrace %.0f ns per drop" %
              (r + 1, per_round["none"][-1], per_round["ksight"][-1], per_round["bpftrace"][-1]), flush=True)
    added = {k: [per_round[k][i] - per_round["none"][i] for i in range(ROUNDS)] for k in ("ksight", "bpftrace")}
    return per_round, added


CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def drop_in_new_netns():
    """A child makes a network namespace, brings lo up and sends one datagram to a
    closed port (one NO_SOCKET drop there); we keep the namespace alive with an fd
    (a freed namespace's inode number is reused by the next one). Returns the fd."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) == 0:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                ifr = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0))
                flags = struct.unpack("16sH14x", ifr)[1]
                fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
                s.sendto(b"x", ("127.0.0.1", PORT_DROP))
            os.write(ready_w, b"1")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    os.read(ready_r, 1)
    fd = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY)
    os.write(go_w, b"1")
    os.waitpid(pid, 0)
    for p in (ready_r, ready_w, go_r, go_w):
        os.close(p)
    return fd


def scrape_ms(port, n):
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        get("http://127.0.0.1:%d/metrics" % port)
        times.append((time.monotonic() - t0) * 1000)
    return statistics.median(times)


def scrape_time():
    tool = Tool("ksight")
    try:
        base = scrape_ms(tool.port, 30)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), max(hard, 4096)))
        fds = [drop_in_new_netns() for _ in range(990)]
        body = get("http://127.0.0.1:%d/metrics" % tool.port).decode()
        series = sum(1 for l in body.splitlines() if l.startswith("ksight_net_drops_total{"))
        full = scrape_ms(tool.port, 30)
        for fd in fds:
            os.close(fd)
    finally:
        tool.stop()
    return base, full, series


def main():
    if os.geteuid():
        raise SystemExit("bench: needs root")
    try:
        setup_netns()
        per_round, added = cost_per_drop()
        base, full, series = scrape_time()
    finally:
        subprocess.run(["ip", "netns", "del", NS], check=False)
    med = {k: statistics.median(v) for k, v in per_round.items()}
    add = {k: statistics.median(v) for k, v in added.items()}
    ratio = add["ksight"] / add["bpftrace"] if add["bpftrace"] > 0 else float("nan")
    print()
    print("cost per dropped packet (median of %d rounds x %d floods of %d drops):" % (ROUNDS, REPS, PACKETS))
    print("  nothing attached   %7.1f ns" % med["none"])
    print("  ksight             %7.1f ns   added %6.1f ns" % (med["ksight"], add["ksight"]))
    print("  bpftrace           %7.1f ns   added %6.1f ns" % (med["bpftrace"], add["bpftrace"]))
    print("  ksight / bpftrace added cost: %.2f (target <= 0.70)" % ratio)
    print("scrape time: %.2f ms with the agent idle, %.2f ms with %d netdrop series" % (base, full, series))
    result = {"rounds": ROUNDS, "reps": REPS, "packets": PACKETS, "per_round_ns": per_round,
              "added_ns": added, "median_ns": med, "median_added_ns": add, "ratio": ratio,
              "scrape_ms_idle": base, "scrape_ms_series": full, "series": series}
    with open(os.path.join(ROOT, "build", "bench-netdrop.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
