#!/usr/bin/env bash
# Build the Dockerfile's images without Docker, then check the runtime image.
#   sudo scripts/check-image.sh [--no-cache]
#
# This is a small interpreter for the Dockerfile. It reads the stages and steps
# from the Dockerfile, so it always checks what the Dockerfile actually says:
#   FROM debian:SUITE[-slim]  a `debootstrap --variant=minbase SUITE` root, set up
#                             the way Debian's Docker images are: apt sources,
#                             policy-rc.d, the apt/dpkg tweaks and, for -slim, no
#                             docs, man pages or locales
#   WORKDIR, ARG, ENV         as Docker handles them
#   COPY SRC... DEST          from the build context, which here is the files in
#                             `git ls-files`, taken from the work tree
#   COPY --from=STAGE         from that stage's root
#   RUN (shell form)          /bin/sh -c in a chroot, inside a private mount
#                             namespace with /proc, read-only /sys (no submounts)
#                             and a small /dev, like a `docker build` step
#   EXPOSE/ENTRYPOINT/CMD     recorded and checked
# Any other instruction stops the script: extend it instead of ignoring it.
#
# Then it checks the final stage's root the way the DaemonSet runs it (privileged,
# read-only root, /sys with btf, tracefs, bpffs and cgroup, /proc): the binary's
# libraries all resolve and each comes from a package the Dockerfile names (and
# each named package is used), no build tools came along, --version, --help,
# `probes -o json` shows the oom signal running, and ENTRYPOINT + CMD serves
# /metrics on the EXPOSEd port in a network namespace of its own.
#
# Needs root. Installs debootstrap, jq, curl and iproute2 with apt-get if they are
# missing. The mirror is the one this machine's apt uses (/etc/apt/sources.list
# or sources.list.d); KSIGHT_MIRROR and KSIGHT_SECURITY_MIRROR override it.
#
# Caches in /var/cache/ksight-image (KSIGHT_IMAGE_CACHE), the way Docker's overlay2
# driver does: the debootstrapped root is kept as a directory, each stage's root is
# an overlayfs mount over it, and what each RUN changed (the overlay's upper
# directory) is kept as a layer, keyed like Docker's build cache (the steps before
# it, the files each COPY brought in, and this script). A second run with nothing
# changed copies nothing and runs no RUN again. --no-cache runs every RUN.
# Logs of each step go to $KSIGHT_IMAGE_CACHE/logs. Whatever happens, the overlay
# mounts and the temporary directory are removed on exit.
#
# Ends with "N passed, N failed"; exits non-zero when anything failed.
set -uo pipefail

NO_CACHE=0
for arg in "$@"; do
	case $arg in
	--no-cache) NO_CACHE=1 ;;
	-h | --help)
		sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*)
		echo "check-image: unknown option $arg (try --help)" >&2
		exit 2
		;;
	esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
DOCKERFILE=${KSIGHT_DOCKERFILE:-$REPO/Dockerfile} # another one only to test this script
SELF=$REPO/scripts/check-image.sh
CACHE=${KSIGHT_IMAGE_CACHE:-/var/cache/ksight-image}
LOGS=$CACHE/logs
# the environment of every command run in a root: what Docker gives a RUN step
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

passed=0
failed=0
WORK=
T0=$(date +%s)

