package localapi

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nobody is the uid and gid the peer tests connect as.
const nobody = 65534

// testGroup is the group the peer tests let read: a gid no test user is
// in unless the test gives it.
const testGroup = 4242

// runAs copies the test binary where nobody can run it and runs it as
// a client of path with the credentials given; it returns what it
// printed.
func runAs(t *testing.T, path string, uid, gid int, groups []uint32, env ...string) string {
	t.Helper()
	return runWith(t, path, &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}, env...)
}

// runWith is runAs with the process attributes attr.
func runWith(t *testing.T, path string, attr *syscall.SysProcAttr, env ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(sockDir(t), "localapi.test")
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{helperEnv + "=" + path}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = attr
	out, _ := cmd.CombinedOutput()
	return strings.TrimSpace(string(out))
}

// TestOtherUserNamespaceRefused: a process in another user namespace is
// refused whatever uid the kernel tells for it, even root's: a user with
// subordinate uids could otherwise connect as thousands of uids, each
// with limits of its own. Here root maps itself into a new user
// namespace (SO_PEERCRED still says uid 0).
func TestOtherUserNamespaceRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a user namespace mapped to root")
	}
	if _, err := os.Readlink("/proc/self/ns/user"); err != nil {
		t.Skip("no user namespaces:", err)
	}
	s := serve(t, Options{Group: "4242", Mode: 0o666, Status: func() (*Status, error) { return &Status{}, nil }})
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}}
	got := runWith(t, s.Path(), attr)
	if !strings.Contains(got, "refused: uid 0: its process") || !strings.Contains(got, "runs in another user namespace") {
		t.Errorf("root in another user namespace: %q, want it refused for the namespace", got)
	}
	// The same binary in the agent's namespace is root.
	if got := runWith(t, s.Path(), &syscall.SysProcAttr{}); got != "role admin, status ok" {
		t.Errorf("root: %q", got)
	}
}

// TestPeerCredentials: another user's process connects, as the kernel
// tells it (SO_PEERCRED, SO_PEERGROUPS): a member of the group reads
// (by its primary or a supplementary group); anyone else is refused,
// by the socket's mode, and by the peer check where the mode lets it
// through.
func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs clients as another user (run the tests as root to cover the peer check)")
	}
	status := func() (*Status, error) { return &Status{}, nil }
	// A socket anyone may connect to: only the peer check stands.
	open := serve(t, Options{Group: "4242", Mode: 0o666, Status: status})
	// The default: 0660, root and the group.
	normal := serve(t, Options{Group: "4242", Status: status})
	for _, tt := range []struct {
		name   string
		s      *Server
		gid    int
		groups []uint32
		want   string
	}{
		{"not in the group, peer check", open, nobody, nil, "refused: " + open.Path() + ": refused: uid 65534 is neither root nor in group 4242"},
		{"supplementary group", open, nobody, []uint32{100, testGroup}, "role reader, status ok"},
		{"primary group", open, testGroup, nil, "role reader, status ok"},
		{"not in the group, socket mode", normal, nobody, nil, "permission denied"},
		{"in the group, socket mode", normal, nobody, []uint32{testGroup}, "role reader, status ok"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := runAs(t, tt.s.Path(), nobody, tt.gid, tt.groups)
			if !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if strings.Contains(tt.want, "permission denied") && !strings.HasPrefix(got, "refused:") {
				t.Errorf("a permission error is not a refusal: %q", got)
			}
		})
	}
	// Root is admin.
	c := dial(t, open.Path())
	if c.Hello.Role != RoleAdmin {
		t.Errorf("root's role %q", c.Hello.Role)
	}
}

// TestRootOnly: with no group, only root may connect.
func TestRootOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs a client as another user")
	}
	s := serve(t, Options{Mode: 0o666, Status: func() (*Status, error) { return &Status{}, nil }})
	if got := runAs(t, s.Path(), nobody, nobody, []uint32{100}); !strings.Contains(got, "uid 65534 is not root, and the agent lets no group read") {
		t.Errorf("got %q", got)
	}
}

// TestConnsPerUser: one reader cannot hold more than MaxConnsPerUser
// connections; root still gets in.
func TestConnsPerUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs a client as another user")
	}
	s := serve(t, Options{Group: "4242", Mode: 0o666, Status: func() (*Status, error) { return &Status{}, nil }})
	hold := "MAMORI_LOCALAPI_HELPER_HOLD="
	if got := runAs(t, s.Path(), nobody, testGroup, nil, hold+"7"); got != "role reader, status ok" {
		t.Errorf("the 8th connection: %q", got)
	}
	// Another uid: the first user's watches and status used up most of
	// its request burst (RequestBurst), which watches share.
	if got := runAs(t, s.Path(), 65533, testGroup, nil, hold+"8"); !strings.Contains(got, "refused: uid 65533 holds 8 connections already") {
		t.Errorf("the 9th connection: %q", got)
	}
	if c := dial(t, s.Path()); c.Hello.Role != RoleAdmin {
		t.Errorf("root: %+v", c.Hello)
	}
}

