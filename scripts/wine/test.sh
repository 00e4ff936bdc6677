#!/usr/bin/env bash
# Runs Go tests built for windows/amd64 under Wine 8.0 on this Debian
# machine:
#
#   scripts/wine/test.sh [go test flags] PKG...
#   scripts/wine/test.sh -run TestSetupAPI -v ./collector/usb/
#
# What it does, and why (see ../../../shared/design/windows.md and README
# beside this script):
#   1. builds the ProcessPrng shim DLL (bcryptprimitives.c) with mingw,
#      once: Go 1.26 binaries die at start under Wine 8.0 without it;
#   2. makes a template Wine prefix (win64, WINEDEBUG=-all, mscoree and
#      mshtml disabled) with the shim in system32, once per Wine version
#      and shim: wineboot takes about 20 s here;
#   3. gives this run a throw-away prefix on top of the template (an
#      overlay mount, or a copy where overlays cannot be mounted);
#   4. starts a persistent wineserver (-p) and one throw-away
#      `wine cmd /c ver`, so that Wine's helper processes (services,
#      winedevice, explorer) are started now and do not inherit go test's
#      output pipe ("Test I/O incomplete");
#   5. runs GOOS=windows GOARCH=amd64 go test -exec scripts/wine/exec.sh;
#   6. kills the run's wineserver and removes the throw-away prefix.
# go test's exit code is this script's: a failing Windows test fails it.
#
# The cache (shim and template prefix) is MAMORI_WINE_CACHE, by default
# ${TMPDIR:-/tmp}/mamori-wine-<uid>; it must be a directory of this user
# that nobody else can write (it holds DLLs that Wine loads), or the
# script refuses it. Remove it to start afresh. MAMORI_WINE_KEEP=1 keeps
# the run's prefix (its path is printed) for a look afterwards;
# MAMORI_WINE_NO_OVERLAY=1 copies the template instead of mounting an
# overlay (what happens anyway where mount fails, as for non-root users).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

die() { echo "wine-test: $*" >&2; exit 2; }
say() { [ -n "${MAMORI_WINE_QUIET:-}" ] || echo "wine-test: $*" >&2; }

if [ $# -eq 0 ]; then
  die "usage: $0 [go test flags] PKG... (for example ./collector/usb/)"
fi

# The tools: wine with its 64-bit loader, and mingw for the shim.
mingw=x86_64-w64-mingw32-gcc-win32
for tool in wine wineserver wineboot "$mingw"; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/test-deps.sh (as root) first"
done
[ -x /usr/lib/wine/wine64 ] || die "/usr/lib/wine/wine64 not found (package wine64): run scripts/test-deps.sh"
go=${GO:-go}

export WINEARCH=win64
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
# A run never asks anything of a desktop: no menu entries, no dialogs.
export WINEDLLOVERRIDES="$WINEDLLOVERRIDES;winemenubuilder.exe=d"

# The cache: ours alone, since Wine loads the DLLs it holds.
cache=${MAMORI_WINE_CACHE:-${TMPDIR:-/tmp}/mamori-wine-$(id -u)}
mkdir -p -m 0700 "$cache"
read -r owner mode < <(stat -L -c '%u %a' "$cache")
[ "$owner" = "$(id -u)" ] || die "cache $cache belongs to uid $owner, not to us (uid $(id -u)): refusing it"
[ -d "$cache" ] && [ ! -L "$cache" ] || die "cache $cache is not a plain directory: refusing it"
if (( 8#$mode & 8#022 )); then
  die "cache $cache (mode $mode) can be written by others: refusing it"
fi

# 1. The shim, keyed by its source and the compiler.
shim_key=$( { cat "$here/bcryptprimitives.c"; "$mingw" --version | head -1; } | sha256sum | cut -c1-16)
shim=$cache/bcryptprimitives-$shim_key.dll
if [ ! -f "$shim" ]; then
  say "building the ProcessPrng shim (bcryptprimitives.dll)"
  "$mingw" -shared -O2 -s -Wall -Wextra -Werror -o "$shim.tmp.$$" "$here/bcryptprimitives.c" -lbcrypt
  mv -f "$shim.tmp.$$" "$shim"
fi

# 2. The template prefix, keyed by Wine's version, the shim and the
# overrides. Made under a temporary name and renamed, so that a run that
# is stopped half-way, or two runs at once, never leave a half prefix.
prefix_key=$( { wine --version; echo "$shim_key $WINEARCH $WINEDLLOVERRIDES"; } | sha256sum | cut -c1-16)
template=$cache/prefix-$prefix_key
if [ ! -f "$template/.mamori-ready" ]; then
  say "making the template Wine prefix (once; about 20 s)"
  tmp=$(mktemp -d "$cache/prefix-$prefix_key.tmp.XXXXXX")
  (
    export WINEPREFIX=$tmp
    wineboot --init </dev/null >/dev/null 2>&1 || true
    wineserver -w
  )
  [ -f "$tmp/system.reg" ] && [ -d "$tmp/drive_c/windows/system32" ] || die "wineboot did not make a prefix in $tmp"
  cp "$shim" "$tmp/drive_c/windows/system32/bcryptprimitives.dll"
  touch "$tmp/.mamori-ready"
  if ! mv -T "$tmp" "$template" 2>/dev/null; then
    rm -rf "$tmp" # another run made it first
  fi
fi

# 3. The run's prefix: an overlay on the template (the template is never
# written), or a copy.
run=$(mktemp -d "$cache/run.XXXXXX")
prefix=$run/prefix
mkdir -p "$run/upper" "$run/work" "$prefix"
mounted=
if [ -z "${MAMORI_WINE_NO_OVERLAY:-}" ] &&
  mount -t overlay overlay -o "lowerdir=$template,upperdir=$run/upper,workdir=$run/work" "$prefix" 2>/dev/null; then
  mounted=1
else
  say "no overlay mount here; copying the template prefix"
  cp -a "$template/." "$prefix/"
fi
export WINEPREFIX=$prefix
# exec.sh refuses to run without it: a test binary must never start in
# the user's own ~/.wine (no shim there, and it would be changed).
export MAMORI_WINE_PREFIX=$prefix

cleanup() {
  WINEPREFIX=$prefix wineserver -k >/dev/null 2>&1 || true
  WINEPREFIX=$prefix wineserver -w >/dev/null 2>&1 || true
  if [ -n "${MAMORI_WINE_KEEP:-}" ]; then
    say "kept the run's prefix: $prefix"
    return
  fi
  if [ -n "$mounted" ]; then
    umount "$prefix" 2>/dev/null || umount -l "$prefix" 2>/dev/null || true
  fi
  rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 4. A persistent wineserver and Wine's helpers, started before go test.
wineserver -p
wine cmd /c ver </dev/null >/dev/null 2>&1 || die "wine cmd /c ver failed in $prefix"

# 5. The tests. The exit code is go test's.
cd "$repo"
rc=0
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 "$go" test -exec "$here/exec.sh" "$@" || rc=$?
exit "$rc"
