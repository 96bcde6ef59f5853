#!/usr/bin/env bash
# The CLI's contract: help, versions, and one clear line with the right exit
# code (2: usage, 1: runtime) for every way a user can get it wrong.
. "$(dirname "$0")/lib.sh"

# run_cli NAME WANT_RC WANT_STDERR_SUBSTRING ARGS...: run ksight, check both
run_cli() {
	local name=$1 want_rc=$2 want=$3; shift 3
	local rc
	"$KSIGHT" "$@" >"$WORK/cli.out" 2>"$WORK/cli.err"; rc=$?
	if [ "$rc" -ne "$want_rc" ]; then
		not_ok "$name: exit $rc, want $want_rc ($(head -c 300 "$WORK/cli.err"))"
	elif ! grep -qF -- "$want" "$WORK/cli.err"; then
		not_ok "$name: stderr lacks '$want' (got: $(head -c 300 "$WORK/cli.err"))"
	else
		ok "$name"
	fi
}

# help and version go to stdout, exit 0
for args in "--help" "run --help" "trace --help" "probes --help"; do
	# shellcheck disable=SC2086
	check "'ksight $args' prints usage" sh -c "'$KSIGHT' $args | grep -q '^Usage: ksight'"
done
check "--version" sh -c "'$KSIGHT' --version | grep -qE '^ksight [0-9]+\.[0-9]+\.[0-9]+ '"
check "help lists the signals" sh -c "'$KSIGHT' trace --help | grep -qE '^  oom '"

# usage errors: exit 2
run_cli "no command" 2 "Usage: ksight COMMAND"
run_cli "unknown command" 2 "unknown command 'frob'" frob
run_cli "unknown signal (trace)" 2 "unknown signal 'nosuch' (known: oom" trace nosuch
run_cli "unknown signal (--signals)" 2 "unknown signal 'nosuch'" run --signals oom,nosuch
run_cli "unknown option" 2 "unknown option '--frobnicate'" run --frobnicate
run_cli "option without its value" 2 "option --listen needs a value" run --listen
run_cli "unknown output format" 2 "unknown output format 'yaml' (text or json)" trace -o yaml
run_cli "--listen on trace" 2 "--listen is an option of \`ksight run\`" trace --listen :1
run_cli "unknown probe variant" 2 "unknown probe variant 'oom/mark_victim=nope'" run --probe oom/mark_victim=nope
run_cli "stray argument to run" 2 "unexpected argument 'oom'" run oom

# runtime errors: exit 1
# a flag is checked before anything else is said or done: the error is the first line
run_cli "invalid listen address" 2 "invalid --listen address 'foo'" run --listen foo
check "invalid listen address: said first" sh -c "head -n 1 '$WORK/cli.err' | grep -q \"^ksight: invalid --listen address 'foo'\""
run_cli "listen port out of range" 2 "port 70000 is out of range" run --listen 127.0.0.1:70000 --no-k8s
port=$(free_port)
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(30)' "$port" &
holder=$!
defer "kill $holder"
wait_for 5 sh -c "ss -ltn | grep -q ':$port '"
run_cli "port in use" 1 "already in use" run --listen "127.0.0.1:$port"
kill $holder
run_cli "unreadable BTF file" 1 "cannot read BTF file /nonexistent/vmlinux (--btf)" probes --btf /nonexistent/vmlinux
run_cli "BTF file that is not BTF" 1 "cannot read kernel BTF /etc/hostname" probes --btf /etc/hostname
run_cli "no variant of the only signal attaches" 1 "no signal could be started" trace oom --probe oom/mark_victim=kprobe
check "... and says why" grep -qF "this kernel was built without kprobes" "$WORK/cli.err"

if id nobody >/dev/null 2>&1; then
	chmod o+rx "$WORK"
	rc=0
	setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all --bounding-set=-all \
		"$KSIGHT" probes >"$WORK/cli.out" 2>"$WORK/cli.err" || rc=$?
	expect_eq "not root: exit 1" "$rc" 1
	check "not root: says so and what to do" grep -qF "ksight needs root" "$WORK/cli.err"
fi

# probes: every variant with a state and, when not attached, the reason
"$KSIGHT" probes -o json >"$WORK/probes.json" 2>"$WORK/probes.err"
expect_eq "probes -o json exits 0" "$?" 0
check "probes: tp_btf attached" python3 - "$WORK/probes.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
oom = [s for s in d["signals"] if s["signal"] == "oom"][0]
mv = oom["probes"][0]
states = {v["variant"]: v for v in mv["variants"]}
assert oom["running"] and mv["attached"] == "tp_btf", d
assert states["tp_btf"]["state"] == "attached"
assert states["tracepoint"]["state"] == "standby", states
# this kernel has no kprobes: the reason must say so
assert states["kprobe"]["state"] == "attach_failed" and "without kprobes" in states["kprobe"]["reason"], states
PY
check "probes text lists every variant" sh -c "'$KSIGHT' probes oom | grep -cE ' (tp_btf|tracepoint|kprobe) ' | grep -qx 3"

# tracefs not mounted: ksight mounts it
if mountpoint -q /sys/kernel/tracing && umount /sys/kernel/tracing 2>/dev/null; then
	defer "mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing"
	"$KSIGHT" probes >/dev/null 2>&1
	check "tracefs unmounted: ksight mounts it" mountpoint -q /sys/kernel/tracing
fi

finish
