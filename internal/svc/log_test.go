package svc

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// lines records what a handler hands to the system log, by severity.
type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) add(sev string, v ...any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, sev+" "+fmt.Sprint(v...))
	return nil
}
func (l *lines) Error(v ...any) error   { return l.add("ERR", v...) }
func (l *lines) Warning(v ...any) error { return l.add("WARNING", v...) }
func (l *lines) Info(v ...any) error    { return l.add("INFO", v...) }

// TestLogHandler: one line per record, at the record's severity, without
// the time (the system log stamps it), the attributes of With and
// WithGroup kept, levels below the option dropped.
func TestLogHandler(t *testing.T) {
	var l lines
	log := slog.New(NewLogHandler(&l, LogOptions{Level: slog.LevelInfo}))
	log.Debug("not shown")
	log.Info("mamori running", "metrics", "http://127.0.0.1:9868/metrics")
	log.With("component", "metrics").Warn("listen failed", "err", "address in use")
	log.WithGroup("dev").Error("violation", "name", "SanDisk\nUltra")
	want := []string{
		`INFO level=INFO msg="mamori running" metrics=http://127.0.0.1:9868/metrics`,
		`WARNING level=WARN msg="listen failed" component=metrics err="address in use"`,
		`ERR level=ERROR msg=violation dev.name="SanDisk\nUltra"`,
	}
	if strings.Join(l.got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(l.got, "\n"), strings.Join(want, "\n"))
	}

	var j lines
	slog.New(NewLogHandler(&j, LogOptions{JSON: true})).Info("serving", "url", "http://127.0.0.1:8443")
	var m map[string]any
	if len(j.got) != 1 || json.Unmarshal([]byte(strings.TrimPrefix(j.got[0], "INFO ")), &m) != nil || m["url"] != "http://127.0.0.1:8443" || m["time"] != nil {
		t.Errorf("JSON: %q", j.got)
	}

	// Concurrent records stay whole (run with -race).
	var c lines
	cl := slog.New(NewLogHandler(&c, LogOptions{}))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				cl.With("g", i).Info("rec", "k", k)
			}
		}()
	}
	wg.Wait()
	for _, g := range c.got {
		if !strings.HasPrefix(g, "INFO level=INFO msg=rec g=") || strings.Count(g, "level=") != 1 {
			t.Fatalf("a record was mixed up: %q", g)
		}
	}
	if len(c.got) != 400 {
		t.Errorf("%d records, want 400", len(c.got))
	}
}
