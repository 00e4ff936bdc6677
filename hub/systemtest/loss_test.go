package systemtest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/report"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/hub/store/sqlstore"
	"github.com/mamori-agent/mamori/wire"
)

// lossSetup starts a hub process with agent pc-1 and a staff token.
func lossSetup(t *testing.T) (h *hubProc, token, staff string) {
	h = newHubProc(t)
	token = h.cli("agent", "add", "pc-1")
	staff = h.cli("admin", "token")
	h.start()
	return h, token, staff
}

// waitSome starts the agent and waits until the hub has some of its
// events (30): the agent is sending, and (the proxy holding answers)
// has more queued.
func waitSome(t *testing.T, st *sqlstore.Store, a *agentProc) {
	t.Helper()
	a.startNoWait()
	deadline := time.Now().Add(30 * time.Second)
	for count(t, st, "pc-1") < 30 {
		if time.Now().After(deadline) {
			t.Fatal("no event reached the hub")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// midway checks, after a kill, that the hub had fewer events than the
// agent had recorded: the kill came in the middle of sending.
func midway(t *testing.T, st *sqlstore.Store, a *agentProc, what string) {
	t.Helper()
	n, all := count(t, st, "pc-1"), len(a.records())
	if n >= all {
		t.Fatalf("the hub had all %d events when %s: not in the middle of sending", all, what)
	}
	t.Logf("%s with %d of %d recorded events at the hub", what, n, all)
}

// TestAgentKilledWhileSending: mamori run is killed with SIGKILL while
// it sends its queue (answers held 300 ms by the proxy, batches of 5, so
// that a backlog builds);
// restarted, it sends the rest: every audit record is at the hub once,
// in order.
func TestAgentKilledWhileSending(t *testing.T) {
	h, token, staff := lossSetup(t)
	p := newProxy(t, h.url())
	p.delay.Store(int64(300 * time.Millisecond))
	a := newAgentProc(t, p.srv.URL, token, 300, 5)
	st := h.store()
	waitSome(t, st, a)
	a.kill()
	midway(t, st, a, "the agent was killed")
	p.delay.Store(0)
	a.start()
	waitDelivered(t, a, st, "pc-1", time.Minute)
	a.term()
	waitDelivered(t, a, st, "pc-1", 30*time.Second)
	checkExactlyOnce(t, h, a, st, "pc-1", staff)
}

// TestHubKilledWhileIngesting: mamori-hub serve is killed with SIGKILL
// while the agent sends its backlog to it (built while a proxy held the
// answers, then sent at full speed), and started again on the same database a
// moment later: the agent's retries bring every record once, in order.
func TestHubKilledWhileIngesting(t *testing.T) {
	h, token, staff := lossSetup(t)
	p := newProxy(t, h.url())
	p.delay.Store(int64(300 * time.Millisecond))
	a := newAgentProc(t, p.srv.URL, token, 300, 5)
	st := h.store()
	waitSome(t, st, a)
	// The backlog goes at full speed; the hub is killed in the middle.
	p.delay.Store(0)
	time.Sleep(30 * time.Millisecond)
	h.kill()
	midway(t, st, a, "the hub was killed")
	time.Sleep(500 * time.Millisecond)
	h.start()
	waitDelivered(t, a, st, "pc-1", time.Minute)
	a.term()
	waitDelivered(t, a, st, "pc-1", 30*time.Second)
	checkExactlyOnce(t, h, a, st, "pc-1", staff)
}

// TestReplyLost: the hub stores batches whose answers never reach the
// agent (the proxy closes the connection instead): the agent sends them
// again and the hub keeps each event once.
func TestReplyLost(t *testing.T) {
	h, token, staff := lossSetup(t)
	p := newProxy(t, h.url())
	p.drop.Store(3)
	a := newAgentProc(t, p.srv.URL, token, 300, 50)
	a.start()
	st := h.store()
	waitDelivered(t, a, st, "pc-1", time.Minute)
	a.term()
	waitDelivered(t, a, st, "pc-1", 30*time.Second)
	if p.dropped.Load() != 3 {
		t.Fatalf("%d answers lost, want 3", p.dropped.Load())
	}
	checkExactlyOnce(t, h, a, st, "pc-1", staff)
}

// TestHubDownWhileEventsQueue: the hub is down while 10,000 events queue
// up at the agent's sink (report.Reporter, the agent's durable queue and
// sender, on a state directory, driven with chained records: the real
// binary records some 50 a second, one fsync each, too slow for CI), and
// the agent restarts (the reporter closed and opened again on the same
// state directory) before the hub (the real binary) comes up: every event
// arrives once, in order.
func TestHubDownWhileEventsQueue(t *testing.T) {
	h := newHubProc(t)
	token := h.cli("agent", "add", "pc-1")
	staff := h.cli("admin", "token")
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func() *report.Reporter {
		rep, err := report.New(report.Options{
			Config:    config.Report{URL: h.url(), TokenFile: tokFile, HeartbeatInterval: time.Hour, BatchSize: agentBatch},
			StateDir:  dir,
			HostFacts: func(context.Context) (wire.HostFacts, error) { return wire.HostFacts{Hostname: "pc-1"}, nil },
			Backoff:   report.Backoff{Base: 200 * time.Millisecond, Max: time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		rep.Start()
		return rep
	}
	var (
		recs []auditRecord
		prev string
	)
	hand := func(rep *report.Reporter, n int) {
		for range n {
			seq := uint64(len(recs) + 1)
			var ev wire.Event
			if err := json.Unmarshal(eventJSON(seq, time.Now()), &ev); err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(wire.NewRecord(&ev))
			hash := wire.RecordHash(seq, prev, raw)
			if err := rep.HandleRecord(&ev, seq, hash, prev); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, auditRecord{Seq: seq, Hash: hash, Type: ev.Type})
			prev = hash
		}
	}
	rep := open()
	hand(rep, 6000)
	rep.Close() // the agent stops: the hub is down, all stays queued
	rep = open()
	hand(rep, 4000)
	for i := 0; rep.Queue().Len() != 10_000; i++ {
		if i > 500 {
			t.Fatalf("%d events queued, want 10000", rep.Queue().Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	h.start()
	st := h.store()
	deadline := time.Now().Add(time.Minute)
	for count(t, st, "pc-1") < len(recs) {
		if time.Now().After(deadline) {
			t.Fatalf("the hub has %d of %d events", count(t, st, "pc-1"), len(recs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("10,000 events queued across a restart while the hub was down; all stored %v after it came up",
		time.Since(start).Round(time.Millisecond))
	rep.Close()
	checkStored(t, h, st, recs, "pc-1", staff)
}
