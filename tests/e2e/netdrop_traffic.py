#!/usr/bin/env python3
"""Traffic for the netdrop e2e test (run inside a network namespace).

  udp ADDR PORT COUNT [SPORT]     send COUNT one-byte datagrams (IPv4 or IPv6)
  syn ADDR PORT COUNT             COUNT connects to a closed port; prints how many were refused
  serve ADDR PORT                 accept one TCP connection, read until EOF; prints bytes read
  stream ADDR PORT BYTES GO DONE  connect, send BYTES once file GO exists, close once DONE exists
"""
import os
import socket
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def udp(addr, port, count, sport=0):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    if sport:
        s.bind(("::" if ":" in addr else "0.0.0.0", sport))
    dst = (addr, port)
    sent = 0
    for _ in range(count):
        while True:
            try:
                s.sendto(b"x", dst)
                break
            except (BlockingIOError, ConnectionRefusedError):
                # an ICMP error from an earlier datagram: not about this one
                continue
            except OSError as e:
                if e.errno == 105:  # ENOBUFS: the device queue is full, try again
                    time.sleep(0.0001)
                    continue
                raise
        sent += 1
    print(sent)


def syn(addr, port, count):
    refused = 0
    for _ in range(count):
        s = socket.socket(family(addr), socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect((addr, port))
        except ConnectionRefusedError:
            refused += 1
        finally:
            s.close()
    print(refused)


def serve(addr, port):
    ls = socket.socket(family(addr), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(1)
    print("listening", flush=True)
    c, _ = ls.accept()
    total = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        total += len(b)
    print(total, flush=True)


def wait_file(path):
    while not os.path.exists(path):
        time.sleep(0.05)


def stream(addr, port, nbytes, go, done):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.connect((addr, port))
    print("connected", flush=True)
    wait_file(go)
    s.sendall(b"d" * nbytes)
    print("sent", flush=True)
    wait_file(done)
    s.close()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "udp":
        udp(args[0], int(args[1]), int(args[2]), int(args[3]) if len(args) > 3 else 0)
    elif cmd == "syn":
        syn(args[0], int(args[1]), int(args[2]))
    elif cmd == "serve":
        serve(args[0], int(args[1]))
    elif cmd == "stream":
        stream(args[0], int(args[1]), int(args[2]), args[3], args[4])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
