# --- apilat: a plain-TCP "API server" (apilat_peer, fixed delays) on 127.0.0.1 and ::1,
# registered with --apiserver, once per variant name: every point of send, recv and rtt that
# this kernel can take that variant of is forced to it with --probe (5.10 and 6.1 have no
# sock_send_length: kprobe only there); the first run is the per-connection one (send and rtt
# sockops, recv ingress: its cgroup_skb program on the cgroups of API-server connections, the
# root here, where every process of the guest is). Per run: APILAT_N requests per delay and family, each
# client measuring itself; a watch; a connect to a registered port nothing listens on; in the
# runs that force sock_state and retransmit too (raw, and the tracepoints once), SYNs
# dropped by a full accept queue (retransmits, against the namespace's own RetransSegs). The
# host checks the scraped metrics against what the clients measured.
# What this kernel has is recorded first: the host checks `ksight probes` against it.
EV=/sys/kernel/tracing/events
{
	for t in sock/inet_sock_set_state sock/sock_send_length sock/sock_recv_length tcp/tcp_probe \
		tcp/tcp_retransmit_skb; do
		[ -d $EV/$t ] && echo $t
	done
	# tcp_probe's skaddr field (5.x): what its tracepoint variant reads
	grep -qE 'field:[^;]* skaddr;' $EV/tcp/tcp_probe/format 2>/dev/null && echo tcp_probe-skaddr
	awk '$3 == "tcp_sendmsg" || $3 == "tcp_cleanup_rbuf" || $3 == "tcp_rcv_established" { print $3 }' \
		/proc/kallsyms | sort -u
	grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null && echo ipv6-loopback
	# cgroup v2's root, where the sockops programs attach (every kernel here has sockops' callbacks)
	[ -f /sys/fs/cgroup/cgroup.procs ] && [ ! -e /sys/fs/cgroup/cgroup.events ] && echo cgroup2-root
} >/tmp/apilat.have
block apilat.have /tmp/apilat.have
apilat_has() { grep -qx "$1" /tmp/apilat.have; }
# apilat_can POINT VARIANT: this kernel has what that variant of that point attaches to
apilat_can() {
	case $1/$2 in
	send/sockops | rtt/sockops) apilat_has cgroup2-root ;;
	recv/ingress) apilat_has cgroup2-root ;;
	recv/segment) apilat_has tcp/tcp_probe ;;
	send/tp_btf | send/tracepoint) apilat_has sock/sock_send_length ;;
	recv/tp_btf | recv/tracepoint) apilat_has sock/sock_recv_length ;;
	send/kprobe) apilat_has tcp_sendmsg ;;
	recv/kprobe) apilat_has tcp_cleanup_rbuf ;;
	rtt/tp_btf) apilat_has tcp/tcp_probe ;;
	rtt/tracepoint) apilat_has tcp_probe-skaddr ;;
	rtt/kprobe) apilat_has tcp_rcv_established ;;
	*) return 1 ;;
	esac
}
if grep -q load_failed /tmp/probes.out; then
	# the end of each refused program's verifier log
	ksight probes apilat -v >/tmp/apilat.verbose 2>&1
	awk '/BEGIN PROG LOAD LOG/ { n = 0; print; next }
		/END PROG LOAD LOG/ { for (i = (n > 30 ? n - 30 : 0); i < n; i++) print l[i]; print; n = -1; next }
		n >= 0 { l[n++] = $0 }
		/load failed|failed to load/ { print }' n=-1 /tmp/apilat.verbose >/tmp/apilat.verbose.tail
	block apilat.verbose /tmp/apilat.verbose.tail
fi

APILAT_FAMILIES=4
apilat_has ipv6-loopback && APILAT_FAMILIES="4 6"
say "apilat families $APILAT_FAMILIES"
apilat_peer server 127.0.0.1 $APILAT_PORT /tmp/apilat4.ready >/tmp/apilat4.server 2>&1 &
apl_s4=$!
apl_s6=""
if [ "$APILAT_FAMILIES" != 4 ]; then
	apilat_peer server ::1 $APILAT_PORT6 /tmp/apilat6.ready >/tmp/apilat6.server 2>&1 &
	apl_s6=$!
fi
check "apilat: the servers listen" wait_for 30 sh -c "[ -f /tmp/apilat4.ready ] && { [ -z '$apl_s6' ] || [ -f /tmp/apilat6.ready ]; }"

