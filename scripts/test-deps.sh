#!/usr/bin/env bash
# Installs, on a fresh Debian 12 machine, the host tools the unit tests use:
# promtool (to lint metric names), mkfs tools and cryptsetup (to make real
# file-system and LUKS images for the media tests), blkid for cross-checks,
# PostgreSQL (the hub's store tests start a private cluster of it), and
# Debian's chromium with a Japanese font (the hub's pages are tested in a
# real headless browser, screenshots included).
# Runs only what is missing; needs root (apt-get).
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have promtool || need+=(prometheus)
have mkfs.vfat || need+=(dosfstools)
have mtools || have mcopy || need+=(mtools)
have mkfs.exfat || need+=(exfatprogs)
have mkfs.ext4 || need+=(e2fsprogs)
have cryptsetup || need+=(cryptsetup-bin)
have blkid || need+=(util-linux)
have mkfs.ntfs || need+=(ntfs-3g)
have mkfs.btrfs || need+=(btrfs-progs)
have python3 || need+=(python3)
have mkfs.xfs || need+=(xfsprogs)
have mkfs.f2fs || need+=(f2fs-tools)
have genisoimage || need+=(genisoimage)
have mkudffs || need+=(udftools)
have mksquashfs || need+=(squashfs-tools)
have mkswap || need+=(util-linux)
have unshare || need+=(util-linux)
have ip || need+=(iproute2)
have pkg-config || need+=(pkg-config)
# The hub's store tests run initdb/pg_ctl from /usr/lib/postgresql/*/bin;
# the package's own cluster is not started (policy-rc.d below).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# hub/web's browser tests: chromium --headless=new, and a font with
# Japanese glyphs so that the screenshots show text rather than boxes.
have chromium || need+=(chromium)
dpkg -s fonts-ipafont-gothic >/dev/null 2>&1 || need+=(fonts-ipafont-gothic)
dpkg -s libusb-1.0-0-dev >/dev/null 2>&1 || need+=(libusb-1.0-0-dev)
# Each part's own needs (packages, the service, desktop warnings, alert
# rules) are in scripts/test-deps.d/*.sh: each adds to need with have/dpkg
# checks like the above.
for part in "$(dirname "$0")"/test-deps.d/*.sh; do
  [ -e "$part" ] || continue
  # shellcheck source=/dev/null
  . "$part"
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Install packages without starting their services (prometheus ships one).
policy=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created=1
fi
trap '[ "$created" = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
