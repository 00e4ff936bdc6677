#!/usr/bin/env bash
# make package-test: builds the packages twice (two versions) and installs,
# upgrades, removes and purges them for real with dpkg, in throw-away
# sandboxes that leave this machine as it was:
#
#   checks      version strings, package contents and modes, conffiles,
#               rpm -qlp of the .rpms, lintian (no errors), systemd-analyze
#               verify and security (exposure at most AGENT_MAX_EXPOSURE
#               and HUB_MAX_EXPOSURE).
#   plain       a root where systemd is not running (this machine's case):
#               the maintainer scripts say how to start the agent and do
#               nothing else; the agent runs with the unit's capability
#               bounding set; hub and agent talk; an upgrade keeps the
#               edited config and the audit log; remove keeps the audit
#               log; purge removes the rest and says where the log is; a
#               reinstall continues the same audit chain. The agent and
#               the hub as SysV services ("service install"): an upgrade
#               restarts them from the new binary; remove stops them and
#               removes their init scripts and rc links (no process left);
#               purge keeps the audit log and removes the init scripts'
#               logs /var/log/mamori.log and mamori-hub.log (a symlink
#               there is left alone). The .rpm's scriptlets alike (rpm -U
#               restarts, rpm -e stops and removes, with the log).
#   systemd     a root where systemd runs as PID 1 of a container: the
#               packages enable and start their services, which run under
#               the units' sandboxing (checked on the running processes;
#               a probe with the agent's sandbox reads a loop device and
#               cannot write it); a warning reaches a real desktop session
#               (dbus-daemon, Xvfb, dunst) through the notifier the agent
#               starts as the user; the agent reports to the hub; an
#               upgrade restarts both; a killed agent comes back after
#               RestartSec; remove stops them; purge keeps the usage
#               records.
#   rpm         the .rpms installed and erased by Debian's rpm in a
#               systemd sandbox: their scriptlets make the user, enable,
#               start, stop and disable; the audit log stays.
#
# A sandbox is an overlay of / (changes go to a tmpfs) in new mount, PID,
# network, UTS, IPC and cgroup namespaces; everything in it is run through
# nsenter. Needs root, unshare, nsenter, a cgroup2 hierarchy, and the
# Debian packages of scripts/test-deps.d/package.sh. 2 to 4 minutes on
# two cores (the packaging and lintian take most of it).
set -euo pipefail
cd "$(dirname "$0")/.."

AGENT_MAX_EXPOSURE=${AGENT_MAX_EXPOSURE:-3.0}
HUB_MAX_EXPOSURE=${HUB_MAX_EXPOSURE:-1.5}
V1=1.0.0~pkgtest1
V2=1.0.0~pkgtest2

if [ "$(id -u)" != 0 ]; then
	echo "package-test: SKIPPED: needs root (dpkg in a sandbox made with unshare and overlay mounts)"
	exit 0
fi
for t in dpkg-deb lintian rpm systemd-analyze unshare nsenter setpriv curl; do
	command -v "$t" >/dev/null || { echo "package-test: $t is missing: run scripts/test-deps.sh" >&2; exit 1; }
done

START=$SECONDS
log() { printf '== [%3ds] %s\n' $((SECONDS - START)) "$*"; }
# DIAG, when set, is a command whose output helps with a failure (the
# services' journal in the systemd sandbox).
DIAG=""
fail() {
	printf 'package-test: FAIL: %s\n' "$*" >&2
	if [ -n "$DIAG" ] && [ -n "$SBPID" ]; then
		$DIAG >&2 || true
	fi
	exit 1
}

