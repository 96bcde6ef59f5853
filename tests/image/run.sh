#!/usr/bin/env bash
# The image suite: build the Dockerfile with buildah (scripts/image.sh), then check
# the image the way the DaemonSet runs it. Prints "ok NAME: ..." / "not ok NAME: ...".
#   sudo tests/image/run.sh [--no-run]     (--no-run: build and look, run nothing)
#
# What is in it: the OCI archive loads into an empty store; the image's EXPOSE,
# CMD and the DaemonSet's port, args and probes agree; every library ksight links
# resolves and comes from the base or a package the Dockerfile's runtime stage
# names (and each named package is used); no compilers, -dev packages or sources
# came from the build stage.
# How it runs (these take the shared kernel lock, KSIGHT_E2E_LOCK, default
# /tmp/ksight-e2e.lock, unless the caller holds it; empty: none): the image's root
# read-only (readOnlyRootFilesystem), in the host's pid namespace (hostPID), a
# network namespace of its own (the pod's), a fresh /proc and /sys and the
# DaemonSet's volumes as its volumeMounts say, read from deploy/daemonset.yaml.
# In it `ksight probes -o json` shows every signal running, with the
# capabilities the DaemonSet's comment lists and not without CAP_BPF, and
# ENTRYPOINT + CMD (and ENTRYPOINT + the DaemonSet's args) serves /healthz and
# /metrics on the EXPOSEd port, and stops with exit 0 on SIGTERM.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# KSIGHT_VERSION and KSIGHT_DOCKERFILE (passed on to scripts/image.sh) build
# another tag from another Dockerfile: to see these checks fail on a broken image
VERSION=$(sed -n 's/^VERSION *:= *//p' "$ROOT/Makefile")
export KSIGHT_VERSION=${KSIGHT_VERSION:-$VERSION}
IMAGE=ksight:$KSIGHT_VERSION
OUT=$ROOT/build/ksight-$KSIGHT_VERSION.oci.tar
BASE=debian:bookworm-slim
SIGNALS="oom fserr netdrop apilat"
LOCK=${KSIGHT_E2E_LOCK-/tmp/ksight-e2e.lock}
NO_RUN=0
[ "${1:-}" = --no-run ] && NO_RUN=1
W=$(mktemp -d /var/tmp/ksight-image-test.XXXXXX)
CTRS=()
FAILED=0

ok() { echo "ok $1: $2"; }
not_ok() {
	echo "not ok $1: $2"
	FAILED=1
}
# show a file's last lines as TAP comments
show() { tail -n "${2:-15}" "$1" 2>/dev/null | sed 's/^/#   /'; }

cleanup() {
	local c
	for c in "${CTRS[@]}"; do buildah rm "$c" >/dev/null 2>&1; done
	rm -rf --one-file-system "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" -ne 0 ]; then
	not_ok image "needs root (buildah, chroot, BPF)"
	exit 1
fi

# ---------------------------------------------------------------- build
t=$(date +%s)
if KSIGHT_IMAGE_OUT=$OUT "$ROOT/scripts/image.sh" >"$W/build.log" 2>&1; then
	ok build "scripts/image.sh in $(($(date +%s) - t))s: $(grep -o 'made debian.*\|there already' "$W/build.log" | head -n 1)"
else
	not_ok build "scripts/image.sh failed"
	show "$W/build.log" 30
	exit 1
fi
sed 's/^/# /' "$W/build.log"

# the image's own configuration, as the engine recorded it
buildah inspect --type image "$IMAGE" >"$W/inspect.json"
CONFIG=$(jq -c .OCIv1.config "$W/inspect.json")
ENTRYPOINT=$(jq -c '.Entrypoint // []' <<<"$CONFIG")
CMD=$(jq -c '.Cmd // []' <<<"$CONFIG")
EXPOSE=$(jq -r '.ExposedPorts // {} | keys[]' <<<"$CONFIG")
mapfile -t IMAGE_ENV < <(jq -r '.Env // [] | .[]' <<<"$CONFIG")
BIN=$(jq -r '.[0] // empty' <<<"$ENTRYPOINT")

