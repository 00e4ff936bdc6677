package localapi

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// These run on Windows and under Wine 8.0 (make wine-test). The test
// process is an administrator there (Wine's user is one): the server
// makes its pipe owned by BUILTIN\Administrators.

// TestPipeReaderAccess: the reader's access in the DACL is what the
// client asks for, and holds no right to make an instance of the pipe
// (FILE_APPEND_DATA), to change its DACL or its owner.
func TestPipeReaderAccess(t *testing.T) {
	if pipeReaderAccess != pipeReaderMask {
		t.Errorf("pipeReaderAccess %#x, pipeReaderMask %#x", pipeReaderAccess, pipeReaderMask)
	}
	for _, bad := range []uint32{windows.FILE_APPEND_DATA, windows.WRITE_DAC, windows.WRITE_OWNER, windows.DELETE, windows.FILE_WRITE_ATTRIBUTES} {
		if pipeReaderAccess&bad != 0 {
			t.Errorf("readers get %#x", bad)
		}
	}
}

// TestPipeFirstInstance: a second server on a pipe that is served fails
// (FILE_FLAG_FIRST_PIPE_INSTANCE), the first keeps serving, and once it
// is closed the name is free again.
func TestPipeFirstInstance(t *testing.T) {
	status := func() (*Status, error) { return &Status{Agent: AgentStatus{Version: "first"}}, nil }
	s := serve(t, Options{Status: status})
	_, err := Listen(Options{Path: s.Path(), Status: func() (*Status, error) { return &Status{Agent: AgentStatus{Version: "second"}}, nil }})
	if err == nil || !strings.Contains(err.Error(), "the pipe exists already") {
		t.Fatalf("second Listen on a served pipe: %v", err)
	}
	st, err := dial(t, s.Path()).Status(context.Background())
	if err != nil || st.Agent.Version != "first" {
		t.Fatalf("status after the second Listen: %+v, %v", st, err)
	}
	// While a client is connected the name is held by more than one
	// instance: still refused.
	c := dial(t, s.Path())
	if _, err := Listen(Options{Path: s.Path()}); err == nil {
		t.Fatal("second Listen while a client is connected succeeded")
	}
	c.Close()
	s.Close()
	if err := served(s.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("pipe after Close: %v", err)
	}
	s2, err := Listen(Options{Path: s.Path()})
	if err != nil {
		t.Fatalf("Listen after the first closed: %v", err)
	}
	s2.Close()
}

