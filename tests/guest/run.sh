#!/usr/bin/env bash
# ksight on Debian's 5.10 (bullseye), 6.1 (bookworm), 6.12 (bookworm-backports) and 6.18
# (trixie-backports: the development host's own series, with the kprobes and fentry that host
# lacks) cloud kernels, end to end, each in a qemu guest (TCG, no KVM needed).
#
# This host's kernel has no kprobes and refuses fentry; Debian's kernels have both, and BTF.
# ksight is built here once (CO-RE against this host's vmlinux.h) and run unchanged in every
# guest, where each scenario (init/NAME.sh in the guest, check_NAME() in check.py on the host)
# forces every variant of its probe points that the kernel can take with --probe, and checks
# the numbers against the kernel's own accounting; `ksight probes` is checked against what the
# kernel has (tracefs, /proc/kallsyms). Scenarios: oom (every mark_victim variant, and
# memory.oom.group kills), netdrop (kfree_skb variants: drops with reasons on 5.17+, "unknown"
# before, exactly Udp NoPorts; TCP retransmits), fserr (ext4 corruption = errors_count, ENOSPC
# block errors, XFS corruption and shutdown), apilat (a plain-TCP server with fixed delays on
# 127.0.0.1 and ::1, registered as the API server: every send, recv and rtt variant forced, the
# response histogram's count and histogram_quantile p50/p99 against what the client measured,
# bytes, connects, a refusal, RTT, SYN retransmits against RetransSegs).
#
# The newest signed linux-image-SERIES.*-cloud-amd64 of each series comes from Debian's archive
# through a private apt configuration under /var/cache/ksight-guest (its own sources.list,
# lists and archives: the machine's own apt sources are left as they are), extracted and cached
# there. A kernel not to be had (no network, nothing cached): "ok - # SKIP ..." for it.
# Installs the host tools it needs. Needs root. Prints "ok - ..." / "not ok - ..." and one
# summary line per guest; exits non-zero if anything failed.
#
# KSIGHT_GUEST_SERIES="5.10 6.1 6.12 6.18"   the kernels
# KSIGHT_GUEST_SCENARIOS="oom netdrop fserr apilat"   the scenarios, in order
# KSIGHT_GUEST_JOBS=2                   guests at once (on 2 cores without KVM, the three guests took
#                                       about 160 s two at a time, 240 s one at a time)
# KSIGHT_GUEST_KEEP=DIR                 keeps each guest's console and settings in DIR/SERIES/
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/guest
CACHE=/var/cache/ksight-guest
SERIES=${KSIGHT_GUEST_SERIES:-5.10 6.1 6.12 6.18}
SCENARIOS=${KSIGHT_GUEST_SCENARIOS:-oom netdrop fserr apilat}
JOBS=${KSIGHT_GUEST_JOBS:-2}
WORK=$(mktemp -d /tmp/ksight-guest.XXXXXX)
FAILED=0

on_exit() {
	local s
	if [ -n "${KSIGHT_GUEST_KEEP:-}" ]; then
		for s in $SERIES; do
			[ -d "$WORK/$s" ] || continue
			mkdir -p "$KSIGHT_GUEST_KEEP/$s" && cp -a "$WORK/$s"/console.txt "$WORK/$s"/settings \
				"$KSIGHT_GUEST_KEEP/$s"/ 2>/dev/null
		done
	fi
	rm -rf "$WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILED=1; }
note() { echo "# $*"; }
indent() { head -n "${2:-40}" "$1" | sed 's/^/#   /'; }
bail() { not_ok "$*"; exit 1; }

t0=$SECONDS
[ "$(id -u)" -eq 0 ] || bail "runs as root (apt, $CACHE)"
export DEBIAN_FRONTEND=noninteractive

# --- 1. the kernels: Debian's archive through a private apt configuration ---------------------

APT=$CACHE/apt
APT_OPTS=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o "Dir::Cache::Archives=$APT/archives"
	-o APT::Get::List-Cleanup=0)