# ---------------------------------------------------------------- the archive
if [ -s "$OUT" ]; then
	packed=$(stat -c %s "$OUT")
	unpacked=$(jq '[.OCIv1.rootfs.diff_ids | length] | .[0]' "$W/inspect.json")
	size=$(buildah images --format '{{.Size}}' "$IMAGE" | head -n 1)
	mkdir -p "$W/store"
	if buildah --root "$W/store/root" --runroot "$W/store/run" --storage-driver vfs \
		pull --quiet "oci-archive:$OUT" >"$W/pull.log" 2>&1 &&
		loaded=$(buildah --root "$W/store/root" --runroot "$W/store/run" --storage-driver vfs \
			inspect --type image "$IMAGE" 2>>"$W/pull.log" | jq -r '"\(.OCIv1.config.Entrypoint) \(.OCIv1.config.Cmd)"') &&
		[ "$loaded" = "$(jq -c .Entrypoint <<<"$CONFIG") $(jq -c .Cmd <<<"$CONFIG")" ]; then
		ok archive "$(basename "$OUT"): $((packed / 1024 / 1024)) MiB ($packed bytes), $unpacked layers, $size unpacked; loads into an empty store as $IMAGE with ENTRYPOINT $ENTRYPOINT CMD $CMD"
	else
		not_ok archive "$(basename "$OUT") does not load as $IMAGE with the built image's configuration (${loaded:-nothing})"
		show "$W/pull.log"
	fi
	buildah --root "$W/store/root" --runroot "$W/store/run" --storage-driver vfs rmi --all >/dev/null 2>&1
else
	not_ok archive "scripts/image.sh wrote no $OUT"
fi

# ---------------------------------------------------------------- the DaemonSet
# what the DaemonSet's pod spec asks for, as one JSON object
if ! python3 - "$ROOT/deploy/daemonset.yaml" >"$W/ds.json" 2>"$W/ds.err" <<'EOF'; then
import json, sys, yaml
ds = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "DaemonSet"][0]
spec = ds["spec"]["template"]["spec"]
c = spec["containers"][0]
vols = {v["name"]: v for v in spec.get("volumes", [])}
mounts = []
for m in c.get("volumeMounts", []):
	hp = vols[m["name"]]["hostPath"]
	mounts.append({"host": hp["path"], "path": m["mountPath"], "ro": bool(m.get("readOnly")),
		"type": hp.get("type", "")})
ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
sc = c.get("securityContext", {})
print(json.dumps({
	"hostPID": bool(spec.get("hostPID")), "hostNetwork": bool(spec.get("hostNetwork")),
	"privileged": bool(sc.get("privileged")), "readOnlyRoot": bool(sc.get("readOnlyRootFilesystem")),
	"capsAdd": sc.get("capabilities", {}).get("add", []),
	"command": c.get("command"), "args": c.get("args"),
	"ports": ports, "env": [e["name"] for e in c.get("env", [])],
	"probes": [{"path": c[p]["httpGet"]["path"], "port": ports.get(c[p]["httpGet"]["port"], c[p]["httpGet"]["port"])}
		for p in ("livenessProbe", "readinessProbe") if p in c],
	"scrapePort": ds["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/port"),
	"mounts": mounts}))
EOF
	not_ok daemonset "deploy/daemonset.yaml: $(tail -n 1 "$W/ds.err")"
	exit 1
fi
DS=$(cat "$W/ds.json")

