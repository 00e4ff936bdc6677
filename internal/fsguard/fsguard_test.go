package fsguard

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	if err := os.WriteFile(p, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func(string, int64) ([]byte, error){ReadFile, ReadFileNoFollow} {
		if b, err := read(p, 100); err != nil || string(b) != "secret\n" {
			t.Errorf("read = %q, %v", b, err)
		}
		if b, err := read(p, 7); err != nil || len(b) != 7 {
			t.Errorf("read at the bound = %q, %v", b, err)
		}
		_, err := read(p, 6)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p) {
			t.Errorf("read over the bound: %v, want ErrTooLarge naming %s", err, p)
		}
		if _, err := read(filepath.Join(dir, "missing"), 10); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("read missing: %v, want ErrNotExist", err)
		}
		_, err = read(dir, 10)
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "is a directory") {
			t.Errorf("read directory: %v", err)
		}
	}
}

func TestReadFileSymlink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("x"), 0o600)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(link, 10); err != nil || string(b) != "x" {
		t.Errorf("ReadFile(symlink) = %q, %v; want it followed", b, err)
	}
	_, err := ReadFileNoFollow(link, 10)
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "symlink") || !strings.Contains(err.Error(), link) {
		t.Errorf("ReadFileNoFollow(symlink): %v, want a refusal naming the symlink", err)
	}
}

// within runs f and fails t if it does not return within two seconds: a
// read of a FIFO or a device must not hang.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Second):
		t.Fatalf("%s: still reading after 2s", what)
		return nil
	}
}

func TestReadFileRefusesSpecial(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no FIFOs or /dev/zero")
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "state.json")
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	zeroLink := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zeroLink); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, what string }{
		{fifo, "is a FIFO"},
		{"/dev/zero", "is a character device"},
		{zeroLink, "is a character device"},
		{"/dev/null", "is a character device"},
	} {
		err := within(t, tc.path, func() error { _, err := ReadFile(tc.path, 1<<20); return err })
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), tc.what) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("ReadFile(%s): %v; want %q naming the path", tc.path, err, tc.what)
		}
	}
	// A FIFO with a writer attached is refused just the same.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(bytes.Repeat([]byte("y"), 100))
	err = within(t, "fifo with writer", func() error { _, err := ReadFileNoFollow(fifo, 1<<20); return err })
	if !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadFileNoFollow(fifo with a writer): %v", err)
	}
}

func TestMkdirAll(t *testing.T) {
	base := t.TempDir()
	state := filepath.Join(base, "var", "lib", "mamori")
	if err := MkdirAll(state); err != nil {
		t.Fatalf("MkdirAll: %v", err)
	}
	fi, err := os.Stat(state)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir %v, %v; want a 0700 directory", fi, err)
	}
	if err := MkdirAll(state); err != nil {
		t.Errorf("MkdirAll again: %v", err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	os.Chmod(state, 0o777)
	err = MkdirAll(state)
	var ue *UnsafeError
	if !errors.As(err, &ue) || ue.Path != state || ue.Fix != "chmod go-w "+state {
		t.Errorf("MkdirAll(0777 dir): %v", err)
	}
	f := filepath.Join(base, "file")
	os.WriteFile(f, nil, 0o600)
	if err := MkdirAll(f); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("MkdirAll(file): %v", err)
	}
}
