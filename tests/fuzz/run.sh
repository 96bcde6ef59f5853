#!/usr/bin/env bash
# Run the libFuzzer harnesses built in build/fuzz/ (make fuzz-build).
#
#   tests/fuzz/run.sh [-t SECONDS] [-j JOBS] [-k] [NAME...]
#       fuzz each harness (default: all) for SECONDS (default 5), JOBS at a
#       time, starting from tests/fuzz/corpus/NAME/ (read only). New inputs go
#       to a scratch corpus, or with -k to build/fuzz/corpus/NAME/, kept and
#       grown from run to run.
#   tests/fuzz/run.sh -r [NAME...]
#       replay tests/fuzz/crashes/NAME/* once each with KSIGHT_FUZZ_STRICT=1:
#       the known bugs; "ok" once a bug is fixed.
#
# Prints "ok fuzz_NAME ..." or "not ok fuzz_NAME ..." per harness (with the
# saved crashing input and the sanitizer's report), exits 1 if any failed.
# Crashes, leaks and timeouts are saved to build/fuzz/artifacts/NAME/, logs
# to build/fuzz/logs/NAME.log.
set -u
cd "$(dirname "$0")/../.."

seconds=5
jobs=1
keep=0
replay=0
while getopts "t:j:kr" opt; do
	case $opt in
	t) seconds=$OPTARG ;;
	j) jobs=$OPTARG ;;
	k) keep=1 ;;
	r) replay=1 ;;
	*) echo "usage: $0 [-t SECONDS] [-j JOBS] [-k] [-r] [NAME...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do
		n=${f#tests/fuzz/fuzz_}
		names+=("${n%.c}")
	done
fi

# Inputs longer than libFuzzer's default 4 KiB matter for these.
declare -A max_len=([watch_decoder]=65536 [kubeconfig]=16384 [event_bodies]=8192)

out=build/fuzz
mkdir -p "$out/logs" "$out/results"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# The gist of a crash log: the failed check and its explanation, the
# sanitizer's error, the first frames outside the sanitizer and libFuzzer.
summarize() {
	grep -a -E -A1 'check failed:' "$1" | grep -a -v '^--$'
	grep -a -E '==ERROR: |ERROR: libFuzzer: (timeout|out-of-memory)|runtime error:|^Direct leak|^Indirect leak' "$1" | head -3
	grep -a -E '^ +#[0-9]+ 0x[0-9a-f]+ in ' "$1" |
		grep -a -v -E ' in (__sanitizer|__asan|__ubsan|__lsan|__interceptor|fuzzer::|__pthread_kill|pthread_kill|raise |abort |__libc|_start |malloc |calloc |realloc |free )' |
		head -8
	grep -a '^SUMMARY: ' "$1" | head -1
}

# Fuzz (or replay) one harness; the verdict line goes to $out/results/NAME.
run_one() {
	local name=$1 bin=$out/fuzz_$1 log=$out/logs/$1.log res=$out/results/$1
	local art=$out/artifacts/$1 seeds=tests/fuzz/corpus/$1 work rc args=() input stats

	if [ ! -x "$bin" ]; then
		echo "not ok fuzz_$name: $bin is not built (make fuzz-build)" >"$res"
		return
	fi
	if [ "$replay" = 1 ]; then
		: >"$res"
		for input in tests/fuzz/crashes/"$name"/*; do
			[ -f "$input" ] || continue
			KSIGHT_FUZZ_STRICT=1 "$bin" "$input" </dev/null >"$log" 2>&1
			rc=$?
			if [ "$rc" -eq 0 ]; then
				echo "ok fuzz_$name $input: passes now, the bug is fixed (move it to tests/fuzz/corpus/$name/)" >>"$res"
			else
				cp "$log" "$log.$(basename "$input")"
				{
					echo "not ok fuzz_$name $input: still fails (exit $rc; log $log.$(basename "$input"))"
					summarize "$log" | sed 's/^/    /'
				} >>"$res"
			fi
		done
		return
	fi

	mkdir -p "$art"
	if [ "$keep" = 1 ]; then
		work=$out/corpus/$name
	else
		work=$out/work/$name
		rm -rf "$work"
	fi
	mkdir -p "$work"
	args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
	      -artifact_prefix="$art/")
	[ -n "${max_len[$name]:-}" ] && args+=(-max_len="${max_len[$name]}")
	[ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")
	[ -d "$seeds" ] || seeds=
	"$bin" "${args[@]}" "$work" ${seeds:+"$seeds"} </dev/null >"$log" 2>&1
	rc=$?
	stats=$(grep -a -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 |
		sed -E 's/^#([0-9]+).*cov: ([0-9]+).*corp: ([0-9]+).*/\1 runs, cov \2, corpus \3/')
	if [ "$rc" -eq 0 ]; then
		echo "ok fuzz_$name: $seconds s, $stats" >"$res"
	else
		input=$(grep -a 'Test unit written to ' "$log" | sed 's/.*Test unit written to //' | tail -1)
		{
			echo "not ok fuzz_$name: exit $rc after $stats; crashing input: ${input:-none saved}; log: $log"
			[ -n "$input" ] && echo "    reproduce: $bin $input"
			summarize "$log" | sed 's/^/    /'
		} >"$res"
	fi
}

for name in "${names[@]}"; do
	rm -f "$out/results/$name"
done
running=0
for name in "${names[@]}"; do
	if [ "$replay" = 0 ]; then
		echo "fuzz_$name: ${seconds} s"
	fi
	run_one "$name" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

failed=0
for name in "${names[@]}"; do
	cat "$out/results/$name"
	grep -q '^not ok' "$out/results/$name" && failed=1
	[ -s "$out/results/$name" ] || rm -f "$out/results/$name"
done
exit $failed
