#!/usr/bin/env bash
# The agent's start and stop under AddressSanitizer/UBSan and ThreadSanitizer
# while 8 threads scrape /metrics without pause: runtimes are only read by the
# HTTP thread once complete, and never after they are freed. Also a start in
# which the only signal cannot attach (exit 1), scraped the same way.
. "$(dirname "$0")/lib.sh"

ROUNDS=3

# sanitizer reports in a log: none allowed
clean_log() {
	! grep -qE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|runtime error:' "$1"
}

# run_hammered NAME BINARY WANT_EXIT ARGS...: start BINARY run under a hammer, stop it with SIGTERM
# once ready (or let it fail), and check its exit code and its sanitizer log
run_hammered() {
	local name=$1 bin=$2 want=$3; shift 3
	local tag=${name//[^a-z]/-}
	local port stop=$WORK/$tag.stop hpid pid rc i
	port=$(free_port)
	rm -f "$stop"
	python3 "$ROOT/tests/e2e/hammer.py" "http://127.0.0.1:$port/metrics" 8 "$stop" >"$WORK/$tag.hammer" &
	hpid=$!
	for ((i = 0; i < ROUNDS; i++)); do
		"$bin" run --no-k8s --listen "127.0.0.1:$port" "$@" >>"$WORK/$tag.out" 2>>"$WORK/$tag.err" &
		pid=$!
		if [ "$want" -eq 0 ]; then
			wait_for 60 curl -sf "http://127.0.0.1:$port/healthz" -o /dev/null
			sleep 0.5
			kill -TERM "$pid"
		fi
		wait "$pid"; rc=$?
		[ "$rc" -eq "$want" ] || break
	done
	touch "$stop"
	wait "$hpid"
	expect_eq "$name: exit code of every round" "$rc" "$want"
	check "$name: no sanitizer report" clean_log "$WORK/$tag.err"
	clean_log "$WORK/$tag.err" || sed -n '1,40s/^/#   /p' "$WORK/$tag.err"
	# the hammer must have hit a live endpoint, or the test proved nothing
	local scraped
	scraped=$(awk '{ print $2 }' "$WORK/$tag.hammer")
	if [ "$want" -eq 0 ]; then
		at_least "$name: scrapes answered during the rounds" 1 10 echo "$scraped"
	fi
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1

run_hammered "asan start/stop" "$ROOT/build/asan/ksight" 0
run_hammered "tsan start/stop" "$ROOT/build/tsan/ksight" 0
# no kprobes on a kernel without CONFIG_KPROBES: the only variant allowed cannot attach
if [ ! -e /sys/bus/event_source/devices/kprobe ]; then
	run_hammered "asan failed start" "$ROOT/build/asan/ksight" 1 --signals oom --probe oom/mark_victim=kprobe
	run_hammered "tsan failed start" "$ROOT/build/tsan/ksight" 1 --signals oom --probe oom/mark_victim=kprobe
fi
finish
