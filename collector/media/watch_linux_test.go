package media

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitResult runs w.Wait in a goroutine and returns its result channel.
func waitResult(w *MountWatcher, ctx context.Context) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- w.Wait(ctx) }()
	return ch
}

// expectQuiet expects Wait to stay blocked for d while the test changes
// nothing. A wake-up is tolerated only when the mount table read from
// procfs (on this test's thread, in its private mount namespace) is the
// same as before: the kernel bumps a namespace's event counter for more
// than what mountinfo shows, and other tests of this machine create and
// remove network namespaces (bind mounts) all the time.
func expectQuiet(t *testing.T, w *MountWatcher, ctx context.Context, ch <-chan error, procfs string, d time.Duration) <-chan error {
	t.Helper()
	before, _ := os.ReadFile(filepath.Join(procfs, "self", "mountinfo"))
	deadline := time.After(d)
	for {
		select {
		case err := <-ch:
			now, _ := os.ReadFile(filepath.Join(procfs, "self", "mountinfo"))
			if err != nil || string(now) != string(before) {
				t.Fatalf("Wait returned %v with nothing changed", err)
			}
			ch = waitResult(w, ctx)
		case <-deadline:
			return ch
		}
	}
}

// privateMounts moves this test's OS thread into a mount namespace of its
// own with private propagation and returns a procfs whose "self" is this
// thread. The thread stays locked and is discarded with the test.
func privateMounts(t *testing.T) string {
	t.Helper()
	runtime.LockOSThread() // never unlocked: the thread is discarded
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		if os.Getenv("CI") == "true" && !errors.Is(err, unix.EPERM) {
			t.Fatalf("unshare: %v", err)
		}
		t.Skipf("no private mount namespace (needs CAP_SYS_ADMIN): %v", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make mounts private: %v", err)
	}
	// /proc/self names the thread-group leader, whose namespace is the
	// host's: point "self" at this thread.
	procfs := t.TempDir()
	if err := os.Symlink("/proc/thread-self", filepath.Join(procfs, "self")); err != nil {
		t.Fatal(err)
	}
	return procfs
}

func expect(t *testing.T, ch <-chan error, want error) {
	t.Helper()
	select {
	case err := <-ch:
		if !errors.Is(err, want) && err != want {
			t.Fatalf("Wait = %v, want %v", err, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Wait did not return (want %v)", want)
	}
}

// TestMountWatcherSeesMounts mounts a tmpfs in a private mount namespace
// of this test's OS thread and checks that Wait wakes for the mount and
// for the unmount. The thread stays locked, so it dies with the test and
// the namespace goes with it; the host's mounts are never touched.
func TestMountWatcherSeesMounts(t *testing.T) {
	procfs := privateMounts(t)
	target := t.TempDir()

	w, err := NewMountWatcher(procfs)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()

	ch := waitResult(w, ctx)
	ch = expectQuiet(t, w, ctx, ch, procfs, 200*time.Millisecond)
	if err := unix.Mount("tmpfs", target, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	expect(t, ch, nil)

	mounts, err := ReadMountInfo(procfs)
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, m := range mounts {
		seen = seen || (m.MountPoint == target && m.FSType == "tmpfs")
	}
	if !seen {
		t.Errorf("tmpfs at %s not in mountinfo", target)
	}

	// The event was consumed: the next Wait blocks until the next change.
	ch = waitResult(w, ctx)
	ch = expectQuiet(t, w, ctx, ch, procfs, 200*time.Millisecond)
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_RDONLY, "size=1m"); err != nil {
		t.Fatalf("remount ro: %v", err)
	}
	expect(t, ch, nil)

	ch = waitResult(w, ctx)
	if err := unix.Unmount(target, 0); err != nil {
		t.Fatalf("unmount: %v", err)
	}
	expect(t, ch, nil)

	// A mount with a space in its path: seen, and unescaped by the parser.
	spaced := filepath.Join(target, "my stick")
	if err := os.Mkdir(spaced, 0o755); err != nil {
		t.Fatal(err)
	}
	ch = waitResult(w, ctx)
	if err := unix.Mount("tmpfs", spaced, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	expect(t, ch, nil)
	mounts, _ = ReadMountInfo(procfs)
	seen = false
	for _, m := range mounts {
		seen = seen || m.MountPoint == spaced
	}
	if !seen {
		t.Errorf("%q not in mountinfo", spaced)
	}
	if err := unix.Unmount(spaced, 0); err != nil {
		t.Fatal(err)
	}
}

func TestMountWatcherCloseAndCancel(t *testing.T) {
	procfs := privateMounts(t)
	w, err := NewMountWatcher(procfs)
	if err != nil {
		t.Fatal(err)
	}

	// Context cancellation wakes Wait.
	ctx, cancel := context.WithCancel(context.Background())
	ch := waitResult(w, ctx)
	ch = expectQuiet(t, w, ctx, ch, procfs, 100*time.Millisecond)
	cancel()
	expect(t, ch, context.Canceled)

	// An already cancelled context returns at once.
	if err := w.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}

	// Idle waiting costs no CPU (no busy polling), and the wake-up left
	// over from the cancelled context does not end the next Wait.
	var before, after unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &before); err != nil {
		t.Fatal(err)
	}
	ch = waitResult(w, context.Background())
	ch = expectQuiet(t, w, context.Background(), ch, procfs, 300*time.Millisecond)
	if err := unix.Getrusage(unix.RUSAGE_SELF, &after); err != nil {
		t.Fatal(err)
	}
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	if cpu > 100*time.Millisecond {
		t.Errorf("%v CPU while idle for 300ms", cpu)
	}

	// A second concurrent Wait is refused, not raced.
	if err := w.Wait(context.Background()); err == nil || !strings.Contains(err.Error(), "concurrently") {
		t.Errorf("concurrent Wait: %v", err)
	}

	// Close wakes the blocked Wait, and later Waits fail at once.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, ErrWatcherClosed)
	if err := w.Wait(context.Background()); !errors.Is(err, ErrWatcherClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	if _, err := NewMountWatcher(t.TempDir()); err == nil || !strings.Contains(err.Error(), "mountinfo") {
		t.Errorf("missing mountinfo: %v", err)
	}
}
