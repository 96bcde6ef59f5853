# oom: one OOM kill per mark_victim variant this kernel takes, then memory.oom.group kills.
# what this kernel's mark_victim carries: pid only (before 6.9) or the victim's details
FMT=/sys/kernel/tracing/events/oom/mark_victim/format
block mark_victim.format $FMT
grep -q 'field:uid_t uid;' $FMT && VARIANTS="$VARIANTS tp_btf"
say "variants $VARIANTS"

POD=/sys/fs/cgroup/kubepods/burstable/pod$POD_UID
mkdir -p $POD
for d in /sys/fs/cgroup /sys/fs/cgroup/kubepods /sys/fs/cgroup/kubepods/burstable $POD; do
	check "enable +memory in $d" sh -c "echo +memory > $d/cgroup.subtree_control"
done

for v in $VARIANTS; do
	eval cid=\$CID_$v
	cg=$POD/$cid
	say "variant $v cgroup ${cg#/sys/fs/cgroup}"
	check "$v: create the memory cgroup" mkdir $cg
	check "$v: memory.max = $LIMIT" sh -c "echo $LIMIT > $cg/memory.max"
	echo 0 >$cg/memory.swap.max 2>/dev/null

	ksight trace oom -o json --probe oom/mark_victim=$v >/tmp/$v.out 2>/tmp/$v.err &
	kpid=$!
	ready() { grep -q 'ready in' /tmp/$v.err || ! alive $kpid; }
	wait_for 240 ready
	if ! grep -q 'ready in' /tmp/$v.err; then
		say "check fail $v: ksight trace is ready"
		kill -INT $kpid 2>/dev/null; wait_for 10 eval '! alive $kpid'; kill -KILL $kpid 2>/dev/null
		wait $kpid; say "variant $v ksight_exit $?"
		block $v.err /tmp/$v.err
		rmdir $cg
		continue
	fi
	say "check ok $v: ksight trace is ready"

	rm -f /tmp/victim.pid
	sh -c 'echo $$ > "$1/cgroup.procs" && exec memhog --pidfile /tmp/victim.pid' sh $cg >/dev/null 2>&1 &
	hpid=$!
	if wait_for 180 eval '! alive $hpid'; then
		wait $hpid; say "variant $v victim_exit $?"
	else
		kill -KILL $hpid; wait $hpid
		say "variant $v victim_exit none (still alive after 180s, killed)"
	fi
	say "variant $v victim $(cat /tmp/victim.pid 2>/dev/null) shell $hpid"
	say "variant $v oom_kill $(sed -n 's/^oom_kill //p' $cg/memory.events)"

	wait_for 60 grep -q '^{' /tmp/$v.out
	sleep 3  # a duplicate would come right after
	kill -INT $kpid
	if ! wait_for 30 eval '! alive $kpid'; then
		say "variant $v ksight_sigint ignored"
		kill -KILL $kpid
	fi
	wait $kpid; say "variant $v ksight_exit $?"
	block $v.out /tmp/$v.out
	block $v.err /tmp/$v.err
	rmdir $cg
done