# EXPOSE, the CMD's --listen, and the DaemonSet's ports, args and probes agree
port=${EXPOSE%%/*}
mapfile -t ARGV < <(jq -r '.[]' <<<"$ENTRYPOINT"; jq -r '.[]' <<<"$CMD")
mapfile -t DS_ARGV < <(jq -r '.[]' <<<"$ENTRYPOINT"; jq -r '(.args // [])[]' <<<"$DS")
problems=()
[ -n "$port" ] || problems+=("the image EXPOSEs no port")
printf '%s\n' "${ARGV[@]}" | grep -qx -- "--listen=:$port" || problems+=("CMD $CMD does not listen on the EXPOSEd :$port")
[ "$(jq -r '.command // empty' <<<"$DS")" = "" ] || problems+=("the DaemonSet replaces the ENTRYPOINT")
printf '%s\n' "${DS_ARGV[@]}" | grep -qx -- "--listen=:$port" || problems+=("the DaemonSet's args $(jq -c .args <<<"$DS") do not listen on :$port")
[ "$(jq -r '.ports | to_entries | map(.value) | index('"${port:-0}"')' <<<"$DS")" != null ] ||
	problems+=("no containerPort $port in the DaemonSet")
[ "$(jq -r .scrapePort <<<"$DS")" = "$port" ] || problems+=("prometheus.io/port is $(jq -r .scrapePort <<<"$DS"), not $port")
for p in $(jq -r '.probes[] | "\(.port)\(.path)"' <<<"$DS"); do
	[ "$p" = "$port/healthz" ] || problems+=("a probe asks for $p, not $port/healthz")
done
if [ ${#problems[@]} -eq 0 ]; then
	ok ports "EXPOSE $EXPOSE, CMD $CMD, the DaemonSet's containerPort, args, probes and prometheus.io/port agree"
else
	not_ok ports "$(IFS=';'; echo "${problems[*]}")"
fi

# ---------------------------------------------------------------- what is in it
ctr=$(buildah from --pull-never "$IMAGE") && CTRS+=("$ctr") && R=$(buildah mount "$ctr") ||
	{ not_ok mount "buildah from/mount $IMAGE"; exit 1; }
bctr=$(buildah from --pull-never "$BASE") && CTRS+=("$bctr") && B=$(buildah mount "$bctr") ||
	{ not_ok mount "buildah from/mount $BASE"; exit 1; }
in_image() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

if [ -n "$BIN" ] && [ -x "$R$BIN" ] && file_out=$(readelf -h "$R$BIN" 2>&1) && grep -q 'Type:.*\(EXEC\|DYN\)' <<<"$file_out"; then
	ok entrypoint "$BIN is an ELF executable, $(du -h "$R$BIN" | cut -f1)"
else
	not_ok entrypoint "ENTRYPOINT $ENTRYPOINT is not an executable in the image"
fi

# the packages of every `apt-get install` in the image's history after the base's
apt_install_packages() {
	local -a words
	local w prev='' in_install=0 skip=0
	read -r -a words <<<"${1//[;&|]/ ; }"
	for w in "${words[@]}"; do
		if [ "$w" = ";" ]; then
			in_install=0 skip=0 prev=
		elif [ "$skip" = 1 ]; then
			skip=0
		elif [ "$in_install" = 1 ]; then
			case $w in
			-o | -t | -c | --option | --target-release | --config-file) skip=1 ;;
			-*) ;;
			*) echo "$w" ;;
			esac
		elif [ "$w" = install ] && { [ "$prev" = apt-get ] || [ "$prev" = apt ]; }; then
			in_install=1
		else
			case $w in
			-o | -t | -c) skip=1 ;;
			-*) ;;
			*) prev=${w##*/} ;;
			esac
		fi
	done
}
NAMED=()
while IFS= read -r step; do
	mapfile -t pk < <(apt_install_packages "$step")
	NAMED+=("${pk[@]}")
done < <(jq -r '.History[].created_by // empty' "$W/inspect.json")
BASE_PKGS=$(chroot "$B" dpkg-query -W -f '${Package}\n' | sort)
IMAGE_PKGS=$(in_image dpkg-query -W -f '${Package}\n' | sort)

