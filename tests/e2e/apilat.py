#!/usr/bin/env python3
"""apilat's e2e peers: a TLS "API server" that answers each request after the
delay it asks for, and a client that measures its own request -> first byte
latencies on one kept-alive connection.

  apilat.py server --cert C --key K --host H --port P [--ready FILE]
  apilat.py client --host H --port P --delay-ms D -n N [--comm NAME] [--ca C]
      prints one JSON line: {"n": N, "p50": s, "p99": s, "p50_rx": s, "p99_rx": s, "latencies": [...]}
      (*_rx: to the kernel's receive timestamp of each answer's first byte, not to the read)
  apilat.py client ... --watch K   one watch request, K events pushed 100 ms apart
  apilat.py connect --host H --port P [--comm NAME]   (expects a refusal)
  apilat.py quantile Q FILE SERIES  histogram_quantile over scraped buckets
  apilat.py client ... --reset     one request, then the server resets the connection
      (SO_LINGER 0 close): prints "reset" when the client sees ECONNRESET
  apilat.py overflow --host H --port P -n N --ready F --done F   a listener with a
      backlog of 1 that never accepts, N non-blocking connects to it
  apilat.py netstat KEY...   values of /proc/net/{snmp,netstat} counters ("TcpExt:ListenDrops")
The client's JSON also carries what its socket says of itself (TCP_INFO): the
median smoothed RTT after each answer ("rtt_p50", s), tcpi_total_retrans, and
tcpi_bytes_acked and tcpi_bytes_received before it closed.
"""
import argparse
import json
import math
import os
import socket
import ssl
import struct
import sys
import threading
import time

SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD: a struct timespec of the skb's arrival, CLOCK_REALTIME

RESPONSE_BYTES = 1000


def set_comm(name):
    if name:
        with open("/proc/self/comm", "w") as f:
            f.write(name[:15])


def serve_conn(conn):
    buf = b""
    try:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                words = line.split()
                if words[0] == b"RESET":
                    # an abortive close: RST instead of FIN, as a crashing server does
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if words[0] == b"WATCH":
                    # a watch: the answer's first event, then one every interval, unasked
                    for _ in range(int(words[1])):
                        conn.sendall(b"w" * (RESPONSE_BYTES - 1) + b"\n")
                        time.sleep(float(words[2]) / 1000.0)
                    continue
                time.sleep(float(words[1]) / 1000.0)
                conn.sendall(b"x" * (RESPONSE_BYTES - 1) + b"\n")
    except (OSError, ssl.SSLError, IndexError, ValueError):
        pass
    finally:
        conn.close()


def server(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    # no TLS 1.3 session tickets: OpenSSL sends them after the client's
    # Finished, and they would be read as the first request's answer
    ctx.num_tickets = 0
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.host, args.port))
    lsock.listen(64)
    if args.ready:
        open(args.ready, "w").write("ready\n")
    while True:
        raw, _ = lsock.accept()
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            continue
        threading.Thread(target=serve_conn, args=(conn,), daemon=True).start()


def exact_quantile(q, values):
    """The nearest-rank quantile of the measured values."""
    s = sorted(values)
    rank = max(1, math.ceil(q * len(s)))
    return s[rank - 1]


TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8


def tcp_info(sock):
    """(smoothed RTT in s, total retransmits, state) from struct tcp_info: 8 bytes
    of u8 fields (tcpi_state first), then u32s; tcpi_rtt is the 16th (us),
    tcpi_total_retrans the 24th."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    u32 = struct.unpack_from("24I", raw, 8)
    return u32[15] / 1e6, u32[23], raw[0]


def tcp_bytes(sock):
    """The kernel's own byte counts of the socket (struct tcp_info after the
    24 u32s: tcpi_pacing_rate, tcpi_max_pacing_rate, then tcpi_bytes_acked and
    tcpi_bytes_received, u64 each, 4.1+)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 136)
    return struct.unpack_from("2Q", raw, 120)


