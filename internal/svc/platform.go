package svc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"unicode"
)

// Platform names of kardianos/service (service.Platform()) this package
// treats specially.
const (
	PlatformSysV    = "unix-systemv"
	PlatformSystemd = "linux-systemd"
	PlatformWindows = "windows-service"
)

// InitScript is the SysV init script of service name under etc.
func InitScript(etc, name string) string { return filepath.Join(etc, "init.d", name) }

// RCLinks are the rc links kardianos/service makes for a SysV service
// (S50NAME in rc2.d to rc5.d, K02NAME in rc0.d, rc1.d and rc6.d); its
// Uninstall leaves them.
func RCLinks(etc, name string) []string {
	var l []string
	for _, lvl := range "2345" {
		l = append(l, filepath.Join(etc, "rc"+string(lvl)+".d", "S50"+name))
	}
	for _, lvl := range "016" {
		l = append(l, filepath.Join(etc, "rc"+string(lvl)+".d", "K02"+name))
	}
	return l
}

// where says where a service is defined.
func where(platform, etc, name string) string {
	switch platform {
	case PlatformSysV:
		return "SysV init script " + InitScript(etc, name)
	case PlatformSystemd:
		return "systemd unit /etc/systemd/system/" + name + ".service"
	case PlatformWindows:
		return "Windows service " + name
	}
	return platform + " service " + name
}

// LogFile is where the SysV init script of service name sends the
// daemon's stdout and stderr (its template's {{LogDirectory}}/NAME.log,
// kardianos/service's LogDirectory being /var/log): what it writes
// before its system log is open, and its log where no syslog daemon
// listens.
func LogFile(name string) string { return "/var/log/" + name + ".log" }

// logHint says where a service's log goes.
func logHint(platform, name string) string {
	switch platform {
	case PlatformSysV:
		return "syslog with tag " + name + "; without a syslog daemon " + LogFile(name)
	case PlatformSystemd:
		return "journalctl -u " + name
	case PlatformWindows:
		return "the Application event log, source " + name
	}
	return "the system log, tag " + name
}

// platformStatus answers Status without the service manager where that is
// certain: a SysV service without its init script is not installed
// (kardianos asks service(8), which cannot tell that from a stopped one).
func platformStatus(platform, etc, name string) (State, bool) {
	if platform == PlatformSysV {
		if _, err := os.Lstat(InitScript(etc, name)); errors.Is(err, os.ErrNotExist) {
			return StateNotInstalled, true
		}
	}
	return StateUnknown, false
}

// interpretStatusError reads the exit status of "service NAME status"
// under SysV: 3 (LSB: not running) and 1 (dead, pid file left) mean
// stopped.
func interpretStatusError(platform string, err error) (State, bool) {
	var ee *exec.ExitError
	if platform == PlatformSysV && errors.As(err, &ee) {
		switch ee.ExitCode() {
		case 1, 3:
			return StateStopped, true
		}
	}
	return StateUnknown, false
}

// platformInstallCheck refuses to install where the service could not be
// controlled: the SysV init script runs start-stop-daemon and flock(1)
// (sysvScript), and kardianos runs it through service(8).
func platformInstallCheck(platform string) error {
	if platform != PlatformSysV {
		return nil
	}
	for _, c := range []struct{ cmd, pkg string }{{"start-stop-daemon", "dpkg"}, {"flock", "util-linux"}, {"service", "init-system-helpers"}} {
		if _, err := exec.LookPath(c.cmd); err != nil {
			return fmt.Errorf("no systemd here, and the SysV init script needs %s (Debian package %s), which is not in PATH", c.cmd, c.pkg)
		}
	}
	return nil
}

// LockFile is the lock file the SysV init script of service name holds
// while it starts, stops, restarts or reloads the daemon (sysvScript).
func LockFile(name string) string { return "/run/" + name + ".lock" }

// cleanup removes what kardianos/service's uninstall leaves: under SysV
// the rc links to the removed init script (only symlinks that point at
// it), the pid file of a daemon that ended by itself, and the script's
// lock file (no script is left to take it).
func cleanup(platform, etc, name string) {
	if platform != PlatformSysV {
		return
	}
	if _, err := os.Lstat(InitScript(etc, name)); errors.Is(err, os.ErrNotExist) {
		os.Remove(LockFile(name))
	}
	pidFile := "/run/" + name + ".pid"
	if b, err := os.ReadFile(pidFile); err == nil {
		if _, err := os.Stat(filepath.Join("/proc", strings.TrimSpace(string(b)))); errors.Is(err, os.ErrNotExist) {
			os.Remove(pidFile)
		}
	}
	script := InitScript(etc, name)
	for _, l := range RCLinks(etc, name) {
		if dst, err := os.Readlink(l); err == nil && (dst == script || dst == "/etc/init.d/"+name) {
			os.Remove(l)
		}
	}
}

// Bounds of what logSince shows: the last logTailLines lines of the last
// logTailBytes bytes, each cut to logLineBytes.
const (
	logTailLines = 10
	logTailBytes = 8 << 10
	logLineBytes = 1024
)

// logMark is the size of a SysV service's log file (LogFile) now, in
// bytes: where the output of a start that follows begins (the init
// script's start-stop-daemon appends to it). 0 when there is none, and
// on every other platform.
func logMark(platform, name string) int64 {
	if platform != PlatformSysV {
		return 0
	}
	fi, err := os.Stat(LogFile(name))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns, for a SysV service, what its log file got after the
// byte offset mark (from the start of a file that shrank since: rotated
// or emptied), as logTail shows it: "" when nothing, when the file cannot
// be read, and on every other platform.
func logSince(platform, name string, mark int64) string {
	if platform != PlatformSysV {
		return ""
	}
	f, err := os.Open(LogFile(name))
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	size := fi.Size()
	if size < mark {
		mark = 0
	}
	from, cut := mark, false
	if size-from > logTailBytes {
		from, cut = size-logTailBytes, true
	}
	b := make([]byte, size-from)
	n, _ := f.ReadAt(b, from)
	b = b[:n]
	if cut {
		// The first line read is a line's end.
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return logTail(b)
}

// logTail formats the end of a service's log output for a terminal: its
// last logTailLines non-blank lines, each indented by two spaces and cut
// to logLineBytes, control and bidirectional-format characters (an escape
// sequence in a device name the program logged) shown as '?', invalid UTF-8 as U+FFFD; ""
// for nothing.
func logTail(b []byte) string {
	var lines []string
	for _, l := range strings.Split(strings.ToValidUTF8(string(b), "\uFFFD"), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		if len(l) > logLineBytes {
			l = strings.ToValidUTF8(l[:logLineBytes], "") + "…"
		}
		l = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) && r != '\t' || unicode.Is(unicode.Bidi_Control, r) || r == 0x2028 || r == 0x2029 {
				return '?'
			}
			return r
		}, l)
		lines = append(lines, "  "+l)
	}
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return strings.Join(lines, "\n")
}
