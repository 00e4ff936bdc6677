package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/wintest"
	"github.com/mamori-agent/mamori/wire"
)

// testHub is a minimal hub speaking the wire protocol: it stores each id
// once, in the order received, and can be told to fail.
type testHub struct {
	t     *testing.T
	srv   *httptest.Server
	token string

	mu         sync.Mutex
	ids        map[string]bool
	order      []string // messages of stored events, in order
	received   int      // events received, duplicates included
	dropped    int64
	heartbeats []wire.Heartbeat
	// fail, when set, answers a batch request instead of storing it
	// (status 0: store it); lose stores it and then drops the connection.
	fail    func(n int, b *wire.Batch) (status int, header http.Header)
	lose    func(n int) bool
	batches int
	offset  time.Duration
}

func newTestHub(t *testing.T) *testHub {
	h := &testHub{t: t, token: "agent-token-1", ids: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.PathEvents, h.events)
	mux.HandleFunc("POST "+wire.PathHeartbeat, h.heartbeat)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *testHub) auth(w http.ResponseWriter, r *http.Request) bool {
	h.mu.Lock()
	tok := h.token
	h.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+tok {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(wire.Problem{Title: "unauthorized", Status: 401})
		return false
	}
	return true
}

func (h *testHub) events(w http.ResponseWriter, r *http.Request) {
	if !h.auth(w, r) {
		return
	}
	var b wire.Batch
	if err := json.NewDecoder(io.LimitReader(r.Body, wire.MaxBatchBytes)).Decode(&b); err != nil || b.Schema != wire.SchemaVersion {
		http.Error(w, "bad batch", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	n := h.batches
	h.batches++
	fail, lose := h.fail, h.lose
	h.mu.Unlock()
	if fail != nil {
		if status, hdr := fail(n, &b); status != 0 {
			for k, v := range hdr {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			return
		}
	}
	res := wire.BatchResult{}
	h.mu.Lock()
	h.dropped += b.Dropped
	for _, e := range b.Events {
		h.received++
		if e.ID == "" || e.Hash == "" {
			h.t.Errorf("event without id or hash: %+v", e)
		}
		if h.ids[e.ID] {
			res.Duplicates++
			continue
		}
		h.ids[e.ID] = true
		var ev wire.Event
		json.Unmarshal(e.Event, &ev)
		h.order = append(h.order, ev.Message)
		res.Accepted++
	}
	res.HubTime = time.Now().Add(h.offset)
	h.mu.Unlock()
	if lose != nil && lose(n) {
		// Stored, and the answer never arrives.
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

func (h *testHub) heartbeat(w http.ResponseWriter, r *http.Request) {
	if !h.auth(w, r) {
		return
	}
	var hb wire.Heartbeat
	json.NewDecoder(r.Body).Decode(&hb)
	h.mu.Lock()
	h.heartbeats = append(h.heartbeats, hb)
	h.mu.Unlock()
	json.NewEncoder(w).Encode(wire.HeartbeatResult{HubTime: time.Now().Add(h.offset), PolicyVersion: 3})
}

func (h *testHub) stored() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.order...)
}

// writeToken writes a private token file holding tok: mode 0600, on
// Windows a DACL for SYSTEM, Administrators and this user
// (wintest.PrivateFile), in a directory whose cleanup works under Wine
// too (wintest.TempDir).
func writeToken(t *testing.T, tok string) string {
	t.Helper()
	p := filepath.Join(wintest.TempDir(t), "token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wintest.PrivateFile(t, p)
	return p
}

// fast are backoff parameters compressed for tests.
var fast = Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond, Slow: 20 * time.Millisecond, MaxRetryAfter: 30 * time.Millisecond}

func newTestReporter(t *testing.T, h *testHub, state string, mod func(*Options)) *Reporter {
	t.Helper()
	opts := Options{
		Config: config.Report{URL: h.srv.URL, TokenFile: writeToken(t, "agent-token-1"),
			HeartbeatInterval: time.Hour, BatchSize: 7, QueueLimit: 1_000_000},
		StateDir: state, AssetID: "PC-0042", Version: "test",
		HostFacts: func(context.Context) (wire.HostFacts, error) {
			return wire.HostFacts{Hostname: "pc42", OS: "linux", HostID: "h-1"}, nil
		},
		Inventory:    func() wire.Inventory { return wire.Inventory{USBDevices: 3} },
		Backoff:      fast,
		FlushTimeout: 500 * time.Millisecond,
	}
	if mod != nil {
		mod(&opts)
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// emit hands n events to r as the agent would, with chained hashes.
func emit(t *testing.T, r *Reporter, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		ev := &wire.Event{Time: time.Now(), Type: wire.TypeViolation, Source: wire.SourceUSB, Message: fmt.Sprintf("event %d", i)}
		if err := r.HandleRecord(ev, uint64(i+1), fmt.Sprintf("h%d", i+1), fmt.Sprintf("h%d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func wantEvents(n0, n int) string {
	var out []string
	for i := n0; i < n0+n; i++ {
		out = append(out, fmt.Sprintf("event %d", i))
	}
	return strings.Join(out, ",")
}

// TestSendRetries: 503 with Retry-After, 429 with an HTTP date, a reply
// lost after the hub stored the batch, 500: every event is stored once,
// in order.
func TestSendRetries(t *testing.T) {
	h := newTestHub(t)
	h.fail = func(n int, _ *wire.Batch) (int, http.Header) {
		switch n {
		case 0:
			return 503, http.Header{"Retry-After": {"1"}}
		case 1:
			return 429, http.Header{"Retry-After": {time.Now().Add(time.Second).UTC().Format(http.TimeFormat)}}
		case 3, 4:
			return 500, nil
		}
		return 0, nil
	}
	h.lose = func(n int) bool { return n == 2 || n == 6 }
	reg := prometheus.NewRegistry()
	r := newTestReporter(t, h, wintest.TempDir(t), func(o *Options) { o.Registerer = reg })
	r.Start()
	emit(t, r, 0, 40)
	waitFor(t, "40 events at the hub", func() bool { return len(h.stored()) == 40 && r.q.Len() == 0 })
	if got := strings.Join(h.stored(), ","); got != wantEvents(0, 40) {
		t.Errorf("stored %s", got)
	}
	h.mu.Lock()
	if h.received <= 40 {
		t.Errorf("received %d events: the lost replies caused no resend?", h.received)
	}
	h.mu.Unlock()
	for reason, min := range map[string]float64{"throttled": 2, "server": 2, "network": 1} {
		if v := testutil.ToFloat64(r.metrics.failures.WithLabelValues(reason)); v < min {
			t.Errorf("failures{%s} = %v, want >= %v", reason, v, min)
		}
	}
	if v := testutil.ToFloat64(r.metrics.lastSuccess); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success %v", v)
	}
	r.Close()
	if n, err := testutil.GatherAndCount(reg, "mamori_report_queue_events", "mamori_report_send_failures_total",
		"mamori_report_dropped_events_total", "mamori_report_last_success_timestamp_seconds", "mamori_clock_offset_seconds"); err != nil || n < 5 {
		t.Errorf("metrics: %d, %v", n, err)
	}
}

// TestUnauthorized: a wrong token keeps the events, retries slowly, says
// so in the metric; the right token then gets everything through.
func TestUnauthorized(t *testing.T) {
	h := newTestHub(t)
	h.token = "another"
	r := newTestReporter(t, h, wintest.TempDir(t), nil)
	r.Start()
	emit(t, r, 0, 10)
	// HandleRecord returns before the queue's group commit: wait for it.
	waitFor(t, "10 events queued", func() bool { return r.q.Len() == 10 })
	waitFor(t, "a 401", func() bool { return testutil.ToFloat64(r.metrics.failures.WithLabelValues("unauthorized")) >= 2 })
	if n := r.q.Len(); n != 10 {
		t.Errorf("queue %d after 401s, want the 10 kept", n)
	}
	h.mu.Lock()
	h.token = "agent-token-1"
	h.mu.Unlock()
	waitFor(t, "10 events at the hub", func() bool { return len(h.stored()) == 10 })
	r.Close()
}

// TestTokenRotated: the hub's token was rotated (the old one gets 401);
// IT writes the new one into token_file, and the running reporter takes
// it without a restart. A token file made unsafe meanwhile is not read.
func TestTokenRotated(t *testing.T) {
	h := newTestHub(t)
	r := newTestReporter(t, h, wintest.TempDir(t), nil)
	r.Start()
	emit(t, r, 0, 3)
	waitFor(t, "3 events at the hub", func() bool { return len(h.stored()) == 3 })
	h.mu.Lock()
	h.token = "agent-token-2"
	h.mu.Unlock()
	emit(t, r, 3, 4)
	waitFor(t, "a 401", func() bool { return testutil.ToFloat64(r.metrics.failures.WithLabelValues("unauthorized")) >= 1 })
	// Others may read and write the file now (mode 0666; on Windows a
	// DACL that gives Everyone full control): the new token in it is
	// not taken.
	tf := r.opts.Config.TokenFile
	wintest.OpenToEveryone(t, tf)
	if err := os.WriteFile(tf, []byte("agent-token-2\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(h.stored()); n != 3 {
		t.Fatalf("%d events at the hub with a token file others can write", n)
	}
	wintest.PrivateFile(t, tf)
	waitFor(t, "7 events at the hub", func() bool { return len(h.stored()) == 7 })
	r.Close()
}

// TestRefusedEvent: the hub refuses one event for good (400): the batch
// is split until that event is alone, it is dropped, and the drop is
// reported; everything else arrives.
func TestRefusedEvent(t *testing.T) {
	h := newTestHub(t)
	h.fail = func(_ int, b *wire.Batch) (int, http.Header) {
		for _, e := range b.Events {
			if strings.Contains(string(e.Event), `"event 13"`) {
				return 400, nil
			}
		}
		return 0, nil
	}
	r := newTestReporter(t, h, wintest.TempDir(t), nil)
	r.Start()
	emit(t, r, 0, 30)
	waitFor(t, "29 events and one drop", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.order) == 29 && h.dropped == 1
	})
	if got := strings.Join(h.stored(), ","); got != wantEvents(0, 13)+","+wantEvents(14, 16) {
		t.Errorf("stored %s", got)
	}
	r.Close()
}

// TestKilledAndRestarted: the agent stops (no flush possible: the hub is
// down, or stored a batch whose answer was lost) and starts again:
// nothing is lost, nothing stored twice.
func TestKilledAndRestarted(t *testing.T) {
	h := newTestHub(t)
	var down sync.Mutex
	isDown := true
	h.fail = func(n int, _ *wire.Batch) (int, http.Header) {
		down.Lock()
		defer down.Unlock()
		if isDown {
			return 503, nil
		}
		return 0, nil
	}
	// The first batch that gets through is stored, its answer lost.
	h.lose = func(int) bool {
		down.Lock()
		defer down.Unlock()
		return !isDown
	}
	state := wintest.TempDir(t)
	r := newTestReporter(t, h, state, func(o *Options) { o.FlushTimeout = 50 * time.Millisecond })
	r.Start()
	emit(t, r, 0, 100)
	waitFor(t, "some 503s", func() bool { return testutil.ToFloat64(r.metrics.failures.WithLabelValues("throttled")) >= 1 })
	down.Lock()
	isDown = false
	down.Unlock()
	waitFor(t, "a batch stored", func() bool { return len(h.stored()) > 0 })
	r.Close() // the reply was lost: nothing acknowledged
	if n := r.q.Len(); n != 100 {
		t.Logf("queue %d at stop", n)
	}
	h.mu.Lock()
	h.lose = nil
	h.mu.Unlock()
	r2 := newTestReporter(t, h, state, nil)
	r2.Start()
	emit(t, r2, 100, 10)
	waitFor(t, "110 events", func() bool { return len(h.stored()) == 110 && r2.q.Len() == 0 })
	if got := strings.Join(h.stored(), ","); got != wantEvents(0, 110) {
		t.Errorf("stored %s", got)
	}
	r2.Close()
}

// TestCrashRestart: a reporter whose queue is abandoned without Close
// (a crash) leaves everything for the next.
func TestCrashRestart(t *testing.T) {
	h := newTestHub(t)
	h.fail = func(int, *wire.Batch) (int, http.Header) { return 503, nil }
	state := wintest.TempDir(t)
	r := newTestReporter(t, h, state, nil)
	emit(t, r, 0, 25)
	r.mu.Lock()
	r.last.Wait() // on disk, then "killed": no Close, never started
	r.mu.Unlock()
	r.q.crash() // the crashed process's queue is gone
	h.fail = nil
	r2 := newTestReporter(t, h, state, nil)
	r2.Start()
	waitFor(t, "25 events", func() bool { return len(h.stored()) == 25 })
	r2.Close()
	if got := strings.Join(h.stored(), ","); got != wantEvents(0, 25) {
		t.Errorf("stored %s", got)
	}
}

// TestDropsReported: the queue over its limit while the hub is down:
// the hub is told how many were dropped.
func TestDropsReported(t *testing.T) {
	h := newTestHub(t)
	var mu sync.Mutex
	up := false
	h.fail = func(int, *wire.Batch) (int, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			return 503, nil
		}
		return 0, nil
	}
	r := newTestReporter(t, h, wintest.TempDir(t), func(o *Options) { o.Config.QueueLimit = 10 })
	r.Start()
	emit(t, r, 0, 30)
	r.mu.Lock()
	r.last.Wait()
	r.mu.Unlock()
	r.Lost(2) // two more never reached the sink
	mu.Lock()
	up = true
	mu.Unlock()
	// Every event is either stored or counted as dropped, never both:
	// a batch on its way when its events were dropped, and stored, is
	// not counted.
	waitFor(t, "32 events stored or dropped", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return int64(len(h.order))+h.dropped == 32 && r.q.Len() == 0
	})
	got := h.stored()
	if len(got) < 10 || strings.Join(got[len(got)-10:], ",") != wantEvents(20, 10) {
		t.Errorf("stored %s", got)
	}
	for i := 1; i < len(got); i++ {
		var a, b int
		fmt.Sscanf(got[i-1], "event %d", &a)
		fmt.Sscanf(got[i], "event %d", &b)
		if b <= a {
			t.Errorf("stored out of order: %v", got)
		}
	}
	if v := testutil.ToFloat64(r.metrics.dropped); v != 22 {
		t.Errorf("dropped metric %v", v)
	}
	r.Close()
}

// TestHeartbeatAndStop: heartbeats carry the host, the inventory and the
// queue; Close sends Stopping; the hub's clock is kept.
func TestHeartbeatAndStop(t *testing.T) {
	h := newTestHub(t)
	h.offset = time.Hour
	r := newTestReporter(t, h, wintest.TempDir(t), func(o *Options) { o.Config.HeartbeatInterval = 20 * time.Millisecond })
	r.Start()
	waitFor(t, "3 heartbeats", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.heartbeats) >= 3 })
	emit(t, r, 0, 1) // agent_stopped, say
	r.Close()
	h.mu.Lock()
	hbs := h.heartbeats
	h.mu.Unlock()
	last := hbs[len(hbs)-1]
	if !last.Stopping || hbs[0].Stopping || last.Host.Hostname != "pc42" || last.Inventory.USBDevices != 3 || last.AssetID != "PC-0042" {
		t.Errorf("heartbeats %+v", hbs)
	}
	if len(h.stored()) != 1 {
		t.Errorf("the last event was not flushed at Close")
	}
	off, ok := r.ClockOffset()
	if !ok || off < time.Hour-time.Minute || off > time.Hour+time.Minute {
		t.Errorf("clock offset %v, %v; want about 1h", off, ok)
	}
	if r.policyVer.Load() != 3 {
		t.Errorf("policy version %d", r.policyVer.Load())
	}
}

func TestHostFacts(t *testing.T) {
	f, err := hostFacts(context.Background())
	if f.Hostname == "" || f.OS != runtime.GOOS {
		t.Errorf("host facts %+v, %v", f, err)
	}
}

func TestNewRefuses(t *testing.T) {
	state := wintest.TempDir(t)
	tok := writeToken(t, "x")
	if _, err := New(Options{Config: config.Report{URL: "http://10.1.2.3:8080", TokenFile: tok}, StateDir: state}); err == nil ||
		!strings.Contains(err.Error(), "loopback") {
		t.Errorf("http to a LAN host: %v", err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	os.Chmod(tok, 0o644)
	if _, err := New(Options{Config: config.Report{URL: "https://hub", TokenFile: tok}, StateDir: state}); err == nil ||
		!strings.Contains(err.Error(), "readable by group or others") {
		t.Errorf("token readable by others: %v", err)
	}
	os.Chmod(tok, 0o622)
	if _, err := New(Options{Config: config.Report{URL: "https://hub", TokenFile: tok}, StateDir: state}); err == nil ||
		!strings.Contains(err.Error(), "writable") {
		t.Errorf("token writable by others: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, "x": 0, "-1": 0,
		"Fri, 01 May 2026 12:00:30 GMT": 30 * time.Second, "Fri, 01 May 2026 11:00:00 GMT": 0,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
	b := Backoff{}.withDefaults()
	for i := range 100 {
		if d := b.delay(0); d < 0 || d >= time.Second {
			t.Fatalf("first delay %v", d)
		}
		if d := b.delay(i); d >= 30*time.Second {
			t.Fatalf("delay(%d) = %v over the cap", i, d)
		}
	}
}

// crash abandons q as a killed process would: no state saved.
func (q *Queue) crash() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	<-q.flushDone
	q.f.Close()
	if q.rd.f != nil {
		q.rd.f.Close()
	}
}

// TestLostWhileIdle: events lost on the way to an idle queue (nothing
// else to send) are reported at once, not with the next event.
func TestLostWhileIdle(t *testing.T) {
	h := newTestHub(t)
	r := newTestReporter(t, h, wintest.TempDir(t), nil)
	r.Start()
	emit(t, r, 0, 3)
	waitFor(t, "3 events stored", func() bool { return len(h.stored()) == 3 && r.q.Len() == 0 })
	time.Sleep(50 * time.Millisecond) // the sender waits for the queue again
	r.Lost(4)
	waitFor(t, "4 events reported dropped", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.dropped == 4
	})
	r.Close()
}
