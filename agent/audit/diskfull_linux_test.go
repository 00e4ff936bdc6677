package audit

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// needRoot skips a test that needs root, except in CI, where it must run.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: needs root, and CI=true", why)
		}
		t.Skipf("%s: needs root", why)
	}
}

// privateTmpfs mounts a tmpfs of the given size in a mount namespace of
// the calling thread's own, so nothing outside the test sees it. The
// goroutine stays locked to the thread, which exits with it.
func privateTmpfs(t *testing.T, size string) string {
	t.Helper()
	needRoot(t, "mount a tmpfs")
	runtime.LockOSThread() // never unlocked: the thread dies with the test
	if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
		t.Fatalf("unshare mount namespace: %v", err)
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make mounts private: %v", err)
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return mnt
}

// fill writes a file until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
	}
}

// TestAppendDiskFull fills a real (tmpfs) file system: a failed Append
// must leave no partial line, and appending resumes once there is room.
func TestAppendDiskFull(t *testing.T) {
	mnt := privateTmpfs(t, "64k")
	dir := filepath.Join(mnt, "state")
	l, err := Open(dir, Options{SyncHead: true}) // no head write racing the fill
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 1; i <= 3; i++ {
		if _, err := l.Append(testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, CurrentName)
	before, _ := os.Stat(path)
	filler := filepath.Join(mnt, "filler")
	fill(t, filler)

	big := map[string]string{"type": "device_added", "path": "1-1", "message": strings.Repeat("x", 9000)}
	for range 3 {
		if r, err := l.Append(big); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Append on a full disk = %+v, %v; want ENOSPC", r, err)
		}
		after, _ := os.Stat(path)
		if after.Size() != before.Size() {
			t.Fatalf("after a failed Append the log is %d bytes, was %d", after.Size(), before.Size())
		}
	}
	rep := wantOK(t, dir, 3)
	_ = rep

	os.Remove(filler)
	r, err := l.Append(big)
	if err != nil || r.Seq != 4 {
		t.Fatalf("Append after freeing space = %+v, %v", r, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wantOK(t, dir, 4)
}

// TestAppendDiskFullPartial makes the write itself stop part-way: the
// file's last page has room for the first bytes of the line only.
func TestAppendDiskFullPartial(t *testing.T) {
	mnt := privateTmpfs(t, "64k")
	dir := filepath.Join(mnt, "state")
	l, err := Open(dir, Options{SyncHead: true}) // no head write racing the fill
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	path := filepath.Join(dir, CurrentName)
	l.Append(map[string]string{"pad": strings.Repeat("p", 100)}) // 1 page, partly used
	fill(t, filepath.Join(mnt, "filler"))
	before, _ := os.Stat(path)
	// The line is smaller than a page, so a fresh page is not needed for
	// its start: the first bytes land in the file's last page.
	rec := map[string]string{"x": strings.Repeat("y", 4096-int(before.Size())%4096+100)}
	if _, err := l.Append(rec); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append = %v, want ENOSPC", err)
	}
	after, _ := os.Stat(path)
	if after.Size() != before.Size() {
		t.Fatalf("log is %d bytes after the failed Append, was %d", after.Size(), before.Size())
	}
	wantOK(t, dir, 1)
}
