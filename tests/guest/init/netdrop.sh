# --- netdrop: UDP datagrams to a closed port in a fresh network namespace, once per kfree_skb
# variant forced with --probe; the namespace's own Udp NoPorts is the count to match
# which drop functions this kernel has: sk_skb_reason_drop (6.11+), kfree_skb_reason (5.17+),
# kfree_skb (a function before 5.17, an inline wrapper since)
awk '$3 == "sk_skb_reason_drop" || $3 == "kfree_skb_reason" || $3 == "kfree_skb" { print $3 }' /proc/kallsyms \
	| sort -u >/tmp/netdrop.syms
block netdrop.syms /tmp/netdrop.syms
# the kfree_skb variants this kernel can take, from the kernel itself (the host checks that
# `ksight probes` says the same): the tracepoint always, tp_btf when it passes a reason (5.17+),
# each kprobe where its function exists
NETDROP_VARIANTS=tracepoint
block kfree_skb.format /sys/kernel/tracing/events/skb/kfree_skb/format
grep -qE 'field:[^;]* reason;' /sys/kernel/tracing/events/skb/kfree_skb/format &&
	NETDROP_VARIANTS="tp_btf $NETDROP_VARIANTS"
grep -qx sk_skb_reason_drop /tmp/netdrop.syms && NETDROP_VARIANTS="$NETDROP_VARIANTS kprobe"
grep -qx kfree_skb_reason /tmp/netdrop.syms && NETDROP_VARIANTS="$NETDROP_VARIANTS kprobe_5.17"
grep -qx kfree_skb /tmp/netdrop.syms && NETDROP_VARIANTS="$NETDROP_VARIANTS kprobe_old"
say "netdrop variants $NETDROP_VARIANTS"
for v in $NETDROP_VARIANTS; do
	PORT=$((PORT + 1))
	say "netdrop $v port $PORT"
	ksight run --listen 127.0.0.1:$PORT --signals netdrop --probe netdrop/kfree_skb=$v \
		>/tmp/netdrop-$v.run.out 2>/tmp/netdrop-$v.run.err &
	rpid=$!
	run_started "netdrop $v" netdrop-$v || continue
	# inside: lo up, the namespace's inode, the datagrams, then the kernel's own counters
	unshare -n sh -c 'ip link set lo up && readlink /proc/self/ns/net && netdrop_flood 127.0.0.1 $1 $2 >/dev/null &&
		cat /proc/net/snmp' sh $NETDROP_CLOSED_PORT $NETDROP_COUNT >/tmp/netdrop-$v.ns 2>&1
	say "netdrop $v unshare_exit $?"
	sleep 1  # drops still in a softirq's backlog
	wget -q -O /tmp/netdrop-$v.metrics.all http://127.0.0.1:$PORT/metrics
	grep -E '^ksight_(net_drops_total|tcp_(retransmits|resets)_total|probe_info\{signal="netdrop")' \
		/tmp/netdrop-$v.metrics.all >/tmp/netdrop-$v.metrics
	run_stopped "netdrop $v"
	block netdrop-$v.ns /tmp/netdrop-$v.ns
	block netdrop-$v.metrics /tmp/netdrop-$v.metrics
	block netdrop-$v.run.err /tmp/netdrop-$v.run.err
done

# --- the TCP points, once per variant, forced: SYNs a full accept queue drops, retransmitted,
# against the namespace's own RetransSegs. tcp_retransmit_skb's raw form is (sk, skb, err)
# where its record has err (failed retransmits fire it too), (sk, skb) before: tp_btf_old
block tcp_retransmit_skb.format /sys/kernel/tracing/events/tcp/tcp_retransmit_skb/format
NETDROP_RT_RAW=tp_btf_old
grep -qE 'field:[^;]* err;' /sys/kernel/tracing/events/tcp/tcp_retransmit_skb/format && NETDROP_RT_RAW=tp_btf
say "netdrop tcp variants $NETDROP_RT_RAW tracepoint"
for v in $NETDROP_RT_RAW tracepoint; do
	rst=${v%_old} # the resets' raw variant is tp_btf on every kernel
	PORT=$((PORT + 1))
	ksight run --listen 127.0.0.1:$PORT --signals netdrop --probe netdrop/tcp_retransmit=$v \
		--probe netdrop/tcp_reset_out=$rst --probe netdrop/tcp_reset_in=$rst \
		>/tmp/netdrop-tcp-$v.run.out 2>/tmp/netdrop-tcp-$v.run.err &
	rpid=$!
	run_started "netdrop tcp $v" netdrop-tcp-$v || continue
	unshare -n sh -c 'ip link set lo up && readlink /proc/self/ns/net && syn_retry $1 $2 &&
		cat /proc/net/snmp' sh $NETDROP_SYN_PORT $NETDROP_SYN_SECONDS >/tmp/netdrop-tcp-$v.ns 2>&1
	say "netdrop tcp $v unshare_exit $?"
	sleep 1
	wget -q -O /tmp/netdrop-tcp-$v.metrics.all http://127.0.0.1:$PORT/metrics
	grep -E '^ksight_(tcp_(retransmits|resets)_total|probe_info\{signal="netdrop"|bpf_program_misses_total\{signal="netdrop")' \
		/tmp/netdrop-tcp-$v.metrics.all >/tmp/netdrop-tcp-$v.metrics
	run_stopped "netdrop tcp $v"
	block netdrop-tcp-$v.ns /tmp/netdrop-tcp-$v.ns
	block netdrop-tcp-$v.metrics /tmp/netdrop-tcp-$v.metrics
	block netdrop-tcp-$v.run.err /tmp/netdrop-tcp-$v.run.err
done

