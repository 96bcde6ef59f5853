#!/usr/bin/env bash
# ksight's benchmarks (not run in CI: numbers, not pass/fail).
# Every number comes with a baseline measured in the same run on the same machine:
#   startup, RSS, idle CPU, scrape time  vs  prometheus-node-exporter (a Go exporter
#                                            every cluster already runs)
#   OOM kill -> trace line               vs  kill -> the parent's waitpid() returning
# Usage: tests/bench/run.sh [--quick]   (--quick: 10 s idle instead of 60 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
if ! command -v prometheus-node-exporter >/dev/null; then
	echo "bench: installing prometheus-node-exporter (the baseline)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null; }
fi
# The package may start its own service. The baseline is a copy we start ourselves on a
# free port and stop by its pid; a service already running is left alone (a benchmark
# never stops what it did not start), at the price of its noise in the numbers.
make --no-print-directory all build/tests/memhog >/dev/null
python3 tests/bench/bench.py "$@"
# the added cost per dropped packet, ksight vs bpftrace
python3 tests/bench/netdrop.py "$@"
# the added cost per API-server request, and unrelated loopback TCP with and without apilat
python3 tests/bench/apilat.py "$@"
