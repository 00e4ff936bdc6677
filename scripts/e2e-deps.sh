#!/bin/sh
# e2e-deps.sh installs the host tools the QEMU end-to-end harness (e2e/)
# needs: QEMU (TCG is enough), a static busybox for the guest, the FAT
# tools that make the USB stick images, and hostapd, wpa_supplicant and
# wireless-regdb for the guest's Wi-Fi. The Debian kernel itself is fetched
# by the harness at run time (apt-get download, cached by version).
#
# Idempotent: does nothing when everything is already there.
set -eu

need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
dpkg -s busybox-static >/dev/null 2>&1 || need="$need busybox-static"
command -v mkfs.vfat >/dev/null 2>&1 || need="$need dosfstools"
command -v mcopy >/dev/null 2>&1 || need="$need mtools"
# TestNetwork's guest: Debian's hostapd and wpa_supplicant (carried with
# their libraries), and the regulatory database cfg80211 loads.
dpkg -s hostapd >/dev/null 2>&1 || need="$need hostapd"
dpkg -s wpasupplicant >/dev/null 2>&1 || need="$need wpasupplicant"
dpkg -s wireless-regdb >/dev/null 2>&1 || need="$need wireless-regdb"

if [ -z "$need" ]; then
	exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $need
