package svc

import (
	"path/filepath"
	"strings"
)

// systemdUnit is the unit written where systemd runs (the library's
// template language: {{Key}}, {{if}}, {{range}}; the keys are those
// kardianos/service passes to its systemd template). It differs from the
// library's in what matters for an agent that must keep running: restart
// whenever it ends (Restart=always, as the packaged units: a SIGTERM from
// someone other than systemd is a clean exit that on-failure would
// accept; systemctl stop still stops it) after RestartSec (not 120 s),
// without a start limit that would give up on it for good, and reload
// by SIGHUP only when the
// program reloads (ReloadSignal). The packages ship their own, sandboxed
// units instead.
const systemdUnit = `[Unit]
Description={{Description}}
ConditionFileIsExecutable={{Path | cmdEscape}}
StartLimitIntervalSec=0
{{range Dependencies}}{{.}}
{{end}}
[Service]
Type=simple
ExecStart={{Path | cmdEscape}}{{range Arguments}} {{. | cmd}}{{end}}
{{if ReloadSignal}}ExecReload=/bin/kill -{{ReloadSignal}} $MAINPID
{{end}}Restart={{Restart}}
RestartSec=5
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
`

// sysvScript returns the init script written where there is no systemd:
// /etc/init.d/NAME, linked from /etc/rc[2-5].d (start) and rc[016].d
// (stop) by kardianos/service. start-stop-daemon(8) starts the daemon in
// the background (its own session, every inherited descriptor closed,
// stdout and stderr to LogDirectory/NAME.log for what comes before the
// system log is open), writes /run/NAME.pid, and finds the daemon again
// by that pid file, the process name (the executable's base name, cut
// to the kernel's 15 bytes), which an upgrade that replaces the binary
// leaves unchanged, and the user root; running() then checks that the
// pid runs the daemon (/proc/PID/exe) as root (real, effective, saved
// and file-system uid 0 on the Uid: line of /proc/PID/status), so that a
// pid file left behind, whose pid another process has now (one of the
// same name, or the daemon's own binary run by a user: "mamori notify"),
// is never taken for the daemon: start removes it and starts the daemon,
// stop removes it, reload signals nothing (exit 7, LSB "not running").
// start, stop, restart and reload hold an exclusive flock(1) (util-linux)
// on /run/NAME.lock, 0600, for as long as they run, waiting up to 60 s
// for it (exit 1 when they cannot have it): two at once would both find
// the daemon stopped and both start one, and the pid file could then
// name the one that exits at once (the agent's audit lock) while the
// other runs. start returns once the daemon runs as itself, or fails
// when it has not after 3 s. stop sends SIGTERM and waits up to 30 s,
// then SIGKILL and up to 5 s (ended: gone, or a zombie not yet reaped).
// status takes no lock and prints Running or Stopped with the LSB exit
// codes: 0 running, 3 stopped, 4 unknown.
//
// name and exe must have passed CheckName and CheckArg: they are written
// into the script as they are.
func sysvScript(name, exe string, reload bool) string {
	comm := filepath.Base(exe)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	reloadCase, usage := "", "start|stop|restart|force-reload|status"
	if reload {
		reloadCase = `    reload)
        lock
        if ! running; then
            # Never signal whatever has the pid now.
            echo "$name is not running" >&2
            exit 7
        fi
        echo "Reloading $name"
        start-stop-daemon --stop --signal HUP --quiet --pidfile "$pidfile" --name "$comm" --user 0
        exit $?
        ;;
`
		usage = "start|stop|restart|reload|force-reload|status"
	}
	r := strings.NewReplacer("@NAME@", name, "@COMM@", comm, "@RELOAD@", reloadCase, "@USAGE@", usage)
	return r.Replace(sysvTemplate)
}

