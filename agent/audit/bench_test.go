package audit

import (
	"path/filepath"
	"testing"
)

// benchAppend appends agent-sized events with a real sync per record, on
// the disk under os.TempDir.
func benchAppend(b *testing.B, syncHead bool) {
	l, err := Open(filepath.Join(b.TempDir(), "state"), Options{SyncHead: syncHead})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ev := testEvent(3)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend: the default, head file written in the background.
func BenchmarkAppend(b *testing.B) { benchAppend(b, false) }

// BenchmarkAppendSyncHead: head file rewritten (sync, rename, sync
// directory) inside every Append.
func BenchmarkAppendSyncHead(b *testing.B) { benchAppend(b, true) }

// BenchmarkVerify checks a 10 000-record log spread over rotated files.
func BenchmarkVerify(b *testing.B) {
	const n = 10000
	dir := filepath.Join(b.TempDir(), "state")
	l, err := Open(dir, Options{MaxSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for i := range n {
		if _, err := l.Append(testEvent(i)); err != nil {
			b.Fatal(err)
		}
	}
	size = l.size
	l.Close()
	rotated, _ := listRotated(dir)
	size += int64(len(rotated)) << 20 // approximate, for MB/s
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Verify(dir)
		if err != nil || !rep.OK() || rep.Records != n {
			b.Fatalf("Verify: %+v %v", rep, err)
		}
	}
}
