# Shared by the e2e tests: TAP-style results, a ksight under test, cleanup.
# Source it; every test prints "ok - NAME" or "not ok - NAME".
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KSIGHT=$ROOT/build/ksight
TOOLS=$ROOT/build/tests
WORK=$(mktemp -d /tmp/ksight-e2e.XXXXXX)
MEMCG=/sys/fs/cgroup/memory
E2E_FAILED=0
CLEANUP=()

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; E2E_FAILED=1; }

# check NAME COMMAND...: ok if the command succeeds
check() {
	local name=$1; shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# expect_eq NAME ACTUAL EXPECTED
expect_eq() {
	if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', want '$3')"; fi
}

on_exit() {
	local i
	for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do eval "${CLEANUP[i]}" >/dev/null 2>&1; done
	rm -rf "$WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

defer() { CLEANUP+=("$*"); }

# a free TCP port on loopback
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# a free TCP port on ::1
free_port6() {
	python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0)); print(s.getsockname()[1])'
}

# tls_server HOST PORT [NETNS] [CGROUP_DIR]: tests/e2e/apilat.py's TLS "API server" in the
# background (in network namespace NETNS, in cgroup v2 directory CGROUP_DIR, if given; "" for
# none), ready when this returns, stopped at exit; its self-signed certificate is
# $WORK/cert.pem, made on the first call
tls_server() {
	local ready=$WORK/ready.$2
	if [ ! -f "$WORK/cert.pem" ]; then
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 1 \
			-subj /CN=ksight-test >/dev/null 2>&1 || { not_ok "a self-signed certificate is made"; finish; }
	fi
	# no shell function in between: $! is then the server's own pid
	local run=()
	[ -n "${4:-}" ] && run=(sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$4")
	[ -n "${3:-}" ] && run+=(ip netns exec "$3")
	"${run[@]}" python3 "$ROOT/tests/e2e/apilat.py" server --cert "$WORK/cert.pem" \
		--key "$WORK/key.pem" --host "$1" --port "$2" --ready "$ready" &
	defer "kill $!"
	wait_for 10 test -f "$ready" || { not_ok "TLS server on $1 port $2 starts"; finish; }
}

# wait_for SECONDS COMMAND...: poll until the command succeeds
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
}

# eventually NAME SECONDS WANT COMMAND...: ok once COMMAND prints WANT (re-run every 0.1 s)
eventually() {
	local name=$1 secs=$2 want=$3; shift 3
	local got deadline=$((SECONDS + secs))
	while :; do
		got=$("$@" 2>/dev/null)
		[ "$got" == "$want" ] && { ok "$name"; return 0; }
		[ $SECONDS -ge $deadline ] && break
		sleep 0.1
	done
	not_ok "$name (got '$got', want '$want' within ${secs}s)"
	return 1
}

# at_least NAME SECONDS MIN COMMAND...: ok once COMMAND prints a number >= MIN
at_least() {
	local name=$1 secs=$2 min=$3; shift 3
	local got deadline=$((SECONDS + secs))
	while :; do
		got=$("$@" 2>/dev/null)
		awk -v g="$got" -v m="$min" 'BEGIN { exit !(g != "" && g + 0 >= m + 0) }' && { ok "$name"; return 0; }
		[ $SECONDS -ge $deadline ] && break
		sleep 0.1
	done
	not_ok "$name (got '$got', want >= $min within ${secs}s)"
	return 1
}

# start_run NAME [ARGS...]: `ksight run` in the background; sets PORT, RUN_PID
start_run() {
	local name=$1; shift
	PORT=$(free_port)
	"$KSIGHT" run --listen "127.0.0.1:$PORT" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	RUN_PID=$!
	defer "kill $RUN_PID; wait $RUN_PID"
	if ! wait_for 20 curl -sf "http://127.0.0.1:$PORT/healthz" -o /dev/null; then
		echo "# ksight run did not become ready:"; sed 's/^/#   /' "$WORK/$name.err"
		return 1
	fi
}

scrape() { curl -sf "http://127.0.0.1:$PORT/metrics"; }

# metric_value 'name{labels}' from a fresh scrape ("" if absent)
metric_value() {
	scrape | awk -v k="$1" 'index($0, k " ") == 1 { print $2 }'
}

# start_trace NAME [ARGS...]: `ksight trace` in the background; output in $WORK/NAME.out
start_trace() {
	local name=$1; shift
	"$KSIGHT" trace "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	TRACE_PID=$!
	defer "kill $TRACE_PID; wait $TRACE_PID"
	if ! wait_for 20 grep -q "ready in" "$WORK/$name.err"; then
		echo "# ksight trace did not become ready:"; sed 's/^/#   /' "$WORK/$name.err"
		return 1
	fi
}

