package svc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestProgramStartStop: Start returns at once while Run runs; Stop cancels
// Run's context, waits for it and returns what it returned.
func TestProgramStartStop(t *testing.T) {
	for _, want := range []error{nil, errors.New("audit log not closed")} {
		var cancelled bool
		p := &Program{Run: func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(50 * time.Millisecond) // records agent_stopped
			cancelled = true
			return want
		}, Exit: func(code int) { t.Errorf("Exit(%d) after a Stop", code) }}
		start := time.Now()
		if err := p.Start(nil); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("Start blocked for %v", d)
		}
		if err := p.Start(nil); err == nil {
			t.Error("a second Start must fail")
		}
		if err := p.Stop(nil); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("Stop = %v, want %v", err, want)
		}
		if !cancelled {
			t.Error("Stop returned before Run did")
		}
	}
	if err := (&Program{}).Stop(nil); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
	if err := (&Program{}).Start(nil); err == nil {
		t.Error("Start without Run must fail")
	}
}

// TestProgramStopTimeout: a Run that does not return within StopTimeout
// makes Stop fail (the service manager then sees an error) instead of
// hanging.
func TestProgramStopTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p := &Program{Run: func(ctx context.Context) error { <-release; return nil }, StopTimeout: 100 * time.Millisecond,
		Exit: func(code int) {}}
	p.Start(nil)
	start := time.Now()
	err := p.Stop(nil)
	if err == nil || !strings.Contains(err.Error(), "did not stop within 100ms") {
		t.Errorf("Stop = %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("Stop took %v, want about 100ms", d)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProgramEndsByItself: when Run returns without a Stop (the agent
// could not start, or failed), the process exits with ExitCode (1 when
// unset) after logging why, so that the service manager restarts it.
func TestProgramEndsByItself(t *testing.T) {
	for _, c := range []struct {
		runErr error
		code   int
		want   int
		log    string
	}{
		{errors.New("state dir: unsafe"), 2, 2, "state dir: unsafe"},
		{nil, 0, 1, "returned without being asked to stop"},
	} {
		var buf syncBuffer
		exited := make(chan int, 1)
		p := &Program{Run: func(context.Context) error { return c.runErr }, ExitCode: c.code,
			Logger: slog.New(slog.NewTextHandler(&buf, nil)), Exit: func(code int) { exited <- code }}
		p.Start(nil)
		select {
		case code := <-exited:
			if code != c.want {
				t.Errorf("exit %d, want %d", code, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run ended and nothing exited")
		}
		if s := buf.String(); !strings.Contains(s, "level=ERROR") || !strings.Contains(s, c.log) || !strings.Contains(s, "exit_status=") {
			t.Errorf("log: %s", s)
		}
		// A Stop after that returns Run's error at once.
		if err := p.Stop(nil); !errors.Is(err, c.runErr) && (c.runErr != nil || err != nil) {
			t.Errorf("Stop after Run ended: %v", err)
		}
	}
}

// isClosed reports whether ch is closed within d.
func isClosed(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// TestProgramStarted: a program that reports when it is ready has started
// when Run calls Ready, however long that takes, and not before; Ready
// may be called again, and before Started. One that does not report it
// has started once Run has run for Settle; one whose Run ends before
// never has.
func TestProgramStarted(t *testing.T) {
	ready := make(chan struct{})
	p := &Program{ReportsReady: true, Settle: 10 * time.Millisecond, Exit: func(int) {}}
	p.Run = func(ctx context.Context) error {
		<-ready // the first scan
		p.Ready()
		p.Ready()
		<-ctx.Done()
		return nil
	}
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	if isClosed(p.Started(), 100*time.Millisecond) {
		t.Fatal("started before Run called Ready (past Settle: Settle is not for a program that reports it)")
	}
	close(ready)
	if !isClosed(p.Started(), 5*time.Second) {
		t.Fatal("not started after Ready")
	}
	if err := p.Stop(nil); err != nil {
		t.Fatal(err)
	}

	early := &Program{ReportsReady: true, Run: func(ctx context.Context) error { <-ctx.Done(); return nil }}
	early.Ready() // before Start and Started
	if !isClosed(early.Started(), time.Second) {
		t.Error("Ready before Started: the channel is not closed")
	}

	runs := &Program{Settle: 50 * time.Millisecond, Exit: func(int) {}, Run: func(ctx context.Context) error { <-ctx.Done(); return nil }}
	start := time.Now()
	runs.Start(nil)
	if !isClosed(runs.Started(), 5*time.Second) {
		t.Fatal("a Run that runs on has not started after Settle")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("started after %v, before Settle", d)
	}
	runs.Stop(nil)

	exited := make(chan int, 1)
	fails := &Program{Settle: 50 * time.Millisecond, Exit: func(c int) { exited <- c }, Run: func(context.Context) error { return errors.New("config refused") }}
	fails.Start(nil)
	<-exited
	if isClosed(fails.Started(), 200*time.Millisecond) {
		t.Error("a Run that ended before Settle counts as started")
	}
}