const sysvTemplate = `#!/bin/sh
### BEGIN INIT INFO
# Provides:          @NAME@
# Required-Start:    $local_fs $remote_fs $syslog
# Required-Stop:     $local_fs $remote_fs $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: {{DisplayName}}
# Description:       {{Description}}
### END INIT INFO
# Written by "service install"; "service uninstall" removes it.

name=@NAME@
daemon="{{Path}}"
comm=@COMM@
pidfile=/run/$name.pid
lockfile=/run/$name.lock
output="{{LogDirectory}}/$name.log"

# Holds the lock of this service on descriptor 9 until the script ends:
# one start, stop, restart or reload at a time. Root's alone (0600): any
# process that can open a file can flock it, and would hold off start
# and stop.
lock() {
    if ! command -v flock >/dev/null 2>&1; then
        echo "$name: flock(1) (util-linux) is needed and not in PATH" >&2
        exit 1
    fi
    mask=$(umask)
    umask 077
    exec 9>>"$lockfile" || exit 1
    umask "$mask"
    chmod 600 "$lockfile" || exit 1
    if ! flock -w 60 9; then
        echo "$name: another start or stop held $lockfile for 60 s: not done" >&2
        exit 1
    fi
}

running() {
    start-stop-daemon --status --pidfile "$pidfile" --name "$comm" --user 0 || return $?
    # A zombie (ended, not yet reaped: an init in a container may be slow
    # to) does not run.
    pid=$(cat "$pidfile" 2>/dev/null)
    if grep -qs '^State:[[:space:]]*Z' "/proc/$pid/status"; then
        return 1
    fi
    # It runs as root (real, effective, saved and file-system uid 0): a
    # user may run the daemon's own binary (mamori notify), and its
    # process may get the pid of the daemon that ended.
    if ! grep -qs '^Uid:[[:space:]]*0[[:space:]]\{1,\}0[[:space:]]\{1,\}0[[:space:]]\{1,\}0[[:space:]]*$' "/proc/$pid/status"; then
        return 1
    fi
    # The pid must run this daemon, not a process of the same name that
    # got the pid of one that ended (the binary replaced by an upgrade
    # shows as "(deleted)").
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null)
    case "$exe" in
        "$daemon"|"$daemon (deleted)") return 0 ;;
    esac
    return 1
}

do_start() {
    if running; then
        echo "$name is running already"
        return 0
    fi
    if [ ! -x "$daemon" ]; then
        echo "$daemon: not an executable file" >&2
        return 5
    fi
    echo "Starting $name"
    # A pid file left by a daemon that ended, whose pid another
    # process (perhaps one named like it) has now: start-stop-daemon
    # would take that process for the daemon and not start it.
    rm -f "$pidfile"
    # Its output may name devices and addresses: for root only.
    (umask 077; : >> "$output") && chmod 600 "$output"
    # The daemon does not get the lock's descriptor (9>&-): it would hold
    # the lock for as long as it runs.
    start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$pidfile" \
        --name "$comm" --startas "$daemon" --output "$output" --chdir / \
        --{{range Arguments}} {{. | cmd}}{{end}} 9>&- || return 1
    # Until it runs as itself (exec done), at most 3 s, or has ended.
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do
        if running; then
            return 0
        fi
        pid=$(cat "$pidfile" 2>/dev/null)
        if [ -n "$pid" ] && { [ ! -e "/proc/$pid" ] || grep -qs '^State:[[:space:]]*Z' "/proc/$pid/status"; }; then
            break
        fi
        sleep 0.1
    done
    echo "$name ended at once: see the system log (and $output)" >&2
    return 1
}

do_stop() {
    echo "Stopping $name"
    if ! running; then
        # Not ours (any more): never signal whatever has the pid now.
        rm -f "$pidfile"
        return 0
    fi
    start-stop-daemon --stop --quiet --signal TERM --pidfile "$pidfile" --name "$comm" --user 0
    # Until it has ended, 30 s, then SIGKILL and 5 s more. running()
    # takes a zombie (ended, not yet reaped) for ended: an init that
    # does not reap (a container's) would keep one for ever, and
    # start-stop-daemon --retry waits for it to go.
    i=0
    while running; do
        i=$((i + 1))
        case $i in
            300) start-stop-daemon --stop --quiet --signal KILL --pidfile "$pidfile" --name "$comm" --user 0 ;;
            350) echo "$name did not stop" >&2; return 1 ;;
        esac
        sleep 0.1
    done
    rm -f "$pidfile"
    return 0
}

case "$1" in
    start)
        lock
        do_start
        exit $?
        ;;
    stop)
        lock
        do_stop
        exit $?
        ;;
    restart|force-reload)
        lock
        do_stop && do_start
        exit $?
        ;;
@RELOAD@    status)
        running
        case $? in
            0) echo "Running"; exit 0 ;;
            4) echo "Unknown"; exit 4 ;;
            *) echo "Stopped"; exit 3 ;;
        esac
        ;;
    *)
        echo "Usage: $0 {@USAGE@}" >&2
        exit 2
        ;;
esac
`
