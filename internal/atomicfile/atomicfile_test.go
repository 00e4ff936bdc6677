package atomicfile

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/mamori-agent/mamori/internal/fsguard/fsguardtest"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, content := range []string{"first", "second, longer"} {
		if err := WriteFile(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	onlyFiles(t, dir, "state.json")
}

// onlyFiles fails t unless dir holds exactly the named entries (no
// temporary file left behind).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("unexpected %s left in %s", e.Name(), dir)
		}
		delete(want, e.Name())
	}
	for n := range want {
		t.Errorf("%s missing from %s", n, dir)
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "such"), []byte("x")); err == nil {
		t.Fatal("want an error for a missing directory")
	}
}

// TestWriteFileIgnoresExistingMode: a world-writable file planted at the
// name does not lend its mode to the new one.
func TestWriteFileIgnoresExistingMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(p, []byte("planted"), 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o666)
	if err := WriteFile(p, []byte("ours")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != Perm {
		t.Errorf("mode %v, %v; want %v", fi.Mode(), err, os.FileMode(Perm))
	}
}

// TestWriteFileSymlinks: symlinks planted at the old fixed temporary name
// and at the destination are never written through.
func TestWriteFileSymlinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows")
	}
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "state.json")
	for _, link := range []string{p + ".tmp", p} {
		if err := os.Symlink(victim, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteFile(p, []byte("ours")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious" {
		t.Fatalf("victim overwritten through a symlink: %q", got)
	}
	if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("destination %v, %v; want a regular file replacing the symlink", fi.Mode(), err)
	}
	if got, _ := os.ReadFile(p); string(got) != "ours" {
		t.Errorf("destination holds %q", got)
	}
	onlyFiles(t, dir, "state.json", "state.json.tmp")
}

// TestWriteFileAttack makes the attack real: root writes a state file into
// a directory an unprivileged user owns, after that user planted symlinks
// to a root-owned file at the temporary name the old writer used and at
// the destination, and a FIFO at a name renameio might pick (it does not:
// its names are random and opened with O_EXCL).
func TestWriteFileAttack(t *testing.T) {
	u := fsguardtest.Unprivileged(t)
	base := fsguardtest.ReachableDir(t)
	victim := filepath.Join(base, "shadow")
	if err := os.WriteFile(victim, []byte("root:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(base, "state")
	u.Mkdir(t, state, 0o755)
	p := filepath.Join(state, "appearances.json")
	u.Run(t, "ln -s "+victim+" "+p+".tmp && ln -s "+victim+" "+p+" && mkfifo "+filepath.Join(state, ".appearances.json0"))
	if err := WriteFile(p, []byte("{}")); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "root:secret\n" {
		t.Fatalf("root wrote through the planted symlink: victim holds %q", got)
	}
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != Perm {
		t.Fatalf("destination %v, %v; want a regular 0600 file", fi, err)
	}
	if target, err := os.Readlink(p + ".tmp"); err != nil || target != victim {
		t.Errorf("planted temp-name symlink changed: %q, %v", target, err)
	}
}