ok() {
	passed=$((passed + 1))
	printf '  ok    %s\n' "$*"
}
bad() {
	failed=$((failed + 1))
	printf '  FAIL  %s\n' "$*"
}
note() { printf '        %s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }
# a step that later ones depend on failed: stop here (the EXIT trap reports)
abort() {
	bad "$*"
	echo "check-image: stopping; the checks after this one were not run" >&2
	exit 1
}
elapsed() { echo "$(($(date +%s) - $1))s"; }
# print the end of a log after a failure
show_log() {
	note "last lines of $1:"
	tail -n "${2:-25}" "$1" | sed 's/^/        | /'
}

# remove DIR and what is mounted under it (the stage roots' overlays; the
# /proc, /sys and /dev mounts live in private namespaces and go with them)
remove_tree() {
	local dir=$1 m left
	for m in $(findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1' | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	left=$(findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1')
	if [ -n "$left" ]; then
		echo "check-image: still mounted, $dir left in place: $left" >&2
		return 1
	fi
	rm -rf --one-file-system "$dir"
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	exec >&7 2>&8 # not into the log of the step that was interrupted
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		remove_tree "$WORK"
	fi
	printf '\ntotal %s; logs in %s\n' "$(elapsed "$T0")" "$LOGS"
	echo "$passed passed, $failed failed"
	if [ "$failed" -gt 0 ]; then exit 1; fi
	exit "$rc"
}
exec 7>&1 8>&2
trap cleanup EXIT
trap 'exec >&7 2>&8; echo "check-image: interrupted" >&2; failed=$((failed + 1)); exit 130' INT TERM

if [ "$(id -u)" -ne 0 ]; then
	echo "check-image: run as root (chroot, mounts and BPF need it)" >&2
	exit 1
fi
mkdir -p "$CACHE/layers"
exec 9>"$CACHE/lock"
if ! flock -n 9; then
	LOGS="$LOGS (of the other run)"
	echo "check-image: another check-image is running (lock $CACHE/lock)" >&2
	exit 1
fi
rm -rf "$LOGS"
mkdir -p "$LOGS"
# a run killed too hard for its trap left these
for d in "$CACHE"/work.*; do
	[ -d "$d" ] && remove_tree "$d"
done
# on the cache's file system: a RUN's changes become a cached layer by a rename
WORK=$(mktemp -d "$CACHE/work.XXXXXX")

# ---------------------------------------------------------------- host tools
section "host"
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v jq >/dev/null || need+=(jq)
command -v curl >/dev/null || need+=(curl)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing ${need[*]}"
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$LOGS/host-apt.log" 2>&1; then
		show_log "$LOGS/host-apt.log"
		abort "apt-get install ${need[*]}"
	fi
fi
ARCH=$(dpkg --print-architecture)
echo "$(debootstrap --version), arch $ARCH, kernel $(uname -r)"

# The URIs that this machine's apt uses for SUITE (deb lines only; one-line
# .list and deb822 .sources files alike), first match first.
apt_uris_for() {
	local suite=$1 f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v s="$suite" '
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if ($(i + 1) == s) print $i
			}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v s="$suite" '
			function flush(   n, i, t, u) {
				if (enabled != "no" && (" " types " ") ~ / deb / && (" " suites " ") ~ (" " s " ")) {
					n = split(uris, u, " ")
					for (i = 1; i <= n; i++) print u[i]
				}
				types = uris = suites = ""; enabled = "yes"; last = ""
			}
			BEGIN { enabled = "yes" }
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^[ \t]/ { if (last == "uris") uris = uris " " $0; else if (last == "suites") suites = suites " " $0; next }
			{
				key = tolower($0); sub(/:.*/, "", key)
				val = $0; sub(/^[^:]*:[ \t]*/, "", val)
				last = key
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "enabled") enabled = tolower(val)
			}
			END { flush() }' "$f"
	done | grep -E '^(https?|ftp|file)://' | sed 's|/*$||'
}

