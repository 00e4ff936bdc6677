package report

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/wintest"
	"github.com/mamori-agent/mamori/wire"
)

// logBuffer is a slog destination safe for concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines logged so far.
func (l *logBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.b.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// count returns how many of lines hold every one of parts.
func count(lines []string, parts ...string) int {
	n := 0
	for _, l := range lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			n++
		}
	}
	return n
}

// countingHub answers every request with status (200 with a valid answer
// when status is 0) and counts them by path.
type countingHub struct {
	srv    *httptest.Server
	mu     sync.Mutex
	status int
	n      map[string]int
}

func newCountingHub(t *testing.T, status int) *countingHub {
	h := &countingHub{status: status, n: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.n[r.URL.Path]++
		status := h.status
		h.mu.Unlock()
		if status != 0 {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(wire.Problem{Title: http.StatusText(status), Status: status})
			return
		}
		switch r.URL.Path {
		case wire.PathEvents:
			json.NewEncoder(w).Encode(wire.BatchResult{HubTime: time.Now()})
		case wire.PathHeartbeat:
			json.NewEncoder(w).Encode(wire.HeartbeatResult{HubTime: time.Now()})
		default:
			w.WriteHeader(http.StatusNotModified)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *countingHub) counts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.n {
		out[k] = v
	}
	return out
}

// stopReporter makes a reporter for h with the default backoff (the
// sender waits Backoff.Slow, 5 min, after a 401 or 404), logging to the
// returned buffer.
func stopReporter(t *testing.T, h *countingHub, mod func(*Options)) (*Reporter, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opts := Options{
		Config: config.Report{URL: h.srv.URL, TokenFile: writeToken(t, "agent-token-1"),
			HeartbeatInterval: time.Hour, BatchSize: 7},
		StateDir: wintest.TempDir(t), AssetID: "PC-0042", Version: "test",
		HostFacts: func(context.Context) (wire.HostFacts, error) { return wire.HostFacts{Hostname: "pc42"}, nil },
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		OnPolicy:  func(*HubPolicy, error) {},
	}
	if mod != nil {
		mod(&opts)
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, logs
}

// TestStopDoesNotFlood: the hub refuses the token (401, 403) or does not
// know the URL (404, 405). Running, the sender waits Backoff.Slow; at
// stop (the final flush of agent_stopped, the last heartbeat) it must not
// loop without waiting either: at most two requests of each kind during
// Close, which ends within its bounded time, and at most one line logged
// at warning or error per reason.
func TestStopDoesNotFlood(t *testing.T) {
	for _, status := range []int{401, 403, 404, 405} {
		for _, early := range []bool{false, true} {
			name := http.StatusText(status)
			if early {
				name += "/stopped at once"
			}
			t.Run(name, func(t *testing.T) {
				h := newCountingHub(t, status)
				r, logs := stopReporter(t, h, func(o *Options) { o.FlushTimeout = time.Second })
				r.Start()
				emit(t, r, 0, 5)
				if !early {
					waitFor(t, "the first refused batch, heartbeat and policy pull", func() bool {
						n := h.counts()
						return n[wire.PathEvents] >= 1 && n[wire.PathHeartbeat] >= 1 && n[wire.PathPolicy] >= 1
					})
					time.Sleep(100 * time.Millisecond) // their lines logged
				}
				before := h.counts()
				logged := len(logs.lines())
				emit(t, r, 5, 1) // agent_stopped
				start := time.Now()
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
				took := time.Since(start)
				after := h.counts()
				for _, p := range []string{wire.PathEvents, wire.PathHeartbeat} {
					if n := after[p] - before[p]; n > 2 {
						t.Errorf("%s: %d requests during Close, want at most 2", p, n)
					}
				}
				if after[wire.PathHeartbeat] == 0 {
					t.Errorf("no heartbeat at all")
				}
				if took > 3*time.Second {
					t.Errorf("Close took %v", took)
				}
				if n := r.q.Len(); n != 6 {
					t.Errorf("queue %d after the stop, want the 6 events kept", n)
				}
				// One line says why the stop did not reach the hub. A
				// reporter stopped at once also logs its first failures,
				// before the stop.
				stopLines := logs.lines()[logged:]
				if n := count(stopLines, "stopped without reaching the hub", "queued=6", "cause="); n != 1 {
					t.Errorf("%d lines saying the stop did not reach the hub, want 1", n)
				}
				if max := map[bool]int{false: 1, true: 5}[early]; len(stopLines) > max {
					t.Errorf("%d lines logged during Close, want at most %d; the first:\n%s", len(stopLines), max, strings.Join(stopLines[:min(len(stopLines), 6)], "\n"))
				}
				t.Logf("requests during Close: %d batches, %d heartbeats; Close took %v; logged:\n%s",
					after[wire.PathEvents]-before[wire.PathEvents], after[wire.PathHeartbeat]-before[wire.PathHeartbeat],
					took.Round(time.Millisecond), strings.Join(stopLines, "\n"))
			})
		}
	}
}

// TestStopBoundedOnServerErrors: a hub failing (500) or busy (503
// without Retry-After) at stop is tried a few times with waits, not in a
// tight loop.
func TestStopBoundedOnServerErrors(t *testing.T) {
	for _, status := range []int{500, 503} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			h := newCountingHub(t, status)
			r, _ := stopReporter(t, h, func(o *Options) { o.FlushTimeout = time.Second })
			r.Start()
			emit(t, r, 0, 5)
			waitFor(t, "the first failed batch", func() bool { return h.counts()[wire.PathEvents] >= 1 })
			before := h.counts()
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if n := h.counts()[wire.PathEvents] - before[wire.PathEvents]; n > 2 {
				t.Errorf("%d batch requests during Close, want at most 2", n)
			}
		})
	}
}

