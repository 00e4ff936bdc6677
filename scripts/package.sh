#!/usr/bin/env bash
# make package: the .deb and .rpm of mamori (the agent) and mamori-hub,
# built by nfpm from packaging/nfpm/*.yaml into dist/.
#
#   scripts/package.sh                 package bin/mamori and bin/mamori-hub
#   scripts/package.sh version         print the package version only
#   scripts/package.sh version-of DESCRIBE EPOCH
#                                      the version for a `git describe`
#                                      output and a commit time (tests)
#
# Environment (all optional):
#   PKG_VERSION     the package version as is (default: from git, below)
#   BIN_DIR         where mamori and mamori-hub are (default bin, make build)
#   DIST            output directory (default dist)
#   PKG_ARCH        Go architecture name (default: go env GOARCH)
#   PKG_MAINTAINER  the Maintainer field (and the changelog entry's)
#   PKG_FORMATS     what to build (default "deb rpm")
#   NFPM            the nfpm command (default: go run of the pinned version,
#                   so go.mod does not grow nfpm's dependencies)
#
# Version: Debian and RPM versions must start with a digit, and RPM's may
# not hold "-". From `git describe --tags --always --dirty --match 'v[0-9]*'`:
#   v1.2.3               -> 1.2.3
#   v1.2.3-rc1           -> 1.2.3~rc1          (before 1.2.3)
#   v1.2.3-4-gabc1234    -> 1.2.3+git4.abc1234 (after 1.2.3, before 1.2.4)
#   abc1234 (no tag)     -> 0.0~git20260511T093000.abc1234, the commit's
#                           time in UTC, so a later commit is a newer
#                           package (and any tagged release newer still)
#   ...-dirty            -> ...+dirty (or .dirty after a "+")
# The package release is always 1: mamori-1.2.3-1_amd64.deb,
# mamori-1.2.3-1.x86_64.rpm.
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM_VERSION=v2.45.2

# version_of DESCRIBE EPOCH prints the package version for a git describe
# output and the commit time (seconds since 1970, UTC).
version_of() {
	local d=$1 epoch=$2 dirty="" v
	case "$d" in *-dirty) dirty=1 d=${d%-dirty} ;; esac
	if [[ $d =~ ^v([0-9][0-9A-Za-z.]*)(-([0-9A-Za-z.]+))?-([0-9]+)-g([0-9a-f]+)$ ]]; then
		v=${BASH_REMATCH[1]}
		[ -n "${BASH_REMATCH[3]}" ] && v+="~${BASH_REMATCH[3]}"
		v+="+git${BASH_REMATCH[4]}.${BASH_REMATCH[5]}"
	elif [[ $d =~ ^v([0-9][0-9A-Za-z.]*)(-([0-9A-Za-z.]+))?$ ]]; then
		v=${BASH_REMATCH[1]}
		[ -n "${BASH_REMATCH[3]}" ] && v+="~${BASH_REMATCH[3]}"
	elif [[ $d =~ ^[0-9a-f]{4,40}$ ]]; then
		[[ $epoch =~ ^[0-9]+$ ]] || { echo "package.sh: bad commit time '$epoch'" >&2; return 1; }
		v="0.0~git$(date -u -d "@$epoch" +%Y%m%dT%H%M%S).$d"
	else
		echo "package.sh: cannot make a package version of '$d' (set PKG_VERSION)" >&2
		return 1
	fi
	if [ -n "$dirty" ]; then
		case "$v" in *+*) v+=".dirty" ;; *) v+="+dirty" ;; esac
	fi
	printf '%s\n' "$v"
}

# git_version prints the package version of the working tree.
git_version() {
	local d epoch
	d=$(git describe --tags --always --dirty --match 'v[0-9]*' 2>/dev/null) || {
		echo "package.sh: not a git checkout (set PKG_VERSION)" >&2
		return 1
	}
	epoch=$(git log -1 --format=%ct)
	version_of "$d" "$epoch"
}

# check_version V fails unless V is a version both dpkg and rpm accept.
check_version() {
	if ! [[ $1 =~ ^[0-9][0-9A-Za-z.+~]*$ ]]; then
		echo "package.sh: '$1' is not a package version (a digit, then letters, digits, . + ~)" >&2
		return 1
	fi
}

case "${1:-}" in
version)
	v=${PKG_VERSION:-$(git_version)}
	check_version "$v"
	echo "$v"
	exit 0
	;;
version-of)
	[ $# -eq 3 ] || { echo "usage: package.sh version-of DESCRIBE EPOCH" >&2; exit 2; }
	version_of "$2" "$3"
	exit 0
	;;
"") ;;
*)
	echo "usage: package.sh [version | version-of DESCRIBE EPOCH]" >&2
	exit 2
	;;
esac

PKG_VERSION=${PKG_VERSION:-$(git_version)}
check_version "$PKG_VERSION"
BIN_DIR=${BIN_DIR:-bin}
DIST=${DIST:-dist}
PKG_ARCH=${PKG_ARCH:-$(go env GOARCH)}
PKG_MAINTAINER=${PKG_MAINTAINER:-mamori maintainers <mamori@mamori-agent.github.io>}
NFPM=${NFPM:-go run github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION}
export PKG_VERSION BIN_DIR PKG_ARCH PKG_MAINTAINER

for b in mamori mamori-hub; do
	if [ ! -x "$BIN_DIR/$b" ]; then
		echo "package.sh: no $BIN_DIR/$b (make build writes it)" >&2
		exit 1
	fi
done

PKG_FORMATS=${PKG_FORMATS:-deb rpm}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One changelog entry for the version built (Debian requires a changelog;
# the history is git's): the commit, its time, what describe said.
if commit=$(git rev-parse --short=12 HEAD 2>/dev/null); then
	when=$(git log -1 --format=%cI)
	what="Built from git commit $commit ($(git describe --tags --always --dirty --match 'v[0-9]*'))."
else
	when=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	what="Built outside a git checkout."
fi
cat >"$tmp/changelog.yaml" <<EOT
- semver: "$PKG_VERSION-1"
  date: $when
  packager: "$PKG_MAINTAINER"
  deb:
    urgency: medium
    distributions: [unstable]
  changes:
    - note: "$what\nThe changes are in the project's git history."
EOT

mkdir -p "$DIST"
rm -f "$DIST"/mamori_*.deb "$DIST"/mamori-hub_*.deb "$DIST"/mamori-[0-9]*.rpm "$DIST"/mamori-hub-[0-9]*.rpm
for spec in mamori mamori-hub; do
	{ cat "packaging/nfpm/$spec.yaml"; echo "changelog: $tmp/changelog.yaml"; } >"$tmp/$spec.yaml"
	for fmt in $PKG_FORMATS; do
		$NFPM package --config "$tmp/$spec.yaml" --packager "$fmt" --target "$DIST/" >/dev/null
	done
done
ls -1 "$DIST"/mamori*.deb "$DIST"/mamori*.rpm 2>/dev/null || true
