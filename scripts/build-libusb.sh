#!/bin/sh
# build-libusb.sh OUT [ROOTFS_DIR]
#
# Builds ./cmd/mamori with the libusb USB backend (-tags libusb, cgo) into
# OUT, for systems without sysfs and for the minimal initramfs guest of the
# e2e harness (busybox, no glibc, no udev daemon).
#
# MAMORI_LIBUSB_LINK=static (the default) makes a fully static ELF: nothing
# else has to go into the guest. Debian's libusb-1.0.a cannot be linked
# statically: Debian builds libusb with udev support and ships no
# libudev.a. So the script builds libusb from Debian's own source package
# (apt-get source libusb-1.0, which needs a deb-src line) with
# --disable-udev, libusb's netlink backend, which also needs no udev
# daemon, into a cache directory, once, and links against that. ROOTFS_DIR
# is not needed then and is left alone.
#
# MAMORI_LIBUSB_LINK=dynamic links against Debian's libusb-1.0.so (and so
# libudev.so) and copies every shared library the binary needs, and the
# dynamic loader, into ROOTFS_DIR under the same paths.
#
# Either way the guest must have sysfs on /sys and devtmpfs on /dev
# (/dev/bus/usb), and the agent must run as root to open devices.
#
# Needs: go, gcc, pkg-config, make; static: dpkg-dev and a deb-src entry
# for Debian's main archive; dynamic: libusb-1.0-0-dev.
#
# Environment: MAMORI_LIBUSB_LINK (static|dynamic), MAMORI_LIBUSB_PREFIX
# (where the static libusb is built, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/mamori/libusb-noudev), MAMORI_PKG (the
# package to build, default ./cmd/mamori).
set -eu

usage() {
	echo "usage: $0 OUT [ROOTFS_DIR]" >&2
	exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
out=$1
rootfs=${2:-}
link=${MAMORI_LIBUSB_LINK:-static}
pkg=${MAMORI_PKG:-./cmd/mamori}
repo=$(cd "$(dirname "$0")/.." && pwd)
case $out in /*) ;; *) out=$(pwd)/$out ;; esac

# netgo and osusergo keep the resolver and user lookups in Go: a static
# glibc cannot load NSS modules, and the guest has none.
tags=libusb,netgo,osusergo

die() {
	echo "build-libusb: $*" >&2
	exit 1
}

# build_static_libusb PREFIX builds libusb without udev into PREFIX unless
# it is already there.
build_static_libusb() {
	prefix=$1
	if [ -f "$prefix/lib/libusb-1.0.a" ] && [ -f "$prefix/lib/pkgconfig/libusb-1.0.pc" ]; then
		return 0
	fi
	command -v dpkg-source >/dev/null 2>&1 || die "static build needs dpkg-dev (apt-get install -y --no-install-recommends dpkg-dev)"
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	echo "build-libusb: building libusb without udev into $prefix" >&2
	(cd "$work" && apt-get source -q libusb-1.0 >"$work/source.log" 2>&1) || {
		cat "$work/source.log" >&2
		die "apt-get source libusb-1.0 failed: is there a deb-src entry for Debian's main archive?"
	}
	src=$(find "$work" -maxdepth 1 -type d -name 'libusb-1.0-*' | head -n 1)
	[ -n "$src" ] || die "no libusb source directory in $work"
	(
		cd "$src"
		./configure --prefix="$prefix" --disable-udev --enable-static --disable-shared \
			--disable-examples-build --disable-tests-build >"$work/configure.log" 2>&1 ||
			{ tail -n 30 "$work/configure.log" >&2; exit 1; }
		make -j"$(nproc 2>/dev/null || echo 2)" >"$work/make.log" 2>&1 ||
			{ tail -n 30 "$work/make.log" >&2; exit 1; }
		make install >"$work/install.log" 2>&1 ||
			{ tail -n 30 "$work/install.log" >&2; exit 1; }
	) || die "building libusb failed"
	rm -rf "$work"
	trap - EXIT
}

cd "$repo"
case $link in
static)
	prefix=${MAMORI_LIBUSB_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/mamori/libusb-noudev}
	build_static_libusb "$prefix"
	# CGO_CFLAGS and CGO_LDFLAGS are part of Go's build cache key, so a
	# gousb object built against Debian's libusb is not reused.
	PKG_CONFIG_PATH="$prefix/lib/pkgconfig" \
		CGO_ENABLED=1 \
		CGO_CFLAGS="-O2 -g -I$prefix/include/libusb-1.0" \
		CGO_LDFLAGS="-O2 -g -L$prefix/lib" \
		go build -trimpath -tags "$tags" \
		-ldflags '-s -w -linkmode external -extldflags "-static"' \
		-o "$out" "$pkg"
	if readelf -l "$out" | grep -q 'INTERP'; then
		die "$out is not static (it has a program interpreter)"
	fi
	echo "build-libusb: static $out" >&2
	;;
dynamic)
	[ -n "$rootfs" ] || die "dynamic linking needs ROOTFS_DIR to copy the shared libraries into"
	CGO_ENABLED=1 go build -trimpath -tags "$tags" -ldflags '-s -w' -o "$out" "$pkg"
	if ldd "$out" | grep -q 'not found'; then
		die "unresolved libraries: $(ldd "$out" | grep 'not found')"
	fi
	mkdir -p "$rootfs"
	# ldd lines: "libx.so.1 => /path/libx.so.1 (0x...)" and
	# "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
	ldd "$out" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
		while read -r lib; do
			mkdir -p "$rootfs$(dirname "$lib")"
			cp -L "$lib" "$rootfs$lib"
			echo "build-libusb: copied $lib" >&2
		done
	echo "build-libusb: dynamic $out, libraries in $rootfs" >&2
	;;
*)
	die "MAMORI_LIBUSB_LINK must be static or dynamic, not $link"
	;;
esac
