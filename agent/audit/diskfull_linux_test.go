package audit

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

// TestAppendDiskFull fills a real (tmpfs) file system under a log with
// no reserve: a failed Append must leave no partial line, and appending
// resumes once there is room.
func TestAppendDiskFull(t *testing.T) {
	mnt := privateTmpfs(t, "64k")
	dir := filepath.Join(mnt, "state")
	l, err := Open(dir, Options{SyncHead: true, Reserve: -1}) // no head write racing the fill
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

// TestAppendDiskFullPartial makes the write itself stop part-way (no
// reserve): the file's last page has room for the first bytes of the line
// only.
func TestAppendDiskFullPartial(t *testing.T) {
	mnt := privateTmpfs(t, "64k")
	dir := filepath.Join(mnt, "state")
	l, err := Open(dir, Options{SyncHead: true, Reserve: -1}) // no head write racing the fill
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

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// wantKind fails t unless ds holds damage of kind, and returns the first.
func wantKind(t *testing.T, ds []Damage, kind DamageKind) Damage {
	t.Helper()
	for _, d := range ds {
		if d.Kind == kind {
			return d
		}
	}
	t.Fatalf("damage %v holds no %s", ds, kind)
	return Damage{}
}

// noKinds fails t if ds holds damage of another kind than those allowed.
func noKinds(t *testing.T, what string, ds []Damage, allowed ...DamageKind) {
	t.Helper()
	for _, d := range ds {
		if !slices.Contains(allowed, d.Kind) {
			t.Errorf("%s: unexpected damage %v", what, d)
		}
	}
}

// TestReserveDiskFull is the full-disk attack on a real file system (a
// private tmpfs): the disk is filled completely from another file after
// the log opened. A thousand records still go in (into the space
// reserved ahead, through at least one rotation into the spare), verify,
// and survive a stop and a restart while the disk is still full.
func TestReserveDiskFull(t *testing.T) {
	mnt := privateTmpfs(t, "2m")
	dir := filepath.Join(mnt, "state")
	opts := Options{MaxSize: 256 << 10, StopReserve: 16 << 10}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.ReserveErr(); err != nil {
		t.Fatalf("ReserveErr before the fill = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, SpareName)); err != nil {
		t.Fatalf("no spare next file: %v", err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := l.Append(testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	fill(t, filepath.Join(mnt, "filler"))
	if f, err := os.Create(filepath.Join(mnt, "probe")); err == nil {
		_, werr := f.Write(make([]byte, 4096))
		f.Close()
		if werr == nil {
			t.Fatal("the file system is not full after fill")
		}
	}

	const n = 1000
	for i := 4; i <= n; i++ {
		if r, err := l.Append(testEvent(i)); err != nil || r.Seq != uint64(i) {
			t.Fatalf("Append %d on the full disk = %+v, %v", i, r, err)
		}
	}
	rotated, err := listRotated(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) < 1 {
		t.Fatalf("no rotation while the disk was full (%d bytes written)", fileSize(t, filepath.Join(dir, CurrentName)))
	}
	// The spare went into the rotation and no new one fits.
	if err := l.ReserveErr(); err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("ReserveErr after a rotation on the full disk = %v, want ENOSPC", err)
	}
	wantKind(t, l.Check(), DamageReserveLost)
	wantOK(t, dir, n)
	if err := l.Close(); err != nil {
		// The head file cannot be replaced on a full disk: it lags,
		// which is not damage.
		t.Logf("Close on the full disk: %v", err)
	}
	wantOK(t, dir, n)

	// Restart, still full: everything is there and recording goes on.
	l, err = Open(dir, opts)
	if err != nil {
		t.Fatalf("Open on the full disk: %v", err)
	}
	noKinds(t, "Open on the full disk", l.Damaged(), DamageReserveLost)
	if last := l.Last(); last.Seq != n {
		t.Fatalf("Last after the restart = %+v, want seq %d", last, n)
	}
	for i := n + 1; i <= n+10; i++ {
		if _, err := l.Append(testEvent(i)); err != nil {
			t.Fatalf("Append %d after the restart on the full disk: %v", i, err)
		}
	}
	l.Close()
	wantOK(t, dir, n+10)

	// Space comes back: the reserve is whole again, reported as such.
	os.Remove(filepath.Join(mnt, "filler"))
	l, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ReserveErr(); err != nil {
		t.Errorf("ReserveErr once space is free = %v", err)
	}
	noKinds(t, "Open with space", l.Damaged())
	l.Close()
}

// TestStopReserveDiskFull uses the reserve up: Append then fails with
// ErrNoSpace, leaving the stop reserve alone, which UseStopReserve opens
// for the records of a stop; what is still held is counted by
// SetUnwritten, left in place on the full disk and reported by the next
// Open, once.
func TestStopReserveDiskFull(t *testing.T) {
	mnt := privateTmpfs(t, "1m")
	dir := filepath.Join(mnt, "state")
	opts := Options{MaxSize: 64 << 10, StopReserve: 8 << 10}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fill(t, filepath.Join(mnt, "filler"))
	path := filepath.Join(dir, CurrentName)
	written := 0
	var full error
	for i := 1; i <= 10000; i++ {
		if _, err := l.Append(testEvent(i)); err != nil {
			full = err
			break
		}
		written++
	}
	if !errors.Is(full, ErrNoSpace) || !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("after %d records Append = %v, want ErrNoSpace and ENOSPC", written, full)
	}
	// Both files' reserves, less the stop reserve: about 120 KiB.
	if written < 300 {
		t.Errorf("only %d records went in before the reserve ran out", written)
	}
	before := fileSize(t, path)
	if _, err := l.Append(testEvent(written + 1)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("second Append past the reserve = %v", err)
	}
	if after := fileSize(t, path); after != before {
		t.Fatalf("a refused Append changed the file from %d to %d bytes", before, after)
	}
	wantOK(t, dir, written)

	l.UseStopReserve()
	stop := 0
	for i := written + 1; i <= written+1000; i++ {
		if _, err := l.Append(testEvent(i)); err != nil {
			if !errors.Is(err, ErrNoSpace) {
				t.Fatalf("Append into the stop reserve: %v", err)
			}
			break
		}
		stop++
	}
	// 8 KiB of records of about 330 bytes.
	if stop < 20 {
		t.Errorf("only %d records went into the 8 KiB stop reserve", stop)
	}
	l.SetUnwritten(5, 2)
	last := l.Last()
	l.Close()
	wantOK(t, dir, written+stop)

	l, err = Open(dir, opts)
	if err != nil {
		t.Fatalf("Open on the full disk: %v", err)
	}
	noKinds(t, "Open after the stop", l.Damaged(), DamageUnwritten, DamageReserveLost)
	d := wantKind(t, l.Damaged(), DamageUnwritten)
	if d.Seq != last.Seq || !strings.Contains(d.Reason, "5 records it held") || !strings.Contains(d.Reason, "2 more") ||
		!strings.Contains(d.Reason, "7 records are lost") {
		t.Errorf("unwritten damage %v, want 5 held and 2 dropped after seq %d", d, last.Seq)
	}
	l.Close()
	// Reported once: the note was reset, in place, on the full disk.
	l, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	noKinds(t, "second Open", l.Damaged(), DamageReserveLost)
	l.Close()
}

// TestTornTailDiskFull: a crash mid-append and a restart on a full disk.
// The partial line cannot be moved aside; it stays in place, reported,
// and the log opens and goes on chained to the last whole record, so that
// Verify shows the one bad line and nothing else.
func TestTornTailDiskFull(t *testing.T) {
	mnt := privateTmpfs(t, "1m")
	dir := filepath.Join(mnt, "state")
	opts := Options{MaxSize: 64 << 10, StopReserve: 8 << 10}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	for i := 1; i <= 5; i++ {
		r, err := l.Append(testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	l.Close()
	// The crash: part of record 6 reached the disk (into the reserve).
	f, err := os.OpenFile(filepath.Join(dir, CurrentName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := `{"seq":6,"prev_hash":"` + recs[4].Hash[:20]
	if _, err := f.WriteString(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fill(t, filepath.Join(mnt, "filler"))

	l, err = Open(dir, opts)
	if err != nil {
		t.Fatalf("Open with a torn tail on the full disk: %v", err)
	}
	defer l.Close()
	d := wantKind(t, l.Damaged(), DamageTornTail)
	if !strings.Contains(d.Reason, "left in place") {
		t.Errorf("torn tail damage %v, want it left in place", d)
	}
	noKinds(t, "Open", l.Damaged(), DamageTornTail, DamageReserveLost)
	if last := l.Last(); last != recs[4] {
		t.Fatalf("Last = %+v, want record 5 %+v", last, recs[4])
	}
	for i := 6; i <= 8; i++ {
		if r, err := l.Append(testEvent(i)); err != nil || r.Seq != uint64(i) {
			t.Fatalf("Append %d = %+v, %v", i, r, err)
		}
	}
	l.Close()
	rep := mustVerify(t, dir)
	if len(rep.Problems) != 1 || rep.Problems[0].Line != 6 || rep.Read != 8 || rep.EndSeq != 8 {
		t.Errorf("Verify read %d records up to seq %d, problems %v; want 8 and the torn line 6 alone", rep.Read, rep.EndSeq, rep.Problems)
	}
	lines := readLines(t, filepath.Join(dir, CurrentName))
	if len(lines) != 9 || string(lines[5]) != torn+"\n" {
		t.Errorf("line 6 is %q, want the torn bytes ended by a newline", lines[5])
	}
}