def client(args):
    set_comm(args.comm)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    raw = socket.socket(family, socket.SOCK_STREAM)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    raw.connect((args.host, args.port))
    # the kernel's receive timestamp of each answer's first byte, read by a peek on a duplicate
    # of the socket before TLS reads it: the moment it reached the socket, which is what a
    # receive hook times (the read's own time adds this client's wake-up to it)
    raw.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    conn = ctx.wrap_socket(raw)
    lat, lat_rx, rtts = [], [], []
    if args.reset:
        conn.sendall(b"GET 0\n")
        conn.recv(RESPONSE_BYTES)
        conn.sendall(b"RESET\n")
        # a RST closes the socket at once, a FIN leaves it in CLOSE_WAIT (TLS may
        # report either as an end of file)
        deadline = time.monotonic() + 5
        state = tcp_info(conn)[2]
        while state not in (TCP_CLOSE, TCP_CLOSE_WAIT) and time.monotonic() < deadline:
            time.sleep(0.01)
            state = tcp_info(conn)[2]
        print({TCP_CLOSE: "reset", TCP_CLOSE_WAIT: "closed"}.get(state, "open"))
        return
    if args.watch:
        conn.sendall(b"WATCH %d 100\n" % args.watch)
        got = b""
        while got.count(b"\n") < args.watch:
            more = conn.recv(RESPONSE_BYTES)
            if not more:
                sys.exit("server closed")
            got += more
        conn.close()
        print(json.dumps({"events": got.count(b"\n")}))
        return
    base = (0, 0)
    if args.go:
        # open before ksight starts: --pre requests, then wait (idle) for the go file; what
        # the socket has counted by then is the baseline of the N requests measured after it
        for _ in range(args.pre):
            conn.sendall(b"GET 0\n")
            got = b""
            while not got.endswith(b"\n"):
                more = conn.recv(RESPONSE_BYTES)
                if not more:
                    sys.exit("server closed")
                got += more
        with open(args.ready, "w") as f:
            f.write("%d\n" % os.getpid())
        while not os.path.exists(args.go):
            time.sleep(0.05)
        base = tcp_bytes(conn)
    peek = socket.socket(family, socket.SOCK_STREAM, fileno=os.dup(conn.fileno()))
    for _ in range(args.n):
        t0, r0 = time.monotonic(), time.time_ns()
        conn.sendall(b"GET %g\n" % args.delay_ms)
        _, anc, _, _ = peek.recvmsg(1, socket.CMSG_SPACE(16), socket.MSG_PEEK)
        rx = [struct.unpack("qq", d[:16]) for lvl, typ, d in anc if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS]
        got = conn.recv(RESPONSE_BYTES)
        t1 = time.monotonic()
        if not got:
            sys.exit("server closed")
        while not got.endswith(b"\n"):
            more = conn.recv(RESPONSE_BYTES)
            if not more:
                sys.exit("server closed")
            got += more
        lat.append(t1 - t0)
        # none, or before the send (a TLS session ticket queued since the handshake): the read's time
        d_rx = (rx[0][0] * 1e9 + rx[0][1] - r0) / 1e9 if rx else -1
        lat_rx.append(d_rx if d_rx > 0 else t1 - t0)
        rtts.append(tcp_info(conn)[0])
    # stay connected until told: the connection gauge is checked meanwhile
    if args.hold:
        time.sleep(args.hold)
    retrans = tcp_info(conn)[1]
    acked, received = tcp_bytes(conn)
    conn.close()
    peek.close()
    print(json.dumps({"n": len(lat), "p50": exact_quantile(0.5, lat), "p99": exact_quantile(0.99, lat),
                      "p50_rx": exact_quantile(0.5, lat_rx), "p99_rx": exact_quantile(0.99, lat_rx),
                      "rtt_p50": exact_quantile(0.5, rtts) if rtts else 0, "total_retrans": retrans,
                      "bytes_acked": acked, "bytes_received": received,
                      "base_acked": base[0], "base_received": base[1],
                      "latencies": lat}))


def connect(args):
    set_comm(args.comm)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    if args.syncnt:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, args.syncnt)
    try:
        s.connect((args.host, args.port))
    except ConnectionRefusedError:
        print("refused")
        return
    except TimeoutError:
        print("timeout")
        return
    print("connected")


