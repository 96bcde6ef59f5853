#!/usr/bin/env python3
"""Slowloris against ksight's metrics endpoint, and what a real client sees meanwhile.

Opens N connections that each send one byte of a request head every INTERVAL
seconds (a head that never ends), spread over several loopback source
addresses, then times a normal /metrics scrape and a /healthz probe while they
hang on. Records when the server cuts each slow connection (EOF or reset,
counted from its connect()). Prints one line per measurement:

    probe PATH SECONDS STATUS      (STATUS 0: no HTTP answer)
    cut INDEX SOURCE SECONDS       (SECONDS -1: still connected at the end)

With --scrapers N instead: N clients (4 per 127.0.2.x address) scrape
/metrics back to back for --wait seconds while /healthz is timed every
0.2 s; prints the probe lines and "scrapes COUNT".
"""
import argparse
import errno
import selectors
import socket
import threading
import time

HEAD = b"GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: slowloris\r\nX-Slow: " + b"a" * 4096


def probe(host, port, path, timeout, source=None):
    """One request on a fresh connection: (seconds, status)."""
    start = time.monotonic()
    status = 0
    try:
        with socket.create_connection((host, port), timeout=timeout,
                                      source_address=(source, 0) if source else None) as s:
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"HTTP/1.") and len(data) >= 12:
                status = int(data[9:12])
    except OSError:
        pass
    return time.monotonic() - start, status


def scrape_flood(args):
    stop = time.monotonic() + args.wait
    count = [0]

    def scraper(i):
        src = "127.0.2.%d" % (1 + i // 4)
        while time.monotonic() < stop:
            if probe("127.0.0.1", args.port, "/metrics", 3, src)[1] == 200:
                count[0] += 1

    threads = [threading.Thread(target=scraper, args=(i,)) for i in range(args.scrapers)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    while time.monotonic() < stop - 0.2:
        secs, status = probe("127.0.0.1", args.port, "/healthz", 3)
        print("probe /healthz %.3f %d" % (secs, status))
        time.sleep(0.2)
    for t in threads:
        t.join()
    print("scrapes %d" % count[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--same-source", type=int, default=20,
                    help="how many come from 127.0.0.1, the probes' own address")
    ap.add_argument("--per-source", type=int, default=4,
                    help="the others come from 127.0.1.x, this many per address")
    ap.add_argument("--wait", type=float, required=True,
                    help="give up on uncut connections after this many seconds")
    ap.add_argument("--scrapers", type=int, default=0,
                    help="instead of slow clients, this many that scrape back to back")
    args = ap.parse_args()
    if args.scrapers:
        scrape_flood(args)
        return

    sel = selectors.DefaultSelector()
    conns = []  # [sock, source, connected_at, sent, cut_after]
    for i in range(args.clients):
        if i < args.same_source:
            src = "127.0.0.1"
        else:
            k = (i - args.same_source) // args.per_source
            src = "127.0.1.%d" % (k + 1)
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", args.port))
        s.setblocking(False)
        c = [s, src, time.monotonic(), 0, None]
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)

    def cut(c):
        c[4] = time.monotonic() - c[2]
        sel.unregister(c[0])
        c[0].close()

    def send_byte(c):
        try:
            c[0].send(HEAD[c[3]:c[3] + 1])
            c[3] += 1
        except OSError as e:
            if e.errno in (errno.EPIPE, errno.ECONNRESET):
                cut(c)

    for c in conns:
        send_byte(c)

    # real clients while the slow ones hang on: right away, and a while later
    probes = []

    start = time.monotonic()

    def prober():
        for at in (0.5, 3.0):
            time.sleep(max(0.0, start + at - time.monotonic()))
            for path in ("/healthz", "/metrics"):
                probes.append((path,) + probe("127.0.0.1", args.port, path, 3))

    t = threading.Thread(target=prober)
    t.start()

    next_send = start + args.interval
    while time.monotonic() - start < args.wait and any(c[4] is None for c in conns):
        timeout = max(0.0, min(next_send, start + args.wait) - time.monotonic())
        for key, _ in sel.select(timeout):
            c = key.data
            try:
                data = c[0].recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                cut(c)
            # bytes (an error answer) are fine: the EOF that follows counts
        if time.monotonic() >= next_send:
            for c in conns:
                if c[4] is None:
                    send_byte(c)
            next_send += args.interval
    t.join()

    for path, secs, status in probes:
        print("probe %s %.3f %d" % (path, secs, status))
    for i, c in enumerate(conns):
        print("cut %d %s %.3f" % (i, c[1], -1 if c[4] is None else c[4]))


if __name__ == "__main__":
    main()
