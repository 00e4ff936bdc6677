package wintest

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestIsWine holds IsWine to where the test runs: scripts/wine/test.sh
// passes MAMORI_WINE_PREFIX into the Windows environment, so under it the
// answer must be yes with a version, and off Windows it must be no.
func TestIsWine(t *testing.T) {
	underHarness := os.Getenv("MAMORI_WINE_PREFIX") != ""
	switch {
	case runtime.GOOS != "windows":
		if IsWine() || WineVersion() != "" {
			t.Fatalf("IsWine() = %v, WineVersion() = %q off Windows", IsWine(), WineVersion())
		}
	case underHarness:
		if !IsWine() {
			t.Fatal("IsWine() = false under scripts/wine/test.sh")
		}
		v := WineVersion()
		if v == "" || !strings.ContainsAny(v[:1], "0123456789") {
			t.Fatalf("WineVersion() = %q, want a version number", v)
		}
		t.Logf("Wine %s", v)
	default:
		t.Logf("IsWine() = %v (%q): not under the harness, nothing to hold it to", IsWine(), WineVersion())
	}
}

// makeTree writes a small tree of nested directories and files below dir.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	for _, p := range []string{"a/b/c/file1", "a/b/file2", "a/file3", "d/file4", "e/f/g/h/file5"} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A read-only file: os.RemoveAll removes it on Unix, and our
	// fallback must too on Windows.
	ro := filepath.Join(dir, "a", "readonly")
	if err := os.WriteFile(ro, []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty", "dirs"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveAll(t *testing.T) {
	base := TempDir(t)
	dir := filepath.Join(base, "tree")
	makeTree(t, dir)
	if err := RemoveAll(dir); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("after RemoveAll: Lstat = %v, want not exist", err)
	}
	// Gone already: no error.
	if err := RemoveAll(dir); err != nil {
		t.Fatalf("RemoveAll of a missing path: %v", err)
	}
	if err := RemoveAll(""); err == nil {
		t.Fatal("RemoveAll(\"\") succeeded")
	}
}

// TestRemoveTree checks the fallback alone (os.RemoveAll works off Wine).
func TestRemoveTree(t *testing.T) {
	dir := filepath.Join(TempDir(t), "tree")
	makeTree(t, dir)
	if err := removeTree(dir); err != nil {
		t.Fatalf("removeTree: %v", err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("after removeTree: Lstat = %v, want not exist", err)
	}
}

// TestRemoveTreeKeepsLinkTargets: a link inside the tree is removed, what
// it points to is not.
func TestRemoveTreeKeepsLinkTargets(t *testing.T) {
	base := TempDir(t)
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(outside, "keep")
	if err := os.WriteFile(keep, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "tree")
	makeTree(t, dir)
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	if err := removeTree(dir); err != nil {
		t.Fatalf("removeTree: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("the link's target went too: %v", err)
	}
}

// TestTempDirCleanup: the directory TempDir gives is gone, contents and
// all, once its test ends.
func TestTempDirCleanup(t *testing.T) {
	var dir string
	t.Run("inner", func(t *testing.T) {
		dir = TempDir(t)
		makeTree(t, dir)
	})
	if dir == "" {
		t.Fatal("no directory")
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("after the subtest: Lstat(%s) = %v, want not exist", dir, err)
	}
}

// TestPrivateFileAndOpenToEveryone: a file others may read and write
// (OpenToEveryone) is private after PrivateFile, and the other way round;
// this process can still read and write the private file.
func TestPrivateFileAndOpenToEveryone(t *testing.T) {
	p := filepath.Join(TempDir(t), "secret")
	if err := os.WriteFile(p, []byte("tok-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	OpenToEveryone(t, p)
	if r, w := othersMay(t, p); !r || !w {
		t.Fatalf("after OpenToEveryone others may read %v, write %v; want both", r, w)
	}
	PrivateFile(t, p)
	if r, w := othersMay(t, p); r || w {
		t.Fatalf("after PrivateFile others may read %v, write %v; want neither", r, w)
	}
	if err := os.WriteFile(p, []byte("tok-2\n"), 0o600); err != nil {
		t.Fatalf("writing the private file: %v", err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "tok-2\n" {
		t.Fatalf("reading the private file: %q, %v", b, err)
	}
	OpenToEveryone(t, p)
	if r, w := othersMay(t, p); !r || !w {
		t.Fatalf("after OpenToEveryone again others may read %v, write %v; want both", r, w)
	}
}