def overflow(args):
    """A listener whose accept queue (backlog 1) fills: the kernel drops the
    rest of the handshakes (ListenOverflows, ListenDrops) and the clients retry.
    The clients go after 2 s (no more retries then); the listener stays until
    --done exists, so its counters can be read while they stand still."""
    lsock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.host, args.port))
    lsock.listen(1)
    conns = []
    for _ in range(args.n):
        c = socket.socket(lsock.family)
        c.setblocking(False)
        try:
            c.connect((args.host, args.port))
        except BlockingIOError:
            pass
        conns.append(c)
    time.sleep(2)
    for c in conns:
        c.close()
    time.sleep(0.5)
    open(args.ready, "w").write("ready\n")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            open(args.done).close()
            break
        except OSError:
            time.sleep(0.05)
    lsock.close()


def netstat(args):
    values = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        lines = open(path).read().splitlines()
        for names, nums in zip(lines[0::2], lines[1::2]):
            prefix = names.split(":")[0]
            for k, v in zip(names.split()[1:], nums.split()[1:]):
                values["%s:%s" % (prefix, k)] = v
    print(" ".join(values[k] for k in args.keys))


def parse_buckets(text, series):
    """The per-`le` cumulative counts of one histogram series from a scrape."""
    name, labels = series.split("{", 1)
    labels = labels.rstrip("}")
    out = []
    for line in text.splitlines():
        if not line.startswith(name + "_bucket{"):
            continue
        key, value = line.rsplit(" ", 1)
        inner = key[len(name + "_bucket{"):-1]
        parts = dict(p.split("=", 1) for p in split_labels(inner))
        le = parts.pop("le").strip('"')
        if ",".join("%s=%s" % kv for kv in parts.items()) != labels:
            continue
        out.append((math.inf if le == "+Inf" else float(le), float(value)))
    return sorted(out)


def split_labels(inner):
    parts, cur, quoted = [], "", False
    for ch in inner:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def histogram_quantile(q, buckets):
    """As Prometheus computes it: linear interpolation inside the bucket of rank q*count."""
    if not buckets or buckets[-1][0] != math.inf:
        return math.nan
    total = buckets[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    prev_le, prev_cum = 0.0, 0.0
    for i, (le, cum) in enumerate(buckets):
        if cum >= rank:
            if le == math.inf:
                return buckets[i - 1][0]
            lower = prev_le if i > 0 else 0.0
            if cum == prev_cum:
                return le
            return lower + (le - lower) * (rank - prev_cum) / (cum - prev_cum)
        prev_le, prev_cum = le, cum
    return math.nan


def quantile(args):
    text = open(args.file).read()
    b = parse_buckets(text, args.series)
    if args.count:
        print(int(b[-1][1]) if b else 0)
    else:
        print("%.9f" % histogram_quantile(args.q, b))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--ready")
    c = sub.add_parser("client")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--delay-ms", type=float, required=True)
    c.add_argument("-n", type=int, required=True)
    c.add_argument("--comm")
    c.add_argument("--hold", type=float, default=0)
    c.add_argument("--go", help="after --pre requests, write --ready and wait for this file")
    c.add_argument("--ready")
    c.add_argument("--pre", type=int, default=0)
    c.add_argument("--watch", type=int, default=0, help="one WATCH request, then this many pushed events")
    c.add_argument("--reset", action="store_true", help="one request, then the server resets the connection")
    o = sub.add_parser("overflow")
    o.add_argument("--host", required=True)
    o.add_argument("--port", type=int, required=True)
    o.add_argument("-n", type=int, required=True)
    o.add_argument("--ready", required=True)
    o.add_argument("--done", required=True)
    ns = sub.add_parser("netstat")
    ns.add_argument("keys", nargs="+")
    k = sub.add_parser("connect")
    k.add_argument("--host", required=True)
    k.add_argument("--port", type=int, required=True)
    k.add_argument("--comm")
    k.add_argument("--syncnt", type=int, default=0, help="SYN retransmits before ETIMEDOUT")
    qp = sub.add_parser("quantile")
    qp.add_argument("q", type=float)
    qp.add_argument("file")
    qp.add_argument("series")
    qp.add_argument("--count", action="store_true")
    args = p.parse_args()
    {"server": server, "client": client, "connect": connect, "quantile": quantile,
     "overflow": overflow, "netstat": netstat}[args.cmd](args)


if __name__ == "__main__":
    main()