// TestPipeSecurity reads the pipe's security descriptor back: owner
// Administrators (an administrator's run), a protected DACL denying
// NETWORK everything, SYSTEM and Administrators all access, the group
// pipeReaderMask, nobody else anything.
func TestPipeSecurity(t *testing.T) {
	for _, tt := range []struct {
		group string
		want  []aceWant
	}{
		{"users", []aceWant{{windows.ACCESS_DENIED_ACE_TYPE, windows.WinNetworkSid, 0}, {windows.ACCESS_ALLOWED_ACE_TYPE, windows.WinLocalSystemSid, 0},
			{windows.ACCESS_ALLOWED_ACE_TYPE, windows.WinBuiltinAdministratorsSid, 0}, {windows.ACCESS_ALLOWED_ACE_TYPE, windows.WinBuiltinUsersSid, pipeReaderMask}}},
		{"", []aceWant{{windows.ACCESS_DENIED_ACE_TYPE, windows.WinNetworkSid, 0}, {windows.ACCESS_ALLOWED_ACE_TYPE, windows.WinLocalSystemSid, 0},
			{windows.ACCESS_ALLOWED_ACE_TYPE, windows.WinBuiltinAdministratorsSid, 0}}},
	} {
		t.Run("group="+tt.group, func(t *testing.T) {
			s := serve(t, Options{Group: tt.group})
			c := rawDial(t, s.Path()).(*pipeConn)
			sd, err := windows.GetSecurityInfo(c.h, windows.SE_KERNEL_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("security descriptor %s", sd)
			owner, _, err := sd.Owner()
			if err != nil || !owner.IsWellKnown(windows.WinBuiltinAdministratorsSid) {
				t.Errorf("owner %v, %v; want Administrators", owner, err)
			}
			ctl, _, err := sd.Control()
			if err != nil || ctl&windows.SE_DACL_PROTECTED == 0 {
				t.Errorf("control %#x, %v: DACL not protected", ctl, err)
			}
			dacl, _, err := sd.DACL()
			if err != nil || dacl == nil {
				t.Fatalf("DACL %v, %v", dacl, err)
			}
			if int(dacl.AceCount) != len(tt.want) {
				t.Fatalf("%d ACEs, want %d", dacl.AceCount, len(tt.want))
			}
			for i, w := range tt.want {
				var e *windows.ACCESS_ALLOWED_ACE
				if err := windows.GetAce(dacl, uint32(i), &e); err != nil {
					t.Fatal(err)
				}
				sid := (*windows.SID)(unsafe.Pointer(&e.SidStart))
				mask := uint32(e.Mask)
				full := mask == windows.GENERIC_ALL || mask == fileAllAccess
				if e.Header.AceType != w.typ || !sid.IsWellKnown(w.sid) || (w.mask == 0 && !full) || (w.mask != 0 && mask != w.mask) {
					t.Errorf("ACE %d: type %d, %s, mask %#x; want type %d, well-known %d, mask %#x (0: all)", i, e.Header.AceType, sid, mask, w.typ, w.sid, w.mask)
				}
			}
		})
	}
}

type aceWant struct {
	typ  uint8
	sid  windows.WELL_KNOWN_SID_TYPE
	mask uint32
}

// squat makes the pipe path the way a user who is not an administrator
// would (owner: that user, here this process's user; anyone may connect)
// and keeps it open until the test ends.
func squat(t *testing.T, path string) {
	t.Helper()
	acc, err := newAccess("")
	if err != nil {
		t.Fatal(err)
	}
	sd, err := windows.SecurityDescriptorFromString("O:" + acc.self.String() + "D:(A;;GA;;;WD)")
	if err != nil {
		t.Fatal(err)
	}
	p16, _ := windows.UTF16PtrFromString(path)
	sa := &windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd}
	h, err := windows.CreateNamedPipe(p16, windows.PIPE_ACCESS_DUPLEX|windows.FILE_FLAG_OVERLAPPED|windows.FILE_FLAG_FIRST_PIPE_INSTANCE,
		windows.PIPE_TYPE_BYTE, windows.PIPE_UNLIMITED_INSTANCES, 4096, 4096, 0, sa)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { windows.CloseHandle(h) })
	if o, err := pipeOwner(h); err != nil || trustedOwner(o) {
		t.Fatalf("the squatter's pipe is owned by %v (%v): the test cannot stand for a user's pipe", o, err)
	}
}

