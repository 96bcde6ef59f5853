#!/usr/bin/env bash
# Slowloris: 100 clients that each send one byte of a request head every 2 s
# (20 of them from the probes' own address, the rest 4 per address) must not
# starve the endpoint: a normal scrape and /healthz answer within 1 s while
# they hang on, and the server cuts every one of them within its read
# deadline. A flood of real scrapes does not hold /healthz up either. Then,
# idle again, the HTTP threads do not wake up.
. "$(dirname "$0")/lib.sh"

DEADLINE=5	# HTTP_HEADER_DEADLINE_MS in user/metrics/http_limits.c, in seconds
SLACK=1
CLIENTS=100

start_run run --no-k8s || { not_ok "slowloris: ksight run starts"; finish; }

python3 "$(dirname "$0")/slowclient.py" --port "$PORT" --clients $CLIENTS --interval 2 \
	--wait $((DEADLINE + SLACK + 4)) >"$WORK/slow.out" 2>"$WORK/slow.err" ||
	{ not_ok "slowloris: the slow clients ran ($(head -c 300 "$WORK/slow.err"))"; finish; }

while read -r _ path secs status; do
	echo "# $path answered $status in ${secs}s during the flood"
	if [ "$status" = 200 ] && awk -v s="$secs" 'BEGIN { exit !(s < 1.0) }'; then
		ok "slowloris: $path answers within 1 s during the flood (${secs}s)"
	else
		not_ok "slowloris: $path during the flood: status $status after ${secs}s, want 200 within 1 s"
	fi
done < <(grep '^probe ' "$WORK/slow.out")

# cut INDEX SOURCE SECONDS (-1: never)
read -r n uncut late max min < <(awk -v lim=$((DEADLINE + SLACK)) '
	$1 == "cut" { n++; t = $4 + 0
		if (t < 0) { uncut++; next }
		if (t > lim) late++
		if (n == 1 || t > max) max = t
		if (min == "" || t < min) min = t }
	END { printf "%d %d %d %.3f %.3f\n", n, uncut, late, max, min }' "$WORK/slow.out")
echo "# $n slow clients: cut after ${min}s to ${max}s; $uncut never cut, $late after ${DEADLINE}s + ${SLACK}s"
awk '$1 == "cut" { printf "%s%s", sep, $4; sep = " " } END { print "" }' "$WORK/slow.out" |
	fold -s -w 100 | sed 's/^/#   /'
expect_eq "slowloris: all $CLIENTS slow clients measured" "$n" $CLIENTS
expect_eq "slowloris: every slow client is cut" "$uncut" 0
expect_eq "slowloris: every slow client is cut within ${DEADLINE}s + ${SLACK}s" "$late" 0

check "slowloris: /healthz still answers afterwards" curl -sf -m 1 "http://127.0.0.1:$PORT/healthz" -o /dev/null
check "slowloris: ksight still runs" kill -0 "$RUN_PID"

# A flood of real scrapes (32 clients back to back, 4 per address): /healthz
# waits only for the renders queued before it on the one HTTP thread.
python3 "$(dirname "$0")/slowclient.py" --port "$PORT" --scrapers 32 --wait 3 \
	>"$WORK/scrapers.out" 2>"$WORK/scrapers.err" ||
	not_ok "slowloris: the scrapers ran ($(head -c 300 "$WORK/scrapers.err"))"
read -r probes bad worst < <(awk '$1 == "probe" { n++; if ($4 != 200 || $3 >= 1.0) bad++; if ($3 > w) w = $3 }
	END { printf "%d %d %.3f\n", n, bad, w }' "$WORK/scrapers.out")
echo "# 32 scrapers: $(awk '$1 == "scrapes" { print $2 }' "$WORK/scrapers.out") scrapes in 3 s; $probes /healthz probes meanwhile, the slowest ${worst}s"
if [ "$probes" -gt 0 ] && [ "$bad" -eq 0 ]; then
	ok "slowloris: /healthz answers within 1 s during a flood of scrapes (slowest ${worst}s)"
else
	not_ok "slowloris: /healthz during a flood of scrapes: $bad of $probes probes failed or took 1 s or more"
fi

# Idle again: the HTTP threads (MHD's and the deadline timer) sleep without a timeout.
sleep 1
switches() {
	local t sum=0 v nv
	for t in /proc/"$RUN_PID"/task/*; do
		case $(cat "$t/comm") in MHD-*|http-*) ;; *) continue ;; esac
		v=$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status")
		nv=$(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' "$t/status")
		sum=$((sum + v + nv))
	done
	echo $sum
}
threads=$(for t in /proc/"$RUN_PID"/task/*; do cat "$t/comm"; done | grep -cE '^(MHD-|http-)')
before=$(switches); sleep 5; after=$(switches)
echo "# $threads HTTP threads: $((after - before)) wakeups in 5 s idle"
expect_eq "slowloris: idle HTTP threads do not wake up" "$((after - before))" 0

finish
