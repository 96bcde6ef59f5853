#!/usr/bin/env bash
# Run ksight's tests: unit (cmocka), bpf (every program passes the verifier),
# e2e (real kernel, root), guest (Debian's 5.10, 6.1, 6.12 and 6.18 kernels under qemu,
# where kprobes work), asan (the unit tests built with clang -fsanitize=address,undefined),
# fuzz (each libFuzzer harness of tests/fuzz/ for 5 s over its seeds),
# monitoring (promtool, amtool and the lint on monitoring/: tests/monitoring/run.sh), image
# (the Dockerfile built with buildah and run the way the DaemonSet runs it; its
# kernel checks take /tmp/ksight-e2e.lock themselves).
# `tests/run-all.sh [unit|bpf|e2e|guest|asan|fuzz|monitoring|image]...` runs a subset;
# `tests/run-all.sh fuzz-crashes` replays tests/fuzz/crashes/ (known bugs, not
# run by default: it fails until they are fixed).
# Ends with one line "N passed, N failed" over every test case.
set -u
cd "$(dirname "$0")/.."

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit bpf e2e guest asan fuzz monitoring image)

passed=0
failed=0
failures=()

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:"
run_cmocka() {
	local name=$1; shift
	local out rc p f
	out=$("$@" 2>&1); rc=$?
	printf '%s\n' "$out"
	# a binary may run several groups: add them all up
	p=$(printf '%s\n' "$out" | sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
	f=$(printf '%s\n' "$out" | sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
	p=${p:-0}; f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # crashed before reporting
	fi
	passed=$((passed + p)); failed=$((failed + f))
	[ "$f" -gt 0 ] && failures+=("$name")
}

# Count a script's "ok NAME: ..." / "not ok NAME: ..." lines, showing its output.
run_tap() {
	local name=$1; shift
	local out rc p f n
	out=$(mktemp)
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^ok ' "$out"); f=$(grep -c '^not ok ' "$out")
	for n in $(sed -n 's/^not ok \([^ :]*\).*/\1/p' "$out"); do failures+=("$name/$n"); done
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; failures+=("$name"); fi
	passed=$((passed + p)); failed=$((failed + f))
	rm -f "$out"
}

# Build a make target first (a no-op under `make test`, which built it).
build_target() {
	if ! make --no-print-directory -s "$1"; then
		echo "$1: build failed" >&2
		failed=$((failed + 1)); failures+=("$1")
		return 1
	fi
}

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$1: needs root (BPF and cgroups); run as root" >&2
		failed=$((failed + 1)); failures+=("$1 (not root)")
		return 1
	fi
}

# where the time goes: each suite's seconds, printed before the summary
times=() prev="" t_suite=$SECONDS
for suite in "${suites[@]}"; do
	[ -n "$prev" ] && times+=("$prev $((SECONDS - t_suite))s")
	prev=$suite t_suite=$SECONDS
	case $suite in
	unit)
		echo "== unit"
		for t in build/tests/test_*; do
			[ -x "$t" ] && run_cmocka "$(basename "$t")" "$t"
		done
		;;
	bpf)
		echo "== bpf: every program passes the verifier"
		need_root bpf || continue
		run_cmocka verifier build/tests/verifier build/*.bpf.o
		for t in build/tests/bpf_test_*; do
			[ -x "$t" ] && run_cmocka "$(basename "$t")" "$t"
		done
		;;
	e2e|guest)
		echo "== $suite"
		need_root "$suite" || continue
		# guest: one harness boots every kernel (its other scripts are its parts)
		scripts=(tests/"$suite"/*.sh)
		[ "$suite" = guest ] && scripts=(tests/guest/run.sh)
		for t in "${scripts[@]}"; do
			[ "$(basename "$t")" = lib.sh ] && continue
			out=$(mktemp)
			bash "$t" 2>&1 | tee "$out"
			rc=${PIPESTATUS[0]}
			p=$(grep -c '^ok ' "$out"); f=$(grep -c '^not ok ' "$out")
			if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
			passed=$((passed + p)); failed=$((failed + f))
			[ "$f" -gt 0 ] && failures+=("$(basename "$t")")
			rm -f "$out"
		done
		;;
	asan)
		echo "== asan: unit tests under AddressSanitizer, LeakSanitizer and UBSan"
		build_target asan-build || continue
		for t in build/asan/test_* build/asan/bpf_test_*; do
			case $t in */bpf_test_*) [ "$(id -u)" -eq 0 ] || continue ;; esac
			[ -x "$t" ] && run_cmocka "asan/$(basename "$t")" \
				env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$t"
		done
		;;
	fuzz)
		echo "== fuzz: each libFuzzer harness for 5 s"
		build_target fuzz-build || continue
		run_tap fuzz tests/fuzz/run.sh -t 5 -j "${FUZZ_JOBS:-$(nproc)}"
		;;
	monitoring)
		echo "== monitoring: alerts, rules, dashboards, monitor objects (promtool, amtool, lint)"
		run_tap monitoring tests/monitoring/run.sh
		;;
	image)
		echo "== image: buildah builds the Dockerfile; the image runs as the DaemonSet runs it"
		need_root image || continue
		run_tap image tests/image/run.sh
		;;
	fuzz-crashes)
		echo "== fuzz-crashes: known crashing inputs (tests/fuzz/crashes/)"
		build_target fuzz-build || continue
		run_tap fuzz-crashes tests/fuzz/run.sh -r
		;;
	*)
		echo "unknown suite $suite (unit, bpf, e2e, guest, asan, fuzz, monitoring, image, fuzz-crashes)" >&2; exit 2 ;;
	esac
done

[ -n "$prev" ] && times+=("$prev $((SECONDS - t_suite))s")

echo
echo "# time per suite: $(IFS=,; echo "${times[*]}" | sed 's/,/, /g')"
[ ${#failures[@]} -gt 0 ] && echo "failing: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
