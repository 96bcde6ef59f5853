#!/usr/bin/env bash
# Run ksight's tests: unit (cmocka), bpf (every program passes the verifier),
# e2e (real kernel, root), guest (Debian's 6.1 kernel under qemu, where kprobes
# work). `tests/run-all.sh [unit|bpf|e2e|guest]...` runs a subset.
# Ends with one line "N passed, N failed" over every test case.
set -u
cd "$(dirname "$0")/.."

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit bpf e2e guest)

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

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$1: needs root (BPF and cgroups); run as root" >&2
		failed=$((failed + 1)); failures+=("$1 (not root)")
		return 1
	fi
}

for suite in "${suites[@]}"; do
	case $suite in
	unit)
		echo "== unit"
		for t in build/tests/test_*; do
			[ -x "$t" ] && run_cmocka "$(basename "$t")" "$t"
		done
		;;
	bpf)
		echo "== bpf: every program passes the verifier"
		need_root bpf && run_cmocka verifier build/tests/verifier build/*.bpf.o
		;;
	e2e|guest)
		echo "== $suite"
		need_root "$suite" || continue
		for t in tests/"$suite"/*.sh; do
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
	*)
		echo "unknown suite $suite (unit, bpf, e2e, guest)" >&2; exit 2 ;;
	esac
done

echo
[ ${#failures[@]} -gt 0 ] && echo "failing: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
