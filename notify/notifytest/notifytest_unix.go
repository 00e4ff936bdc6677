//go:build unix

package notifytest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Bus is a private dbus-daemon started for one test.
type Bus struct {
	// Address is the bus's address ("unix:path=...").
	Address string
	// Socket is the path of its socket.
	Socket string
	cmd    *exec.Cmd
}

// BusOptions configures StartBus.
type BusOptions struct {
	// Socket is where the bus listens; "" makes one in a temporary
	// directory. Its directory must exist and be writable by the bus's
	// user.
	Socket string
	// UID and GID run the daemon as that user (as root only); zero runs
	// it as this process's user. The socket is then that user's, as a
	// real session bus in /run/user/<uid> is.
	UID, GID int
}

// busConfig is a session bus that every user may connect to (the test,
// as root, serves notifications on a bus its user's processes use).
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// RequireDaemon skips t unless dbus-daemon is installed (failing it in
// CI, where scripts/test-deps.sh installs it).
func RequireDaemon(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("dbus-daemon")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dbus-daemon missing; scripts/test-deps.sh installs it")
		}
		t.Skip("dbus-daemon not installed (apt-get install dbus-daemon)")
	}
	return p
}

// StartBus starts a private session bus and stops it when the test ends.
func StartBus(t testing.TB, opts BusOptions) *Bus {
	t.Helper()
	daemon := RequireDaemon(t)
	dir, err := os.MkdirTemp("", "mamori-bus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	sock := opts.Socket
	if sock == "" {
		sock = filepath.Join(dir, "bus")
		if opts.UID != 0 {
			os.Chown(dir, opts.UID, opts.GID)
		}
	}
	conf := filepath.Join(dir, "session.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if opts.UID != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(opts.UID), Gid: uint32(opts.GID), Groups: []uint32{}}}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	b := &Bus{Socket: sock, cmd: cmd}
	t.Cleanup(b.Stop)
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case b.Address = <-line:
	case <-time.After(10 * time.Second):
		t.Fatalf("dbus-daemon printed no address: %s", stderr.String())
	}
	if b.Address == "" {
		t.Fatalf("dbus-daemon did not start: %s", stderr.String())
	}
	return b
}

// Stop stops the daemon (the session ends).
func (b *Bus) Stop() {
	if b.cmd.Process != nil {
		b.cmd.Process.Kill()
		b.cmd.Wait()
	}
}

// Received is one notification the service received.
type Received struct {
	AppName    string
	ReplacesID uint32
	Icon       string
	Summary    string
	Body       string
	Actions    []string
	Hints      map[string]dbus.Variant
	Timeout    int32
	// ID is the id the service answered with.
	ID uint32
	// SenderUID and SenderPID are the sending process's, as the bus
	// tells them; ProcUID is the real uid in /proc/<pid>/status read
	// while the sender waited for the answer (-1 when unreadable).
	SenderUID, SenderPID, ProcUID int
}

// Urgency returns the "urgency" hint, -1 when absent or not a byte.
func (r Received) Urgency() int {
	if v, ok := r.Hints["urgency"]; ok {
		if b, ok := v.Value().(byte); ok {
			return int(b)
		}
	}
	return -1
}

// Server is a notification service on a bus, recording what it gets.
type Server struct {
	conn *dbus.Conn
	caps []string
	mu   sync.Mutex
	got  []Received
	next uint32
	ch   chan struct{}
	fail string
}

// Serve registers a notification service on the bus at address with the
// capabilities given ("body" when none) and stops it when the test ends.
func Serve(t testing.TB, address string, caps ...string) *Server {
	t.Helper()
	if len(caps) == 0 {
		caps = []string{"body"}
	}
	conn, err := dbus.Connect(address)
	if err != nil {
		t.Fatalf("connect to %s: %v", address, err)
	}
	s := &Server{conn: conn, caps: caps, ch: make(chan struct{}, 1)}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Export(s, "/org/freedesktop/Notifications", "org.freedesktop.Notifications"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName("org.freedesktop.Notifications", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.Notifications: %v (reply %v)", err, reply)
	}
	return s
}

// Fail makes every later Notify fail with the given message ("" to stop
// failing).
func (s *Server) Fail(msg string) {
	s.mu.Lock()
	s.fail = msg
	s.mu.Unlock()
}

// GetCapabilities is the service's method.
func (s *Server) GetCapabilities() ([]string, *dbus.Error) { return s.caps, nil }

// GetServerInformation is the service's method.
func (s *Server) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "notifytest", "mamori", "1", "1.2", nil
}

// CloseNotification is the service's method.
func (s *Server) CloseNotification(id uint32) *dbus.Error { return nil }

// Notify is the service's method: it records the call.
func (s *Server) Notify(sender dbus.Sender, appName string, replacesID uint32, icon, summary, body string,
	actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	r := Received{AppName: appName, ReplacesID: replacesID, Icon: icon, Summary: summary, Body: body,
		Actions: actions, Hints: hints, Timeout: timeout, SenderUID: -1, SenderPID: -1, ProcUID: -1}
	bus := s.conn.BusObject()
	var u, p uint32
	if bus.Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, string(sender)).Store(&u) == nil {
		r.SenderUID = int(u)
	}
	if bus.Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, string(sender)).Store(&p) == nil {
		r.SenderPID = int(p)
		r.ProcUID = procUID(int(p))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != "" {
		return 0, dbus.MakeFailedError(fmt.Errorf("%s", s.fail))
	}
	if replacesID != 0 {
		r.ID = replacesID
	} else {
		s.next++
		r.ID = s.next
	}
	s.got = append(s.got, r)
	select {
	case s.ch <- struct{}{}:
	default:
	}
	return r.ID, nil
}

