package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/agent/report"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/hub/hubtest"
	"github.com/mamori-agent/mamori/wire"
)

// auditWritten is an audit record as the agent wrote it.
type auditWritten struct {
	ev             *wire.Event
	seq            uint64
	hash, prevHash string
}

// writeAudit appends n events to l as appendEvent does.
func writeAudit(t *testing.T, l *audit.Log, from, n int) []auditWritten {
	t.Helper()
	var out []auditWritten
	for i := from; i < from+n; i++ {
		ev := &wire.Event{Time: time.Now().UTC(), AssetID: "PC-7", Type: wire.TypeViolation, Source: wire.SourceUSB,
			Message: fmt.Sprintf("event %d", i), Violation: &wire.Violation{Kind: "unapproved_usb"}}
		prev := l.Last()
		r, err := l.Append(wire.NewRecord(ev))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, auditWritten{ev, r.Seq, r.Hash, prev.Hash})
	}
	return out
}

// TestReporterCatchUp: the agent "crashes" after writing audit records
// of which only the first ones reached the reporter's queue. At the next
// start the reporter's queue gets the rest from the log, in order, each
// once, in the form HandleRecord gives them; the hub stores every record
// once and sees its chain intact. A reporter whose queue never held a
// record starts at the end of the log.
func TestReporterCatchUp(t *testing.T) {
	h := hubtest.New(t)
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(h.AddAgent("pc7")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	logger := slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
	newRep := func() *report.Reporter {
		t.Helper()
		rep, err := report.New(report.Options{
			Config:   config.Report{URL: h.URL, TokenFile: tokFile, HeartbeatInterval: time.Hour, BatchSize: 7},
			StateDir: state, AssetID: "PC-7", Version: "test", Logger: logger,
			HostFacts: func(context.Context) (wire.HostFacts, error) {
				return wire.HostFacts{Hostname: "pc7", OS: "linux", HostID: "h-7"}, nil
			},
			// Small segments: acknowledged ones are deleted.
			SegmentSize: 2048, FlushTimeout: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	// Small files: the records to catch up span rotated files.
	al, err := audit.Open(state, audit.Options{MaxSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()

	// An old log, then a reporter newly configured: the past is sent
	// too, from the log's first record.
	old := writeAudit(t, al, 0, 5)
	rep := newRep()
	if s := rep.QueuedSeq(); s != 0 {
		t.Fatalf("new queue: QueuedSeq %d", s)
	}
	catchUp(rep, state, logger)
	waitCond(t, "the log's 5 records queued", func() bool { return rep.Queue().Len() == 5 })
	// Sent before the "crash" below (the queue keeps only the newest
	// position once they are acknowledged).
	rep.Start()
	waitCond(t, "the past at the hub", func() bool { return rep.Queue().Len() == 0 && hubEvents(t, h) == 5 })
	rep.Close()
	rep = newRep()
	// Records 6..40 written; only 6..15 reached the queue before the
	// "crash".
	recs := writeAudit(t, al, 5, 35)
	for _, r := range recs[:10] {
		if err := rep.HandleRecord(r.ev, r.seq, r.hash, r.prevHash); err != nil {
			t.Fatal(err)
		}
	}
	rep.Close() // never started: nothing sent
	if rotated, _ := filepath.Glob(filepath.Join(state, "audit-*.jsonl")); len(rotated) < 2 {
		t.Fatalf("test setup: %d rotated audit files", len(rotated))
	}

	rep = newRep()
	if s := rep.QueuedSeq(); s != recs[9].seq {
		t.Fatalf("QueuedSeq %d, want %d", s, recs[9].seq)
	}
	catchUp(rep, state, logger)
	waitCond(t, "35 records queued", func() bool { return rep.Queue().Len() == 35 })
	items, dropped, err := rep.Queue().Read(1000, 64<<20)
	if err != nil || dropped != 0 || len(items) != 35 {
		t.Fatalf("read %d items, %d dropped, %v", len(items), dropped, err)
	}
	for i, it := range items {
		var be wire.BatchEvent
		if err := json.Unmarshal(it.Data, &be); err != nil {
			t.Fatal(err)
		}
		r := recs[i]
		want, _ := json.Marshal(wire.NewRecord(r.ev))
		if be.Seq != r.seq || be.Hash != r.hash || be.PrevHash != r.prevHash || !bytes.Equal(be.Event, want) {
			t.Fatalf("item %d: seq %d hash %s prev %s event %s; want seq %d hash %s prev %s event %s",
				i, be.Seq, be.Hash, be.PrevHash, be.Event, r.seq, r.hash, r.prevHash, want)
		}
	}

	// The agent goes on: new records reach the reporter as usual.
	more := writeAudit(t, al, 40, 5)
	for _, r := range more {
		if err := rep.HandleRecord(r.ev, r.seq, r.hash, r.prevHash); err != nil {
			t.Fatal(err)
		}
	}
	rep.Start()
	waitCond(t, "everything acknowledged", func() bool { return rep.Queue().Len() == 0 && hubEvents(t, h) == 45 })
	rep.Close()

	// Every record from the log's first on, once, in order.
	rows, err := h.Store.DB().Query(`SELECT seq, hash FROM events WHERE agent = ? ORDER BY id`, "pc7")
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(old, recs...), more...)
	i := 0
	for rows.Next() {
		var seq uint64
		var hash string
		if err := rows.Scan(&seq, &hash); err != nil {
			t.Fatal(err)
		}
		if i >= len(want) || seq != want[i].seq || hash != want[i].hash {
			t.Fatalf("hub row %d: seq %d hash %s", i, seq, hash)
		}
		i++
	}
	rows.Close()
	if i != len(want) {
		t.Fatalf("hub has %d events, want %d", i, len(want))
	}
	if old[4].seq+1 != recs[0].seq {
		t.Fatalf("test setup: seqs %d, %d", old[4].seq, recs[0].seq)
	}
	// The hub's view of the chain.
	req, _ := http.NewRequest(http.MethodGet, h.URL+wire.PathAgents, nil)
	req.Header.Set("Authorization", "Bearer "+h.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Agents []struct {
			Name     string `json:"name"`
			Chain    string `json:"chain"`
			ChainSeq uint64 `json:"chain_seq"`
			Dropped  int64  `json:"dropped"`
		} `json:"agents"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if len(list.Agents) != 1 || list.Agents[0].Chain != "intact" || list.Agents[0].ChainSeq != more[4].seq || list.Agents[0].Dropped != 0 {
		t.Fatalf("hub agents: %+v", list.Agents)
	}

	// Everything acknowledged, old segments deleted: the next start
	// still knows where the queue ended, and catches up nothing.
	rep = newRep()
	defer rep.Close()
	if s := rep.QueuedSeq(); s != more[4].seq {
		t.Fatalf("after all acknowledged: QueuedSeq %d, want %d", s, more[4].seq)
	}
	catchUp(rep, state, logger)
	time.Sleep(10 * time.Millisecond)
	if n := rep.Queue().Len(); n != 0 {
		t.Fatalf("caught up %d records already sent", n)
	}
}

// hubEvents counts the events the hub stored.
func hubEvents(t *testing.T, h *hubtest.Hub) int {
	var n int
	if err := h.Store.DB().QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitCond polls cond for up to 10 s.
func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testLogWriter sends a logger's output to the test's log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// slowRecordSink is a RecordSink that waits for gate before its first
// record and remembers every record it was handed, in order.
type slowRecordSink struct {
	gate chan struct{}
	mu   sync.Mutex
	seqs []uint64
	raw  int
	lost int
}

func (s *slowRecordSink) Name() string             { return "slow" }
func (s *slowRecordSink) Handle(*wire.Event) error { return nil }
func (s *slowRecordSink) HandleRecord(ev *wire.Event, seq uint64, hash, prev string) error {
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seqs = append(s.seqs, seq)
	return nil
}
func (s *slowRecordSink) HandleRaw(seq uint64, hash, prev string, event json.RawMessage) error {
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seqs = append(s.seqs, seq)
	s.raw++
	return nil
}
func (s *slowRecordSink) Lost(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost += n
}

// TestRecordSinkCatchUpWhileRunning: a burst larger than the sink's queue
// is not dropped for the hub reporter: the records that found the queue
// full are read back from the audit log once the queue has drained, in
// order, each once, and records written during the read-back follow them.
func TestRecordSinkCatchUpWhileRunning(t *testing.T) {
	state := t.TempDir()
	al, err := audit.Open(state, audit.Options{MaxSize: 8192})
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	sink := &slowRecordSink{gate: make(chan struct{})}
	var logged []error
	var logMu sync.Mutex
	q := newQueuedSink(sink, 4, func() { t.Error("a record was dropped") },
		func(err error) { logMu.Lock(); logged = append(logged, err); logMu.Unlock() },
		func(seq uint64) ([]audit.Entry, error) { return audit.ReadAfter(state, seq) })
	offer := func(recs []auditWritten) {
		for _, r := range recs {
			q.offer(r.ev, chainPos{seq: r.seq, hash: r.hash, prevHash: r.prevHash})
		}
	}
	// 200 records into a queue of 4 while the sink is stuck.
	recs := writeAudit(t, al, 0, 200)
	offer(recs)
	close(sink.gate)
	// More while it catches up.
	more := writeAudit(t, al, 200, 50)
	offer(more)
	waitCond(t, "250 records handled", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.seqs) >= 250
	})
	q.close(5 * time.Second)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for i, s := range sink.seqs {
		if s != uint64(i+1) {
			t.Fatalf("record %d handed as seq %d (all: %v)", i, s, sink.seqs)
		}
	}
	if len(sink.seqs) != 250 || sink.lost != 0 || sink.raw == 0 {
		t.Fatalf("%d records, %d read back, %d lost", len(sink.seqs), sink.raw, sink.lost)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if len(logged) == 0 {
		t.Errorf("the full queue was not logged")
	}
}