// syncBuffer is a log destination for the tests.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestFloodLogsThrottled: a user connecting again and again (refused,
// or a reader asking too often) writes one log line a minute, not one
// per connection; the reader's requests beyond RequestRate a second
// (RequestBurst at once) are answered an error and closed.
func TestFloodLogsThrottled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs clients as another user")
	}
	var logs syncBuffer
	s := serve(t, Options{Group: "4242", Mode: 0o666, Status: func() (*Status, error) { return &Status{}, nil },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	got := runAs(t, s.Path(), nobody, nobody, nil, "MAMORI_LOCALAPI_HELPER_REPEAT=30")
	if !strings.HasPrefix(got, "ok 0, refused 30, error 0") {
		t.Fatalf("refused user: %q", got)
	}
	if n := strings.Count(logs.String(), "connection refused"); n != 1 {
		t.Errorf("%d log lines for 30 refusals:\n%s", n, logs.String())
	}
	// A reader: the burst, then about RequestRate a second.
	start := time.Now()
	got = runAs(t, s.Path(), nobody, testGroup, nil, "MAMORI_LOCALAPI_HELPER_REPEAT=60")
	var ok, refused, failed int
	if _, err := fmt.Sscanf(got, "ok %d, refused %d, error %d", &ok, &refused, &failed); err != nil {
		t.Fatalf("reader: %q", got)
	}
	if most := RequestBurst + int(time.Since(start).Seconds()*RequestRate) + 2; ok < RequestBurst || ok > most || failed != 60-ok ||
		!strings.Contains(got, "too many requests: uid 65534 may make 5 a second") {
		t.Errorf("60 status requests at once: %q (want %d to %d ok, the others refused for too many requests)", got, RequestBurst, most)
	}
	if n := strings.Count(logs.String(), "too many requests of one user"); n != 1 {
		t.Errorf("%d log lines for the requests over the rate:\n%s", n, logs.String())
	}
	// Watch requests share the pace (a user connecting, watching and
	// hanging up again and again makes the agent replay every open
	// violation each time). Another user, a bucket of its own.
	start = time.Now()
	got = runAs(t, s.Path(), 65533, testGroup, nil, "MAMORI_LOCALAPI_HELPER_REPEAT=60", "MAMORI_LOCALAPI_HELPER_WATCH=1")
	if _, err := fmt.Sscanf(got, "ok %d, refused %d, error %d", &ok, &refused, &failed); err != nil {
		t.Fatalf("watching reader: %q", got)
	}
	if most := RequestBurst + int(time.Since(start).Seconds()*RequestRate) + 2; ok < RequestBurst || ok > most || failed != 60-ok ||
		!strings.Contains(got, "too many requests: uid 65533 may make 5 a second") {
		t.Errorf("60 watch requests at once: %q (want %d to %d ok, the others refused for too many requests)", got, RequestBurst, most)
	}
}

// hold starts a client as uid (in testGroup) holding n connections to
// path, and waits until it holds them all.
func hold(t *testing.T, path string, uid, n int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(sockDir(t), "localapi.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{helperEnv + "=" + path, "MAMORI_LOCALAPI_HELPER_HOLD=" + strconv.Itoa(n), "MAMORI_LOCALAPI_HELPER_STAY=1"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: testGroup, Groups: []uint32{}}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "holding" {
		t.Fatalf("uid %d holding %d: %q", uid, n, line)
	}
}

// TestRootSlots: readers holding every connection they may leave
// RootSlots for root: mamori status as root still answers; a reader
// past them is told why it is closed.
func TestRootSlots(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs clients as other users")
	}
	s := serve(t, Options{Group: "4242", Mode: 0o666, Status: func() (*Status, error) { return &Status{}, nil }})
	// Four readers: 8 + 8 + 8 + 6 = MaxConns - RootSlots.
	for i, n := range []int{8, 8, 8, 6} {
		hold(t, s.Path(), nobody-i, n)
	}
	if got := runAs(t, s.Path(), nobody-5, testGroup, nil); !strings.Contains(got, "all 32 connections are taken; try again in a moment") {
		t.Errorf("a reader past MaxConns-RootSlots: %q, want it told that every connection is taken", got)
	}
	// Root, twice at once.
	for range RootSlots {
		c := dial(t, s.Path())
		if c.Hello.Role != RoleAdmin {
			t.Fatalf("root: %+v", c.Hello)
		}
	}
}
