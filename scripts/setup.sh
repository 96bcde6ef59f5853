#!/usr/bin/env bash
# Install what ksight needs on Debian 12.
#   scripts/setup.sh build   toolchain and libraries to build and run ksight
#   scripts/setup.sh image   what `make image` needs: buildah and debootstrap
#   scripts/setup.sh         build + everything the tests use (default)
# Idempotent: packages already present are not reinstalled, and apt is not
# touched at all when nothing is missing.
set -euo pipefail

build_packages=(
	make gcc clang llvm pkg-config            # toolchain (clang builds the BPF objects)
	libbpf-dev bpftool libelf-dev zlib1g-dev  # BPF loader and skeletons
	libmicrohttpd-dev                          # metrics endpoint
	libjson-c-dev                              # JSON (trace output, Kubernetes API)
	libcurl4-openssl-dev                       # Kubernetes API over TLS
	libyaml-dev                                # kubeconfig files
	ca-certificates
)
test_packages=(
	libcmocka-dev                              # unit tests
	libclang-rt-14-dev                         # sanitizers and libFuzzer (asan, fuzz suites)
	prometheus                                 # promtool (exposition format, rules, their unit tests); monitoring e2e
	prometheus-alertmanager                    # amtool check-config; the monitoring e2e's Alertmanager
	iproute2 util-linux procps curl            # e2e tests: netns, loop devices, ps, scrapes
	e2fsprogs xfsprogs                         # e2e fserr: ext4 and xfs images, debugfs, xfs_db, xfs_io
	libfuse3-dev fuse3 fdisk                   # e2e fserr: a FUSE file failing reads (EIO), sfdisk
	python3 openssl libssl-dev                 # the fake Kubernetes API server, test TLS servers
	nftables socat iputils-ping                # netdrop e2e: drop rules, traffic
	bpftrace                                   # netdrop benchmark: the tool to compare with
	python3-yaml strace                        # image suite: the DaemonSet read, the files ksight opens
	qemu-system-x86 busybox-static cpio        # guest suite: Debian's kernels under qemu, busybox initramfs
	kmod xz-utils zstd                         # guest suite: depmod for the kernel's modules.dep, unpacking modules
)

image_packages=(
	buildah debootstrap jq                     # make image: the engine, the debian bases, its JSON
)

case ${1:-all} in
build) packages=("${build_packages[@]}") ;;
image) packages=("${image_packages[@]}") ;;
*) packages=("${build_packages[@]}" "${test_packages[@]}" "${image_packages[@]}") ;;
esac

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# kubectl for the manifest and `kubectl get events` tests: Debian's kubernetes-client if none
if [ "${1:-all}" = all ] && ! command -v kubectl >/dev/null; then
	missing+=(kubernetes-client)
fi

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: missing packages: ${missing[*]}" >&2
	echo "setup: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