# --- memory.oom.group: every process of the group is killed, every one is reported
PORT=9400
# group_kill NAME VARIANT CGROUP SLEEPERS [VAR=VALUE...]: ksight run and ksight trace (with
# VAR=VALUE in their environment) with VARIANT forced; SLEEPERS sleeping processes and one memhog
# in CGROUP (memory.oom.group=1), all on CPU 0 and ksight on CPU 1; memhog is SCHED_FIFO, so the
# kill (which runs in memhog) marks them all before any other victim gets to run its exit
group_kill() {
	local name=$1 v=$2 cg=$3 n=$4 i rpid tpid hpid left; shift 4
	PORT=$((PORT + 1))
	say "group $name variant $v cgroup ${cg#/sys/fs/cgroup} sleepers $n"
	check "$name: create the memory cgroup" mkdir $cg
	check "$name: memory.max = $LIMIT" sh -c "echo $LIMIT > $cg/memory.max"
	check "$name: memory.oom.group = 1" sh -c "echo 1 > $cg/memory.oom.group"
	echo 0 >$cg/memory.swap.max 2>/dev/null
	env "$@" taskset -c 1 ksight run --listen 127.0.0.1:$PORT --signals oom --probe oom/mark_victim=$v \
		>/tmp/$name.run.out 2>/tmp/$name.run.err &
	rpid=$!
	env "$@" taskset -c 1 ksight trace oom -o json --probe oom/mark_victim=$v >/tmp/$name.out 2>/tmp/$name.err &
	tpid=$!
	run_ready() { wget -q -O /dev/null http://127.0.0.1:$PORT/healthz || ! alive $rpid; }
	trace_ready() { grep -q 'ready in' /tmp/$name.err || ! alive $tpid; }
	wait_for 240 run_ready; wait_for 240 trace_ready
	if wget -q -O /dev/null http://127.0.0.1:$PORT/healthz && grep -q 'ready in' /tmp/$name.err; then
		say "check ok $name: ksight run and trace are ready"
	else
		say "check fail $name: ksight run and trace are ready"
		block $name.run.err /tmp/$name.run.err
	fi
	# the kernel's own count of marked victims
	echo 0 >/sys/kernel/tracing/tracing_on; echo >/sys/kernel/tracing/trace
	echo 1 >/sys/kernel/tracing/events/oom/mark_victim/enable; echo 1 >/sys/kernel/tracing/tracing_on
	: >/tmp/sleepers
	i=0
	while [ $i -lt $n ]; do
		taskset -c 0 sh -c 'echo $$ > "$1/cgroup.procs" && exec sleep 1000' sh $cg &
		echo $! >>/tmp/sleepers
		i=$((i + 1))
	done
	wait_for 20 sh -c "[ \$(wc -l < $cg/cgroup.procs) -ge $n ]"
	rm -f /tmp/victim.pid
	taskset -c 0 sh -c 'echo $$ > "$1/cgroup.procs" && exec memhog --fifo --pidfile /tmp/victim.pid' sh $cg >/tmp/memhog.err 2>&1 &
	hpid=$!
	if wait_for 180 eval '! alive $hpid'; then wait $hpid; say "group $name victim_exit $?"
	else kill -KILL $hpid; wait $hpid; say "group $name victim_exit none"; fi
	left=0
	for i in $(cat /tmp/sleepers); do
		wait_for 30 eval '! alive $i' || { left=$((left + 1)); kill -KILL $i; }
		wait $i 2>/dev/null
	done
	say "group $name sleepers_left $left"
	say "group $name victim $(cat /tmp/victim.pid 2>/dev/null) $(head -c 200 /tmp/memhog.err)"
	say "group $name oom_kill $(sed -n 's/^oom_kill //p' $cg/memory.events)"
	say "group $name oom_group_kill $(sed -n 's/^oom_group_kill //p' $cg/memory.events)"
	echo 0 >/sys/kernel/tracing/events/oom/mark_victim/enable
	say "group $name marks $(grep -c 'mark_victim:' /sys/kernel/tracing/trace)"
	sleep 3  # records still in flight, or a duplicate
	wget -q -O /tmp/$name.metrics http://127.0.0.1:$PORT/metrics
	grep -E '^ksight_(oom_kills_total|ringbuf_(lost|records)_total\{signal="oom"\})' /tmp/$name.metrics >/tmp/$name.metrics.oom
	bpftool -j map dump name oom_bpf.bss >/tmp/$name.bss 2>&1
	kill -INT $tpid; kill -TERM $rpid
	wait_for 30 eval '! alive $tpid && ! alive $rpid' || { kill -KILL $tpid $rpid; say "group $name ksight_sigint ignored"; }
	wait $tpid; say "group $name trace_exit $?"
	wait $rpid; say "group $name run_exit $?"
	block $name.out /tmp/$name.out
	block $name.err /tmp/$name.err
	block $name.metrics /tmp/$name.metrics.oom
	block $name.bss /tmp/$name.bss
	rmdir $cg
}

for v in $VARIANTS; do
	eval cid=\$GCID_$v
	group_kill group-$v $v $POD/$cid $GROUP_SLEEPERS
done
group_kill overflow tracepoint $POD/$OVERFLOW_CID $OVERFLOW_SLEEPERS KSIGHT_TEST_OOM_PENDING_MAX=$OVERFLOW_PENDING
group_kill big tracepoint $POD/$BIG_CID $BIG_SLEEPERS

