package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/mamori-agent/mamori/internal/wintest"
)

func openTestQueue(t testing.TB, dir string, opts QueueOptions) *Queue {
	t.Helper()
	q, err := OpenQueue(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func appendN(t testing.TB, q *Queue, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := q.Append(fmt.Appendf(nil, "event %d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads every record left, acknowledging each batch, and returns
// their payloads and the dropped count reported with the first batch.
func readAll(t testing.TB, q *Queue, batch int) ([]string, int64) {
	t.Helper()
	var out []string
	var dropped int64
	for first := true; ; first = false {
		items, d, err := q.Read(batch, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if first {
			dropped = d
		}
		if len(items) == 0 {
			return out, dropped
		}
		for i, it := range items {
			if i > 0 && it.Seq <= items[i-1].Seq {
				t.Fatalf("seq %d after %d", it.Seq, items[i-1].Seq)
			}
			out = append(out, string(it.Data))
		}
		if err := q.Ack(items[0].Seq, items[len(items)-1].Seq, d); err != nil {
			t.Fatal(err)
		}
	}
}

func want(n0, n int) []string {
	var out []string
	for i := n0; i < n0+n; i++ {
		out = append(out, fmt.Sprintf("event %d", i))
	}
	return out
}

func TestQueueAppendReadAck(t *testing.T) {
	dir := filepath.Join(wintest.TempDir(t), "report")
	q := openTestQueue(t, dir, QueueOptions{SegmentSize: 200})
	if len(q.Prefix()) != 32 || !strings.HasPrefix(q.ID(7), q.Prefix()+"-7") {
		t.Errorf("prefix %q, id %q", q.Prefix(), q.ID(7))
	}
	appendN(t, q, 0, 50)
	if q.Len() != 50 {
		t.Errorf("Len = %d", q.Len())
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	if len(segs) < 5 {
		t.Errorf("%d segments, want several of 200 bytes", len(segs))
	}
	// Read without ack: the same again.
	items, _, _ := q.Read(10, 1<<20)
	again, _, _ := q.Read(10, 1<<20)
	if len(items) != 10 || items[0].Seq != 1 || again[0].Seq != 1 || string(again[9].Data) != "event 9" {
		t.Fatalf("read %v / %v", items, again)
	}
	// Byte bound: at least one, then within maxBytes.
	if items, _, _ := q.Read(10, 1); len(items) != 1 {
		t.Errorf("read with maxBytes 1: %d items", len(items))
	}
	got, dropped := readAll(t, q, 7)
	if fmt.Sprint(got) != fmt.Sprint(want(0, 50)) || dropped != 0 {
		t.Fatalf("got %v (dropped %d)", got, dropped)
	}
	if q.Len() != 0 {
		t.Errorf("Len = %d after acking all", q.Len())
	}
	segs, _ = filepath.Glob(filepath.Join(dir, "seg-*"))
	if len(segs) != 1 {
		t.Errorf("segments left after ack: %v", segs)
	}
	prefix := q.Prefix()
	q.Close()
	// Reopened: the same prefix, nothing to send, numbering goes on.
	q = openTestQueue(t, dir, QueueOptions{SegmentSize: 200})
	defer q.Close()
	if q.Prefix() != prefix || q.Len() != 0 {
		t.Errorf("reopened: prefix %q, Len %d", q.Prefix(), q.Len())
	}
	if seq, err := q.Append([]byte("after")); err != nil || seq != 51 {
		t.Errorf("append after reopen: seq %d, %v; want 51", seq, err)
	}
}

func TestQueueCrashTornTail(t *testing.T) {
	dir := wintest.TempDir(t)
	q := openTestQueue(t, dir, QueueOptions{})
	appendN(t, q, 0, 20)
	items, _, _ := q.Read(5, 1<<20)
	q.Ack(items[0].Seq, items[4].Seq, 0)
	// A crash: no Close. Then a torn write at the end of the segment.
	seg := filepath.Join(dir, segName(1))
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(appendRecord(nil, 21, []byte("torn record"))[:20])
	f.Close()
	q2 := openTestQueue(t, dir, QueueOptions{})
	defer q2.Close()
	if q2.Len() != 15 {
		t.Errorf("Len = %d after the crash, want 15", q2.Len())
	}
	if seq, err := q2.Append([]byte("event 20")); err != nil || seq != 21 {
		t.Fatalf("append after the cut: %d, %v", seq, err)
	}
	got, dropped := readAll(t, q2, 100)
	if fmt.Sprint(got) != fmt.Sprint(want(5, 16)) || dropped != 0 {
		t.Errorf("got %v, dropped %d", got, dropped)
	}
	q.Close() // the crashed one: must not disturb (its files are gone or reused)
}

func TestQueueDamagedMiddle(t *testing.T) {
	dir := wintest.TempDir(t)
	q := openTestQueue(t, dir, QueueOptions{SegmentSize: 100})
	appendN(t, q, 0, 30)
	q.Close()
	// Flip a byte in the first record of the second segment.
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	b, _ := os.ReadFile(segs[1])
	b[hdrSize] ^= 0xff
	os.WriteFile(segs[1], b, 0o600)
	var first uint64
	fmt.Sscanf(filepath.Base(segs[2]), "seg-%d.q", &first)
	var second uint64
	fmt.Sscanf(filepath.Base(segs[1]), "seg-%d.q", &second)
	q = openTestQueue(t, dir, QueueOptions{SegmentSize: 100})
	defer q.Close()
	got, _ := readAll(t, q, 100)
	lost := int(first - second)
	if len(got) != 30-lost || got[0] != "event 0" || got[len(got)-1] != "event 29" {
		t.Errorf("got %v, want all but the %d records of the damaged segment", got, lost)
	}
	if d := q.Dropped(); d != 0 {
		// readAll acknowledged with the count read before the damage was found.
		if _, d2, _ := q.Read(1, 1); d2 != int64(lost) {
			t.Errorf("dropped %d, want %d", d2, lost)
		}
	}
}

func TestQueueLimitDrops(t *testing.T) {
	dir := wintest.TempDir(t)
	var metric int64
	q := openTestQueue(t, dir, QueueOptions{Limit: 100, SegmentSize: 300, OnDrop: func(n int64) { metric += n }})
	appendN(t, q, 0, 250)
	if q.Len() != 100 || q.Dropped() != 150 || metric != 150 {
		t.Fatalf("Len %d, Dropped %d, metric %d; want 100, 150, 150", q.Len(), q.Dropped(), metric)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	q.Close()
	// Reopen without Close's state save mattering: the count survives.
	q = openTestQueue(t, dir, QueueOptions{Limit: 100, SegmentSize: 300})
	if q.Dropped() != 150 {
		t.Errorf("Dropped after reopen %d", q.Dropped())
	}
	items, dropped, _ := q.Read(10, 1<<20)
	if dropped != 150 || string(items[0].Data) != "event 150" {
		t.Errorf("first read: %q, dropped %d", items[0].Data, dropped)
	}
	q.Ack(items[0].Seq, items[len(items)-1].Seq, dropped)
	if q.Dropped() != 0 {
		t.Errorf("Dropped after reporting: %d", q.Dropped())
	}
	got, _ := readAll(t, q, 50)
	if fmt.Sprint(got) != fmt.Sprint(want(160, 90)) {
		t.Errorf("got %v", got)
	}
	q.Close()
	if left, _ := filepath.Glob(filepath.Join(dir, "seg-*")); len(left) >= len(segs) {
		t.Errorf("segments %d before, %d after: none deleted", len(segs), len(left))
	}

	// A crash right after dropping (state not saved): the drop is
	// counted again at Open from the gap.
	dir = wintest.TempDir(t)
	q = openTestQueue(t, dir, QueueOptions{Limit: 1000, SegmentSize: 300})
	appendN(t, q, 0, 100)
	q.Close()
	q = openTestQueue(t, dir, QueueOptions{Limit: 40, SegmentSize: 300})
	defer q.Close()
	if q.Len() != 40 || q.Dropped() != 60 {
		t.Errorf("smaller limit at reopen: Len %d, Dropped %d", q.Len(), q.Dropped())
	}
}

func TestQueueRefusesPlanted(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows")
	}
	victim := filepath.Join(wintest.TempDir(t), "victim")
	os.WriteFile(victim, []byte("precious"), 0o600)
	for _, name := range []string{idName, segName(1)} {
		dir := wintest.TempDir(t)
		if name == segName(1) {
			q := openTestQueue(t, dir, QueueOptions{})
			q.Close()
			os.Remove(filepath.Join(dir, name))
		}
		if err := os.Symlink(victim, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		q, err := OpenQueue(dir, QueueOptions{})
		if err == nil {
			q.Append([]byte("x"))
			q.Close()
			t.Errorf("%s planted as a symlink: opened", name)
		} else if !strings.Contains(err.Error(), "symlink") {
			t.Errorf("%s planted: %v, want it named a symlink", name, err)
		}
		if b, _ := os.ReadFile(victim); !bytes.Equal(b, []byte("precious")) {
			t.Fatalf("victim written through %s: %q", name, b)
		}
	}
	// The queue directory itself as a symlink.
	base := wintest.TempDir(t)
	os.Symlink(wintest.TempDir(t), filepath.Join(base, "report"))
	if _, err := OpenQueue(filepath.Join(base, "report"), QueueOptions{}); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("queue dir as a symlink: %v", err)
	}
}

func TestQueueConcurrentAppend(t *testing.T) {
	q := openTestQueue(t, wintest.TempDir(t), QueueOptions{SegmentSize: 4096})
	defer q.Close()
	var wg sync.WaitGroup
	seen := make([]bool, 2001)
	var mu sync.Mutex
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				seq, err := q.Append(fmt.Appendf(nil, "g%d-%d", g, i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[seq] {
					t.Errorf("seq %d twice", seq)
				}
				seen[seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	got, _ := readAll(t, q, 333)
	if len(got) != 2000 {
		t.Errorf("%d records", len(got))
	}
}

// BenchmarkQueueAppend measures Append with many concurrent appenders
// (the events of a burst share one fsync): ns/op is per event.
func BenchmarkQueueAppend(b *testing.B) {
	q := openTestQueue(b, wintest.TempDir(b), QueueOptions{Limit: 1 << 40})
	defer q.Close()
	ev := bytes.Repeat([]byte("x"), 600) // a typical violation record
	b.SetBytes(int64(len(ev)))
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := q.Append(ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkQueueAddBurst measures the sink's way: a burst of 100 events
// added, then waited for once.
func BenchmarkQueueAddBurst(b *testing.B) {
	q := openTestQueue(b, wintest.TempDir(b), QueueOptions{Limit: 1 << 40})
	defer q.Close()
	ev := bytes.Repeat([]byte("x"), 600)
	b.SetBytes(int64(len(ev)))
	b.ResetTimer()
	var last Pending
	for i := range b.N {
		p, err := q.Add(ev)
		if err != nil {
			b.Fatal(err)
		}
		last = p
		if i%100 == 99 {
			last.Wait()
		}
	}
	last.Wait()
}

// TestQueueLast: the newest record is known across restarts, with every
// record acknowledged and the older segments deleted, and when the
// segment appended to is empty (started after damage).
func TestQueueLast(t *testing.T) {
	dir := filepath.Join(wintest.TempDir(t), "q")
	q := openTestQueue(t, dir, QueueOptions{SegmentSize: 64})
	if _, ok := q.Last(); ok {
		t.Fatal("a new queue has a last record")
	}
	appendN(t, q, 0, 20)
	if d, ok := q.Last(); !ok || string(d) != "event 19" {
		t.Fatalf("Last %q %v", d, ok)
	}
	readAll(t, q, 7)
	q.Close()
	q = openTestQueue(t, dir, QueueOptions{SegmentSize: 64})
	if d, ok := q.Last(); !ok || string(d) != "event 19" {
		t.Fatalf("reopened, all acknowledged: Last %q %v", d, ok)
	}
	q.Close()
	// An empty segment after the newest record: the one before it is
	// read, and kept once acknowledged.
	segs, _ := filepath.Glob(filepath.Join(dir, segPrefix+"*"))
	if err := os.WriteFile(filepath.Join(dir, segName(21)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		q = openTestQueue(t, dir, QueueOptions{SegmentSize: 64})
		if d, ok := q.Last(); !ok || string(d) != "event 19" {
			t.Fatalf("empty last segment: Last %q %v", d, ok)
		}
		q.Ack(1, 20, 0)
		q.Close()
	}
	if now, _ := filepath.Glob(filepath.Join(dir, segPrefix+"*")); len(now) != len(segs)+1 {
		t.Fatalf("segments %v, were %v", now, segs)
	}
	q = openTestQueue(t, dir, QueueOptions{SegmentSize: 64})
	appendN(t, q, 20, 1)
	if d, ok := q.Last(); !ok || string(d) != "event 20" {
		t.Fatalf("Last %q %v", d, ok)
	}
	q.Close()
}