// TestStopFlushes: at stop, what is queued is still sent when the hub
// takes it, even after a failure just before the stop.
func TestStopFlushes(t *testing.T) {
	h := newCountingHub(t, 503)
	r, _ := stopReporter(t, h, func(o *Options) { o.FlushTimeout = 2 * time.Second })
	r.Start()
	emit(t, r, 0, 5)
	waitFor(t, "a 503", func() bool { return h.counts()[wire.PathEvents] >= 1 })
	h.mu.Lock()
	h.status = 0
	h.mu.Unlock()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := r.q.Len(); n != 0 {
		t.Errorf("%d events left queued after a stop with the hub up", n)
	}
}

// TestCheckFilesAgreesWithNew: what CheckFiles (run, config check and
// service install) refuses, New refuses with the same words, and the
// reverse: an agent never starts with its reporting off because of its
// token or key file.
func TestCheckFilesAgreesWithNew(t *testing.T) {
	dir := wintest.TempDir(t)
	// file writes a file with mode; 0600 is a private file on Windows
	// too (wintest.PrivateFile: a DACL), the other modes are Unix cases.
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if mode == 0o600 {
			wintest.PrivateFile(t, p)
		} else if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good", "tok-1\n", 0o600)
	type fileCase struct {
		name  string
		c     config.Report
		parts []string // nil: accepted
	}
	cases := []fileCase{
		{"good", config.Report{TokenFile: good}, nil},
		{"empty", config.Report{TokenFile: file("empty", "", 0o600)}, []string{"report.token_file: ", "is empty", "mamori-hub agent add NAME > ", "chmod 600"}},
		{"two lines", config.Report{TokenFile: file("two", "a\nb\n", 0o600)}, []string{"alone on one line"}},
		{"missing", config.Report{TokenFile: filepath.Join(dir, "none")}, []string{"report.token_file: " + filepath.Join(dir, "none") + " does not exist; for a new token run `mamori-hub agent add NAME > "}},
		{"not set", config.Report{}, []string{"report.token_file is not set"}},
	}
	if runtime.GOOS != "windows" {
		cases = append(cases,
			fileCase{"0644", config.Report{TokenFile: file("readable", "tok-1\n", 0o644)}, []string{"report.token_file: unsafe: ", "readable by group or others", "chmod 600 " + filepath.Join(dir, "readable")}},
			fileCase{"key 0640", config.Report{TokenFile: good, CertFile: file("cert", "x", 0o644), KeyFile: file("key", "x", 0o640)}, []string{"report.key_file: unsafe: ", "chmod 600 " + filepath.Join(dir, "key")}})
	}
	for _, c := range cases {
		c.c.URL = "https://hub.example"
		checkErr := CheckFiles(c.c)
		r, newErr := New(Options{Config: c.c, StateDir: wintest.TempDir(t)})
		if r != nil {
			r.q.Close() // not started: nothing to send; Windows removes no open file
		}
		if c.parts == nil {
			if checkErr != nil || newErr != nil {
				t.Errorf("%s: CheckFiles %v, New %v; want both to accept", c.name, checkErr, newErr)
			}
			continue
		}
		if checkErr == nil || newErr == nil {
			t.Errorf("%s: CheckFiles %v, New %v; want both to refuse", c.name, checkErr, newErr)
			continue
		}
		if checkErr.Error() != newErr.Error() {
			t.Errorf("%s: CheckFiles and New disagree:\n%v\n%v", c.name, checkErr, newErr)
		}
		for _, p := range c.parts {
			if !strings.Contains(checkErr.Error(), p) {
				t.Errorf("%s: error lacks %q:\n%v", c.name, p, checkErr)
			}
		}
	}
}