// TestPipeSquatted: a pipe someone else made first under the agent's
// name (owned by a user, not SYSTEM or the administrators) is refused by
// the client before it reads a byte, and the agent does not serve on it.
func TestPipeSquatted(t *testing.T) {
	path := testPath(t, "squat")
	squat(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Dial(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "not SYSTEM or the administrators: not the agent's") {
		t.Errorf("Dial of a squatted pipe: %v", err)
	}
	if _, err := Listen(Options{Path: path}); err == nil || !strings.Contains(err.Error(), "the pipe exists already") {
		t.Errorf("Listen on a squatted pipe: %v", err)
	}
}

// TestPipePeer: the server tells who connected from the pipe: the
// process id, the user's SID and name from its token, the session id as
// UID, and SYSTEM, the agent's own user or an administrator is admin.
func TestPipePeer(t *testing.T) {
	s := serve(t, Options{Group: "users"})
	c := dial(t, s.Path())
	if c.Hello.Role != RoleAdmin {
		t.Errorf("role %q", c.Hello.Role)
	}
	go c.Watch(context.Background(), time.Minute, func(*Warning) error { return nil })
	waitFor(t, "watcher", func() bool { return len(s.Watchers()) == 1 })
	p := s.Watchers()[0]
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	if p.SID != u.User.Sid.String() || p.PID != os.Getpid() || p.UID != selfUID(t) || p.GID != -1 || !strings.Contains(p.User, `\`) {
		t.Errorf("peer %+v; want SID %s, pid %d, session %d, a DOMAIN\\user", p, u.User.Sid, os.Getpid(), selfUID(t))
	}
	t.Logf("peer %+v", p)
}

// TestPipeDeadlines: the pipe's ends take deadlines (the handles are on
// Go's I/O completion port): a read with nothing to read times out as a
// net.Error, and the server drops a client that says nothing.
func TestPipeDeadlines(t *testing.T) {
	s := serve(t, Options{})
	c := rawDial(t, s.Path())
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.Contains(line, `"hello"`) {
		t.Fatalf("hello %q, %v", line, err)
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	_, err := r.ReadByte()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the deadline took %v", d)
	}
}

// TestPipeBadPath: a path that is not \\.\pipe\NAME is refused by both
// ends; a pipe nobody serves is fs.ErrNotExist to Dial.
func TestPipeBadPath(t *testing.T) {
	for _, p := range []string{`C:\ProgramData\mamori\agent.sock`, `\\host\pipe\mamori`, `\\.\pipe\`} {
		if _, err := Listen(Options{Path: p}); err == nil {
			t.Errorf("Listen(%q) succeeded", p)
		}
		if _, err := Dial(context.Background(), p); !errors.Is(err, ErrNotSocket) {
			t.Errorf("Dial(%q): %v, want ErrNotSocket", p, err)
		}
	}
	if _, err := Dial(context.Background(), testPath(t, "nobody")); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrRefused) {
		t.Errorf("Dial of a pipe nobody serves: %v", err)
	}
	if _, err := Listen(Options{Path: testPath(t, "g"), Group: "no-such-group-mamori"}); err == nil || !strings.Contains(err.Error(), `group "no-such-group-mamori"`) {
		t.Errorf("Listen with a missing group: %v", err)
	}
	if _, err := Listen(Options{Path: testPath(t, "g"), Group: "100"}); err == nil || !strings.Contains(err.Error(), "no numeric gids") {
		t.Errorf("Listen with a gid: %v", err)
	}
}

var procCreateRestrictedToken = windows.NewLazySystemDLL("advapi32.dll").NewProc("CreateRestrictedToken")

// restrictedPrimary returns a primary token of this process's user with
// the SIDs of disable made deny-only (CreateRestrictedToken): an
// administrator's token without Administrators stands for a user who is
// not one.
func restrictedPrimary(t *testing.T, disable ...windows.WELL_KNOWN_SID_TYPE) windows.Token {
	t.Helper()
	if err := procCreateRestrictedToken.Find(); err != nil {
		t.Skipf("CreateRestrictedToken: %v", err)
	}
	var proc windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_DUPLICATE|windows.TOKEN_QUERY|windows.TOKEN_ASSIGN_PRIMARY, &proc); err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	var sids []windows.SIDAndAttributes
	for _, w := range disable {
		sids = append(sids, windows.SIDAndAttributes{Sid: mustSID(t, w)})
	}
	var first *windows.SIDAndAttributes
	if len(sids) > 0 {
		first = &sids[0]
	}
	var restricted windows.Token
	r, _, err := procCreateRestrictedToken.Call(uintptr(proc), 0, uintptr(len(sids)), uintptr(unsafe.Pointer(first)), 0, 0, 0, 0, uintptr(unsafe.Pointer(&restricted)))
	if r == 0 {
		t.Fatalf("CreateRestrictedToken: %v", err)
	}
	t.Cleanup(func() { restricted.Close() })
	return restricted
}

// restrictedToken is restrictedPrimary as an impersonation token, as
// CheckTokenMembership wants.
func restrictedToken(t *testing.T, disable ...windows.WELL_KNOWN_SID_TYPE) windows.Token {
	t.Helper()
	var imp windows.Token
	if err := windows.DuplicateTokenEx(restrictedPrimary(t, disable...), windows.TOKEN_QUERY|windows.TOKEN_IMPERSONATE, nil,
		windows.SecurityImpersonation, windows.TokenImpersonation, &imp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { imp.Close() })
	return imp
}

// TestPipeRoles: the role from the token's groups: this process's token
// is admin (its own user); a token of another user who is in
// Administrators is admin; one where Administrators is deny-only is a
// reader when it is in the group (Users) and refused without a group.
func TestPipeRoles(t *testing.T) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	own := u.User.Sid
	other, err := windows.StringToSid("S-1-5-21-1-2-3-4242")
	if err != nil {
		t.Fatal(err)
	}
	withUsers, err := newAccess("users")
	if err != nil {
		t.Fatal(err)
	}
	noGroup, err := newAccess("")
	if err != nil {
		t.Fatal(err)
	}
	full := restrictedToken(t) // nothing disabled
	if ok, err := full.IsMember(mustSID(t, windows.WinBuiltinAdministratorsSid)); err != nil || !ok {
		t.Skipf("this process's token is not in Administrators (%v): an administrator's test", err)
	}
	notAdmin := restrictedToken(t, windows.WinBuiltinAdministratorsSid)
	if ok, err := notAdmin.IsMember(mustSID(t, windows.WinBuiltinAdministratorsSid)); err != nil || ok {
		t.Fatalf("Administrators deny-only still a member: %v, %v", ok, err)
	}
	for _, tt := range []struct {
		name string
		acc  access
		tok  windows.Token
		sid  *windows.SID
		want string
	}{
		{"own user", noGroup, notAdmin, own, RoleAdmin},
		{"an administrator", noGroup, full, other, RoleAdmin},
		{"a user in Users", withUsers, notAdmin, other, RoleReader},
		{"a user, no group", noGroup, notAdmin, other, ""},
		{"SYSTEM", noGroup, notAdmin, mustSID(t, windows.WinLocalSystemSid), RoleAdmin},
	} {
		got, err := tt.acc.role(tt.tok, tt.sid)
		if err != nil || got != tt.want {
			t.Errorf("%s: role %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func mustSID(t *testing.T, w windows.WELL_KNOWN_SID_TYPE) *windows.SID {
	t.Helper()
	sid, err := windows.CreateWellKnownSid(w)
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// TestPipeReaderConnects: a process whose token has Administrators
// deny-only (a user who is not an administrator; the test binary run as
// the helper client, see main_test.go) connects as a reader when the
// agent lets Users read, and is refused when it lets no group read (by
// the pipe's DACL). Wine 8.0 cannot show it: measured there, the server
// impersonating a client (ImpersonateNamedPipeClient) gets its own token,
// not the client's (a child process with Administrators deny-only, or a
// client thread impersonating such a token, is seen as the agent's own
// user), and a pipe's DACL is not checked when a client opens it.
func TestPipeReaderConnects(t *testing.T) {
	if wintest.IsWine() {
		t.Skip("Wine 8.0's ImpersonateNamedPipeClient impersonates the server itself and Wine checks no pipe DACL: needs Windows")
	}
	primary := restrictedPrimary(t, windows.WinBuiltinAdministratorsSid)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(path string) string {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Token: syscall.Token(primary)}
		out, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	status := func() (*Status, error) { return &Status{}, nil }
	// The test's user is the one these servers run as: they are told
	// they run as another, or it would be admin as the agent's own user.
	readers := serveAsOther(t, Options{Group: "users", Status: status})
	if got := run(readers.Path()); got != "role reader, status ok" {
		t.Errorf("a user in Users: %q", got)
	}
	adminsOnly := serveAsOther(t, Options{Status: status})
	if got := run(adminsOnly.Path()); !strings.HasPrefix(got, "refused:") || !strings.Contains(got, "Access is denied") {
		t.Errorf("a user when no group may read: %q, want refused by the DACL", got)
	}
}

// serveAsOther starts a server as serve does, told it runs as a user
// other than this process's (access.self), so that the test's user is
// not the agent's own.
func serveAsOther(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Path = testPath(t, "other")
	opts.Agent = "mamori test"
	s, err := Listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.acc.self, err = windows.StringToSid("S-1-5-21-1-2-3-4242"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// fileAllAccess is FILE_ALL_ACCESS (winnt.h): what GENERIC_ALL maps to
// on a file or pipe.
const fileAllAccess = windows.STANDARD_RIGHTS_REQUIRED | windows.SYNCHRONIZE | 0x1FF

// TestLookupGroupWindows: "users" is BUILTIN\Users in any case and any
// language of Windows; other names are looked up and must be groups.
func TestLookupGroupWindows(t *testing.T) {
	for _, g := range []string{"users", "Users", "USERS"} {
		if sid, err := LookupGroup(g); err != nil || !sid.IsWellKnown(windows.WinBuiltinUsersSid) {
			t.Errorf("%s: %v, %v", g, sid, err)
		}
	}
	if sid, err := LookupGroup("Administrators"); err != nil || !sid.IsWellKnown(windows.WinBuiltinAdministratorsSid) {
		t.Errorf("Administrators: %v, %v", sid, err)
	}
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	name, _, _, err := u.User.Sid.LookupAccount("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LookupGroup(name); err == nil || !strings.Contains(err.Error(), "is a user, not a group") {
		t.Errorf("the user %q as a group: %v", name, err)
	}
}

// TestPipeCloseWhileAccepting: Close ends an Accept that waits, or is
// about to wait, for a client (closing is an event the wait sees, set
// before or after the connect starts), and the name is free after it.
func TestPipeCloseWhileAccepting(t *testing.T) {
	for i := range 50 {
		s, err := Listen(Options{Path: testPath(t, "close")})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve() }()
		if i%2 == 1 {
			time.Sleep(time.Millisecond)
		}
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close did not return", i)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Serve: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Serve did not return after Close", i)
		}
		if err := served(s.Path()); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("round %d: pipe after Close: %v", i, err)
		}
	}
	// Accept after Close: net.ErrClosed at once.
	acc, err := newAccess("")
	if err != nil {
		t.Fatal(err)
	}
	ln, _, err := listen(Options{Path: testPath(t, "closed")}, acc)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}
