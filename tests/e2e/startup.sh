#!/usr/bin/env bash
# Start-up with all four signals: each object is loaded once when the kernel
# refuses nothing (no program-by-program reloads), CO-RE against the small
# copy of the kernel BTF (no fallback to the whole one), the objects loaded
# side by side; and none of that changes a single probe decision: `ksight
# probes` says the same with the copy or the whole BTF, one loader thread
# or several. What start-up no longer does: map libcurl and its TLS stacks
# with no Kubernetes API configured, verify a standby variant in `run`, or
# parse the kernel BTF again in each object.
. "$(dirname "$0")/lib.sh"

SIGNALS="oom fserr netdrop apilat"

KSIGHT_STARTUP_TRACE=1 start_run trace || { not_ok "ksight run with every signal becomes ready"; exit 1; }
ok "ksight run with every signal becomes ready"
for s in $SIGNALS; do
	expect_eq "$s: its object loaded once" "$(grep -c "startup: $s: load (try " "$WORK/trace.err")" 1
	check "$s: loaded on the first try" grep -q "startup: $s: load (try 1) " "$WORK/trace.err"
	check "$s: attached" grep -q "ksight: $s: attached" "$WORK/trace.err"
done
check "the CO-RE copy of the kernel BTF was made" grep -q "startup: CO-RE BTF copy" "$WORK/trace.err"
check "no Kubernetes API: libcurl is not mapped" sh -c "! grep -q 'libcurl' /proc/$RUN_PID/maps"
check "no Kubernetes API: no TLS library of libcurl's is mapped" sh -c "! grep -qE 'libssl|libcrypto|libkrb5|libldap' /proc/$RUN_PID/maps"
# run loads one variant a point: every program it loaded is attached (one link each), none waits on standby
count_fds() { for f in /proc/$RUN_PID/fdinfo/*; do grep -q "^$1:" "$f" 2>/dev/null && echo; done | wc -l; }
loaded_programs=$(count_fds prog_type)
# links by id: apilat's adoption keeps a second fd of its iterators' links. apilat's receive hook
# (a cgroup_skb program, type 8) has a link per cgroup of an API-server connection, none here
links=$(for f in /proc/$RUN_PID/fdinfo/*; do awk '$1 == "link_id:" { print $2 }' "$f" 2>/dev/null; done | sort -u | wc -l)
per_cgroup=$(for f in /proc/$RUN_PID/fdinfo/*; do awk '$1 == "prog_type:" && $2 == 8 { print }' "$f" 2>/dev/null; done | wc -l)
check "run: every loaded program attached, no standby one loaded ($loaded_programs programs, $links links, $per_cgroup attached per cgroup)" \
	test "$loaded_programs" -gt 0 -a "$loaded_programs" -eq $((links + per_cgroup))
check "every phase's line says how long it took" \
	sh -c "grep 'startup: ' '$WORK/trace.err' | grep -qvE ' [0-9]+\.[0-9]{2} ms \(at +[0-9]+\.[0-9]{2} ms, process CPU +[0-9]+\.[0-9]{2} ms, rss [0-9]+ KiB, peak [0-9]+ KiB\)$' && exit 1 || exit 0"
for s in $SIGNALS; do
	check "$s: probe_info shows an attached variant" \
		sh -c "curl -sf 'http://127.0.0.1:$PORT/metrics' | grep -q '^ksight_probe_info{signal=\"$s\",.*state=\"attached\"}'"
done

# the same decisions however the objects are loaded
"$KSIGHT" probes -o json >"$WORK/default.json" 2>"$WORK/default.err"
KSIGHT_LOAD_THREADS=1 "$KSIGHT" probes -o json >"$WORK/one.json" 2>/dev/null
KSIGHT_CORE_BTF=0 "$KSIGHT" probes -o json >"$WORK/whole.json" 2>/dev/null
# libbpf says "loading kernel BTF" each time it parses one. The agent parses it once, from a
# mapping of the file where the kernel allows that (6.16+, as here): libbpf then never says it.
"$KSIGHT" probes -v >/dev/null 2>"$WORK/verbose.err"
expect_eq "probes: the kernel BTF parsed once for every object" "$(grep -c 'kernel BTF: [0-9]* types, parsed once' "$WORK/verbose.err")" 1
expect_eq "probes: no object and no fallback reads the kernel BTF again" "$(grep -c 'loading kernel BTF' "$WORK/verbose.err")" 0
check "probes: every signal listed" sh -c "for s in $SIGNALS; do grep -q \"\\\"signal\\\":\\\"\$s\\\"\" '$WORK/default.json' || exit 1; done"
check "probes: one loader thread decides the same" cmp -s "$WORK/default.json" "$WORK/one.json"
check "probes: the whole kernel BTF decides the same as the copy" cmp -s "$WORK/default.json" "$WORK/whole.json"

# the per-boot cache of the CO-RE copy: built and stored by the first start, taken by the next
CACHE="$WORK/cache"
probes_cached() { "$KSIGHT" probes -v -o json --cache-dir "$@" >"$WORK/cached.json" 2>"$WORK/cached.err"; }
entry() { ls "$CACHE"/core-btf-* 2>/dev/null; }
probes_cached "$CACHE"
check "cache: the first start builds the copy and stores it" grep -q "CO-RE copy of the kernel BTF: built, stored in the per-boot cache in $CACHE$" "$WORK/cached.err"
expect_eq "cache: one entry stored" "$(entry | wc -l)" 1
expect_eq "cache: the directory is the agent's alone" "$(stat -c %a "$CACHE")" 700
expect_eq "cache: so is the entry" "$(stat -c %a "$(entry)")" 600
cp "$(entry)" "$WORK/first-entry"
probes_cached "$CACHE"
check "cache: the next start takes the copy from it" grep -q "CO-RE copy of the kernel BTF: taken from the per-boot cache in $CACHE$" "$WORK/cached.err"
check "cache: ... and decides every probe the same" cmp -s "$WORK/default.json" "$WORK/cached.json"
KSIGHT_STARTUP_TRACE=1 start_run cached --cache-dir "$CACHE" || not_ok "cache: ksight run with the cached copy becomes ready"
check "cache: run takes it too" grep -q "startup: CO-RE BTF copy from the per-boot cache" "$WORK/cached.err"
for s in $SIGNALS; do
	check "cache: $s attached on the first try with the cached copy" \
		sh -c "grep -q 'startup: $s: load (try 1) ' '$WORK/cached.err' && ! grep -q 'startup: $s: load (try 2' '$WORK/cached.err' && grep -q 'ksight: $s: attached' '$WORK/cached.err'"
done
rm -f "$(entry)"
probes_cached "$CACHE"
check "cache: the copy comes out the same each time it is built" cmp -s "$WORK/first-entry" "$(entry)"
# a damaged entry: said, built again, replaced
printf 'X' | dd of="$(entry)" bs=1 seek=100 conv=notrunc status=none
probes_cached "$CACHE"
check "cache: a damaged entry is said and not taken" grep -q "per-boot cache: ignored .*not a whole entry; built the copy again" "$WORK/cached.err"
check "cache: ... and is replaced by a whole one" cmp -s "$WORK/first-entry" "$(entry)"
check "cache: ... and the probes are the same" cmp -s "$WORK/default.json" "$WORK/cached.json"
# another user could have written it: not taken
chmod 0777 "$CACHE"
probes_cached "$CACHE"
check "cache: a directory others can write to is not trusted" grep -q "per-boot cache: ignored .*not private to ksight.s user" "$WORK/cached.err"
chmod 0700 "$CACHE"
rm -rf "$CACHE"
probes_cached none
check "cache: --cache-dir none builds the copy" grep -q "CO-RE copy of the kernel BTF: built$" "$WORK/cached.err"
check "cache: ... and stores nothing" test ! -e "$CACHE"
exit $E2E_FAILED
