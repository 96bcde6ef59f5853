#!/usr/bin/env python3
"""Scrape a URL from N threads until STOPFILE exists; print "ok N failed M".

usage: hammer.py URL THREADS STOPFILE
Connection errors are expected (the server may not be up yet, or be going away).
A bounded loop: it also stops by itself after 120 s.
"""
import sys
import threading
import time
import os
import urllib.request

url, threads, stopfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
counts = {"ok": 0, "failed": 0}
lock = threading.Lock()
deadline = time.monotonic() + 120


def scrape():
    while not os.path.exists(stopfile) and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
            key = "ok"
        except Exception:
            key = "failed"
            time.sleep(0.001)
        with lock:
            counts[key] += 1


workers = [threading.Thread(target=scrape) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(f"ok {counts['ok']} failed {counts['failed']}")
