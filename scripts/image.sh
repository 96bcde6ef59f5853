#!/usr/bin/env bash
# Build the image from the Dockerfile with buildah and write it as an OCI archive.
#   sudo scripts/image.sh [--no-cache] [--rebuild-bases]      (what `make image` runs)
#
# No registry is needed: the debian:bookworm and debian:bookworm-slim bases the
# Dockerfile starts FROM are made here with `debootstrap --variant=minbase` from
# the Debian mirror this machine's apt uses, set up the way Debian's own images
# are (apt sources, policy-rc.d, the apt/dpkg tweaks and, for -slim, no docs, man
# pages or locales), and committed into buildah's storage under those names. They
# are made once: a base that is there with the same recipe is used as it is, and
# one that was not made here (pulled from a registry) is used as well.
# Then `buildah bud --isolation chroot --layers` builds the Dockerfile (its RUN
# steps are cached as layers) into IMAGE (ksight:VERSION) and `buildah push`
# writes it to OUT (build/ksight-VERSION.oci.tar), which any OCI engine loads:
#   podman load -i OUT    skopeo copy oci-archive:OUT docker-daemon:ksight:VERSION
#
#   --no-cache       run every RUN step again (buildah bud --no-cache)
#   --rebuild-bases  make the debian bases again even if they are there
# Environment: KSIGHT_VERSION, GIT_COMMIT (default: from the Makefile and git),
# KSIGHT_MIRROR / KSIGHT_SECURITY_MIRROR (default: this machine's apt sources),
# KSIGHT_IMAGE_OUT (default OUT), KSIGHT_DOCKERFILE (another Dockerfile, to test
# the image suite's checks against a broken image). Needs root, buildah and debootstrap
# (scripts/setup.sh installs them). Logs go to build/image-logs/.
set -euo pipefail

NO_CACHE=0
REBUILD_BASES=0
for arg in "$@"; do
	case $arg in
	--no-cache) NO_CACHE=1 ;;
	--rebuild-bases) REBUILD_BASES=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*)
		echo "image: unknown option $arg (try --help)" >&2
		exit 2
		;;
	esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
VERSION=${KSIGHT_VERSION:-$(sed -n 's/^VERSION *:= *//p' "$REPO/Makefile")}
GIT_COMMIT=${GIT_COMMIT:-$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)}
IMAGE=ksight:$VERSION
DOCKERFILE=${KSIGHT_DOCKERFILE:-$REPO/Dockerfile}
OUT=${KSIGHT_IMAGE_OUT:-$REPO/build/ksight-$VERSION.oci.tar}
LOGS=$REPO/build/image-logs
SUITE=bookworm
ARCH=$(dpkg --print-architecture)

log() { printf 'image: %s\n' "$*"; }
die() {
	printf 'image: %s\n' "$*" >&2
	exit 1
}
# run CMD with its output in LOG; on failure show the end of LOG
logged() {
	local logf=$LOGS/$1
	shift
	if ! "$@" >"$logf" 2>&1; then
		tail -n 30 "$logf" | sed 's/^/image: | /' >&2
		die "failed: $* (log: $logf)"
	fi
}

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot isolation and mounts need it)"
for tool in buildah debootstrap jq; do
	command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh"
