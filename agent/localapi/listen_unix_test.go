//go:build unix

package localapi

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestSocketFile: the socket gets its mode and group, a missing
// directory is made 0755, no temporary name is left behind, and Close
// removes the socket.
func TestSocketFile(t *testing.T) {
	dir := filepath.Join(sockDir(t), "run", "mamori")
	gid := os.Getegid()
	s := serve(t, Options{Path: filepath.Join(dir, "agent.sock"), Group: strconv.Itoa(gid)})
	fi, err := os.Lstat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 || int(st.Gid) != gid || int(st.Uid) != os.Geteuid() {
		t.Errorf("socket %v uid %d gid %d, want a socket 0660 of uid %d gid %d", fi.Mode(), st.Uid, st.Gid, os.Geteuid(), gid)
	}
	if dfi, err := os.Stat(dir); err != nil || dfi.Mode().Perm() != 0o755 {
		t.Errorf("directory made %v, %v", dfi.Mode(), err)
	}
	names, _ := os.ReadDir(dir)
	if len(names) != 1 {
		t.Errorf("directory holds %v", names)
	}
	// Without a group: 0600.
	s2 := serve(t, Options{Path: filepath.Join(dir, "root-only.sock")})
	if fi, err := os.Lstat(s2.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("root-only socket %v, %v", fi.Mode(), err)
	}
	s.Close()
	if _, err := os.Lstat(s.Path()); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}
}

// TestStaleAndForeign: a stale socket of ours is replaced; a live one,
// a file that is not a socket and a directory others can write are
// refused with an error naming them; so is a group that does not exist.
func TestStaleAndForeign(t *testing.T) {
	dir := sockDir(t)
	path := filepath.Join(dir, "agent.sock")
	// A stale socket: bound, then its listener closed without unlinking.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s := serve(t, Options{Path: path})
	// A live one: the server just started.
	if _, err := Listen(Options{Path: path}); err == nil || !strings.Contains(err.Error(), "another agent is serving it") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
	s.Close()

	regular := filepath.Join(dir, "file.sock")
	os.WriteFile(regular, []byte("x"), 0o600)
	if _, err := Listen(Options{Path: regular}); err == nil || !strings.Contains(err.Error(), regular+" is a regular file, not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "x" {
		t.Error("the regular file was touched")
	}

	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if _, err := Listen(Options{Path: filepath.Join(open, "agent.sock")}); err == nil || !strings.Contains(err.Error(), "writable by group and others") {
		t.Errorf("Listen in a directory others can write: %v", err)
	}

	if _, err := Listen(Options{Path: filepath.Join(dir, "g.sock"), Group: "no-such-group-mamori"}); err == nil || !strings.Contains(err.Error(), `group "no-such-group-mamori"`) {
		t.Errorf("Listen with a missing group: %v", err)
	}
}