# the suites each series comes from (its security updates included)
write_sources() {
	local a=http://deb.debian.org/debian s=http://deb.debian.org/debian-security
	local k='[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]'
	mkdir -p "$APT"/{lists/partial,cache,archives/partial}
	cat >"$APT/sources.list.tmp" <<-EOF
	deb $k $a bullseye main
	deb $k $s bullseye-security main
	deb $k $a bookworm main
	deb $k $a bookworm-updates main
	deb $k $s bookworm-security main
	deb $k $a bookworm-backports main
	deb $k $a trixie-backports main
	EOF
	mv "$APT/sources.list.tmp" "$APT/sources.list"
	# apt fetches as _apt where it can write
	chown -R _apt "$APT/lists" "$APT/archives" 2>/dev/null
}
apt_updated=0
apt_update() {
	[ $apt_updated -eq 1 ] && return 0
	apt_updated=1
	apt-get "${APT_OPTS[@]}" update -qq >"$WORK/apt-update.log" 2>&1
}
# newest_pkg SERIES: the newest linux-image-SERIES.N...-cloud-amd64 the private lists know
newest_pkg() {
	local re="^linux-image-${1//./\\.}\\.[0-9]+[-+][0-9a-z.+-]*cloud-amd64\$"
	apt-cache "${APT_OPTS[@]}" search --names-only "$re" 2>/dev/null | awk '{ print $1 }' |
		grep -E "$re" | grep -vE -- '-(dbg|unsigned)$' | sort -V | tail -n 1
}
pkg_version() {
	apt-cache "${APT_OPTS[@]}" show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1
}
# newest complete cache entry of a series, if any
cached_kernel() {
	local d
	for d in $(ls -d "$CACHE"/linux-image-"$1".[0-9]*_* 2>/dev/null | sort -V -r); do
		[ -f "$d/complete" ] && { echo "$d"; return 0; }
	done
	return 1
}
# fetch_kernel PKG VERSION DEST: apt-get download + extract into DEST (atomically)
fetch_kernel() {
	local pkg=$1 ver=$2 dest=$3 dl=$WORK/deb
	rm -rf "$dl" && mkdir -p "$dl" && chown _apt "$dl" 2>/dev/null
	(cd "$dl" && apt-get "${APT_OPTS[@]}" download "$pkg=$ver") >"$WORK/apt-download.log" 2>&1 || return 1
	rm -rf "$dest.tmp"
	dpkg-deb -x "$dl"/*.deb "$dest.tmp" || { echo "dpkg-deb -x failed" >>"$WORK/apt-download.log"; return 2; }
	touch "$dest.tmp/complete"
	rm -rf "$dest" && mv "$dest.tmp" "$dest"
	rm -rf "$dl"
}
# get_kernel SERIES: KDIR of the newest kernel of SERIES (fetched if not cached), or why not
get_kernel() {
	local s=$1 pkg ver dest rc
	pkg=$(newest_pkg "$s")
	if [ -z "$pkg" ] || [ ! -f "$CACHE/${pkg}_$(pkg_version "$pkg")/complete" ]; then
		# no lists yet, or stale ones: the version they name may be gone from the mirror
		apt_update
		pkg=$(newest_pkg "$s")
	fi
	if [ -z "$pkg" ]; then
		why="apt knows no linux-image-$s.*-cloud-amd64"
		[ -s "$WORK/apt-update.log" ] && why="$why (apt-get update: $(grep -E '^(E|W|Err):' "$WORK/apt-update.log" | tail -n 1))"
		return 1
	fi
	ver=$(pkg_version "$pkg")
	dest=$CACHE/${pkg}_$ver
	[ -f "$dest/complete" ] && { KDIR=$dest; return 0; }
	fetch_kernel "$pkg" "$ver" "$dest"; rc=$?
	[ $rc -eq 2 ] && { indent "$WORK/apt-download.log"; bail "extract $pkg $ver"; }
	[ $rc -eq 0 ] && { KDIR=$dest; return 0; }
	why="apt-get download $pkg=$ver: $(grep -E '^(E|Err):' "$WORK/apt-download.log" | tail -n 1)"
	return 1
}

# one fetch at a time into the cache
mkdir -p "$CACHE" && exec 9>"$CACHE/.lock" && flock 9 || bail "lock $CACHE/.lock"
write_sources
declare -A KDIRS=()
for s in $SERIES; do
	KDIR="" why=""
	if ! get_kernel "$s"; then
		if KDIR=$(cached_kernel "$s"); then
			note "could not fetch the newest $s kernel ($why); using the cached $(basename "$KDIR")"
		else
			echo "ok - # SKIP $s kernel package unavailable: ${why:-unknown}"
			continue
		fi
	fi
	KDIRS[$s]=$KDIR
	ok "$s: kernel $(basename "$KDIR") ready in $CACHE"
done
exec 9>&-
[ ${#KDIRS[@]} -eq 0 ] && { note "no guest kernel to boot"; exit 0; }
note "kernels ready after $((SECONDS - t0))s"

# --- 2. host tools ----------------------------------------------------------------------------

missing=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in qemu-system-x86 busybox-static cpio e2fsprogs xfsprogs kmod xz-utils zstd bpftool; do
	installed $p || missing+=($p)
done
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
	note "installing ${missing[*]}"
	if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
		>"$WORK/apt-install.log" 2>&1; then
		indent "$WORK/apt-install.log"
		bail "install ${missing[*]}"
	fi
fi
ok "host tools (qemu, busybox-static, cpio, e2fsprogs, xfsprogs, kmod, bpftool, python3) are installed"

# a package's modules.dep is made by its postinst (depmod): make it for the extracted tree
for s in "${!KDIRS[@]}"; do
	k=${KDIRS[$s]}
	v=$(ls "$k"/boot/vmlinuz-* 2>/dev/null | head -n 1); v=${v##*/vmlinuz-}
	# trixie's packages put the modules under usr/lib (merged /usr): lib is that, as on the system
	[ ! -e "$k/lib" ] && [ -d "$k/usr/lib/modules" ] && ln -s usr/lib "$k/lib"
	[ -n "$v" ] && [ ! -f "$k/lib/modules/$v/modules.dep" ] && { depmod -b "$k" "$v" || bail "depmod for $s"; }