# make_memcg PATH LIMIT: a v1 memory cgroup under $MEMCG, removed at exit
make_memcg() {
	local dir=$MEMCG/$1
	mkdir -p "$dir"
	echo "$2" >"$dir/memory.limit_in_bytes"
	# innermost first: rmdir fails on a cgroup that still has children
	defer "rmdir_tree '$1'"
}

# make_cg2 PATH: a cgroup v2 directory (PATH under the cgroup2 mount), removed at exit; its full
# path in $CG. bpf_get_current_cgroup_id() is a task's cgroup in the v2 hierarchy.
make_cg2() {
	local root
	root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[ -n "$root" ] && mkdir -p "$root/$1" || return 1
	defer "p=$1; while [ \$p != . ]; do rmdir $root/\$p; p=\$(dirname \$p); done"
	CG=$root/$1
}
# in_cg2 DIR COMMAND...: COMMAND run in the cgroup DIR from its start
in_cg2() { sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$@"; }

rmdir_tree() {
	local path=$1
	while [ -n "$path" ] && [ "$path" != . ]; do
		rmdir "$MEMCG/$path" 2>/dev/null
		path=$(dirname "$path")
	done
}

# oom_kill MEMCG_PATH [memhog args]: run memhog in the cgroup until it is
# OOM-killed; prints the victim's pid
oom_kill() {
	local cg=$1; shift
	local pidfile=$WORK/victim.pid
	rm -f "$pidfile"
	# in a subshell, so bash does not report the SIGKILL as "Killed"
	( sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$MEMCG/$cg" \
		"$TOOLS/memhog" --pidfile "$pidfile" "$@" >/dev/null 2>&1; true ) 2>/dev/null
	cat "$pidfile"
}

# start_fake_api NODE LIFETIME_S: tests/k8s/fake_apiserver.py in $WORK/api, stopped at exit;
# sets D (its directory: kubeconfig, CA, tokens), API and CTL (ports) and writes $WORK/kubeconfig
# (token from a file); ctl METHOD PATH [JSON]
# talks to its control API
start_fake_api() {
	D=$WORK/api
	mkdir -p "$D"
	python3 "$ROOT/tests/k8s/fake_apiserver.py" --dir "$D" --node "$1" --lifetime "$2" &
	defer "kill $!"
	wait_for 30 test -f "$D/ports.json" || { not_ok "fake API server starts"; finish; }
	API=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api"])' "$D/ports.json")
	CTL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$D/ports.json")
	# a kubeconfig whose token lives in a file, so rotating the file rotates ours
	cat >"$WORK/kubeconfig" <<-KC
	apiVersion: v1
	kind: Config
	clusters:
	- name: fake
	  cluster:
	    server: https://127.0.0.1:$API
	    certificate-authority: $D/ca.crt
	users:
	- name: ksight
	  user:
	    tokenFile: $D/token
	contexts:
	- name: fake
	  context: {cluster: fake, user: ksight}
	current-context: fake
	KC
}
ctl() { curl -sf -X "$1" "http://127.0.0.1:$CTL$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
# pod_json NS NAME UID CONTAINER CID: a Running pod of one container on $NODE, for `ctl POST /pods`
pod_json() {
	printf '{"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"%s","name":"%s","uid":"%s"},"spec":{"nodeName":"%s","containers":[{"name":"%s","image":"x"}]},"status":{"phase":"Running","containerStatuses":[{"name":"%s","containerID":"containerd://%s","ready":true,"restartCount":0}]}}' \
		"$1" "$2" "$3" "$NODE" "$4" "$4" "$5"
}

# fake_api_pod NODE CGROUP: the fake API server (300 s) with pod shop/cart-1 (container cart,
# $POD_UID, $CID) on NODE, and that container's kubelet-shaped cgroup v2 directory under
# CGROUP (its path in $CG); a failure ends the test
fake_api_pod() {
	start_fake_api "$1" 300
	ctl POST /pods "$(pod_json shop cart-1 "$POD_UID" cart "$CID")" >/dev/null
	make_cg2 "$2/kubepods/besteffort/pod$POD_UID/$CID" || { not_ok "a kubelet-shaped cgroup v2 directory is made"; finish; }
}

# series COMM [NAMESPACE POD CONTAINER]: an apilat client's label set (a pod's has no comm)
series() {
	printf 'namespace="%s",pod="%s",container="%s",comm="%s"' "${2:-}" "${3:-}" "${4:-}" "$1"
}

# near GOT WANT TOLERANCE: |GOT - WANT| <= TOLERANCE * WANT, GOT a finite number (NaN, what an
# empty histogram's quantile is, and inf are near nothing; awk would take NaN as near)
near() {
	python3 -c 'import math, sys
g, w, t = float(sys.argv[1] or "nan"), float(sys.argv[2]), float(sys.argv[3])
sys.exit(not (math.isfinite(g) and abs(g - w) <= t * w))' "$1" "$2" "$3" 2>/dev/null
}

# quantiles_within NAME SERIES JSON: histogram_quantile's p50 and p99 of the response histogram
# of SERIES in $WORK/scrape.txt, computed as Prometheus does, within 15% of the client's own:
# JSON's p50 and p99 (to its read), or its p50_rx and p99_rx (to the kernel's receive timestamp
# of the first byte, where ksight's turn ends: the read adds the client's wake-up)
quantiles_within() {
	local q want want_rx got
	for q in 0.5 0.99; do
		want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["p%d" % round(float(sys.argv[2]) * 100)])' \
			"$3" "$q")
		want_rx=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("p%d_rx" % round(float(sys.argv[2]) * 100), "nan"))' \
			"$3" "$q")
		got=$(python3 "$ROOT/tests/e2e/apilat.py" quantile "$q" "$WORK/scrape.txt" \
			"ksight_apiserver_response_duration_seconds{$2}")
		if near "$got" "$want" 0.15 || near "$got" "$want_rx" 0.15; then
			ok "$1: histogram_quantile($q) $got s is within 15% of the client's $want s (to its read) or $want_rx s (to the arrival)"
		else
			not_ok "$1: histogram_quantile($q) $got s vs the client's $want s (to its read) and $want_rx s (to the arrival): more than 15% off"
		fi
	done
}

# loop_attach VAR FILE [LOSETUP-ARGS...]: a loop device on FILE into $VAR (/dev/loopN), detached at
# exit (not in a $(...) subshell: the cleanup list must be this shell's)
loop_attach() {
	local var=$1 file=$2 dev
	shift 2
	dev=$(losetup -f --show "$@" "$file") || return 1
	# by backing file: a number detached early may be someone else's by then
	defer "for d in \$(losetup -n -O NAME -j '$file'); do losetup -d \$d; done"
	printf -v "$var" '%s' "$dev"
}
# mount_at DIR MOUNT-ARGS...: mounted now, unmounted at exit (lazily: a test may fail mid-way)
mount_at() {
	local dir=$1; shift
	mkdir -p "$dir"
	mount "$@" "$dir" || return 1
	defer "umount -l '$dir'"
}

# corrupted_ext4 MNT: a 32 MiB ext4 image ($WORK/ext4.img) on a loop device, its directory /dir's
# block overwritten on disk, mounted errors=continue at MNT (every read of /dir is then a
# corruption error); sets EXT4_DEV (/dev/loopN), EXT4 (loopN) and BLOCK. Both go at exit.
corrupted_ext4() {
	local mnt=$1 img=$WORK/ext4.img i
	truncate -s 32M "$img" && mkfs.ext4 -q -F -b 4096 "$img" || return 1
	loop_attach EXT4_DEV "$img" || return 1
	EXT4=$(basename "$EXT4_DEV")
	mount_at "$mnt" -o errors=continue "$EXT4_DEV" || return 1
	mkdir "$mnt/dir" && for i in $(seq 1 40); do : >"$mnt/dir/file-$i"; done
	umount "$mnt"
	BLOCK=$(debugfs -R 'blocks /dir' "$EXT4_DEV" 2>/dev/null | awk '{ print $1 }')
	dd if=/dev/urandom of="$EXT4_DEV" bs=4096 seek="$BLOCK" count=1 conv=notrunc,fsync status=none
	blockdev --flushbufs "$EXT4_DEV"
	mount -o errors=continue "$EXT4_DEV" "$mnt"
}

finish() {
	exit $E2E_FAILED
}

# veth_pair NS1 NS2 VA VB A4 B4 [A6 B6]: two network namespaces (removed at exit) joined by a
# veth pair VA (in NS1) - VB (in NS2), lo up, the IPv4 /24 (and IPv6 /64) addresses set
veth_pair() {
	local n1=$1 n2=$2 va=$3 vb=$4 a4=$5 b4=$6 a6=${7:-} b6=${8:-}
	ip netns add "$n1" && defer "ip netns del $n1" &&
	ip netns add "$n2" && defer "ip netns del $n2" &&
	ip link add "$va" netns "$n1" type veth peer name "$vb" netns "$n2" &&
	ip -n "$n1" link set lo up && ip -n "$n2" link set lo up &&
	ip -n "$n1" addr add "$a4/24" dev "$va" && ip -n "$n2" addr add "$b4/24" dev "$vb" &&
	{ [ -z "$a6" ] || { ip -n "$n1" addr add "$a6/64" dev "$va" nodad && ip -n "$n2" addr add "$b6/64" dev "$vb" nodad; }; } &&
	ip -n "$n1" link set "$va" up && ip -n "$n2" link set "$vb" up
}