owner_of() { # owner_of LIBPATH -> the package that has the file in the image
	local p=$1 c out=
	for c in "$p" "/usr$p" "${p#/usr}"; do
		out=$(in_image dpkg -S "$c" 2>/dev/null | grep -v '^diversion' | head -n 1)
		[ -n "$out" ] && break
	done
	out=${out%%:*}
	echo "${out%%,*}"
}
ldd_out=$(in_image ldd "$BIN" 2>&1)
mapfile -t NEEDED < <(readelf -d "$R$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
if [ ${#NEEDED[@]} -gt 0 ] && ! grep -q 'not found' <<<"$ldd_out"; then
	ok libraries-resolve "ldd $BIN in the image: all $(grep -c '=>' <<<"$ldd_out") libraries found"
else
	not_ok libraries-resolve "ldd $BIN: $(grep 'not found' <<<"$ldd_out" | tr -s ' \t\n' ' ')"
fi

declare -A USED LOADED
summary=() unnamed=()
for lib in "${NEEDED[@]}"; do
	path=$(awk -v l="$lib" '$1 == l && $2 == "=>" { print $3 }' <<<"$ldd_out")
	[ "$path" = not ] && path=
	pkg=
	[ -n "$path" ] && pkg=$(owner_of "$path")
	summary+=("$lib<-${pkg:-?}")
	if [ -z "$pkg" ]; then
		unnamed+=("$lib (${path:-not found}: no package)")
		continue
	fi
	USED[$pkg]=1
	printf '%s\n' "${NAMED[@]}" | grep -qx "$pkg" || grep -qx "$pkg" <<<"$BASE_PKGS" || unnamed+=("$lib from $pkg")
done
while read -r path; do
	pkg=$(owner_of "$path")
	[ -n "$pkg" ] && LOADED[$pkg]=1
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$ldd_out")
echo "# libraries and their packages: ${summary[*]}"
if [ ${#unnamed[@]} -eq 0 ] && [ ${#NEEDED[@]} -gt 0 ]; then
	ok libraries-packaged "each of the ${#NEEDED[@]} libraries ksight links comes from $BASE or a package the Dockerfile names"
else
	not_ok libraries-packaged "not from a named package: ${unnamed[*]:-ksight links nothing?}"
fi
unused=() missing=()
for p in "${NAMED[@]}"; do
	grep -qx "$p" <<<"$IMAGE_PKGS" || missing+=("$p")
	[ "$p" = ca-certificates ] && continue
	[ "$p" = libcurl4 ] && continue # opened on the first Kubernetes API call (user/lazy_curl.c): checked below
	[ "$p" = libmicrohttpd12 ] && continue # opened when `run` starts (user/lazy_mhd.c): checked below, and served below
	[ -n "${USED[$p]:-}${LOADED[$p]:-}" ] || unused+=("$p")
done
if in_image sh -c 'ldconfig -p | grep -q "libcurl.so.4 "'; then
	ok libcurl-loadable "libcurl.so.4, which ksight opens when a Kubernetes API is configured, is in the image"
else
	not_ok libcurl-loadable "no libcurl.so.4 in the image: ksight could not reach the Kubernetes API"
fi
if in_image sh -c 'ldconfig -p | grep -q "libmicrohttpd.so.12 "'; then
	ok libmicrohttpd-loadable "libmicrohttpd.so.12, which ksight run opens for its endpoint, is in the image"
else
	not_ok libmicrohttpd-loadable "no libmicrohttpd.so.12 in the image: ksight run could not serve /metrics"
fi
if [ ${#NAMED[@]} -gt 0 ] && [ ${#missing[@]} -eq 0 ] && [ ${#unused[@]} -eq 0 ]; then
	ok named-packages "the ${#NAMED[@]} packages of the runtime apt-get install are installed, and each but ca-certificates provides a library ksight loads: ${NAMED[*]}"
else
	not_ok named-packages "named but not installed: ${missing[*]:-none}; named but ksight loads nothing from them: ${unused[*]:-none}"
fi
if [ -s "$R/etc/ssl/certs/ca-certificates.crt" ]; then
	ok ca-bundle "/etc/ssl/certs/ca-certificates.crt for libcurl: $(grep -c 'BEGIN CERTIFICATE' "$R/etc/ssl/certs/ca-certificates.crt") certificates"
else
	not_ok ca-bundle "no /etc/ssl/certs/ca-certificates.crt: libcurl cannot verify the API server"
fi

added=$(comm -13 <(echo "$BASE_PKGS") <(echo "$IMAGE_PKGS"))
build_only=$(grep -E -- '-dev$|^(gcc|g\+\+|cpp|clang|llvm|lld|binutils|make|bpftool|pkg-config|pkgconf|libclang|libllvm)([-.0-9]|$)' <<<"$added")
tools=()
for t in cc gcc clang llc ld as make bpftool pkg-config; do
	for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
		[ -e "$R$d/$t" ] && tools+=("$d/$t")
	done
done
[ -e "$R/src" ] && tools+=(/src)
if [ -z "$build_only" ] && [ ${#tools[@]} -eq 0 ]; then
	ok no-build-tools "no compilers, linkers, make, bpftool, -dev packages or /src; $(grep -c . <<<"$added") packages over $BASE: $(echo $added)"
else
	not_ok no-build-tools "build-stage things in the image: $(echo $build_only) ${tools[*]:-}"
fi

# ---------------------------------------------------------------- running it
# pod_run SCRIPT ARGS...: bash SCRIPT with "$@" = ARGS, in a mount namespace where
# $root is the image's root set up as the DaemonSet's pod sees it, and in a
# network namespace of its own with lo up (the pod's; hostNetwork is false), in
# the host's pid namespace (hostPID). The mounts go away with the namespace.
jq -r '.mounts[] | "\(.host)\t\(.path)\t\(.ro)\t\(.type)"' <<<"$DS" >"$W/mounts"
POD_PRELUDE='
set -e
root=$1 mounts=$2 ro=$3
shift 3
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t tmpfs -o nosuid,mode=755 dev "$root/dev"
for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
	IFS=: read -r n ma mi <<<"$d"
	mknod -m 666 "$root/dev/$n" c "$ma" "$mi"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
mount -t tmpfs -o nosuid,nodev shm "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
while IFS="	" read -r host path vro type; do
	[ "$type" = DirectoryOrCreate ] && mkdir -p "$host"
	mkdir -p "$root$path"
	mount --rbind "$host" "$root$path"
	[ "$vro" = true ] && mount -o remount,bind,ro "$root$path"
done <"$mounts"
[ "$ro" = true ] && mount -o remount,bind,ro "$root"
ip link set lo up
set +e
'
pod_run() {
	local script=$1
	shift
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin unshare --mount --propagation private --net \
		bash -c "$POD_PRELUDE$script" pod "$R" "$W/mounts" "$(jq -r .readOnlyRoot <<<"$DS")" "$@" </dev/null
}
# the container's process: python3 EXEC ROOT CAPS ENVFILE ARGV... chroots to ROOT,
# keeps only CAPS (capability numbers, comma-separated; "all": privileged) in the
# bounding set, so that ARGV run as root has those alone, and execs ARGV with the
# environment in ENVFILE (the image's Env and the DaemonSet's env)
cat >"$W/exec.py" <<'EOF'
import ctypes, os, sys
root, keep, envfile, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
libc = ctypes.CDLL(None, use_errno=True)
env = dict(l.split("=", 1) for l in open(envfile).read().splitlines() if "=" in l)
os.chroot(root)
os.chdir("/")
if keep != "all":
	want = {int(c) for c in keep.split(",") if c}
	last = int(open("/proc/sys/kernel/cap_last_cap").read())
	for cap in range(last + 1):
		if cap not in want and libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
			sys.exit("prctl(PR_CAPBSET_DROP, %d): %s" % (cap, os.strerror(ctypes.get_errno())))
os.execve(argv[0], argv, env)
EOF
printf '%s\n' "${IMAGE_ENV[@]}" HOSTNAME=ksight-image-test >"$W/env"
for e in $(jq -r '.env[]' <<<"$DS"); do
	[ "$e" = NODE_NAME ] && echo "NODE_NAME=$(hostname)" >>"$W/env"
done
# in_pod CMD...: CMD as the container's process, with the capabilities in CAPS
CAPS=all
in_pod() {
	pod_run 'exec python3 "$@"' "$W/exec.py" "$R" "$CAPS" "$W/env" "$@"
}
# the numbers of capabilities named CAP_X (setpriv lists them in number order)
cap_nums() {
	local c
	for c in "$@"; do
		c=${c,,}
		setpriv --list-caps | awk -v c="${c#cap_}" '$1 == c { print NR - 1 }'
	done | paste -sd,
}

# the signals probes -o json shows running
signals_running() { jq -r '[.signals[] | select(.running) | .signal] | sort | join(" ")' 2>/dev/null; }
want=$(tr ' ' '\n' <<<"$SIGNALS" | sort | paste -sd' ')
[ "$NO_RUN" = 1 ] && exit $FAILED

# `flock LOCK CMD` leaves its descriptor of LOCK open in CMD: a caller that holds
# the lock already (flock LOCK tests/run-all.sh) is not waited for
held=0
for fd in /proc/$$/fd/*; do
	[ -n "$LOCK" ] && [ "$(readlink "$fd")" = "$(readlink -f "$LOCK")" ] && held=1
done
if [ -n "$LOCK" ] && [ "$held" = 0 ]; then
	exec 9>"$LOCK"
	echo "# waiting for $LOCK"
	flock 9
	echo "# $LOCK taken"
else
	LOCK=
fi
# as the DaemonSet runs it: privileged
if [ "$(jq -r .privileged <<<"$DS")" != true ]; then
	echo "# the DaemonSet is not privileged: running with its capabilities.add only"
	CAPS=$(cap_nums $(jq -r '.capsAdd[]' <<<"$DS"))
fi
in_pod "$BIN" probes -o json >"$W/probes.json" 2>"$W/probes.err"
rc=$?
got=$(signals_running <"$W/probes.json")
if [ $rc -eq 0 ] && [ "$got" = "$want" ]; then
	ok probes "ksight probes -o json in the pod: every signal running ($got): $(jq -r '[.signals[] | .probes[] | "\(.probe)=\(.attached)"] | join(" ")' "$W/probes.json")"
else
	not_ok probes "ksight probes -o json (exit $rc): running '$got', want '$want': $(jq -c '[.signals[]? | select(.running | not) | {signal, error}]' "$W/probes.json" 2>/dev/null) $(head -c 300 "$W/probes.err")"
fi
out=$(in_pod "$BIN" --version 2>&1)
if [[ $out == "ksight $VERSION"* ]]; then ok version "ksight --version: $out"; else not_ok version "ksight --version: $out"; fi

# The comment over the DaemonSet's securityContext names the capabilities ksight
# needs (privileged is for the runtimes' seccomp and AppArmor profiles): with
# those alone every signal runs, and without CAP_BPF none does.
named_caps=$(sed -n '/securityContext:/,/privileged:/p' "$ROOT/deploy/daemonset.yaml" | grep -o 'CAP_[A-Z_]*' | sort -u)
CAPS=$(cap_nums $named_caps)
got=$(in_pod "$BIN" probes -o json 2>"$W/caps.err" | signals_running)
if [ -n "$named_caps" ] && [ "$got" = "$want" ]; then
	ok caps-named "with only $(echo $named_caps) (the securityContext comment's list) every signal runs"
else
	not_ok caps-named "with only the comment's capabilities ($(echo $named_caps)): running '$got', want '$want' $(head -c 200 "$W/caps.err")"
fi
CAPS=$(cap_nums $(grep -vx 'CAP_BPF\|CAP_SYS_ADMIN' <<<"$named_caps"))
got=$(in_pod "$BIN" probes -o json 2>/dev/null | signals_running)
if [ -z "$got" ]; then
	ok caps-needed "without CAP_BPF and CAP_SYS_ADMIN no signal runs: the capabilities are needed"
else
	not_ok caps-needed "without CAP_BPF and CAP_SYS_ADMIN '$got' still run: the check above proves nothing"
fi
CAPS=all

# ENTRYPOINT + CMD (docker run) and ENTRYPOINT + args (the DaemonSet), served in
# the pod's network namespace, scraped from it
# With TRACE=1 it runs under strace, for the files it uses.
SERVE='
port=$1 log=$2 trace=$3 tracer=
shift 3
if [ "$trace" = 1 ]; then
	# the traced process says its pid, then becomes the command (exec keeps it)
	strace -f -qq -e trace=%file -o "$log.strace" \
		bash -c '\''echo $$ >"$0.pid"; exec "$@"'\'' "$log" "$@" >"$log" 2>&1 &
	tracer=$!
	for i in $(seq 50); do pid=$(cat "$log.pid" 2>/dev/null); [ -n "$pid" ] && break; sleep 0.1; done
	echo "traced=${pid:-none}"
	[ -n "$pid" ] || pid=$tracer
else
	"$@" >"$log" 2>&1 &
	pid=$!
fi
up=0
for i in $(seq 100); do
	if curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; then up=1; break; fi
	kill -0 $pid 2>/dev/null || break
	sleep 0.2
done
echo "up=$up"
if [ $up = 1 ]; then
	echo "healthz=$(curl -s "http://127.0.0.1:$port/healthz" | head -c 60 | tr -d "\n")"
	curl -sf "http://127.0.0.1:$port/metrics" >"$log.metrics"
fi
kill -TERM $pid 2>/dev/null
for i in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -0 $pid 2>/dev/null && { kill -KILL $pid; echo stuck=1; }
# strace exits with the status of the command it traced
wait ${tracer:-$pid}
echo "exit=$?"
'
serve_check() { # serve_check NAME TRACE ARGV...
	local name=$1 trace=$2 out n exitc
	shift 2
	out=$(pod_run "$SERVE" "$port" "$W/$name.log" "$trace" python3 "$W/exec.py" "$R" "$CAPS" "$W/env" "$@" 2>&1)
	n=$(grep -c '^ksight_' "$W/$name.log.metrics" 2>/dev/null)
	exitc=$(sed -n 's/^exit=//p' <<<"$out")
	if [ "${n:-0}" -gt 0 ] && { ! command -v promtool >/dev/null || promtool check metrics <"$W/$name.log.metrics" >"$W/$name.promtool" 2>&1; }; then
		ok "$name" "$* serves /healthz ($(sed -n 's/^healthz=//p' <<<"$out")) and /metrics ($n ksight_ samples$(command -v promtool >/dev/null && echo ', promtool check metrics passes')) on :$port"
	else
		not_ok "$name" "$* did not serve /metrics on :$port: $(head -n 5 "$W/$name.log" | tr '\n' ' ') $(head -n 3 "$W/$name.promtool" 2>/dev/null | tr '\n' ' ')"
		sed 's/^/#   /' <<<"$out"
	fi
	if [ "$exitc" = 0 ] && ! grep -q '^stuck=1' <<<"$out"; then
		ok "$name-sigterm" "it stops with exit 0 on SIGTERM"
	else
		not_ok "$name-sigterm" "on SIGTERM it exited with ${exitc:-?}$(grep -q '^stuck=1' <<<"$out" && echo ', after SIGKILL')"
	fi
}
serve_check serve-cmd 0 "${ARGV[@]}"
# the DaemonSet's command, with the files it opens: each volume the DaemonSet
# mounts is one ksight uses (a host path it does not need is exposure for nothing)
serve_check serve-daemonset 1 "${DS_ARGV[@]}"
if [ -s "$W/serve-daemonset.log.strace" ]; then
	# what ksight opened: from its execve on (before it, bash and exec.py ran)
	awk -v bin="$BIN" 'index($0, "execve(\"" bin "\"") { f = 1 } f' "$W/serve-daemonset.log.strace" |
		grep -o '"/[^"]*"' | tr -d '"' | sort -u >"$W/paths"
	used=() unused=()
	while IFS="	" read -r host path _; do
		if awk -v p="$path" '$0 == p || index($0, p "/") == 1 { f = 1 } END { exit !f }' "$W/paths"; then
			used+=("$path")
		else
			unused+=("$path (hostPath $host)")
		fi
	done <"$W/mounts"
	if [ ${#unused[@]} -eq 0 ]; then
		ok volumes-used "ksight uses every volume the DaemonSet mounts: ${used[*]}"
	else
		not_ok volumes-used "the DaemonSet mounts what ksight never opens: ${unused[*]} (it uses: ${used[*]:-nothing})"
	fi
else
	not_ok volumes-used "no strace of the DaemonSet's command"
fi
[ -n "$LOCK" ] && flock -u 9

exit $FAILED
