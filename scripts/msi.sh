#!/usr/bin/env bash
# make package: the Windows installer of the agent,
# dist/mamori-VERSION-x64.msi, built on Debian by wixl (msitools) from
# packaging/msi/mamori.wxs, with the two things wixl 0.101 cannot write
# added by msibuild (see below).
#
#   scripts/msi.sh                       build it
#   scripts/msi.sh msi-version V COMMITS print the MSI ProductVersion for the
#                                        package version V (tests)
#
# Environment (all optional):
#   PKG_VERSION   the package version (default: scripts/package.sh version),
#                 in the file name and in `mamori version`
#   MSI_VERSION   the MSI ProductVersion as is (default: from PKG_VERSION)
#   DIST          output directory (default dist)
#   GO            the go command (default go)
#   MAMORI_EXE    a windows/amd64 mamori.exe to package instead of building
#
# ProductVersion must be numeric, major.minor.build (at most 255.255.65535),
# and Windows Installer compares only those three fields:
#   1.2.3, 1.2.3~rc1, 1.2.3+git4.abc1234    -> 1.2.3
#   1.2 (and 1.2~rc1 ...)                   -> 1.2.0
#   0.0~git20260511T093000.abc1234 (untagged) -> 0.0.N, N the number of
#                                              commits (a later commit is a
#                                              newer MSI)
# A release's pre-releases and the commits after it share its MSI version:
# upgrade from a tag to a later tag (MajorUpgrade removes the older one).
#
# What msibuild adds to wixl's output:
#   - the config component's attributes: 64-bit, Permanent and
#     NeverOverwrite (wixl ignores WiX's NeverOverwrite and Permanent), so
#     an upgrade never replaces an edited C:\Program Files\mamori\mamori.yaml
#     and an uninstall leaves it;
#   - MsiServiceConfigFailureActions with MsiConfigureServices (Windows
#     Installer 5): the service restarts 5 s after each failure, the count
#     reset after a day without one (what `mamori service install` sets).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

die() { echo "msi.sh: $*" >&2; exit 1; }

# msi_version V COMMITS prints the ProductVersion for package version V.
msi_version() {
	local v=$1 commits=${2:-0} a b c
	if [[ $v =~ ^0\.0~git ]]; then
		[[ $commits =~ ^[0-9]+$ ]] || die "bad commit count '$commits'"
		a=0 b=0 c=$commits
	elif [[ $v =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)([~+.].*)?$ ]]; then
		a=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]} c=${BASH_REMATCH[3]}
	elif [[ $v =~ ^([0-9]+)\.([0-9]+)([~+].*)?$ ]]; then
		a=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]} c=0
	else
		die "cannot make an MSI version of '$v' (set MSI_VERSION)"
	fi
	a=$((10#$a)) b=$((10#$b)) c=$((10#$c))
	if ((a > 255 || b > 255 || c > 65535)); then
		die "'$v' gives $a.$b.$c: an MSI version is at most 255.255.65535 (set MSI_VERSION)"
	fi
	printf '%d.%d.%d\n' "$a" "$b" "$c"
}

if [ "${1:-}" = msi-version ]; then
	[ $# -eq 3 ] || die "usage: $0 msi-version PKG_VERSION COMMITS"
	msi_version "$2" "$3"
	exit 0
fi
[ $# -eq 0 ] || die "usage: $0 [msi-version PKG_VERSION COMMITS]"

for tool in wixl msibuild msiinfo; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found: apt-get install wixl msitools (scripts/test-deps.sh does it)"
done

ver=${PKG_VERSION:-$(scripts/package.sh version)}
[[ $ver =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "'$ver' is not a package version"
if [ -n "${MSI_VERSION:-}" ]; then
	msiver=$MSI_VERSION
	[[ $msiver =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,5}$ ]] || die "MSI_VERSION '$msiver' is not major.minor.build"
else
	commits=0
	if [[ $ver =~ ^0\.0~git ]]; then
		commits=$(git rev-list --count HEAD 2>/dev/null) || die "cannot count the commits for '$ver' (set MSI_VERSION)"
	fi
	msiver=$(msi_version "$ver" "$commits")
fi
dist=${DIST:-dist}

stage=$(mktemp -d "${TMPDIR:-/tmp}/mamori-msi.XXXXXX")
trap 'rm -rf "$stage"' EXIT

if [ -n "${MAMORI_EXE:-}" ]; then
	cp "$MAMORI_EXE" "$stage/mamori.exe"
else
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 "${GO:-go}" build -trimpath \
		-ldflags "-s -w -X github.com/mamori-agent/mamori/agent.Version=$ver" -o "$stage/mamori.exe" ./cmd/mamori
fi
[ "$(head -c 2 "$stage/mamori.exe")" = MZ ] || die "$stage/mamori.exe is not a Windows executable"
cp packaging/msi/mamori.yaml "$stage/mamori.yaml"

# wixl reads the files relative to the working directory. It warns that it
# does not know NeverOverwrite and Permanent (set below); other warnings
# are shown.
(cd "$stage" && wixl -a x64 -D Version="$msiver" -o mamori.msi "$repo/packaging/msi/mamori.wxs") 2>&1 |
	grep -v -e "has no property named 'NeverOverwrite'" -e "has no property named 'Permanent'" -e '^$' >&2 || true
[ -s "$stage/mamori.msi" ] || die "wixl made no MSI"

# Component attributes (msi.h): 64-bit 0x100, Permanent 0x10,
# NeverOverwrite 0x80.
msibuild "$stage/mamori.msi" -q "UPDATE \`Component\` SET \`Attributes\` = 400 WHERE \`Component\` = 'Config'"

# Restart on failure: SC_ACTION_RESTART (1) after 5000 ms, three times,
# the failure count reset after 86400 s; Event 1 = on install.
{
	printf 'MsiServiceConfigFailureActions\tName\tEvent\tResetPeriod\tRebootMessage\tCommand\tActions\tDelayActions\tComponent_\n'
	printf 's72\ts255\ti2\tI4\tL255\tL255\tS255\tS255\ts72\n'
	printf 'MsiServiceConfigFailureActions\tMsiServiceConfigFailureActions\n'
	printf 'MamoriRestart\tmamori\t1\t86400\t\t\t1[~]1[~]1\t5000[~]5000[~]5000\tAgent\n'
} >"$stage/MsiServiceConfigFailureActions.idt"
(cd "$stage" && msibuild mamori.msi -i MsiServiceConfigFailureActions.idt)
msibuild "$stage/mamori.msi" -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Condition\`, \`Sequence\`) VALUES ('MsiConfigureServices', 'VersionNT >= 600', 5850)"

mkdir -p "$dist"
out="$dist/mamori-$ver-x64.msi"
mv -f "$stage/mamori.msi" "$out"
echo "msi.sh: $out (ProductVersion $msiver)"
