package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// allocated returns how many bytes of disk the file at path holds.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestReserveAllocated: on Linux the reserve is real blocks past the end
// of the current file and the spare (fallocate KEEP_SIZE), while their
// sizes, and so everything that reads the log, see only the records: no
// zeros in the file, its size the bytes written.
func TestReserveAllocated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l := openLog(t, dir, Options{MaxSize: 1 << 20, Reserve: 256 << 10, StopReserve: 32 << 10})
	if err := l.ReserveErr(); err != nil {
		t.Skipf("this file system cannot reserve: %v", err)
	}
	var written int64
	for i := 1; i <= 20; i++ {
		l.Append(testEvent(i))
	}
	cur := filepath.Join(dir, CurrentName)
	b, err := os.ReadFile(cur)
	if err != nil {
		t.Fatal(err)
	}
	written = int64(len(b))
	if bytes.IndexByte(b, 0) >= 0 {
		t.Error("the current file holds zero bytes")
	}
	if got := fileSize(t, cur); got != written {
		t.Errorf("size %d, read %d", got, written)
	}
	const want = 256<<10 + 32<<10
	if got := allocated(t, cur); got < want {
		t.Errorf("current file has %d bytes allocated, want at least %d", got, want)
	}
	if got := allocated(t, filepath.Join(dir, SpareName)); got < want {
		t.Errorf("spare has %d bytes allocated, want at least %d", got, want)
	}
	// Past a quarter of the reserve written, Append allocates ahead again.
	for i := 21; written < 100<<10; i++ {
		r, err := l.Append(testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		written = fileSize(t, cur)
		_ = r
	}
	if got := allocated(t, cur); got < written+want-l.slack() {
		t.Errorf("after %d bytes, %d allocated: want %d ahead", written, got, want)
	}
	l.Close()
	// Closed, the reserve stays (Linux keeps it), and Open finds it.
	if got := allocated(t, cur); got < written+want-l.slack() {
		t.Errorf("after Close %d allocated", got)
	}
}
