#!/usr/bin/env bash
# Install everything ksight needs to build, run and test on Debian 12.
# Idempotent: packages already present are not reinstalled, and apt is not
# touched at all when nothing is missing.
set -euo pipefail

packages=(
	make gcc clang llvm pkg-config            # toolchain (clang builds the BPF objects)
	libbpf-dev bpftool libelf-dev zlib1g-dev  # BPF loader and skeletons
	libmicrohttpd-dev                          # metrics endpoint
	libjson-c-dev                              # JSON (trace output, Kubernetes API)
	libcurl4-openssl-dev                       # Kubernetes API over TLS
	libcmocka-dev                              # unit tests
	prometheus                                 # promtool, to check the exposition format
	iproute2 util-linux procps curl            # e2e tests: netns, loop devices, ps, scrapes
	python3                                    # e2e tests: small fixtures
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

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
