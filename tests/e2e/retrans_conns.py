#!/usr/bin/env python3
"""Many small TCP retransmits at once, for tests/e2e/retrans_misses.sh.

  serve ADDR PORT N            accept N connections, read each to EOF; prints
                               "listening", "received" once 100 bytes per
                               connection arrived, then the total bytes read
  clients ADDR PORT N GO DONE  open N connections (prints "connected"), send
                               100 bytes on each once file GO exists (one
                               segment: one retransmit is one TcpRetransSegs),
                               close them once file DONE exists
"""
import os
import selectors
import socket
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve(addr, port, n):
    ls = socket.socket(family(addr), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(n)
    print("listening", flush=True)
    conns = [ls.accept()[0] for _ in range(n)]
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c, selectors.EVENT_READ)
    total, open_ = 0, n
    while open_:
        for key, _ in sel.select():
            data = key.fileobj.recv(65536)
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                open_ -= 1
            if total < 100 * n <= total + len(data):
                print("received", flush=True)
            total += len(data)
    print(total, flush=True)


def wait_file(path):
    while not os.path.exists(path):
        time.sleep(0.01)


def clients(addr, port, n, go, done):
    conns = []
    for _ in range(n):
        s = socket.socket(family(addr), socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.connect((addr, port))
        conns.append(s)
    print("connected", flush=True)
    wait_file(go)
    for s in conns:
        s.sendall(b"x" * 100)
    print("sent", flush=True)
    wait_file(done)
    for s in conns:
        s.close()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(args[0], int(args[1]), int(args[2]))
    elif cmd == "clients":
        clients(args[0], int(args[1]), int(args[2]), args[3], args[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