done

# --- 3. build ksight and the test tools once (our own copy: others may be building in build/) --

BUILD=$WORK/build
if make -C "$ROOT" OUTPUT="$BUILD" "$BUILD/ksight" "$BUILD/tests/memhog" "$BUILD/tests/netdrop_flood" \
	"$BUILD/tests/syn_retry" "$BUILD/tests/apilat_peer" >"$WORK/build.log" 2>&1; then
	ok "build ksight, memhog, netdrop_flood, syn_retry and apilat_peer"
else
	indent "$WORK/build.log" 60
	bail "build ksight, memhog, netdrop_flood, syn_retry and apilat_peer"
fi

# --- 4. the guests, JOBS at a time; each one's output in one piece when it ends ---------------

t2=$SECONDS
declare -A PID=() START=()
report() { # SERIES RC: its output, then its summary line
	local s=$1 rc=$2 secs=$(( $(date +%s) - START[$1] )) proven bad
	cat "$WORK/$s/out"
	proven=$(sed -n 1p "$WORK/$s/summary" 2>/dev/null)
	bad=$(sed -n 2p "$WORK/$s/summary" 2>/dev/null)
	local line="guest $s ($(basename "${KDIRS[$s]}")): ${secs}s, proven: ${proven:-none}${bad:+; NOT proven: $bad}"
	if [ "$rc" -eq 0 ]; then ok "$line"; else not_ok "$line"; fi
	SUMMARIES+=("$rc $line")
}
SUMMARIES=()
running=0
for s in $SERIES; do
	[ -n "${KDIRS[$s]:-}" ] || continue
	while [ $running -ge "$JOBS" ]; do
		wait -n -p done_pid; rc=$?
		for d in "${!PID[@]}"; do [ "${PID[$d]}" = "$done_pid" ] && { unset "PID[$d]"; report "$d" $rc; }; done
		running=$((running - 1))
	done
	mkdir -p "$WORK/$s"
	START[$s]=$(date +%s)
	bash "$HERE/guest.sh" "${KDIRS[$s]}" "$BUILD" "$s" "$SCENARIOS" "$WORK/$s" >"$WORK/$s/out" 2>&1 &
	PID[$s]=$!
	running=$((running + 1))
done
while [ ${#PID[@]} -gt 0 ]; do
	wait -n -p done_pid; rc=$?
	for d in "${!PID[@]}"; do [ "${PID[$d]}" = "$done_pid" ] && { unset "PID[$d]"; report "$d" $rc; }; done
done

echo "# --- guests ($JOBS at a time, $((SECONDS - t2))s for all; total $((SECONDS - t0))s)"
for l in "${SUMMARIES[@]}"; do echo "# ${l#* }"; done
exit $FAILED
