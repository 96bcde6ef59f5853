#!/usr/bin/env bash
# ksight's benchmarks (not run in CI: numbers, not pass/fail).
# Every number comes with a baseline measured in the same run on the same machine:
#   startup, RSS, idle CPU, scrape time  vs  prometheus-node-exporter (a Go exporter
#                                            every cluster already runs)
#   OOM kill -> trace line               vs  kill -> the parent's waitpid() returning
#   cost per dropped packet              vs  bpftrace counting the same tracepoint
# Usage: tests/bench/run.sh [--quick] [--json FILE]
#   --quick: 10 s idle instead of 60 s, fewer rounds
#   --json FILE: every number as JSON (default build/bench.json), to compare two builds
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
quick=()
json=build/bench.json
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=(--quick) ;;
	--json) [ $# -ge 2 ] || { echo "bench: --json needs a file name" >&2; exit 2; }; json=$2; shift ;;
	*) echo "usage: tests/bench/run.sh [--quick] [--json FILE]" >&2; exit 2 ;;
	esac
	shift
done
if ! command -v prometheus-node-exporter >/dev/null; then
	echo "bench: installing prometheus-node-exporter (the baseline)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null; }
fi
# The package may start its own service. The baseline is a copy we start ourselves on a
# free port and stop by its pid; a service already running is left alone (a benchmark
# never stops what it did not start), at the price of its noise in the numbers.
make --no-print-directory all build/tests/memhog >/dev/null
python3 tests/bench/bench.py "${quick[@]}" --json "$json"
# the added cost per dropped packet, ksight vs bpftrace (writes build/bench-netdrop.json)
python3 tests/bench/netdrop.py "${quick[@]}"
# the added cost per API-server request, and unrelated loopback TCP with and without apilat
# (writes build/bench-apilat.json); then the same schedule with ksight never started, the
# method's own resolution on this machine (build/bench-apilat-aa.json)
python3 tests/bench/apilat.py "${quick[@]}"
python3 tests/bench/apilat.py --aa "${quick[@]}"
# and programs that return at once on the same hooks: the attachment's own cost (-null.json)
python3 tests/bench/apilat.py --null "${quick[@]}"
# one file for the whole run
python3 - "$json" build/bench-netdrop.json build/bench-apilat.json build/bench-apilat-aa.json \
	build/bench-apilat-null.json <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    res = json.load(f)
for key, path in (("netdrop", sys.argv[2]), ("apilat", sys.argv[3]), ("apilat_aa", sys.argv[4]),
                  ("apilat_null", sys.argv[5])):
    with open(path) as f:
        res[key] = json.load(f)
with open(sys.argv[1], "w") as f:
    json.dump(res, f, indent=1)
PY
