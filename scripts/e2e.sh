#!/usr/bin/env bash
# make e2e: the QEMU end-to-end tests on a fresh Debian 12 machine with Go.
# Installs the host tools, builds the static libusb variant of mamori (from
# Debian's own libusb source, configured without udev), then runs the e2e
# package: both USB backends are compared in the guest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/e2e-deps.sh

# The libusb build needs Debian's libusb source (a deb-src entry) and a C
# toolchain; add what a fresh machine lacks.
export DEBIAN_FRONTEND=noninteractive
need=()
command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s libusb-1.0-0-dev >/dev/null 2>&1 || need+=(libusb-1.0-0-dev)
command -v make >/dev/null 2>&1 || need+=(make)
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
	cat >/etc/apt/sources.list.d/mamori-debsrc.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	need+=(apt-update)
fi
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	pkgs=()
	for p in "${need[@]}"; do [ "$p" = apt-update ] || pkgs+=("$p"); done
	[ ${#pkgs[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

mkdir -p bin
scripts/build-libusb.sh bin/mamori-libusb
export MAMORI_E2E_LIBUSB_BIN="$PWD/bin/mamori-libusb"
# pipefail: the exit status is go test's.
go test -tags e2e -count=1 -timeout 20m -v ./e2e/ 2>&1 | tee bin/e2e.log
