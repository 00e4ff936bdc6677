package svc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// logHint says where a service's log goes.
func logHint(platform, name string) string {
	switch platform {
	case PlatformSysV:
		return "syslog with tag " + name + "; without a syslog daemon /var/log/" + name + ".log"
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
// controlled: the SysV init script runs start-stop-daemon, and kardianos
// runs it through service(8).
func platformInstallCheck(platform string) error {
	if platform != PlatformSysV {
		return nil
	}
	for _, c := range []struct{ cmd, pkg string }{{"start-stop-daemon", "dpkg"}, {"service", "init-system-helpers"}} {
		if _, err := exec.LookPath(c.cmd); err != nil {
			return fmt.Errorf("no systemd here, and the SysV init script needs %s (Debian package %s), which is not in PATH", c.cmd, c.pkg)
		}
	}
	return nil
}

// cleanup removes what kardianos/service's uninstall leaves: under SysV
// the rc links to the removed init script (only symlinks that point at
// it) and the pid file of a daemon that ended by itself.
func cleanup(platform, etc, name string) {
	if platform != PlatformSysV {
		return
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
