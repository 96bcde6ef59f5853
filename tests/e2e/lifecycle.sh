#!/usr/bin/env bash
# The agent's start and stop under AddressSanitizer/UBSan and ThreadSanitizer
# while 8 threads scrape /metrics without pause: runtimes are only read by the
# HTTP thread once complete, and never after they are freed. Also a start in
# which the only signal cannot attach (exit 1), and one in which a signal the
# kernel refuses to load (KSIGHT_TEST_REFUSE, a test-only knob of the loader)
# fails next to one that runs: the agent stays up and ready, and says why.
. "$(dirname "$0")/lib.sh"

ROUNDS=3

# sanitizer reports in a log: none allowed
clean_log() {
	! grep -qE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|runtime error:' "$1"
}

# run_hammered NAME BINARY WANT_EXIT ARGS...: start BINARY run under a hammer, stop it with SIGTERM
# once ready (or let it fail), and check its exit code and its sanitizer log. With ON_READY set,
# `$ON_READY PORT TAG` runs in each round once the agent is ready, while the hammer scrapes.
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
			[ -n "${ON_READY:-}" ] && "$ON_READY" "$port" "$tag"
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

# ON_READY of the refused load: /healthz's status code per round, and the last round's /metrics.
# From 127.0.0.2, as a kubelet is another client than Prometheus: the hammer's 8 threads from
# 127.0.0.1 keep that address at its connection limit (http.c), where a newcomer may be cut.
during_refused() {
	curl -s --interface 127.0.0.2 -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$1/healthz" \
		>>"$WORK/$2.healthz"
	curl -sf --interface 127.0.0.2 "http://127.0.0.1:$1/metrics" >"$WORK/$2.metrics"
}

# run_refused NAME BINARY: netdrop's object refused (as by the verifier), oom running next to it
run_refused() {
	local name=$1 bin=$2 tag=${1//[^a-z]/-}
	KSIGHT_TEST_REFUSE=netdrop ON_READY=during_refused run_hammered "$name" "$bin" 0 --signals oom,netdrop
	expect_eq "$name: /healthz 200 in every round" "$(sort -u "$WORK/$tag.healthz" 2>/dev/null | paste -sd' ')" 200
	check "$name: probe_info says netdrop's variants failed to load" \
		grep -q '^ksight_probe_info{signal="netdrop",probe="kfree_skb",variant="tp_btf",state="load_failed"} 1' \
		"$WORK/$tag.metrics"
	check "$name: no netdrop variant attached" \
		bash -c "! grep -q '^ksight_probe_info{signal=\"netdrop\".*state=\"attached\"' '$WORK/$tag.metrics'"
	check "$name: oom attached next to it" \
		grep -q '^ksight_probe_info{signal="oom",probe="mark_victim",.*state="attached"} 1' "$WORK/$tag.metrics"
	check "$name: the log says why netdrop did not start" grep -q 'netdrop: .*refused to load\|netdrop: no probe variant' \
		"$WORK/$tag.err"
}

# freed memory filled: libbpf is not instrumented, and its reads of a freed object would
# otherwise find the old bytes there and go unseen
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:max_free_fill_size=1048576
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1

run_hammered "asan start/stop" "$ROOT/build/asan/ksight" 0
run_hammered "tsan start/stop" "$ROOT/build/tsan/ksight" 0
run_refused "asan refused load" "$ROOT/build/asan/ksight"
run_refused "tsan refused load" "$ROOT/build/tsan/ksight"
# no kprobes on a kernel without CONFIG_KPROBES: the only variant allowed cannot attach
if [ ! -e /sys/bus/event_source/devices/kprobe ]; then
	run_hammered "asan failed start" "$ROOT/build/asan/ksight" 1 --signals oom --probe oom/mark_victim=kprobe
	run_hammered "tsan failed start" "$ROOT/build/tsan/ksight" 1 --signals oom --probe oom/mark_victim=kprobe
fi
finish
