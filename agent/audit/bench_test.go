package audit

import (
	"path/filepath"
	"testing"
)

// benchAppend appends agent-sized events with a real sync per record, on
// the disk under os.TempDir.
func benchAppend(b *testing.B, syncHead bool) { benchAppendOpts(b, Options{SyncHead: syncHead}) }

func benchAppendOpts(b *testing.B, opts Options) {
	l, err := Open(filepath.Join(b.TempDir(), "state"), opts)
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

// BenchmarkAppendNoReserve: the default without a reserve (Reserve -1):
// appends that allocate their blocks as they go.
func BenchmarkAppendNoReserve(b *testing.B) { benchAppendOpts(b, Options{Reserve: -1}) }

// BenchmarkAppendRotating: files of 64 KiB, so that rotations (into the
// spare, and a new spare made) are part of the cost.
func BenchmarkAppendRotating(b *testing.B) { benchAppendOpts(b, Options{MaxSize: 64 << 10}) }

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

// BenchmarkOpenClose opens a log of a few records and closes it: the
// reserve is made (or found) at every Open.
func BenchmarkOpenClose(b *testing.B) {
	dir, _ := writeLog(b, 10, Options{})
	b.ReportAllocs()
	for b.Loop() {
		l, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
