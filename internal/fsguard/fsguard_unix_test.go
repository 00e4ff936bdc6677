//go:build unix

package fsguard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mamori-agent/mamori/internal/fsguard/fsguardtest"
)

func mkfifo(path string) error { return unix.Mkfifo(path, 0o600) }

// wantUnsafe fails t unless err is an *UnsafeError about path whose
// message holds every one of parts.
func wantUnsafe(t *testing.T, err error, path string, parts ...string) {
	t.Helper()
	var ue *UnsafeError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v, want an *UnsafeError about %s", err, path)
	}
	if !strings.HasPrefix(ue.Path, path) {
		t.Errorf("error about %s, want %s: %v", ue.Path, path, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
}

func TestCheckPermissions(t *testing.T) {
	base := t.TempDir()
	state := filepath.Join(base, "state")
	os.Mkdir(state, 0o700)
	cfg := filepath.Join(base, "config.yaml")
	os.WriteFile(cfg, []byte("version: 1\n"), 0o600)
	if err := CheckDir(state); err != nil {
		t.Fatalf("CheckDir(private dir): %v", err)
	}
	if err := CheckFile(cfg); err != nil {
		t.Fatalf("CheckFile(private file): %v", err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		who  string
	}{{0o777, "group and others (mode 0777)"}, {0o770, "group (mode 0770)"}, {0o703, "others (mode 0703)"}} {
		os.Chmod(state, tc.mode)
		wantUnsafe(t, CheckDir(state), state, "is writable by "+tc.who, "chmod go-w "+state)
	}
	os.Chmod(state, os.ModeSticky|0o777) // sticky helps ancestors, not the dir itself
	wantUnsafe(t, CheckDir(state), state, "mode 1777")
	os.Chmod(state, 0o755)
	os.Chmod(cfg, 0o666)
	wantUnsafe(t, CheckFile(cfg), cfg, "group and others (mode 0666)", "chmod go-w "+cfg)
	os.Chmod(cfg, 0o644)

	// An ancestor writable by others, not sticky: anyone can rename the
	// state dir away and put their own in its place.
	os.Chmod(base, 0o777)
	wantUnsafe(t, CheckDir(state), base, "(on the way to "+state+")", "chmod go-w "+base)
	wantUnsafe(t, CheckFile(cfg), base, "chmod go-w "+base)
	os.Chmod(base, os.ModeSticky|0o777)
	if err := CheckDir(state); err != nil {
		t.Errorf("CheckDir below a sticky directory: %v", err)
	}
	os.Chmod(base, 0o700)

	if err := CheckFile(state); err == nil || !strings.Contains(err.Error(), "is a directory, not a regular file") {
		t.Errorf("CheckFile(dir): %v", err)
	}
	if err := CheckDir(cfg); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("CheckDir(file): %v", err)
	}
	if err := CheckDir(filepath.Join(base, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CheckDir(missing): %v", err)
	}
}

// TestCheckForeignOwner makes it real: a state directory, a config file
// and a symlinked state directory that a real unprivileged user owns or
// controls are refused, naming that user's uid and the chown to run.
func TestCheckForeignOwner(t *testing.T) {
	u := fsguardtest.Unprivileged(t)
	base := fsguardtest.ReachableDir(t)
	uid := fmt.Sprintf("uid %d", u.UID)

	state := filepath.Join(base, "state")
	u.Mkdir(t, state, 0o700)
	wantUnsafe(t, CheckDir(state), state, "is owned by "+uid, "chown root "+state)
	if err := MkdirAll(state); err == nil {
		t.Error("MkdirAll accepted a state dir owned by another user")
	}

	cfg := filepath.Join(base, "config.yaml")
	os.WriteFile(cfg, nil, 0o600)
	os.Chown(cfg, u.UID, u.GID)
	wantUnsafe(t, CheckFile(cfg), cfg, "is owned by "+uid, "chown root "+cfg)

	// The user's own directory, holding a private-looking root-owned dir
	// reached through a symlink: the user can swap what the link names.
	home := filepath.Join(base, "home")
	u.Mkdir(t, home, 0o755)
	inner := filepath.Join(home, "inner")
	os.Mkdir(inner, 0o700)
	link := filepath.Join(base, "link")
	os.Symlink(inner, link)
	wantUnsafe(t, CheckDir(link), home, "is owned by "+uid, "chown root "+home)

	// And a root-owned link inside the user's directory pointing at a
	// safe directory: the user can replace the link.
	safe := filepath.Join(base, "safe")
	os.Mkdir(safe, 0o700)
	u.Run(t, "ln -s "+safe+" "+filepath.Join(home, "tolink"))
	wantUnsafe(t, CheckDir(filepath.Join(home, "tolink")), home, "is owned by "+uid)

	// The attack the check is for: the user renames the writable state
	// dir away and plants their own.
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o755)
	os.Chmod(open, 0o777)
	os.Mkdir(filepath.Join(open, "state"), 0o700)
	u.Run(t, "mv "+filepath.Join(open, "state")+" "+filepath.Join(open, "old")+" && mkdir "+filepath.Join(open, "state"))
	wantUnsafe(t, CheckDir(filepath.Join(open, "state")), filepath.Join(open, "state"), "is owned by "+uid)
}

// TestReadFileAsRootFromUserDir: the user plants a FIFO and a link to
// /dev/zero where root reads its state; root gets errors, at once.
func TestReadFileAsRootFromUserDir(t *testing.T) {
	u := fsguardtest.Unprivileged(t)
	base := fsguardtest.ReachableDir(t)
	state := filepath.Join(base, "state")
	u.Mkdir(t, state, 0o755)
	fifo := filepath.Join(state, "appearances.json")
	zero := filepath.Join(state, "token")
	u.Run(t, "mkfifo "+fifo+" && ln -s /dev/zero "+zero)
	err := within(t, "fifo", func() error { _, err := ReadFileNoFollow(fifo, 1<<20); return err })
	if err == nil || !strings.Contains(err.Error(), "is a FIFO, not a regular file") {
		t.Errorf("ReadFileNoFollow(planted FIFO): %v", err)
	}
	err = within(t, "zero", func() error { _, err := ReadFile(zero, 1<<20); return err })
	if err == nil || !strings.Contains(err.Error(), "is a character device") {
		t.Errorf("ReadFile(link to /dev/zero): %v", err)
	}
	err = within(t, "zero nofollow", func() error { _, err := ReadFileNoFollow(zero, 1<<20); return err })
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("ReadFileNoFollow(link to /dev/zero): %v", err)
	}
}

// TestCheckUnreadable: a secret file group or others may read is refused
// with its mode and the chmod that fixes it; 0600 and 0400 pass.
func TestCheckUnreadable(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "token")
	if err := os.WriteFile(f, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, m := range []os.FileMode{0o600, 0o400, 0o700, 0o622} {
		if err := os.Chmod(f, m); err != nil {
			t.Fatal(err)
		}
		if err := CheckUnreadable(f); err != nil {
			t.Errorf("mode %04o: %v", m, err)
		}
	}
	for _, m := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(f, m); err != nil {
			t.Fatal(err)
		}
		err := CheckUnreadable(f)
		wantUnsafe(t, err, f, fmt.Sprintf("is readable by group or others (mode %04o)", m), "anyone who can read it learns", "chmod go-rwx "+f)
	}
	if err := CheckUnreadable(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
