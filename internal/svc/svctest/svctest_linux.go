package svctest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kardianos/service"

	"github.com/mamori-agent/mamori/internal/svc"
)

// Require skips t unless it runs as root with the commands the service
// manager kardianos chose needs: service(8) and start-stop-daemon(8) for
// SysV init scripts, systemctl for systemd.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: installs and starts a system service (run the tests as root to cover it)")
	}
	need := []string{"service", "start-stop-daemon"}
	if service.Platform() == svc.PlatformSystemd {
		need = []string{"systemctl"}
	}
	for _, c := range need {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("the %s service manager needs %s: %v (scripts/test-deps.sh installs it)", service.Platform(), c, err)
		}
	}
}

// lockPath is the lock file Lock takes.
var lockPath = filepath.Join(os.TempDir(), "mamori-service-tests.lock")

// Lock holds an exclusive lock, shared by every test binary that installs
// services, until t ends: the service tests of several packages, run at
// once by go test, take turns (and so does the /dev/log of ListenSyslog).
func Lock(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		t.Fatalf("service test lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("service test lock %s: %v", lockPath, err)
	}
	t.Cleanup(func() { f.Close() })
}

var seq atomic.Int64

// Name returns a service name no other test uses, prefix-PID-N, and
// removes what a service of that name left when t ends (Remove), after
// the cleanups registered later.
func Name(t testing.TB, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
	if err := svc.CheckName(name); err != nil {
		t.Fatalf("svctest.Name: %v", err)
	}
	t.Cleanup(func() {
		if left := Remove(name); len(left) > 0 {
			t.Logf("removed what service %s left: %s", name, strings.Join(left, ", "))
		}
	})
	return name
}

// Remove removes whatever a service called name left on this machine and
// says what it removed: its daemon (SIGKILL to the pid in /run/NAME.pid,
// when that process's command line names the service), its SysV init
// script, its lock file and rc links, its systemd unit and the unit's
// wants link, and its log file /var/log/NAME.log.
func Remove(name string) []string {
	var done []string
	pidFile := "/run/" + name + ".pid"
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if bytes.Contains(cmdline, []byte("\x00"+name+"\x00")) {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					done = append(done, "process "+strconv.Itoa(pid))
				}
			}
		}
	}
	paths := []string{pidFile, svc.InitScript("/etc", name), svc.LockFile(name), "/var/log/" + name + ".log",
		"/etc/systemd/system/" + name + ".service", "/etc/systemd/system/multi-user.target.wants/" + name + ".service"}
	paths = append(paths, svc.RCLinks("/etc", name)...)
	for _, p := range paths {
		if err := os.Remove(p); err == nil {
			done = append(done, p)
		}
	}
	return done
}

// DevLog is the system logger's socket.
const DevLog = "/dev/log"

// Syslog is a datagram socket at /dev/log that keeps what arrives.
type Syslog struct {
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
}

// ListenSyslog listens on /dev/log until t ends, when no system logger
// listens there; it returns nil (and says so in the test's log) when one
// does. A /dev/log that leads nowhere (the symlink to journald's socket
// that Debian's systemd package leaves where systemd does not run, or a
// socket left by a logger that ended) is set aside and put back when t
// ends. Hold Lock first: the socket is the machine's.
func ListenSyslog(t testing.TB) *Syslog {
	t.Helper()
	restore, ok := setAside(t)
	if !ok {
		t.Logf("%s: a system logger listens there: what services log is not checked", DevLog)
		return nil
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: DevLog, Net: "unixgram"})
	if err != nil {
		restore()
		t.Fatalf("listen on %s: %v", DevLog, err)
	}
	s := &Syslog{conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
		os.Remove(DevLog)
		restore()
	})
	return s
}

// WithoutSyslog leaves /dev/log absent until t ends, so that a service
// started meanwhile finds no system log (and logs to stderr, which its
// SysV init script sends to svc.LogFile), and reports true; it reports
// false, changing nothing, when a system logger listens there. A /dev/log
// that leads nowhere is set aside and put back when t ends, as by
// ListenSyslog. Hold Lock first.
func WithoutSyslog(t testing.TB) bool {
	t.Helper()
	restore, ok := setAside(t)
	if ok {
		t.Cleanup(restore)
	}
	return ok
}

// setAside removes a /dev/log where no logger listens and returns what
// puts it back; ok is false, and nothing changed, when a logger listens.
func setAside(t testing.TB) (restore func(), ok bool) {
	t.Helper()
	restore = func() {}
	if fi, err := os.Lstat(DevLog); err == nil {
		if c, err := net.Dial("unixgram", DevLog); err == nil {
			c.Close()
			return restore, false
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(DevLog)
			if err != nil {
				t.Fatalf("%s: %v", DevLog, err)
			}
			restore = func() {
				if err := os.Symlink(target, DevLog); err != nil {
					t.Errorf("put back %s -> %s: %v", DevLog, target, err)
				}
			}
		}
		if err := os.Remove(DevLog); err != nil {
			t.Fatalf("set aside %s, where no logger listens: %v", DevLog, err)
		}
		t.Logf("%s led nowhere: set aside for the test", DevLog)
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat %s: %v", DevLog, err)
	}
	return restore, true
}

// Messages returns the messages received so far whose syslog tag is tag
// ("<PRI>TIMESTAMP HOST TAG[PID]: MSG"), whole.
func (s *Syslog) Messages(tag string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.msgs {
		if strings.Contains(m, " "+tag+"[") {
			out = append(out, m)
		}
	}
	return out
}

// Wait waits up to d for a message with tag that contains want and
// returns it ("" when none came).
func (s *Syslog) Wait(tag, want string, d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		for _, m := range s.Messages(tag) {
			if strings.Contains(m, want) {
				return m
			}
		}
		if time.Now().After(deadline) {
			return ""
		}
		time.Sleep(20 * time.Millisecond)
	}
}
