package audit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// TestWindowsLogFile: the handle openLogFile gives can do what the log
// needs on Windows: append at the end of file whatever its file pointer,
// cut the file (FILE_WRITE_DATA, which an O_APPEND handle from os.OpenFile
// lacks), take the allocation call, and be renamed into place while open
// (it shares delete), writing on under the new name.
func TestWindowsLogFile(t *testing.T) {
	dir := wintest.TempDir(t)
	path := filepath.Join(dir, SpareName)
	f, created, err := openLogFile(path)
	if err != nil || !created {
		t.Fatalf("openLogFile = %v, created %v", err, created)
	}
	defer f.Close()
	for _, s := range []string{"one\n", "two\n"} {
		if n, err := appendTo(f, []byte(s)); err != nil || n != len(s) {
			t.Fatalf("appendTo %q = %d, %v", s, n, err)
		}
	}
	if _, err := f.Seek(0, 0); err != nil { // the file pointer must not matter
		t.Fatal(err)
	}
	appendTo(f, []byte("three\n"))
	if err := f.Truncate(8); err != nil {
		t.Fatalf("Truncate: %v", err)
	}
	appendTo(f, []byte("four\n"))

	err = allocate(f, 1<<20)
	si, serr := standardInfo(f)
	t.Logf("allocate: %v; allocation %d, end of file %d (%v)", err, si.AllocationSize, si.EndOfFile, serr)
	switch {
	case wintest.IsWine():
		// Wine 8.0 has no FileAllocationInformation: the log runs
		// without a reserve there, saying so.
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("allocate under Wine = %v, want errors.ErrUnsupported", err)
		}
	case err != nil:
		t.Errorf("allocate: %v", err)
	case serr != nil || si.AllocationSize < 1<<20 || si.EndOfFile != 13:
		t.Errorf("after allocate: %+v, %v; want 1 MiB allocated, 13 bytes", si, serr)
	}

	cur := filepath.Join(dir, CurrentName)
	if err := os.Rename(path, cur); err != nil {
		t.Fatalf("rename the open spare into place: %v", err)
	}
	appendTo(f, []byte("five\n"))
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(cur); err != nil || string(got) != "one\ntwo\nfour\nfive\n" {
		t.Errorf("%s holds %q, %v", CurrentName, got, err)
	}
	// A second open of an existing file works, and refuses a directory.
	g, created, err := openLogFile(cur)
	if err != nil || created {
		t.Fatalf("openLogFile of an existing file = %v, created %v", err, created)
	}
	g.Close()
	os.Mkdir(path, 0o700)
	if g, _, err := openLogFile(path); err == nil {
		g.Close()
		t.Error("openLogFile opened a directory")
	}
}

// TestWindowsRotateReserve runs the log through rotations on Windows:
// into the spare where space can be reserved, into new files where it
// cannot (Wine), with ReserveErr saying which.
func TestWindowsRotateReserve(t *testing.T) {
	dir := filepath.Join(wintest.TempDir(t), "state")
	l, err := Open(dir, Options{MaxSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rerr := l.ReserveErr()
	t.Logf("ReserveErr: %v", rerr)
	if wintest.IsWine() != errors.Is(rerr, errors.ErrUnsupported) {
		t.Errorf("ReserveErr = %v under Wine %v", rerr, wintest.IsWine())
	}
	if !wintest.IsWine() {
		si, err := standardInfo(l.f)
		if err != nil || si.AllocationSize < l.target(0) {
			t.Errorf("current file allocation %+v, %v; want at least %d", si, err, l.target(0))
		}
	}
	for i := 1; i <= 60; i++ {
		if _, err := l.Append(testEvent(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	if d := l.Check(); d != nil {
		t.Errorf("Check = %v", d)
	}
	l.SetUnwritten(3, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := wantOK(t, dir, 60)
	if rep.Files < 3 {
		t.Errorf("%d files, want rotations", rep.Files)
	}
	l, err = Open(dir, Options{MaxSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if d := l.Damaged(); len(d) != 1 || d[0].Kind != DamageUnwritten || d[0].Seq != 60 {
		t.Errorf("Damaged after SetUnwritten(3, 0) = %v", d)
	}
	l.Close()
}