done
mkdir -p "$LOGS" "$(dirname "$OUT")"

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
			function flush(   n, i, u) {
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

MIRROR=${KSIGHT_MIRROR:-$(apt_uris_for "$SUITE" | head -n 1)}
[ -n "$MIRROR" ] || die "no Debian mirror for $SUITE in this machine's apt sources: set KSIGHT_MIRROR"
SECURITY=${KSIGHT_SECURITY_MIRROR:-$(apt_uris_for "$SUITE-security" | head -n 1)}
UPDATES=$(apt_uris_for "$SUITE-updates" | head -n 1)

# What debuerreotype does to a debootstrapped root to make Debian's images, and
# the apt sources those images ship (updates and security if this machine has them)
configure_root() {
	local root=$1
	rm -f "$root/etc/apt/sources.list"
	{
		printf 'Types: deb\nURIs: %s\nSuites: %s' "$MIRROR" "$SUITE"
		[ -n "$UPDATES" ] && printf ' %s' "$SUITE-updates"
		printf '\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
		[ -n "$SECURITY" ] &&
			printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$SECURITY" "$SUITE"
	} >"$root/etc/apt/sources.list.d/debian.sources"
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
	# as in Debian's images: no package lists, downloaded packages or logs of the bootstrap
	rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
		"$root/var/log/"*.log "$root/var/log/apt/"* "$root/debootstrap"
	# the engine provides these at run time
	: >"$root/etc/resolv.conf"
	: >"$root/etc/hostname"
}

# -slim: dpkg leaves out docs (but copyrights), man pages, info and locales from
# now on, and those of the base's own packages are removed
slim_root() {
	local root=$1 p
	local -a excl=(/usr/share/doc/\* /usr/share/info/\* /usr/share/linda/\* /usr/share/lintian/overrides/\*
		/usr/share/locale/\* /usr/share/man/\* /usr/share/doc/kde/HTML/\*/\* /usr/share/gnome/help/\*/\*
		/usr/share/omf/\*/\*-\*.emf)
	local -a incl=(/usr/share/doc/\*/copyright /usr/share/doc/kde/HTML/C/\* /usr/share/gnome/help/\*/C/\*
		/usr/share/locale/all_languages /usr/share/locale/currency/\* /usr/share/locale/l10n/\*
		/usr/share/locale/languages /usr/share/locale/locale.alias /usr/share/omf/\*/\*-C.emf)
	local -a ex=() in=()
	{
		for p in "${excl[@]}"; do echo "path-exclude $p"; done
		for p in "${incl[@]}"; do echo "path-include $p"; done
	} >"$root/etc/dpkg/dpkg.cfg.d/docker"
	# find's -path, like dpkg's patterns, lets * match / too
	for p in "${excl[@]}"; do ex+=(-o -path "$root$p"); done
	for p in "${incl[@]}"; do in+=(-o -path "$root$p"); done
	find "$root/usr/share" ! -type d \( "${ex[@]:1}" \) ! \( "${in[@]:1}" \) -delete
	find "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale" "$root/usr/share/info" \
		-mindepth 1 -type d -empty -delete 2>/dev/null || true
}

LABEL=org.ksight.base-recipe
# commit_base ROOT TAG: ROOT's files as the single layer of image TAG, with the
# configuration Debian's images have
commit_base() {
	local root=$1 tag=$2 ctr mnt
	ctr=$(buildah from --pull-never scratch)
	mnt=$(buildah mount "$ctr")
	tar -C "$root" --numeric-owner --xattrs --acls -cf - . | tar -C "$mnt" --numeric-owner --xattrs --acls -xpf -
	buildah umount "$ctr" >/dev/null
	buildah config --os linux --arch "$ARCH" \
		--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--cmd '["bash"]' --label "$LABEL=$RECIPE" \
		--created-by "debootstrap --variant=minbase $SUITE ($tag, recipe $RECIPE)" "$ctr"
	buildah commit --rm --quiet "$ctr" "$tag" >/dev/null
}

# what decides a base's content: a base made with another recipe is made again
RECIPE=$(printf '%s\n' "$SUITE" "$ARCH" "$MIRROR" "$UPDATES" "$SECURITY" "$(debootstrap --version)" \
	"$(declare -f configure_root slim_root commit_base)" | sha256sum | cut -c1-16)

# the recipe label of image TAG; "none" if it was not made here, empty if absent
base_recipe() {
	buildah inspect --type image "$1" >/dev/null 2>&1 || return 0
	buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null |
		sed 's/^<no value>$//; s/^$/none/'
}

make_bases() {
	local t dir
	t=$(date +%s)
	dir=$(mktemp -d /var/tmp/ksight-base.XXXXXX)
	# shellcheck disable=SC2064 # expand now: dir is local
	trap "rm -rf --one-file-system '$dir'" EXIT
	log "debootstrap --variant=minbase $SUITE from $MIRROR"
	# in a mount namespace of its own: its /proc and /sys mounts cannot stay behind
	logged debootstrap.log unshare --mount --propagation private \
		debootstrap --variant=minbase --arch="$ARCH" "$SUITE" "$dir/root" "$MIRROR"
	configure_root "$dir/root"
	commit_base "$dir/root" "debian:$SUITE"
	slim_root "$dir/root"
	commit_base "$dir/root" "debian:$SUITE-slim"
	rm -rf --one-file-system "$dir"
	trap - EXIT
	log "made debian:$SUITE and debian:$SUITE-slim in $(($(date +%s) - t))s (recipe $RECIPE)"
}

need_bases=$REBUILD_BASES
for tag in "debian:$SUITE" "debian:$SUITE-slim"; do
	r=$(base_recipe "$tag")
	if [ -z "$r" ]; then
		need_bases=1
	elif [ "$r" = none ]; then
		log "$tag: not made here (pulled?), used as it is"
	elif [ "$r" != "$RECIPE" ]; then
		log "$tag: made with another recipe ($r), made again"
		need_bases=1
	fi
done
if [ "$need_bases" = 1 ]; then
	make_bases
else
	log "debian:$SUITE and debian:$SUITE-slim: there already"
fi

t=$(date +%s)
old_id=$(buildah inspect --type image --format '{{.FromImageID}}' "$IMAGE" 2>/dev/null || true)
bud=(buildah bud --isolation chroot --layers --pull-never -f "$DOCKERFILE" -t "$IMAGE"
	--build-arg "GIT_COMMIT=$GIT_COMMIT")
[ "$NO_CACHE" = 1 ] && bud+=(--no-cache)
log "buildah bud $IMAGE (GIT_COMMIT=$GIT_COMMIT)"
logged bud.log "${bud[@]}" "$REPO"
new_id=$(buildah inspect --type image --format '{{.FromImageID}}' "$IMAGE")
log "built $IMAGE in $(($(date +%s) - t))s (${new_id:0:12})"
# the image it replaces, untagged now (kept while a container uses it)
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
	buildah rmi "$old_id" >/dev/null 2>&1 || true
fi

rm -f "$OUT"
logged push.log buildah push --quiet "$IMAGE" "oci-archive:$OUT:$IMAGE"
log "wrote $OUT ($(du -h "$OUT" | cut -f1))"