WORK=$(mktemp -d /tmp/mamori-package-test.XXXXXX)
SBPID=""  # the sandbox's PID 1, as this machine sees it
SBUPID="" # the unshare that made it
SBNAME=""
LOOP=""
CGROUPS=()
sandbox_stop() {
	if [ -n "$SBPID" ]; then
		kill -KILL "$SBPID" 2>/dev/null || true
		wait "$SBUPID" 2>/dev/null || true
		SBPID=""
	fi
}
cleanup() {
	set +e
	sandbox_stop
	[ -n "$LOOP" ] && losetup -d "$LOOP"
	for cg in "${CGROUPS[@]}"; do
		# Depth first: systemd left its slices and scopes in there.
		find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---- building -------------------------------------------------------------

log "make build"
if [ -z "${BIN_DIR:-}" ]; then
	make -s build >/dev/null
	BIN_DIR=bin
fi
export BIN_DIR

log "version strings"
while read -r describe want; do
	got=$(scripts/package.sh version-of "$describe" 1778491800)
	[ "$got" = "$want" ] || fail "version-of $describe: got $got, want $want"
done <<'EOF'
v1.2.3 1.2.3
v1.2.3-rc1 1.2.3~rc1
v1.2.3-4-gabc1234 1.2.3+git4.abc1234
abc1234 0.0~git20260511T093000.abc1234
abc1234-dirty 0.0~git20260511T093000.abc1234+dirty
v1.2.3-4-gabc1234-dirty 1.2.3+git4.abc1234.dirty
EOF
scripts/package.sh version-of 'v1.2;rm' 0 >/dev/null 2>&1 && fail "version-of accepted 'v1.2;rm'"
# Each newer than the one before, for dpkg and for rpm.
prev=""
for v in 0.0~git20260511T093000.abc1234 0.0~git20260511T093000.abc1234+dirty \
	0.0~git20260511T101500.0123abc 1.2.3~rc1 1.2.3 1.2.3+dirty 1.2.3+git4.abc1234 1.2.4 "$V1" "$V2"; do
	if [ -n "$prev" ] && [ "$prev" != 1.2.4 ]; then
		dpkg --compare-versions "$prev-1" lt "$v-1" || fail "dpkg: $prev-1 is not older than $v-1"
		r=$(rpm --eval "%{lua: print(rpm.vercmp('$prev', '$v'))}")
		[ "$r" = -1 ] || fail "rpm: $prev is not older than $v ($r)"
	fi
	prev=$v
done
v=$(scripts/package.sh version)
dpkg --compare-versions "$v" gt 0 || fail "package.sh version: $v"

log "packages $V1 and $V2 (nfpm)"
mkdir -p "$WORK/pkgs"
# Both at once (nfpm compresses on one core each).
PKG_VERSION=$V1 DIST=$WORK/pkgs/v1 scripts/package.sh >"$WORK/package-v1.log" 2>&1 &
p1=$!
PKG_VERSION=$V2 DIST=$WORK/pkgs/v2 PKG_FORMATS=deb scripts/package.sh >"$WORK/package-v2.log" 2>&1 ||
	fail "package.sh $V2: $(cat "$WORK/package-v2.log")"
wait $p1 || fail "package.sh $V1: $(cat "$WORK/package-v1.log")"
cp "$BIN_DIR/mamori" "$WORK/pkgs/mamori.host"
AGENT1=$(echo "$WORK"/pkgs/v1/mamori_*.deb)
HUB1=$(echo "$WORK"/pkgs/v1/mamori-hub_*.deb)
[ -f "$AGENT1" ] && [ -f "$HUB1" ] || fail "no .deb in $WORK/pkgs/v1"
AGENT2=$(echo "$WORK"/pkgs/v2/mamori_*.deb)
HUB2=$(echo "$WORK"/pkgs/v2/mamori-hub_*.deb)
[ -f "$AGENT2" ] && [ -f "$HUB2" ] || fail "no .deb in $WORK/pkgs/v2"
# Their paths in the sandboxes.
SA1=/mamori-test/v1/${AGENT1##*/} SH1=/mamori-test/v1/${HUB1##*/}
SA2=/mamori-test/v2/${AGENT2##*/} SH2=/mamori-test/v2/${HUB2##*/}

# ---- static checks ----------------------------------------------------------

log "contents of the .debs"
# has LISTING MODE PATH: the tar listing names PATH with MODE (and root).
has() {
	grep -Eq "^$2 root/root +[0-9]+ [0-9-]+ [0-9:]+ \.$3( |\$)" <<<"$1" ||
		fail "$4 lacks $3 with mode $2:"$'\n'"$1"
}
l=$(dpkg-deb -c "$AGENT1")
has "$l" -rwxr-xr-x /usr/bin/mamori mamori.deb
has "$l" -rw-r--r-- /usr/lib/systemd/system/mamori.service mamori.deb
has "$l" -rw-r--r-- /usr/lib/systemd/user/mamori-notify.service mamori.deb
has "$l" -rw-r--r-- /etc/xdg/autostart/mamori-notify.desktop mamori.deb
has "$l" -rw-r----- /etc/mamori/mamori.yaml mamori.deb
has "$l" -rw-r--r-- /usr/share/doc/mamori/copyright mamori.deb
cmp -s <(dpkg-deb --fsys-tarfile "$AGENT1" | tar -xO ./etc/mamori/mamori.yaml) packaging/mamori.yaml ||
	fail "the packaged mamori.yaml is not packaging/mamori.yaml"
cmp -s <(dpkg-deb --fsys-tarfile "$AGENT1" | tar -xO ./usr/lib/systemd/system/mamori.service) packaging/systemd/mamori.service ||
	fail "the packaged unit is not packaging/systemd/mamori.service"
[ "$(dpkg-deb -f "$AGENT1" Version)" = "$V1-1" ] || fail "mamori.deb version $(dpkg-deb -f "$AGENT1" Version)"
conf=$(dpkg-deb --ctrl-tarfile "$AGENT1" | tar -xO ./conffiles)
[ "$(sort <<<"$conf")" = $'/etc/mamori/mamori.yaml\n/etc/xdg/autostart/mamori-notify.desktop' ] ||
	fail "mamori conffiles: $conf"
l=$(dpkg-deb -c "$HUB1")
has "$l" -rwxr-xr-x /usr/bin/mamori-hub mamori-hub.deb
has "$l" -rw-r--r-- /usr/lib/systemd/system/mamori-hub.service mamori-hub.deb
has "$l" -rw-r----- /etc/mamori-hub/hub.yaml mamori-hub.deb
[ "$(dpkg-deb --ctrl-tarfile "$HUB1" | tar -xO ./conffiles)" = /etc/mamori-hub/hub.yaml ] || fail "mamori-hub conffiles"
grep -qw adduser <<<"$(dpkg-deb -f "$HUB1" Depends)" || fail "mamori-hub does not depend on adduser"
for pkg in "$AGENT1" "$HUB1"; do
	for s in postinst prerm postrm; do
		dpkg-deb --ctrl-tarfile "$pkg" | tar -xO "./$s" | sh -n || fail "$s of $pkg is not valid sh"
	done
done

log "contents of the .rpms (rpm -qp)"
# rpm_files RPM: path, mode, owner, %config flags of every file (rpm -qlp,
# with owners and flags).
rpm_files() {
	rpm -qp --qf '[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} f=%{FILEFLAGS:fflags}\n]' "$1" 2>/dev/null
}
r=$(echo "$WORK/pkgs/v1/mamori-$V1"-1.*.rpm)
[ "$(rpm -qp --qf '%{NAME} %{VERSION}-%{RELEASE}' "$r" 2>/dev/null)" = "mamori $V1-1" ] || fail "$r: name or version"
diff -u - <(rpm_files "$r") <<'EOF' || fail "mamori.rpm: contents"
/etc/mamori drwxr-xr-x root:root f=
/etc/mamori/mamori.yaml -rw-r----- root:root f=cn
/etc/xdg/autostart/mamori-notify.desktop -rw-r--r-- root:root f=c
/usr/bin/mamori -rwxr-xr-x root:root f=
/usr/lib/systemd/system/mamori.service -rw-r--r-- root:root f=
/usr/lib/systemd/user/mamori-notify.service -rw-r--r-- root:root f=
/usr/share/doc/mamori/copyright -rw-r--r-- root:root f=
/var/lib/mamori drwx------ root:root f=
EOF
grep -q 'systemctl enable mamori.service' <<<"$(rpm -qp --scripts "$r" 2>/dev/null)" || fail "mamori.rpm: %post does not enable the service"
r=$(echo "$WORK/pkgs/v1/mamori-hub-$V1"-1.*.rpm)
[ "$(rpm -qp --qf '%{NAME} %{VERSION}-%{RELEASE}' "$r" 2>/dev/null)" = "mamori-hub $V1-1" ] || fail "$r: name or version"
diff -u - <(rpm_files "$r") <<'EOF' || fail "mamori-hub.rpm: contents"
/etc/mamori-hub drwxr-xr-x root:root f=
/etc/mamori-hub/hub.yaml -rw-r----- root:mamori-hub f=cn
/usr/bin/mamori-hub -rwxr-xr-x root:root f=
/usr/lib/systemd/system/mamori-hub.service -rw-r--r-- root:root f=
/usr/share/doc/mamori-hub/copyright -rw-r--r-- root:root f=
/var/lib/mamori-hub drwx------ mamori-hub:mamori-hub f=
EOF
grep -q 'useradd -r -g mamori-hub' <<<"$(rpm -qp --scripts "$r" 2>/dev/null)" || fail "mamori-hub.rpm: %pre does not make the user"
for s in packaging/rpm/*/*; do sh -n "$s" || fail "$s is not valid sh"; done

# lintian takes a while: it runs meanwhile, and is read at the end.
lintian --no-cfg --fail-on error "$AGENT1" "$HUB1" >"$WORK/lintian.out" 2>&1 &
LINTJOB=$!

log "systemd-analyze security (offline)"
# exposure UNIT MAX: prints the score, fails above MAX.
exposure() {
	local out score
	out=$(systemd-analyze security --offline=yes --no-pager "$1" 2>&1) || true
	score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
	[ -n "$score" ] || fail "systemd-analyze security $1: $out"
	echo "   $(basename "$1"): exposure $score (at most $2)"
	awk -v s="$score" -v m="$2" 'BEGIN { exit !(s <= m) }' || fail "$1: exposure $score above $2:"$'\n'"$out"
}
exposure packaging/systemd/mamori.service "$AGENT_MAX_EXPOSURE"
exposure packaging/systemd/mamori-hub.service "$HUB_MAX_EXPOSURE"

# ---- sandboxes --------------------------------------------------------------

CGROOT=$(findmnt -n -t cgroup2 -o TARGET | head -1)
[ -n "$CGROOT" ] || fail "no cgroup2 hierarchy mounted (needed to run systemd in the sandbox)"
CGSELF=$(sed -n 's/^0:://p' /proc/self/cgroup)

# sandbox_start NAME plain|systemd: an overlay of / in new namespaces, with
# the packages at /mamori-test; PID 1 is a reaping shell loop or systemd.
sandbox_start() {
	SBNAME=$1
	local mode=$2 w=$WORK/$1 cg
	mkdir -p "$w"
	cg=$CGROOT$CGSELF/mamori-package-test-$$-$1
	cg=${cg//\/\//\/}
	mkdir "$cg"
	CGROUPS+=("$cg")
	cat >"$w/setup.sh" <<EOF
set -e
mount -t tmpfs -o mode=0700 tmpfs "$w"
mkdir "$w/upper" "$w/work" "$w/root"
R="$w/root"
mount -t overlay overlay -o lowerdir=/,upperdir="$w/upper",workdir="$w/work" "\$R"
mount -t proc proc "\$R/proc"
mount -t sysfs sysfs "\$R/sys"
mount --rbind /dev "\$R/dev"
mount -t tmpfs -o mode=0755 tmpfs "\$R/run"
mount -t tmpfs -o mode=1777 tmpfs "\$R/tmp"
mkdir -p "\$R/mamori-test"
mount --bind "$WORK/pkgs" "\$R/mamori-test"
mount -o remount,bind,ro "\$R/mamori-test"
# What the host may have left for its own installs must not apply here.
rm -f "\$R/usr/sbin/policy-rc.d"
hostname mamori-sandbox
if [ "$mode" = systemd ]; then
	mount -t cgroup2 cgroup2 "\$R/sys/fs/cgroup"
	cat >"\$R/etc/systemd/system/mamori-sandbox.target" <<'UNIT'
[Unit]
Description=mamori package test sandbox
Requires=basic.target
After=basic.target
UNIT
fi
ip link set lo up
# pivot_root, not chroot: in a chroot the kernel refuses user namespaces
# (PrivateUsers=), and systemd must see a root of its own.
cd "\$R"
mkdir -p .pivot
pivot_root . .pivot
umount -l /.pivot
rmdir /.pivot
if [ "$mode" = systemd ]; then
	export container=mamori-package-test
	exec /lib/systemd/systemd --system --unit=mamori-sandbox.target --show-status=no --log-target=journal
fi
# PID 1 reaps the processes that end orphaned (daemons a SysV init
# script started): bash waits for any child when its sleep ends.
exec -a mamori-sandbox-init /bin/bash -c 'while :; do sleep 1; done'
EOF
	bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$cg" \
		unshare --mount --pid --fork --net --uts --ipc --cgroup --propagation private \
		bash "$w/setup.sh" >"$WORK/$1.out" 2>&1 &
	local upid=$! _ pid exe arg0
	SBUPID=$upid
	# Ready when the sandbox's PID 1 (unshare's child) runs systemd or
	# the reaper (mamori-sandbox-init).
	for _ in $(seq 200); do
		pid=$(awk '{print $1}' "/proc/$upid/task/$upid/children" 2>/dev/null || true)
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
		arg0=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | head -n 1 || true)
		if [ "${exe##*/}" = systemd ] || [ "$arg0" = mamori-sandbox-init ]; then
			SBPID=$pid
			break
		fi
		kill -0 "$upid" 2>/dev/null || fail "sandbox $1 did not start: $(cat "$WORK/$1.out")"
		sleep 0.1
	done
	[ -n "$SBPID" ] || fail "sandbox $1 did not start: $(cat "$WORK/$1.out")"
}

# sb CMD...: runs CMD in the sandbox (its root, namespaces), for at most
# SBTIMEOUT seconds (90; the background hub and agent get longer).
SBTIMEOUT=90
sb() {
	timeout "$SBTIMEOUT" nsenter -t "$SBPID" -m -u -i -n -p -C -r -w -- "$@"
}

# wait_for SECONDS WHAT CMD...: polls CMD in the sandbox until it succeeds.
wait_for() {
	local t=$1 what=$2 _
	shift 2
	for _ in $(seq $((t * 5))); do
		sb "$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	fail "$SBNAME: $what (waited ${t}s)"
}

# dpkg_do ARGS...: dpkg in the sandbox, no terminal; prints its output
# indented and keeps it in $OUT.
dpkg_do() {
	if ! OUT=$(sb env DEBIAN_FRONTEND=noninteractive dpkg "$@" </dev/null 2>&1); then
		fail "$SBNAME: dpkg $*:"$'\n'"$OUT"
	fi
	printf '%s\n' "$OUT" | grep -v -e '^(Reading database' -e '^Selecting previously' -e '^Preparing to unpack' \
		-e '^Unpacking ' -e '^Setting up ' -e '^Removing ' -e '^Purging ' -e '^Processing triggers' |
		sed "s/^/   $SBNAME dpkg: /" || true
}

# rpm_do ARGS...: Debian's rpm in the sandbox (--force-debian: it is not
# an rpm system; --nodeps: shadow-utils is Fedora's name for useradd);
# prints its output indented and keeps it in $OUT.
RH1=/mamori-test/v1/$(basename "$(echo "$WORK/pkgs/v1/mamori-hub-$V1"-1.*.rpm)")
RA1=/mamori-test/v1/$(basename "$(echo "$WORK/pkgs/v1/mamori-$V1"-1.*.rpm)")
rpm_do() {
	if ! OUT=$(sb rpm --force-debian --nodeps "$@" </dev/null 2>&1); then
		fail "$SBNAME: rpm $*:"$'\n'"$OUT"
	fi
	[ -z "$OUT" ] || printf '%s\n' "$OUT" | sed "s/^/   $SBNAME rpm: /"
}

sb_test() { sb test "$@" || fail "$SBNAME: test $* is false"; }
sb_mode() {
	local got
	got=$(sb stat -c '%a %U:%G' "$1") || fail "$SBNAME: no $1"
	[ "$got" = "$2" ] || fail "$SBNAME: $1 is $got, want $2"
}
status_of() { sb dpkg-query -W -f '${db:Status-Abbrev}${Version}' "$1" 2>/dev/null || true; }

AUDIT=/var/lib/mamori/audit.jsonl
CONF=/etc/mamori/mamori.yaml
HUBCONF=/etc/mamori-hub/hub.yaml
UNITCAPS=$(sed -n 's/^CapabilityBoundingSet=//p' packaging/systemd/mamori.service)
SETPRIV_CAPS=-all$(for c in $UNITCAPS; do c=${c#CAP_}; printf ',+%s' "${c,,}"; done)

# edit_config: the administrator's edit (asset id, reporting to the hub).
edit_config() {
	sb sed -i 's/^  asset_id: PC-0042 /  asset_id: PC-EDITED /' "$CONF"
	sb sh -c "printf '\nreport:\n  url: http://127.0.0.1:8443\n  token_file: /etc/mamori/agent.token\n  heartbeat_interval: 5s\n' >>$CONF"
	sb grep -q 'asset_id: PC-EDITED' "$CONF" || fail "$SBNAME: config edit did not apply"
	sb cp "$CONF" /tmp/mamori.yaml.edited
}

# hub_token NAME: a PC's token from the hub, as the hub's user would.
hub_token() {
	sb sh -c "umask 077; runuser -u mamori-hub -- mamori-hub agent add $1 --config $HUBCONF >/etc/mamori/agent.token" ||
		fail "$SBNAME: mamori-hub agent add"
	sb_mode /etc/mamori/agent.token "600 root:root"
}


# ---- without systemd ----------------------------------------------------------

log "sandbox without systemd: install $V1"
sandbox_start plain plain
sb_test ! -d /run/systemd/system
dpkg_do -i "$SH1"
grep -q 'systemd is not running here, so the hub was not started' <<<"$OUT" || fail "hub postinst did not say how to start it"
sb getent passwd mamori-hub >/dev/null || fail "no user mamori-hub"
sb_mode "$HUBCONF" "640 root:mamori-hub"
sb_mode /var/lib/mamori-hub "700 mamori-hub:mamori-hub"
sb_test -L /etc/systemd/system/multi-user.target.wants/mamori-hub.service
dpkg_do -i "$SA1"
grep -q 'systemd is not running here, so the agent was not started' <<<"$OUT" || fail "postinst did not say how to start the agent"
grep -q 'mamori run --config /etc/mamori/mamori.yaml' <<<"$OUT" || fail "postinst did not name the foreground command"
[ "$(status_of mamori)" = "ii $V1-1" ] || fail "mamori: $(status_of mamori)"
sb_mode "$CONF" "640 root:root"
sb_mode /var/lib/mamori "700 root:root"
sb_mode /usr/bin/mamori "755 root:root"
sb_test -L /etc/systemd/system/multi-user.target.wants/mamori.service
sb_test -L /etc/systemd/user/graphical-session.target.wants/mamori-notify.service
sb_test -f /etc/xdg/autostart/mamori-notify.desktop
sb mamori config check --config "$CONF" >/dev/null || fail "mamori config check of the packaged config"

log "plain: systemd-analyze verify (units and binaries installed)"
for u in /usr/lib/systemd/system/mamori.service /usr/lib/systemd/system/mamori-hub.service; do
	out=$(sb systemd-analyze verify "$u" 2>&1) || fail "systemd-analyze verify $u:"$'\n'"$out"
	[ -z "$out" ] || fail "systemd-analyze verify $u warns:"$'\n'"$out"
done
sb install -d -m 0700 /run/user/0
out=$(sb env XDG_RUNTIME_DIR=/run/user/0 systemd-analyze --user verify /usr/lib/systemd/user/mamori-notify.service 2>&1) ||
	fail "systemd-analyze --user verify mamori-notify.service:"$'\n'"$out"
[ -z "$out" ] || fail "systemd-analyze --user verify mamori-notify.service warns:"$'\n'"$out"

# run_agent: the agent in the foreground with the unit's capability
# bounding set and no_new_privs, until agent_started is in the log.
AGENTJOB=""
run_agent() {
	local before
	before=$(sb sh -c "grep -c '\"type\":\"agent_started\"' $AUDIT 2>/dev/null || true")
	SBTIMEOUT=600 sb sh -c "echo \$\$ >/run/agent.pid; exec setpriv --bounding-set=$SETPRIV_CAPS --no-new-privs /usr/bin/mamori run --config $CONF" \
		>"$WORK/agent.log" 2>&1 &
	AGENTJOB=$!
	wait_for 20 "agent_started recorded" sh -c "[ \$(grep -c '\"type\":\"agent_started\"' $AUDIT) -gt ${before:-0} ]"
	sb grep -q "^CapBnd:.*$(sb setpriv --bounding-set="$SETPRIV_CAPS" grep CapBnd /proc/self/status | awk '{print $2}')" \
		"/proc/$(sb cat /run/agent.pid)/status" || fail "agent's bounding set"
}
stop_agent() {
	sb sh -c 'kill -TERM $(cat /run/agent.pid)'
	local rc=0
	wait "$AGENTJOB" || rc=$?
	[ "$rc" = 0 ] || fail "agent exited $rc after SIGTERM:"$'\n'"$(tail -20 "$WORK/agent.log")"
	sb sh -c "tail -n 1 $AUDIT | grep -q '\"type\":\"agent_stopped\"'" || fail "last record is not agent_stopped"
	sb mamori audit verify --config "$CONF" >/dev/null || fail "audit verify:"$'\n'"$(sb mamori audit verify --config "$CONF" 2>&1)"
}

log "plain: the hub and the agent run"
SBTIMEOUT=600 sb sh -c "exec setpriv --reuid=mamori-hub --regid=mamori-hub --init-groups --bounding-set=-all --no-new-privs mamori-hub serve --config $HUBCONF" \
	>"$WORK/hub.log" 2>&1 &
HUBJOB=$!
wait_for 20 "the hub answers" curl -fsS -o /dev/null http://127.0.0.1:8443/metrics
[ "$(sb stat -c %U:%G /var/lib/mamori-hub/hub.db)" = mamori-hub:mamori-hub ] || fail "hub.db is not the hub user's"
run_agent
m=$(sb curl -fsS http://127.0.0.1:9868/metrics) && grep -q '^mamori_build_info' <<<"$m" || fail "agent metrics"
stop_agent

log "plain: edit the config, upgrade to $V2"
hub_token pc-plain
edit_config
sb cp "$AUDIT" /tmp/audit.before
dpkg_do -i "$SA2"
[ "$(status_of mamori)" = "ii $V2-1" ] || fail "after upgrade: $(status_of mamori)"
sb cmp -s "$CONF" /tmp/mamori.yaml.edited || fail "the upgrade changed the edited config"
sb_mode "$CONF" "640 root:root"
sb sh -c 'ls /etc/mamori/*.dpkg-* 2>/dev/null' && fail "the upgrade left .dpkg-* files"
sb cmp -s "$AUDIT" /tmp/audit.before || fail "the upgrade changed the audit log"
dpkg_do -i "$SH2"
sb_mode "$HUBCONF" "640 root:mamori-hub"
run_agent
sb grep -q '"asset_id":"PC-EDITED"' "$AUDIT" || fail "the agent did not use the edited config"
wait_for 20 "the hub got the agent's events" sh -c "curl -fsS http://127.0.0.1:8443/metrics | grep -Eq '^mamori_hub_events_ingested_total [1-9]'"
stop_agent
size=$(sb stat -c %s /tmp/audit.before)
sb cmp -s -n "$size" "$AUDIT" /tmp/audit.before || fail "the old records changed"
[ "$(sb stat -c %s "$AUDIT")" -gt "$size" ] || fail "no new records"
sb sh -c 'kill -TERM $(pgrep -x mamori-hub)'
wait "$HUBJOB" || fail "hub exit status $?"

log "plain: remove"
sb cp "$AUDIT" /tmp/audit.before
dpkg_do -r mamori
grep -q 'audit log' <<<"$OUT" || fail "dpkg -r did not say the audit log stays"
[ "$(status_of mamori)" = "rc $V2-1" ] || fail "after remove: $(status_of mamori)"
sb_test ! -e /usr/bin/mamori
sb cmp -s "$CONF" /tmp/mamori.yaml.edited || fail "remove changed the config"
sb cmp -s "$AUDIT" /tmp/audit.before || fail "remove changed the audit log"
sb_test -f /var/lib/mamori/audit.head

log "plain: purge"
# A symlink where the init script's log would be: purge removes only a
# regular file there, never what a link leads to.
sb sh -c 'echo victim >/tmp/log-victim && ln -s /tmp/log-victim /var/log/mamori.log'
dpkg_do -P mamori
sb_test -L /var/log/mamori.log
sb grep -qx victim /tmp/log-victim || fail "purge changed what /var/log/mamori.log linked to"
sb rm /var/log/mamori.log
grep -q '/var/lib/mamori' <<<"$OUT" && grep -q 'audit.jsonl' <<<"$OUT" || fail "purge did not say where the audit log is"
[ -z "$(status_of mamori)" ] || [ "$(status_of mamori)" = "pn " ] || fail "after purge: $(status_of mamori)"
sb_test ! -e /etc/mamori
sb_test ! -e /etc/systemd/system/multi-user.target.wants/mamori.service
sb_test ! -e /etc/systemd/user/graphical-session.target.wants/mamori-notify.service
left=$(sb ls -A /var/lib/mamori | sort | tr '\n' ' ')
[ "$left" = "audit.head audit.jsonl " ] || fail "purge left in /var/lib/mamori: $left"
sb cmp -s "$AUDIT" /tmp/audit.before || fail "purge changed the audit log"
sb /mamori-test/mamori.host audit verify --state-dir /var/lib/mamori >/dev/null || fail "the kept audit log does not verify"

log "plain: reinstall ($V1) continues the audit chain"
dpkg_do -i "$SA1"
run_agent
stop_agent
sb cmp -s -n "$(sb stat -c %s /tmp/audit.before)" "$AUDIT" /tmp/audit.before || fail "reinstall changed the old records"

# started: how many agent_started the audit log holds.
started() { sb sh -c "grep -c '\"type\":\"agent_started\"' $AUDIT || true"; }
# no_mamori_runs WHEN: no process runs /usr/bin/mamori (or what it was).
no_mamori_runs() {
	local exes
	# shellcheck disable=SC2016 # expanded by the sandbox's sh
	exes=$(sb sh -c 'for p in /proc/[0-9]*; do readlink "$p/exe"; done 2>/dev/null' || true)
	! grep -Eq '^/usr/bin/mamori( \(deleted\))?$' <<<"$exes" ||
		fail "$SBNAME: $1: mamori still runs:"$'\n'"$(sb ps -eo pid,args | grep '[m]amori')"
}
# daemon_pid NAME EXE: the pid of the SysV service NAME's daemon (its pid
# file), checked to run EXE as it is now (not a replaced or removed one).
daemon_pid() {
	local pid exe
	pid=$(sb cat "/run/$1.pid") || fail "$SBNAME: no /run/$1.pid"
	exe=$(sb readlink "/proc/$pid/exe") || fail "$SBNAME: $1's pid $pid does not run"
	[ "$exe" = "$2" ] || fail "$SBNAME: $1's daemon (pid $pid) runs $exe, want $2"
	echo "$pid"
}

log "plain: the agent as a SysV service (mamori service install), upgraded to $V2"
n=$(started)
# sb_run CMD...: CMD in the sandbox, its output indented; fails the test
# with it when CMD fails.
sb_run() {
	local out
	out=$(sb "$@" 2>&1) || fail "$SBNAME: $*:"$'\n'"$out"
	printf '%s\n' "$out" | sed "s/^/   $SBNAME: /"
}
sb_run mamori service install
sb_test -x /etc/init.d/mamori
sb_test -L /etc/rc2.d/S50mamori
sb_run mamori service start
wait_for 20 "agent_started recorded (SysV service)" sh -c "[ \$(grep -c '\"type\":\"agent_started\"' $AUDIT) -gt $n ]"
pid1=$(daemon_pid mamori /usr/bin/mamori)
dpkg_do -i "$SA2"
[ "$(status_of mamori)" = "ii $V2-1" ] || fail "after upgrade: $(status_of mamori)"
grep -q 'Starting mamori' <<<"$OUT" || fail "the upgrade did not start the SysV service again"
wait_for 5 "the agent from before the upgrade ended" test ! -e "/proc/$pid1"
daemon_pid mamori /usr/bin/mamori >/dev/null
wait_for 20 "agent_started recorded after the upgrade" sh -c "[ \$(grep -c '\"type\":\"agent_started\"' $AUDIT) -gt $((n + 1)) ]"
st=$(sb mamori service status) || fail "service status after the upgrade: $st"
[ "$st" = "mamori: running (SysV init script /etc/init.d/mamori)" ] || fail "service status: $st"

log "plain: remove stops the SysV service and removes it; purge"
dpkg_do -r mamori
grep -q 'removed the service mamori (/etc/init.d/mamori ' <<<"$OUT" || fail "dpkg -r did not say it removed the SysV service"
no_mamori_runs "after dpkg -r"
sb_test ! -e /etc/init.d/mamori
[ -z "$(sb sh -c 'ls /etc/rc?.d/ | grep -x "[SK][0-9][0-9]mamori"' || true)" ] || fail "dpkg -r left rc links of mamori"
sb sh -c "tail -n 1 $AUDIT | grep -q '\"type\":\"agent_stopped\"'" || fail "dpkg -r: the last record is not agent_stopped"
sb cp "$AUDIT" /tmp/audit.removed
sb_test -f /var/log/mamori.log # the init script's log: remove keeps it
dpkg_do -P mamori
sb_test ! -e /var/log/mamori.log
left=$(sb ls -A /var/lib/mamori | sort | tr '\n' ' ')
[ "$left" = "audit.head audit.jsonl " ] || fail "purge left in /var/lib/mamori: $left"
sb cmp -s "$AUDIT" /tmp/audit.removed || fail "purge changed the audit log"
sb /mamori-test/mamori.host audit verify --state-dir /var/lib/mamori >/dev/null || fail "the kept audit log does not verify"

log "plain: the hub as a SysV service (mamori-hub service install): reinstalled, removed"
# Run as root (as service install runs it), on a database directory of
# root's own: the package's is mamori-hub's.
sb install -d -m 0700 /var/lib/mamori-hub-sysv
sb sh -c "umask 077; printf 'version: 1\nlisten: 127.0.0.1:8444\ndatabase: sqlite:///var/lib/mamori-hub-sysv/hub.db\n' >/etc/mamori-hub-sysv.yaml"
sb_run mamori-hub service install --config /etc/mamori-hub-sysv.yaml
sb_run mamori-hub service start
wait_for 20 "the SysV hub answers" curl -fsS -o /dev/null http://127.0.0.1:8444/metrics
hpid1=$(daemon_pid mamori-hub /usr/bin/mamori-hub)
dpkg_do -i "$SH2" # the same version again: prerm upgrade, postinst configure
wait_for 5 "the hub from before the reinstall ended" test ! -e "/proc/$hpid1"
daemon_pid mamori-hub /usr/bin/mamori-hub >/dev/null
wait_for 20 "the SysV hub answers after the reinstall" curl -fsS -o /dev/null http://127.0.0.1:8444/metrics
dpkg_do -r mamori-hub
grep -q 'removed the service mamori-hub (/etc/init.d/mamori-hub ' <<<"$OUT" || fail "dpkg -r mamori-hub did not say it removed the SysV service"
[ -z "$(sb pgrep -x mamori-hub || true)" ] || fail "mamori-hub still runs after dpkg -r"
sb_test ! -e /etc/init.d/mamori-hub
[ -z "$(sb sh -c 'ls /etc/rc?.d/ | grep -x "[SK][0-9][0-9]mamori-hub"' || true)" ] || fail "dpkg -r left rc links of mamori-hub"
sb_test -f /var/log/mamori-hub.log # the init script's log: remove keeps it

log "plain: remove and purge the hub"
sb_test -f "$HUBCONF"
sb_test -f /var/lib/mamori-hub/hub.db
dpkg_do -P mamori-hub
grep -q 'hub.db' <<<"$OUT" || fail "hub purge did not say where the database is"
sb_test ! -e /etc/mamori-hub
sb_test ! -e /var/log/mamori-hub.log
sb_test -f /var/lib/mamori-hub/hub.db

log "plain: the .rpm's scriptlets with the agent as a SysV service"
rpm_do -i "$RA1"
sb_run mamori service install
sb_run mamori service start
pid1=$(daemon_pid mamori /usr/bin/mamori)
rpm_do -U --replacepkgs "$RA1" # %post 2: an upgrade
grep -q 'Starting mamori' <<<"$OUT" || fail "rpm -U did not restart the SysV service"
wait_for 5 "the agent from before rpm -U ended" test ! -e "/proc/$pid1"
daemon_pid mamori /usr/bin/mamori >/dev/null
sb_test -f /var/log/mamori.log
rpm_do -e mamori
grep -q 'removed the service mamori (/etc/init.d/mamori ' <<<"$OUT" || fail "rpm -e did not say it removed the SysV service"
sb_test ! -e /var/log/mamori.log
no_mamori_runs "after rpm -e"
sb_test ! -e /etc/init.d/mamori
[ -z "$(sb sh -c 'ls /etc/rc?.d/ | grep -x "[SK][0-9][0-9]mamori"' || true)" ] || fail "rpm -e left rc links of mamori"
sb sh -c "tail -n 1 $AUDIT | grep -q '\"type\":\"agent_stopped\"'" || fail "rpm -e: the last record is not agent_stopped"
sb /mamori-test/mamori.host audit verify --state-dir /var/lib/mamori >/dev/null || fail "the audit log after rpm -e does not verify"
sandbox_stop

# ---- with systemd as PID 1 -------------------------------------------------------

log "sandbox with systemd as PID 1"
sandbox_start sd systemd
wait_for 10 "systemd answers" test -S /run/systemd/private
s=$(sb timeout 30 systemctl is-system-running --wait 2>&1) || true
[ "$s" = running ] || [ "$s" = degraded ] || fail "systemd in the sandbox: $s"
sb_test -d /run/systemd/system
journal() { sb journalctl --no-pager -n 40 -u "$1" 2>&1 || true; }
DIAG="sb journalctl --no-pager -n 60 -u mamori.service -u mamori-hub.service"

# main_pid UNIT
main_pid() { sb systemctl show -P MainPID "$1"; }
active() { [ "$(sb systemctl is-active "$1" 2>/dev/null)" = active ] || fail "$1 is $(sb systemctl is-active "$1"):"$'\n'"$(journal "$1")"; }

log "sd: install $V1 (postinst enables and starts)"
dpkg_do -i "$SH1"
active mamori-hub.service
[ "$(sb systemctl is-enabled mamori-hub.service)" = enabled ] || fail "mamori-hub not enabled"
wait_for 20 "the hub answers" curl -fsS -o /dev/null http://127.0.0.1:8443/metrics
pid=$(main_pid mamori-hub.service)
[ "$(sb stat -c %U "/proc/$pid")" = mamori-hub ] || fail "mamori-hub does not run as mamori-hub"
sb grep -Eq '^CapEff:\s+0+$' "/proc/$pid/status" || fail "mamori-hub has capabilities"
sb grep -Eq '^Seccomp:\s+2$' "/proc/$pid/status" || fail "mamori-hub has no seccomp filter"

dpkg_do -i "$SA1"
active mamori.service
[ "$(sb systemctl is-enabled mamori.service)" = enabled ] || fail "mamori not enabled"
[ "$(sb systemctl --global is-enabled mamori-notify.service)" = enabled ] || fail "mamori-notify not enabled for users"
wait_for 20 "agent_started recorded" grep -q '"type":"agent_started"' "$AUDIT"
wait_for 20 "the agent's metrics answer" curl -fsS -o /dev/null http://127.0.0.1:9868/metrics

log "sd: the agent runs inside its sandbox"
pid=$(main_pid mamori.service)
st=$(sb cat "/proc/$pid/status")
want=$(sb setpriv --bounding-set="$SETPRIV_CAPS" grep CapBnd /proc/self/status | awk '{print $2}')
grep -Eq "^CapBnd:\s+$want\$" <<<"$st" || fail "agent CapBnd: $(grep CapBnd <<<"$st"), want $want"
grep -Eq '^NoNewPrivs:\s+1$' <<<"$st" || fail "agent without no_new_privs"
grep -Eq '^Seccomp:\s+2$' <<<"$st" || fail "agent without a seccomp filter"
[ "$(sb stat -c %u "/proc/$pid")" = 0 ] || fail "agent does not run as root"
mi=$(sb cat "/proc/$pid/mountinfo")
awk '$5 == "/" { exit !($6 ~ /(^|,)ro(,|$)/) }' <<<"$mi" || fail "agent's / is not read-only"
awk '$5 == "/var/lib/mamori" { f = 1; exit !($6 ~ /(^|,)rw(,|$)/) } END { exit !f }' <<<"$mi" || fail "agent's state dir is not a writable mount"
sb_mode /var/lib/mamori "700 root:root"
sb_mode /run/mamori "755 root:root"
# The local API: its socket given the group users (CAP_CHOWN), and
# mamori status reading the running agent through it.
wait_for 10 "the local socket" test -S /run/mamori/agent.sock
sb_mode /run/mamori/agent.sock "660 root:users"
sb mamori status >/dev/null || fail "mamori status:"$'\n'"$(sb mamori status 2>&1)"

log "sd: the unit's sandbox reads block devices, writes none"
# The agent's unit with a probe for ExecStart: a loop device stands in for
# a USB disk (read: allowed; write: denied by DeviceAllow=block-* r).
truncate -s 1M "$WORK/disk.img"
printf 'MAMORI-PROBE' | dd of="$WORK/disk.img" conv=notrunc status=none
LOOP=$(losetup -f --show "$WORK/disk.img")
cat >"$WORK/pkgs/probe.sh" <<'EOF'
#!/bin/sh
# Runs with mamori.service's sandbox: what can it read and write?
out=/run/mamori
head -c 12 "$1" >$out/read
if printf x | dd of="$1" conv=notrunc status=none 2>/dev/null; then echo written; else echo denied; fi >$out/write
if touch /etc/mamori-probe 2>/dev/null; then echo yes; else echo no; fi >$out/etc
if touch /var/lib/mamori/probe 2>/dev/null && rm /var/lib/mamori/probe; then echo yes; else echo no; fi >$out/state
if [ "$(cat /sys/class/block/${1##*/}/size)" = 2048 ]; then echo yes; else echo no; fi >$out/sysfs
EOF
sb sed -e "s|^ExecStart=.*|ExecStart=/bin/sh /mamori-test/probe.sh $LOOP|" -e 's|^Type=.*|Type=oneshot|' \
	-e 's|^Restart=.*|RemainAfterExit=yes|' -e '/^RestartSec=/d' -e '/^ExecReload=/d' \
	/usr/lib/systemd/system/mamori.service >"$WORK/probe.service"
sb sh -c "cat >/etc/systemd/system/mamori-probe.service" <"$WORK/probe.service"
sb grep -q '^DeviceAllow=block-\* r$' /etc/systemd/system/mamori-probe.service || fail "probe unit"
sb systemctl daemon-reload
sb systemctl stop mamori.service # RuntimeDirectory=mamori is the probe's now
sb systemctl start mamori-probe.service
wait_for 10 "the probe ran" test -s /run/mamori/sysfs
[ "$(sb cat /run/mamori/sysfs)" = yes ] || fail "the unit's sandbox cannot read sysfs"
[ "$(sb cat /run/mamori/state)" = yes ] || fail "the unit's sandbox cannot write /var/lib/mamori"
[ "$(sb cat /run/mamori/read)" = MAMORI-PROBE ] || fail "the unit's sandbox cannot read $LOOP: $(sb cat /run/mamori/read)"
[ "$(sb cat /run/mamori/write)" = denied ] || fail "the unit's sandbox can write $LOOP"
[ "$(sb cat /run/mamori/etc)" = no ] || fail "the unit's sandbox can write /etc"
[ "$(head -c 12 "$WORK/disk.img")" = MAMORI-PROBE ] || fail "the disk image changed"
sb systemctl stop mamori-probe.service
sb rm /etc/systemd/system/mamori-probe.service
sb systemctl daemon-reload
losetup -d "$LOOP"
LOOP=""
sb systemctl start mamori.service
active mamori.service

log "sd: a warning reaches a desktop through a notifier the agent starts"
# Someone logged in at a desktop, with no notifier connected: a user with
# a session bus, an X server and a notification daemon (dbus-daemon, Xvfb,
# dunst) and a live login in utmp. An unapproved network (a link with an
# address no approved network has) is a violation; the agent, inside its
# unit's sandbox, must find the session (stat in the user's 0700 runtime
# dir) and start `mamori notify --once` as the user (setuid, setgid),
# which shows the warning through dunst and says so.
DESK=mamori-desk
sb useradd -m -s /bin/sh "$DESK"
DUID=$(sb id -u "$DESK")
sb install -d -m 0700 -o "$DESK" -g "$DESK" "/run/user/$DUID"
BUS=unix:path=/run/user/$DUID/bus
sb runuser -u "$DESK" -- env XDG_RUNTIME_DIR="/run/user/$DUID" DBUS_SESSION_BUS_ADDRESS="$BUS" DISPLAY=:57 sh -c '
	dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --fork --nopidfile
	setsid Xvfb :57 -nolisten tcp </dev/null >/tmp/xvfb.log 2>&1 &
	for i in $(seq 100); do [ -S /tmp/.X11-unix/X57 ] && break; sleep 0.1; done
	setsid dunst </dev/null >/tmp/dunst.log 2>&1 &'
wait_for 15 "dunst serves org.freedesktop.Notifications" runuser -u "$DESK" -- env DBUS_SESSION_BUS_ADDRESS="$BUS" \
	dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetNameOwner string:org.freedesktop.Notifications
dpid=$(sb pgrep -u "$DESK" -x dunst)
# A USER_PROCESS record (glibc's struct utmp, 384 bytes) for the user,
# its process the running dunst.
sb python3 -c 'import struct, sys, time
sys.stdout.buffer.write(struct.pack("<hxxi32s4s32s256shhiii4i20x", 7, int(sys.argv[1]), b":57", b"ts/9",
    sys.argv[2].encode(), b"", 0, 0, 0, int(time.time()), 0, 0, 0, 0, 0))' "$dpid" "$DESK" >"$WORK/utmp.rec"
sb sh -c 'cat >>/run/utmp' <"$WORK/utmp.rec"
sb ip link add mamori-t0 type veth peer name mamori-t1
sb ip addr add 198.51.100.7/24 dev mamori-t0
sb ip link set mamori-t1 up
sb ip link set mamori-t0 up
wait_for 30 "warning_shown recorded" grep -q '"type":"warning_shown"' "$AUDIT"
rec=$(sb grep '"type":"warning_shown"' "$AUDIT" | tail -n 1)
grep -q "\"user\":\"$DESK\"" <<<"$rec" && grep -q '"via":"started"' <<<"$rec" ||
	fail "warning_shown does not name $DESK and a started notifier: $rec"
sb mamori audit verify --config "$CONF" >/dev/null || fail "audit verify after the warning"
sb ip link del mamori-t0

log "sd: killed, the agent is back after RestartSec"
old=$(main_pid mamori.service)
n=$(sb grep -c '"type":"agent_started"' "$AUDIT")
sb kill -TERM "$old"
wait_for 15 "restarted after SIGTERM" sh -c "p=\$(systemctl show -P MainPID mamori.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $old ] && [ \$(grep -c '\"type\":\"agent_started\"' $AUDIT) -gt $n ]"

log "sd: edit the config, upgrade to $V2 (postinst restarts)"
hub_token pc-sd
edit_config
sb cp "$AUDIT" /tmp/audit.before
n=$(sb grep -c '"type":"agent_started"' "$AUDIT")
dpkg_do -i "$SA2"
[ "$(status_of mamori)" = "ii $V2-1" ] || fail "after upgrade: $(status_of mamori)"
active mamori.service
sb cmp -s "$CONF" /tmp/mamori.yaml.edited || fail "the upgrade changed the edited config"
size=$(sb stat -c %s /tmp/audit.before)
wait_for 20 "the upgraded agent started" sh -c "[ \$(grep -c '\"type\":\"agent_started\"' $AUDIT) -gt $n ]"
sb cmp -s -n "$size" "$AUDIT" /tmp/audit.before || fail "the upgrade changed the audit log's records"
sb grep -q '"asset_id":"PC-EDITED"' "$AUDIT" || fail "the restarted agent did not use the edited config"
wait_for 20 "the hub got the agent's events" sh -c "curl -fsS http://127.0.0.1:8443/metrics | grep -Eq '^mamori_hub_events_ingested_total [1-9]'"
hubpid=$(main_pid mamori-hub.service)
dpkg_do -i "$SH2"
active mamori-hub.service
[ "$(main_pid mamori-hub.service)" != "$hubpid" ] || fail "the hub upgrade did not restart it"
sb_mode "$HUBCONF" "640 root:mamori-hub"

log "sd: remove stops, keeps the audit log"
dpkg_do -r mamori
[ "$(sb systemctl is-active mamori.service)" != active ] || fail "mamori still active after dpkg -r"
sb sh -c "tail -n 1 $AUDIT | grep -q '\"type\":\"agent_stopped\"'" || fail "dpkg -r: last record is not agent_stopped"
sb cp "$AUDIT" /tmp/audit.removed
sb /mamori-test/mamori.host audit verify --state-dir /var/lib/mamori >/dev/null || fail "audit log after remove does not verify"
dpkg_do -P mamori
grep -q 'audit.jsonl' <<<"$OUT" || fail "purge did not say where the audit log is"
sb cmp -s "$AUDIT" /tmp/audit.removed || fail "purge changed the audit log"
sb_test ! -e /etc/mamori
left=$(sb ls -A /var/lib/mamori | sort | tr '\n' ' ')
[ "$left" = "audit.head audit.jsonl " ] || fail "purge left in /var/lib/mamori: $left"
dpkg_do -r mamori-hub
[ "$(sb systemctl is-active mamori-hub.service)" != active ] || fail "mamori-hub still active after dpkg -r"
dpkg_do -P mamori-hub
sb_test -f /var/lib/mamori-hub/hub.db
sb_test ! -e /etc/mamori-hub
sandbox_stop

# ---- the .rpms, with systemd as PID 1 ------------------------------------------
# Debian's rpm installs them into the sandbox (--force-debian: it is not
# an rpm system; --nodeps: shadow-utils is Fedora's name for useradd), so
# their scriptlets run for real: %pre makes the user, %post enables and
# starts, %preun stops and disables, the audit log stays after rpm -e.

log "sandbox with systemd as PID 1 for the .rpms"
sandbox_start rpm systemd
wait_for 10 "systemd answers" test -S /run/systemd/private
s=$(sb timeout 30 systemctl is-system-running --wait 2>&1) || true
[ "$s" = running ] || [ "$s" = degraded ] || fail "systemd in the sandbox: $s"
rpm_do -i "$RH1"
sb getent passwd mamori-hub >/dev/null || fail "rpm %pre made no user mamori-hub"
sb_mode "$HUBCONF" "640 root:mamori-hub"
sb_mode /var/lib/mamori-hub "700 mamori-hub:mamori-hub"
active mamori-hub.service
rpm_do -i "$RA1"
active mamori.service
[ "$(sb systemctl --global is-enabled mamori-notify.service)" = enabled ] || fail "rpm: mamori-notify not enabled for users"
wait_for 20 "agent_started recorded (rpm)" grep -q '"type":"agent_started"' "$AUDIT"
rpm_do -e mamori
grep -q '/var/lib/mamori' <<<"$OUT" || fail "rpm -e did not say where the audit log is"
[ "$(sb systemctl is-active mamori.service)" != active ] || fail "mamori active after rpm -e"
sb_test ! -e /etc/systemd/system/multi-user.target.wants/mamori.service
sb_test ! -e /usr/bin/mamori
sb sh -c "tail -n 1 $AUDIT | grep -q '\"type\":\"agent_stopped\"'" || fail "rpm -e: last record is not agent_stopped"
sb /mamori-test/mamori.host audit verify --state-dir /var/lib/mamori >/dev/null || fail "audit log after rpm -e does not verify"
# What the SysV init script of "mamori-hub service install" would have
# logged: erase removes it.
sb sh -c 'umask 077; echo line >/var/log/mamori-hub.log'
rpm_do -e mamori-hub
[ "$(sb systemctl is-active mamori-hub.service)" != active ] || fail "mamori-hub active after rpm -e"
sb_test ! -e /var/log/mamori-hub.log
sb_test -d /var/lib/mamori-hub
DIAG=""
sandbox_stop

log "lintian"
# Errors fail; the overrides (packaging/lintian/, each with its reason)
# are listed by lintian --show-overrides.
rc=0
wait "$LINTJOB" || rc=$?
out=$(grep -v '^running with root' "$WORK/lintian.out" || true)
[ "$rc" = 0 ] || fail "lintian (exit $rc):"$'\n'"$out"
grep -q '^E:' <<<"$out" && fail "lintian errors:"$'\n'"$out"
[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/   lintian: /'

log "package-test: PASS"