# apilat_variant POINT RUN: the variant a run forces on a point: the per-connection run
# ("sockops") takes recv's per-cgroup program with the sockops callbacks of send and rtt
apilat_variant() {
	if [ "$1/$2" = recv/sockops ]; then echo ingress; else echo "$2"; fi
}
# sock_state and retransmit: forced too, raw in the tp_btf run (tcp_retransmit_skb's raw form has
# err where its record has, else tp_btf_old), else the tracepoints; each such run retransmits
APL_RT_RAW=tp_btf_old
grep -qE 'field:[^;]* err;' $EV/tcp/tcp_retransmit_skb/format 2>/dev/null && APL_RT_RAW=tp_btf
say "apilat retransmit raw $APL_RT_RAW"
for v in sockops tp_btf tracepoint kprobe; do
	apl_probes="" apl_forced=""
	for pt in send recv rtt; do
		pv=$(apilat_variant $pt $v)
		apilat_can $pt $pv || continue
		apl_probes="$apl_probes --probe apilat/$pt=$pv"
		apl_forced="$apl_forced $pt"
	done
	[ -n "$apl_forced" ] || continue
	# the tracepoint ones in the kprobe run where no tracepoint run came before (5.10, 6.1)
	apl_state="" apl_retrans=""
	case $v in
	tp_btf) apl_state=tp_btf apl_retrans=$APL_RT_RAW ;;
	tracepoint) apl_state=tracepoint apl_retrans=tracepoint apl_tp_ran=1 ;;
	kprobe) [ -z "${apl_tp_ran:-}" ] && apl_state=tracepoint apl_retrans=tracepoint ;;
	esac
	if [ -n "$apl_retrans" ]; then
		apl_probes="$apl_probes --probe apilat/sock_state=$apl_state --probe apilat/retransmit=$apl_retrans"
		say "apilat run $v tcp $apl_state $apl_retrans"
	fi
	say "apilat run $v forced$apl_forced"
	PORT=$((PORT + 1))
	apl_eps="--apiserver 127.0.0.1:$APILAT_PORT --apiserver 127.0.0.1:$APILAT_CLOSED_PORT"
	apl_eps="$apl_eps --apiserver 127.0.0.1:$APILAT_SYN_PORT"
	[ -n "$apl_s6" ] && apl_eps="$apl_eps --apiserver [::1]:$APILAT_PORT6"
	# the per-connection run: a connection open before ksight starts (its first turn done,
	# waiting), adopted where the kernel lets it ask for the sockops callbacks (6.12+)
	apl_held=""
	if [ $v = sockops ]; then
		rm -f /tmp/apl-held.go /tmp/apl-held.go.ready
		apilat_peer client 127.0.0.1 $APILAT_PORT $APILAT_N 20 apl-held /tmp/apl-held.go >/tmp/apl-held.out 2>&1 &
		apl_held=$!
		wait_for 10 test -f /tmp/apl-held.go.ready || say "apilat held not ready"
	fi
	ksight run --listen 127.0.0.1:$PORT --signals apilat --no-k8s $apl_eps $apl_probes \
		>/tmp/apilat-$v.run.out 2>/tmp/apilat-$v.run.err &
	rpid=$!
	run_started "apilat $v" apilat-$v || continue
	: >/tmp/apilat-$v.clients
	if [ -n "$apl_held" ]; then
		# the warm-up's adoption, when the adopt point attached
		grep -q 'adopt=iter' /tmp/apilat-$v.run.err &&
			wait_for 10 grep -q 'open before ksight started' /tmp/apilat-$v.run.err
		touch /tmp/apl-held.go
		wait $apl_held
		say "apilat $v held exit $?"
		sed "s/^/client apl-held /" /tmp/apl-held.out >>/tmp/apilat-$v.clients
	fi
	for f in $APILAT_FAMILIES; do
		if [ $f = 4 ]; then addr=127.0.0.1 port=$APILAT_PORT; else addr=::1 port=$APILAT_PORT6; fi
		for d in $APILAT_DELAYS; do
			apilat_peer client $addr $port $APILAT_N $d apl-$f-$d >/tmp/apl.out 2>&1
			say "apilat $v client $f $d exit $?"
			sed "s/^/client apl-$f-$d /" /tmp/apl.out >>/tmp/apilat-$v.clients
		done
	done
	apilat_peer watch 127.0.0.1 $APILAT_PORT $APILAT_WATCH apl-watch >/tmp/apl.out 2>&1
	say "apilat $v watch exit $?"
	sed "s/^/watch apl-watch /" /tmp/apl.out >>/tmp/apilat-$v.clients
	apilat_peer connect 127.0.0.1 $APILAT_CLOSED_PORT apl-refused >/tmp/apl.out 2>&1
	say "apilat $v refused exit $?"
	sed "s/^/connect apl-refused /" /tmp/apl.out >>/tmp/apilat-$v.clients
	if [ -n "$apl_retrans" ]; then
		# syn_retry's second SYN is dropped by the full accept queue and retransmitted; the
		# namespace's own RetransSegs is the count
		unshare -n sh -c 'ip link set lo up && readlink /proc/self/ns/net && syn_retry $1 $2 &&
			cat /proc/net/snmp' sh $APILAT_SYN_PORT $APILAT_SYN_SECONDS >/tmp/apilat-retrans-$v.ns 2>&1
		say "apilat retrans $v unshare_exit $?"
		block apilat-retrans-$v.ns /tmp/apilat-retrans-$v.ns
	fi
	sleep 1  # the last segments' tcp_probe, closes still in a softirq
	wget -q -O /tmp/apilat-$v.metrics.all http://127.0.0.1:$PORT/metrics
	grep -E '^ksight_(apiserver_|probe_info\{signal="apilat"|bpf_program_misses_total\{signal="apilat")' \
		/tmp/apilat-$v.metrics.all >/tmp/apilat-$v.metrics
	run_stopped "apilat $v"
	block apilat-$v.clients /tmp/apilat-$v.clients
	block apilat-$v.metrics /tmp/apilat-$v.metrics
	block apilat-$v.run.err /tmp/apilat-$v.run.err
done
kill $apl_s4 $apl_s6 2>/dev/null
wait $apl_s4 $apl_s6 2>/dev/null