# ---------------------------------------------------------------- Dockerfile
# instructions, with continuation lines joined and comments dropped as Docker does
INSTR=()
parse_dockerfile() {
	local line buf=""
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		[[ $line =~ ^[[:space:]]*# ]] && continue
		[[ $line =~ ^[[:space:]]*$ ]] && continue
		if [[ $line =~ ^(.*)\\[[:space:]]*$ ]]; then
			buf+=${BASH_REMATCH[1]}
			continue
		fi
		INSTR+=("$buf$line")
		buf=""
	done <"$DOCKERFILE"
	[ -z "$buf" ] || INSTR+=("$buf")
}
parse_dockerfile
[ ${#INSTR[@]} -gt 0 ] || abort "no instructions in $DOCKERFILE"

# the packages of every `apt-get install` (or `apt install`) in a RUN line
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

# ---------------------------------------------------------------- roots
# ns_run MODE ROOT NET SCRIPT [ARGS...]
# Runs bash SCRIPT in a private mount namespace (and a network namespace of its
# own if NET=1, with lo up), with ROOT in $root and ARGS in "$@", after mounting:
#   build  /proc, read-only /sys without submounts, a small /dev: a `docker build` RUN
#   node   /proc, /sys with its submounts (btf, tracefs, bpffs, cgroup), a small
#          /dev, and ROOT itself read-only: the DaemonSet's privileged pod
# The mounts go away with the namespace, whatever happens to the script.
NS_PRELUDE='
set -e
mode=$1 root=$2 net=$3
shift 3
if [ "$mode" = node ]; then mount --bind "$root" "$root"; fi
mount --bind /proc "$root/proc"
if [ "$mode" = node ]; then
	mount --rbind /sys "$root/sys"
else
	mount --bind /sys "$root/sys"
	mount -o remount,bind,ro "$root/sys"
fi
mount -t tmpfs -o nosuid,mode=755 dev "$root/dev"
for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
	IFS=: read -r n ma mi <<<"$d"
	mknod -m 666 "$root/dev/$n" c "$ma" "$mi"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o nosuid,nodev shm "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
if [ "$mode" = node ]; then mount -o remount,bind,ro "$root"; fi
if [ "$net" = 1 ]; then ip link set lo up; fi
set +e
'
RUN_ENV=()
ns_run() {
	local mode=$1 root=$2 net=$3 script=$4
	local -a unshare_opts=(--mount --propagation private)
	shift 4
	[ "$net" = 1 ] && unshare_opts+=(--net)
	env -i PATH="$IMAGE_PATH" HOME=/root HOSTNAME=ksight-check "${RUN_ENV[@]}" \
		unshare "${unshare_opts[@]}" bash -c "$NS_PRELUDE$script" ns "$mode" "$root" "$net" "$@" </dev/null
}
# in_root MODE ROOT CMD...: CMD chrooted in ROOT
in_root() {
	local mode=$1 root=$2
	shift 2
	ns_run "$mode" "$root" 0 'exec chroot "$root" "$@"' "$@"
}

# What debuerreotype does to a debootstrapped root to make Debian's images, and
# the apt sources those images ship (the same suites as this machine's, if listed)
configure_root() {
	local root=$1 suite=$2 slim=$3 upd sec
	rm -f "$root/etc/apt/sources.list"
	{
		printf 'Types: deb\nURIs: %s\nSuites: %s' "$MIRROR" "$suite"
		upd=$(apt_uris_for "$suite-updates" | head -n 1)
		[ -n "$upd" ] && printf ' %s' "$suite-updates"
		printf '\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
		sec=${KSIGHT_SECURITY_MIRROR:-$(apt_uris_for "$suite-security" | head -n 1)}
		[ -n "$sec" ] && printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$sec" "$suite"
	} >"$root/etc/apt/sources.list.d/debian.sources"
	cp -L /etc/resolv.conf "$root/etc/resolv.conf"
	# no services start during installs
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 755 "$root/usr/sbin/policy-rc.d"
	echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
	local clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
	printf 'DPkg::Post-Invoke { %s };\nAPT::Update::Post-Invoke { %s };\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' \
		"$clean" "$clean" >"$root/etc/apt/apt.conf.d/docker-clean"
	echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
	echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
	echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
	[ "$slim" = 1 ] || return 0
	# -slim: dpkg leaves out docs (but copyrights), man pages, info and locales,
	# and the base's own are removed
	local -a excl=(/usr/share/doc/\* /usr/share/info/\* /usr/share/linda/\* /usr/share/lintian/overrides/\*
		/usr/share/locale/\* /usr/share/man/\* /usr/share/doc/kde/HTML/\*/\* /usr/share/gnome/help/\*/\*
		/usr/share/omf/\*/\*-\*.emf)
	local -a incl=(/usr/share/doc/\*/copyright /usr/share/doc/kde/HTML/C/\* /usr/share/gnome/help/\*/C/\*
		/usr/share/locale/all_languages /usr/share/locale/currency/\* /usr/share/locale/l10n/\*
		/usr/share/locale/languages /usr/share/locale/locale.alias /usr/share/omf/\*/\*-C.emf)
	local p
	local -a ex=() in=()
	{
		for p in "${excl[@]}"; do echo "path-exclude $p"; done
		for p in "${incl[@]}"; do echo "path-include $p"; done
	} >"$root/etc/dpkg/dpkg.cfg.d/docker"
	# find's -path, like dpkg, lets * match / too
	for p in "${excl[@]}"; do ex+=(-o -path "$root$p"); done
	for p in "${incl[@]}"; do in+=(-o -path "$root$p"); done
	find "$root/usr/share" ! -type d \( "${ex[@]:1}" \) ! \( "${in[@]:1}" \) -delete
	find "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale" "$root/usr/share/info" \
		-mindepth 1 -type d -empty -delete 2>/dev/null || true
}

# the debootstrapped minbase root for SUITE: a directory in the cache
base_dir_path() {
	local key
	key=$(printf '%s\n' "$1" minbase "$ARCH" "$MIRROR" "$(debootstrap --version)" | sha256sum | cut -c1-12)
	echo "$CACHE/base-$1-minbase-$ARCH-$key"
}
make_base_dir() { # make_base_dir SUITE DIR
	local suite=$1 dir=$2 t log
	t=$(date +%s)
	log=$LOGS/debootstrap-$suite.log
	rm -rf --one-file-system "$dir.tmp"
	# in a mount namespace of its own: its /proc and /sys mounts can't stay behind
	if ! unshare --mount --propagation private \
		debootstrap --variant=minbase --arch="$ARCH" "$suite" "$dir.tmp" "$MIRROR" >"$log" 2>&1; then
		show_log "$log"
		return 1
	fi
	# as in Debian's images: no package lists, no downloaded packages
	rm -rf "$dir.tmp/var/lib/apt/lists/"* "$dir.tmp/var/cache/apt/"*.bin "$dir.tmp/var/cache/apt/archives/"*.deb
	mv "$dir.tmp" "$dir" || return 1
	note "debootstrap --variant=minbase $suite: $(elapsed "$t"), kept in $dir"
}

# Layer cache: KEY follows every step of a stage, as Docker's build cache does.
# A stage's root is $sdir/root, an overlay of LOWERS (top first) with the upper
# directory $sdir/upper.
USED_FILES=()
KEY=
LOWERS=()
sdir=
key_add() { KEY=$(printf '%s\n%s\n' "$KEY" "$1" | sha256sum | cut -c1-16); }
mount_stage() {
	local IFS=:
	mkdir -p "$sdir/upper" "$sdir/work" "$sdir/root" &&
		mount -t overlay ksight-image -o "lowerdir=${LOWERS[*]},upperdir=$sdir/upper,workdir=$sdir/work" "$sdir/root"
}
# push_layer DIR: the stage's root becomes DIR over what it was, with an empty upper
# directory; with "commit", the current upper directory is first kept as DIR
push_layer() {
	local dir=$1 commit=${2:-}
	umount "$sdir/root" || return 1
	if [ "$commit" = commit ]; then
		rm -rf --one-file-system "$dir"
		mv "$sdir/upper" "$dir" || return 1
	fi
	rm -rf --one-file-system "$sdir/upper" "$sdir/work"
	LOWERS=("$dir" "${LOWERS[@]}")
	mount_stage
}

# COPY from the build context (git ls-files, from the work tree) into ROOT
mapfile -d '' CONTEXT < <(git -C "$REPO" ls-files -z)
copy_context() {
	local root=$1 dest=$2
	shift 2
	local -a srcs=("$@")
	local stage=$WORK/copy src f rel target n=0
	rm -rf "$stage"
	mkdir -p "$stage"
	for src in "${srcs[@]}"; do
		src=${src#./}
		src=${src%/}
		case $src in *'*'* | *'?'* | *'['*)
			echo "COPY: wildcards are not supported by this script ($src)" >&2
			return 1
			;;
		esac
		local found=0
		for f in "${CONTEXT[@]}"; do
			[ -e "$REPO/$f" ] || continue # deleted in the work tree
			if [ "$src" = . ] || [ "$src" = "" ]; then
				rel=$f
			elif [ "$f" = "$src" ]; then
				# a file: DEST is its new name unless DEST is a directory
				if [ ${#srcs[@]} -gt 1 ] || [[ $dest == */ ]]; then rel=$(basename "$f"); else rel=; fi
			elif [[ $f == "$src"/* ]]; then
				rel=${f#"$src"/}
			else
				continue
			fi
			found=1
			n=$((n + 1))
			if [ -z "$rel" ]; then target=$stage/.file; else target=$stage/tree/$rel; fi
			mkdir -p "$(dirname "$target")"
			cp -p "$REPO/$f" "$target"
		done
		if [ "$found" = 0 ]; then
			echo "COPY: $src is not in the build context (git ls-files)" >&2
			return 1
		fi
	done
	# what the files are decides the cache key, not when they were touched
	local sum
	sum=$(tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$stage" -cf - . | sha256sum | cut -c1-16)
	if [ -f "$stage/.file" ]; then
		mkdir -p "$root$(dirname "$dest")"
		cp -p "$stage/.file" "$root$dest" && chown 0:0 "$root$dest"
	else
		mkdir -p "$root$dest"
		tar --owner=0 --group=0 --numeric-owner -C "$stage/tree" -cf - . | tar -C "$root$dest" -xpf -
	fi || return 1
	echo "$n $sum"
}

# ---------------------------------------------------------------- the build
declare -A STAGE_ROOT   # stage name and index -> root
FINAL_ROOT='' FINAL_BASE_PKGS='' FINAL_APT_PKGS=() FINAL_FROM_COPIES=() FINAL_FROM_SRC=()
ENTRYPOINT='' CMD='' EXPOSE=''
stage=-1
root='' workdir=/
SCRIPT_SUM=$(sha256sum "$SELF" | cut -c1-16)
declare -A MIRRORS

for inst in "${INSTR[@]}"; do
	kw=${inst%%[[:space:]]*}
	kw=${kw^^}
	rest=${inst#*[[:space:]]}
	rest=${rest#"${rest%%[![:space:]]*}"}
	case $kw in
	FROM)
		stage=$((stage + 1))
		read -r image as name extra <<<"$rest"
		if [[ $image == --* ]] || { [ -n "${as:-}" ] && [ "${as,,}" != as ]; } || [ -n "${extra:-}" ]; then
			abort "FROM $rest: only 'FROM debian:SUITE[-slim] [AS name]' is supported"
		fi
		if [[ ! $image =~ ^(docker\.io/)?(library/)?debian:([a-z]+)(-slim)?$ ]]; then
			abort "FROM $image: only debian:SUITE and debian:SUITE-slim images can be made with debootstrap"
		fi
		suite=${BASH_REMATCH[3]}
		slim=0
		[ -n "${BASH_REMATCH[4]}" ] && slim=1
		section "stage $stage${name:+ ($name)}: FROM $image"
		if [ -z "${MIRRORS[$suite]:-}" ]; then
			MIRRORS[$suite]=${KSIGHT_MIRROR:-$(apt_uris_for "$suite" | head -n 1)}
			[ -n "${MIRRORS[$suite]}" ] ||
				abort "no Debian mirror for $suite in /etc/apt/sources.list{,.d}: set KSIGHT_MIRROR"
			echo "mirror for $suite: ${MIRRORS[$suite]} (from this machine's apt sources)"
		fi
		MIRROR=${MIRRORS[$suite]}
		t=$(date +%s)
		base=$(base_dir_path "$suite")
		USED_FILES+=("$base")
		if [ ! -d "$base" ]; then
			make_base_dir "$suite" "$base" || abort "debootstrap --variant=minbase $suite $MIRROR"
		fi
		sdir=$WORK/stage$stage
		root=$sdir/root
		LOWERS=("$base")
		mount_stage || abort "overlay mount of $base on $root"
		configure_root "$root" "$suite" "$slim"
		ok "FROM $image: minbase $suite root$([ "$slim" = 1 ] && echo ', slimmed') ($(elapsed "$t"))"
		STAGE_ROOT[$stage]=$root
		[ -n "${name:-}" ] && STAGE_ROOT[$name]=$root
		KEY=
		key_add "$base $image $SCRIPT_SUM"
		workdir=/
		RUN_ENV=()
		FINAL_ROOT=$root
		FINAL_BASE_PKGS=$(in_root build "$root" dpkg-query -W -f '${Package}\n' | sort)
		FINAL_APT_PKGS=()
		FINAL_FROM_COPIES=()
		FINAL_FROM_SRC=()
		ENTRYPOINT='' CMD='' EXPOSE=''
		name=
		;;
	WORKDIR)
		[[ $rest == /* ]] || rest=$workdir/$rest
		workdir=$rest
		mkdir -p "$root$workdir"
		key_add "WORKDIR $workdir"
		ok "WORKDIR $workdir"
		;;
	ARG | ENV)
		if [[ $rest =~ ^([A-Za-z_][A-Za-z0-9_]*)(=(.*))?$ ]] || { [ "$kw" = ENV ] && [[ $rest =~ ^([A-Za-z_][A-Za-z0-9_]*)()[[:space:]]+(.*)$ ]]; }; then
			var=${BASH_REMATCH[1]}
			val=${BASH_REMATCH[3]}
			val=${val#\"}
			val=${val%\"}
			if [ "$kw" = ARG ] && [ -z "${BASH_REMATCH[2]}" ]; then
				# no --build-arg here: an ARG without a default stays unset
				key_add "ARG $var"
				ok "ARG $var (no default: unset, as without --build-arg)"
				continue
			fi
			RUN_ENV+=("$var=$val")
			key_add "$kw $var=$val"
			ok "$kw $var=$val"
		else
			abort "$kw $rest: only one NAME=VALUE per line is supported"
		fi
		;;
	COPY)
		read -r -a words <<<"$rest"
		from=
		if [[ ${words[0]} == --from=* ]]; then
			from=${words[0]#--from=}
			words=("${words[@]:1}")
		fi
		[[ ${words[0]} == --* ]] && abort "COPY $rest: option ${words[0]} is not supported"
		[ ${#words[@]} -ge 2 ] || abort "COPY $rest: needs SRC and DEST"
		dest=${words[-1]}
		[[ $dest == /* ]] || dest=${workdir%/}/$dest
		[ "$dest" = "${workdir%/}/." ] && dest=${workdir%/}/
		if [ -n "$from" ]; then
			src_root=${STAGE_ROOT[$from]:-}
			[ -n "$src_root" ] || abort "COPY --from=$from: no such stage"
			[ ${#words[@]} -eq 2 ] || abort "COPY --from with several sources is not supported"
			src=${words[0]}
			[ -e "$src_root$src" ] || abort "COPY --from=$from $src: not there (the build stage did not make it)"
			if [ -d "$src_root$src" ]; then
				mkdir -p "$root$dest" && cp -a "$src_root$src/." "$root$dest/" || abort "COPY $rest"
			else
				[[ $dest == */ ]] && dest=$dest$(basename "$src")
				mkdir -p "$root$(dirname "$dest")" && cp -p "$src_root$src" "$root$dest" &&
					chown 0:0 "$root$dest" || abort "COPY $rest"
			fi
			key_add "COPY --from=$from $src $dest $(tar -C "$src_root" --sort=name --mtime=@0 -cf - ".$src" | sha256sum | cut -c1-16)"
			FINAL_FROM_COPIES+=("$dest")
			FINAL_FROM_SRC+=("$from:$src:$dest")
			ok "COPY --from=$from $src -> $dest ($(du -sh "$root$dest" | cut -f1))"
		else
			what=$(copy_context "$root" "$dest" "${words[@]:0:${#words[@]}-1}" 2>"$LOGS/copy.err") ||
				{ cat "$LOGS/copy.err" >&2; abort "COPY $rest"; }
			key_add "COPY $dest ${what#* }"
			ok "COPY ${words[*]} -> $dest (${what%% *} files from git ls-files)"
		fi
		;;
	RUN)
		[[ $rest == \[* ]] && abort "RUN $rest: the exec form is not supported"
		[[ $rest == --* ]] && abort "RUN $rest: RUN options are not supported"
		key_add "RUN $rest ${RUN_ENV[*]:-}"
		layer=$CACHE/layers/$KEY
		USED_FILES+=("$layer")
		short=$(printf '%s' "$rest" | tr -s ' \t' ' ' | cut -c1-90)
		log=$LOGS/stage$stage-run-$KEY.log
		t=$(date +%s)
		if [ "$NO_CACHE" = 0 ] && [ -d "$layer" ]; then
			push_layer "$layer" || abort "RUN $short: mounting the cached layer $layer"
			ok "RUN $short (cached: layer $KEY)"
		else
			echo "RUN $rest" >"$log"
			if ns_run build "$root" 0 'exec chroot "$root" /usr/bin/env --chdir="$1" /bin/sh -c "$2"' \
				"$workdir" "$rest" >>"$log" 2>&1; then
				ok "RUN $short ($(elapsed "$t"))"
				push_layer "$layer" commit || abort "keeping the layer in $layer"
			else
				show_log "$log" 40
				abort "RUN $short: failed after $(elapsed "$t"), log $log"
			fi
		fi
		mapfile -t pk < <(apt_install_packages "$rest")
		[ ${#pk[@]} -gt 0 ] && FINAL_APT_PKGS+=("${pk[@]}")
		;;
	EXPOSE)
		EXPOSE=$rest
		ok "EXPOSE $rest (recorded)"
		;;
	ENTRYPOINT | CMD)
		jq -e 'type == "array" and all(type == "string")' >/dev/null 2>&1 <<<"$rest" ||
			abort "$kw $rest: only the exec (JSON) form is supported"
		if [ "$kw" = ENTRYPOINT ]; then ENTRYPOINT=$rest; else CMD=$rest; fi
		ok "$kw $rest (recorded)"
		;;
	LABEL)
		ok "LABEL $rest (ignored)"
		;;
	*)
		abort "$kw: this instruction is not supported by scripts/check-image.sh; extend it"
		;;
	esac
done

# ---------------------------------------------------------------- build output
section "build stage output"
if [ "$stage" -lt 1 ]; then
	bad "the Dockerfile has one stage: expected a build and a runtime stage"
fi
bin=$(jq -r '.[0] // empty' <<<"${ENTRYPOINT:-[]}")
[ -n "$bin" ] || abort "the final stage has no ENTRYPOINT"
# the build stage's output is what the runtime stage copies to the ENTRYPOINT
build_root='' built=''
for c in "${FINAL_FROM_SRC[@]}"; do
	IFS=: read -r from src dest <<<"$c"
	[ "$dest" = "$bin" ] || [ "$dest$(basename "$src")" = "$bin" ] || continue
	build_root=${STAGE_ROOT[$from]}
	built=$src
done
[ -n "$built" ] || abort "the runtime stage copies nothing from another stage to its ENTRYPOINT $bin"
if head_out=$(in_root build "$build_root" readelf -h "$built" 2>&1) && grep -q 'Type:.*EXEC\|Type:.*DYN' <<<"$head_out"; then
	ok "$built in the build stage is an ELF $(grep -m1 'Machine:' <<<"$head_out" | sed 's/.*Machine:[[:space:]]*//') executable, $(du -h "$build_root$built" | cut -f1)"
else
	bad "$built in the build stage is not an ELF executable: $(head -n 2 <<<"$head_out")"
fi
mapfile -t NEEDED < <(in_root build "$build_root" readelf -d "$built" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
note "it links: ${NEEDED[*]}"

# ---------------------------------------------------------------- runtime image
section "runtime stage: what is in it"
R=$FINAL_ROOT
if [ -x "$R$bin" ]; then ok "ENTRYPOINT $bin is there and executable"; else abort "ENTRYPOINT $bin is not in the runtime image"; fi

ldd_out=$(in_root node "$R" ldd "$bin" 2>&1)
ldd_rc=$?
owner_of() { # owner_of ROOT LIBPATH -> the package that has the file in ROOT
	local r=$1 p=$2 c out=
	for c in "$p" "/usr$p" "${p#/usr}"; do
		out=$(in_root node "$r" dpkg -S "$c" 2>/dev/null | grep -v '^diversion' | head -n 1)
		[ -n "$out" ] && break
	done
	[ -n "$out" ] || out=$(in_root node "$r" dpkg -S "*/$(basename "$p")" 2>/dev/null | grep -v '^diversion' | head -n 1)
	out=${out%%:*}
	echo "${out%%,*}"
}
if [ $ldd_rc -eq 0 ] && ! grep -q 'not found' <<<"$ldd_out"; then
	ok "ldd $bin: all $(grep -c '=>' <<<"$ldd_out") libraries found"
else
	bad "ldd $bin: $(grep 'not found' <<<"$ldd_out" | sed 's/^[[:space:]]*//' | tr '\n' ';')"
	# where the build stage found them
	build_ldd=$(in_root node "$build_root" ldd "$built" 2>&1)
	fix=()
	for so in $(awk '/not found/ { print $1 }' <<<"$ldd_out"); do
		path=$(awk -v l="$so" '$1 == l && $2 == "=>" { print $3 }' <<<"$build_ldd")
		pkg=
		[ -n "$path" ] && pkg=$(owner_of "$build_root" "$path")
		fix+=("${pkg:-?($so)}")
		note "$so: $path in the build stage, from package ${pkg:-?}"
	done
	note "the runtime stage's apt-get install needs: ${fix[*]}"
fi

# the package of each library the binary links, in the runtime root
RUNTIME_PKGS=$(in_root node "$R" dpkg-query -W -f '${Package}\n' | sort)
declare -A LIB_PKG USED_PKG
unowned=() unnamed=()
for lib in "${NEEDED[@]}"; do
	path=$(awk -v l="$lib" '$1 == l && $2 == "=>" { print $3 }' <<<"$ldd_out")
	if [ -z "$path" ] || [ "$path" = not ]; then
		unowned+=("$lib (not found)")
		continue
	fi
	pkg=$(owner_of "$R" "$path")
	if [ -z "$pkg" ]; then
		unowned+=("$lib ($path belongs to no package)")
		continue
	fi
	LIB_PKG[$lib]=$pkg
	USED_PKG[$pkg]=1
	if printf '%s\n' "${FINAL_APT_PKGS[@]}" | grep -qx "$pkg"; then
		:
	elif grep -qx "$pkg" <<<"$FINAL_BASE_PKGS"; then
		:
	else
		unnamed+=("$lib from $pkg")
	fi
done
summary=$(for l in "${NEEDED[@]}"; do printf '%s<-%s ' "$l" "${LIB_PKG[$l]:-?}"; done)
note "libraries and their packages: $summary"
if [ ${#unowned[@]} -eq 0 ] && [ ${#unnamed[@]} -eq 0 ]; then
	ok "every library ksight links comes from the base image or a package the Dockerfile names"
else
	bad "libraries whose package the Dockerfile does not name: ${unnamed[*]:-} ${unowned[*]:-}"
	[ ${#unnamed[@]} -eq 0 ] ||
		note "name in the runtime stage's apt-get install: $(for u in "${unnamed[@]}"; do echo -n "${u##* from } "; done)"
fi
# the packages of every library the loader maps for ksight, directly or not
declare -A LOADED_PKG
while read -r path; do
	pkg=$(owner_of "$R" "$path")
	[ -n "$pkg" ] && LOADED_PKG[$pkg]=1
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$ldd_out")
missing_named=() unused_named=() indirect_named=()
for p in "${FINAL_APT_PKGS[@]}"; do
	grep -qx "$p" <<<"$RUNTIME_PKGS" || missing_named+=("$p")
	[ "$p" = ca-certificates ] && continue
	if [ -n "${USED_PKG[$p]:-}" ]; then
		:
	elif [ -n "${LOADED_PKG[$p]:-}" ]; then
		indirect_named+=("$p")
	else
		unused_named+=("$p")
	fi
done
if [ ${#missing_named[@]} -eq 0 ]; then
	ok "the ${#FINAL_APT_PKGS[@]} packages of the runtime apt-get install line are installed: ${FINAL_APT_PKGS[*]}"
else
	bad "named in apt-get install but not installed: ${missing_named[*]}"
fi
if [ ${#unused_named[@]} -eq 0 ]; then
	ok "each named package but ca-certificates provides a library ksight loads"
	[ ${#indirect_named[@]} -eq 0 ] ||
		note "${indirect_named[*]}: loaded through other libraries only (--as-needed dropped -l flags ksight does not use itself); their dependents pull them in anyway"
else
	bad "named in apt-get install but ksight loads nothing from them: ${unused_named[*]}"
fi
if printf '%s\n' "${FINAL_APT_PKGS[@]}" | grep -qx ca-certificates; then
	if [ -s "$R/etc/ssl/certs/ca-certificates.crt" ]; then
		ok "CA bundle for libcurl: /etc/ssl/certs/ca-certificates.crt, $(grep -c 'BEGIN CERTIFICATE' "$R/etc/ssl/certs/ca-certificates.crt") certificates"
	else
		bad "ca-certificates is installed but /etc/ssl/certs/ca-certificates.crt is missing or empty"
	fi
fi

added=$(comm -13 <(echo "$FINAL_BASE_PKGS") <(echo "$RUNTIME_PKGS"))
build_only=$(grep -E -- '-dev$|^(gcc|g\+\+|cpp|clang|llvm|lld|binutils|make|bpftool|pkg-config|pkgconf|libclang|libllvm)([-.0-9]|$)' <<<"$added" || true)
leftovers=()
[ -e "$R/src" ] && leftovers+=(/src)
for f in "${FINAL_FROM_COPIES[@]}"; do [ "$f" = "$bin" ] || leftovers+=("$f (COPY --from)"); done
if [ -z "$build_only" ] && [ ${#leftovers[@]} -eq 0 ]; then
	ok "nothing from the build stage but $bin: no compilers, headers or -dev packages, no /src"
else
	bad "build-stage things in the runtime image: $(echo $build_only) ${leftovers[*]:-}"
fi
note "packages added to the base: $(echo "$added" | grep -c .) ($(echo $added))"
note "runtime root: $(du -sh "$R" 2>/dev/null | cut -f1); build root: $(du -sh "$build_root" 2>/dev/null | cut -f1)"

section "runtime stage: running ksight (as the DaemonSet does: privileged, read-only root, host /sys and /proc)"
out=$(in_root node "$R" "$bin" --version 2>&1)
rc=$?
if [ $rc -eq 0 ] && [[ $out == ksight* ]]; then ok "ksight --version: $out"; else bad "ksight --version (exit $rc): $out"; fi
out=$(in_root node "$R" "$bin" --help 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q '^Usage: ksight' <<<"$out"; then
	ok "ksight --help: $(grep -c . <<<"$out") lines, commands: $(sed -n '/^Commands:/,/^$/p' <<<"$out" | awk 'NR > 1 && NF { printf "%s ", $1 }')"
else
	bad "ksight --help (exit $rc): $(head -n 3 <<<"$out")"
fi
if [ -r /sys/kernel/btf/vmlinux ]; then
	out=$(in_root node "$R" timeout 60 "$bin" probes -o json 2>"$LOGS/probes.err")
	rc=$?
	echo "$out" >"$LOGS/probes.json"
	if [ $rc -eq 0 ] && jq -e '.signals[] | select(.signal == "oom") | .running == true' >/dev/null 2>&1 <<<"$out"; then
		ok "ksight probes -o json: oom running on $(jq -r .kernel <<<"$out"), $(jq -r '[.signals[] | select(.signal == "oom") | .probes[] | "\(.probe) via \(.attached)"] | join(", ")' <<<"$out")"
	else
		bad "ksight probes -o json (exit $rc): oom is not running: $(jq -c '.signals[]? | {signal, running, error}' <<<"$out" 2>/dev/null) $(head -c 400 "$LOGS/probes.err")"
	fi
else
	bad "this kernel has no /sys/kernel/btf/vmlinux: cannot check ksight probes"
fi

# ENTRYPOINT + CMD, as `docker run` would start it, in a network namespace of its
# own so that ":PORT" listens on nothing but that namespace's addresses
port=${EXPOSE%%/*}
port=${port%% *}
mapfile -t argv < <(jq -r '.[]' <<<"$ENTRYPOINT"; [ -n "$CMD" ] && jq -r '.[]' <<<"$CMD")
if [ -n "$port" ] && ! printf '%s\n' "${argv[@]}" | grep -q -- ":$port\$"; then
	bad "EXPOSE $port but the command does not listen on :$port: ${argv[*]}"
fi
out=$(ns_run node "$R" 1 '
	curl=$1 port=$2 log=$3
	shift 3
	chroot "$root" "$@" >"$log" 2>&1 &
	pid=$!
	up=0
	for i in $(seq 50); do
		if "$curl" -sf -o /dev/null "http://127.0.0.1:$port/healthz"; then up=1; break; fi
		kill -0 $pid 2>/dev/null || break
		sleep 0.2
	done
	if [ $up = 1 ]; then
		echo "healthz=$("$curl" -s "http://127.0.0.1:$port/healthz" | head -c 60 | tr -d "\n")"
		echo "metrics=$("$curl" -sf "http://127.0.0.1:$port/metrics" | grep -c "^ksight_")"
	fi
	kill -TERM $pid 2>/dev/null
	for i in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
	kill -0 $pid 2>/dev/null && { kill -KILL $pid; echo stuck=1; }
	wait $pid
	echo "exit=$?"
	sed "s/^/log: /" "$log" | head -n 20
' "$(command -v curl)" "${port:-9436}" "$LOGS/serve-ksight.log" "${argv[@]}" 2>&1)
echo "$out" >"$LOGS/serve.log"
metrics=$(sed -n 's/^metrics=//p' <<<"$out")
exitc=$(sed -n 's/^exit=//p' <<<"$out")
if [ -n "$metrics" ] && [ "$metrics" -gt 0 ]; then
	ok "ENTRYPOINT+CMD (${argv[*]}) serves /healthz ($(sed -n 's/^healthz=//p' <<<"$out")) and /metrics ($metrics ksight_ samples) on :${port:-9436}"
else
	bad "ENTRYPOINT+CMD (${argv[*]}) did not serve /metrics on :${port:-9436}: $(grep '^log: ' <<<"$out" | head -n 5 | tr '\n' ' ')"
fi
if [ "$exitc" = 0 ] && ! grep -q '^stuck=1' <<<"$out"; then
	ok "it stops cleanly on SIGTERM (exit 0)"
else
	bad "on SIGTERM it exited with ${exitc:-?}$(grep -q '^stuck=1' <<<"$out" && echo ', after SIGKILL')"
fi

# ---------------------------------------------------------------- cache upkeep
# keep only what this run used (the current Dockerfile, repository and script)
for f in "$CACHE"/base-* "$CACHE"/layers/*; do
	[ -e "$f" ] || continue
	printf '%s\n' "${USED_FILES[@]}" | grep -qxF "$f" || rm -rf --one-file-system "$f"
done
section "cache: $(du -sh --one-file-system "$CACHE" | cut -f1) in $CACHE"