// procUID reads the real uid of pid from /proc/<pid>/status.
func procUID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if n, err := strconv.Atoi(f[0]); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

// Received returns every notification received so far.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.got...)
}

// Wait waits until cond holds of the notifications received, and
// returns them; it fails t after timeout.
func (s *Server) Wait(t testing.TB, what string, timeout time.Duration, cond func([]Received) bool) []Received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		got := s.Received()
		if cond(got) {
			return got
		}
		select {
		case <-s.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s; received %d notifications:\n%s", timeout, what, len(got), Dump(got))
			return nil
		}
	}
}

// Dump shows notifications for a failure message.
func Dump(rs []Received) string {
	var b strings.Builder
	for i, r := range rs {
		fmt.Fprintf(&b, "#%d app=%q urgency=%d replaces=%d uid=%d pid=%d\n  summary: %s\n  body: %s\n", i+1, r.AppName, r.Urgency(), r.ReplacesID, r.SenderUID, r.SenderPID, r.Summary, strings.ReplaceAll(r.Body, "\n", "\n        "))
	}
	return b.String()
}

// User is an unprivileged user made for one test.
type User struct {
	Name     string
	UID, GID int
}

// NewUser makes an unprivileged user (useradd: no home directory, no
// login shell, a group of its own, a uid from the range of people's,
// 1000 and up) with the supplementary groups given, and removes it when
// the test ends. It skips t unless it runs as root with useradd.
func NewUser(t testing.TB, prefix string, groups ...string) User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a user (run the tests as root to cover it)")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd not installed (Debian's passwd package)")
	}
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%1000000)
	for i := 0; ; i++ {
		if _, err := exec.Command("id", "-u", name).Output(); err != nil {
			break
		}
		name = fmt.Sprintf("%s%d-%d", prefix, os.Getpid()%1000000, i)
	}
	args := []string{"-M", "-U", "-s", "/usr/sbin/nologin", "-c", "mamori test user"}
	if len(groups) > 0 {
		args = append(args, "-G", strings.Join(groups, ","))
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	id := func(flag string) int {
		out, err := exec.Command("id", flag, name).Output()
		if err != nil {
			t.Fatalf("id %s %s: %v", flag, name, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("id %s %s: %q", flag, name, out)
		}
		return n
	}
	return User{Name: name, UID: id("-u"), GID: id("-g")}
}

// NewGroup makes a group for one test and removes it when the test
// ends (after the users made later: cleanups run last-in first-out).
func NewGroup(t testing.TB, prefix string) (name string, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a group (run the tests as root to cover it)")
	}
	name = fmt.Sprintf("%s%d", prefix, os.Getpid()%1000000)
	if out, err := exec.Command("groupadd", name).CombinedOutput(); err != nil {
		t.Fatalf("groupadd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("groupdel", name).CombinedOutput(); err != nil {
			t.Errorf("groupdel %s: %v: %s", name, err, out)
		}
	})
	out, err := exec.Command("getent", "group", name).Output()
	if err != nil {
		t.Fatalf("getent group %s: %v", name, err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), ":")
	if len(f) < 3 {
		t.Fatalf("getent group %s: %q", name, out)
	}
	gid, err = strconv.Atoi(f[2])
	if err != nil {
		t.Fatalf("getent group %s: %q", name, out)
	}
	return name, gid
}

// Credential returns the credentials to run a process as u, with its
// groups as the user database has them.
func (u User) Credential(t testing.TB) *syscall.Credential {
	t.Helper()
	out, err := exec.Command("id", "-G", u.Name).Output()
	if err != nil {
		t.Fatalf("id -G %s: %v", u.Name, err)
	}
	var groups []uint32
	for f := range strings.FieldsSeq(string(out)) {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			t.Fatalf("id -G %s: %q", u.Name, out)
		}
		groups = append(groups, uint32(n))
	}
	return &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: groups}
}
