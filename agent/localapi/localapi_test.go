package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve starts a server on a socket in a fresh directory and closes it
// when the test ends.
func serve(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Path == "" {
		opts.Path = testPath(t, "agent")
	}
	if opts.Agent == "" {
		opts.Agent = "mamori test"
	}
	s, err := Listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStatus(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := serve(t, Options{Status: func() (*Status, error) {
		return &Status{Time: now, Agent: AgentStatus{Version: "1.2", Language: "ja"},
			USB: []USBStatus{{Path: "1-2", VendorID: "0781", ProductID: "5583", Name: "SanDisk Ultra Fit", Verdict: VerdictUnapproved}}}, nil
	}})
	c := dial(t, s.Path())
	if c.Hello.Role != RoleAdmin || c.Hello.Agent != "mamori test" || c.Hello.Protocol != ProtocolVersion {
		t.Fatalf("hello %+v", c.Hello)
	}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Time.Equal(now) || len(st.USB) != 1 || st.USB[0].Name != "SanDisk Ultra Fit" || st.Notifiers == nil {
		t.Fatalf("status %+v", st)
	}
	// The connection is done after a status.
	if _, err := c.read(); err == nil {
		t.Error("connection still open after the status")
	}
}

func TestStatusError(t *testing.T) {
	s := serve(t, Options{Status: func() (*Status, error) { return nil, errors.New("agent stopping") }})
	_, err := dial(t, s.Path()).Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "agent stopping") {
		t.Fatalf("err %v", err)
	}
}

func TestWatch(t *testing.T) {
	type ack struct {
		uid     int
		id, err string
	}
	acks := make(chan ack, 10)
	s := serve(t, Options{OnShown: func(p Peer, id, errText string) { acks <- ack{p.UID, id, errText} }, PingInterval: 20 * time.Millisecond})
	c := dial(t, s.Path())
	got := make(chan *Warning, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(ctx, time.Second, func(w *Warning) error {
			got <- w
			if w.ID == "2" {
				return errors.New("no notification service")
			}
			return nil
		})
	}()
	waitFor(t, "watcher", func() bool { return len(s.Watchers()) == 1 })
	if p := s.Watchers()[0]; p.UID != selfUID(t) || p.PID != os.Getpid() {
		t.Errorf("watcher peer %+v", p)
	}
	for _, id := range []string{"1", "2"} {
		w := &Warning{ID: id, Kind: "usb_storage_unapproved", Texts: []Text{{Lang: "ja", Title: "許可されていない USB 記憶媒体"}, {Lang: "en"}}}
		if to := s.Broadcast(w); len(to) != 1 {
			t.Fatalf("broadcast reached %d", len(to))
		}
		select {
		case g := <-got:
			if g.ID != id || g.Texts[0].Title != "許可されていない USB 記憶媒体" {
				t.Fatalf("got %+v", g)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no warning")
		}
		select {
		case a := <-acks:
			want := ack{selfUID(t), id, ""}
			if id == "2" {
				want.err = "no notification service"
			}
			if a != want {
				t.Fatalf("ack %+v, want %+v", a, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no ack")
		}
	}
	// Pings keep an idle watcher alive past its idle bound.
	time.Sleep(1500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("watch ended while pinged: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch after cancel: %v", err)
	}
	waitFor(t, "watcher gone", func() bool { return len(s.Watchers()) == 0 })
}

// TestAgentGoes: a watcher learns when the agent closes.
func TestAgentGoes(t *testing.T) {
	s := serve(t, Options{})
	c := dial(t, s.Path())
	done := make(chan error, 1)
	go func() { done <- c.Watch(context.Background(), time.Minute, func(*Warning) error { return nil }) }()
	waitFor(t, "watcher", func() bool { return len(s.Watchers()) == 1 })
	s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("watch returned nil when the agent went")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not notice the agent going")
	}
	if err := served(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
}

// TestSlowWatcher: a watcher that does not read is dropped once its
// queue is full; Broadcast never waits for it, and others keep getting
// warnings.
func TestSlowWatcher(t *testing.T) {
	s := serve(t, Options{QueueLen: 4})
	// The slow one: asks to watch, then never reads.
	slow := rawDial(t, s.Path())
	bufio.NewReader(slow).ReadString('\n')
	slow.Write([]byte(`{"type":"watch","protocol":1}` + "\n"))
	waitFor(t, "slow watcher", func() bool { return len(s.Watchers()) == 1 })
	fast := dial(t, s.Path())
	n := 0
	var mu sync.Mutex
	go fast.Watch(context.Background(), time.Minute, func(*Warning) error { mu.Lock(); n++; mu.Unlock(); return nil })
	waitFor(t, "fast watcher", func() bool { return len(s.Watchers()) == 2 })
	big := strings.Repeat("x", 64<<10) // fills the socket buffer quickly
	const total = 100
	var longest time.Duration
	for i := range total {
		start := time.Now()
		s.Broadcast(&Warning{ID: string(rune('a' + i%26)), Texts: []Text{{Message: big}}})
		longest = max(longest, time.Since(start))
		// The fast one keeps up.
		waitFor(t, "fast watcher", func() bool { mu.Lock(); defer mu.Unlock(); return n == i+1 })
	}
	if longest > time.Second {
		t.Fatalf("Broadcast waited %v", longest)
	}
	waitFor(t, "slow watcher dropped", func() bool { return len(s.Watchers()) == 1 })
}

func TestBadRequests(t *testing.T) {
	s := serve(t, Options{})
	for _, tt := range []struct{ send, want string }{
		{`{"type":"status","protocol":2}`, "protocol 2 not spoken: this agent speaks protocol 1"},
		{`{"type":"status"}`, "protocol 0 not spoken"},
		{`{"type":"control","protocol":1}`, `unknown request "control"`},
		{`not json`, "request is not a JSON message"},
		{strings.Repeat("x", MaxRequestLine+10), "request: bufio.Scanner: token too long"},
		{`{"type":"status","protocol":1}`, "status not served"},
	} {
		c := rawDial(t, s.Path())
		r := bufio.NewReader(c)
		hello, _ := r.ReadString('\n')
		if !strings.Contains(hello, `"type":"hello"`) {
			t.Fatalf("hello %q", hello)
		}
		c.Write([]byte(tt.send + "\n"))
		line, _ := r.ReadString('\n')
		var m Message
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.Type != TypeError || !strings.Contains(m.Error, tt.want) {
			t.Errorf("%.40s: answered %q, want an error with %q", tt.send, line, tt.want)
		}
		c.Close()
	}
	// A watcher that sends something else than "shown" is dropped.
	c := dial(t, s.Path())
	c.send(&Message{Type: TypeWatch, Protocol: ProtocolVersion})
	waitFor(t, "watcher", func() bool { return len(s.Watchers()) == 1 })
	c.send(&Message{Type: TypeStatus, Protocol: ProtocolVersion})
	waitFor(t, "watcher dropped", func() bool { return len(s.Watchers()) == 0 })
}

func TestClientRefusesOtherProtocol(t *testing.T) {
	path := testPath(t, "fake")
	ln := rawListen(t, path)
	go func() {
		for _, hello := range []string{`{"type":"hello","protocol":2}`, `{"type":"error","error":"refused: go away"}`, `{"type":"status"}`, `garbage`} {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(hello + "\n"))
			c.Close()
		}
	}()
	for _, want := range []string{"the agent speaks protocol 2, this mamori 1", "refused: go away", `said "status" where a hello was due`, "not a JSON message"} {
		_, err := Dial(context.Background(), path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Dial: %v, want %q", err, want)
		}
		if want == "refused: go away" && !errors.Is(err, ErrRefused) {
			t.Errorf("refusal %v does not wrap ErrRefused", err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestShownOnlyFromGiven: a "shown" counts only from a connection the
// warning was given to, once: another client (a group member guessing
// the ids) cannot answer for a warning it was not given, nor answer one
// it was given more than once.
func TestShownOnlyFromGiven(t *testing.T) {
	type ack struct{ id, err string }
	acks := make(chan ack, 100)
	var watches sync.Mutex
	nwatch := 0
	s := serve(t, Options{OnShown: func(p Peer, id, errText string) { acks <- ack{id, errText} },
		OnWatch: func(Peer) []*Warning {
			// The second watcher (the victim) is given w2 alone, as a
			// replay is.
			watches.Lock()
			defer watches.Unlock()
			if nwatch++; nwatch == 2 {
				return []*Warning{{ID: "w2"}}
			}
			return nil
		}})
	// The forger: watches, answers as it likes.
	forger := rawDial(t, s.Path())
	fr := bufio.NewReader(forger)
	fr.ReadString('\n')
	forger.Write([]byte(`{"type":"watch","protocol":1}` + "\n"))
	forge := func(id string, n int) {
		for range n {
			forger.Write([]byte(`{"type":"shown","id":"` + id + `","error":"forged"}` + "\n"))
		}
	}
	waitFor(t, "forger watching", func() bool { return len(s.Watchers()) == 1 })
	// A warning given to the forger: one answer of it counts.
	s.Broadcast(&Warning{ID: "w1"})
	if line, _ := fr.ReadString('\n'); !strings.Contains(line, `"id":"w1"`) {
		t.Fatalf("forger got %q", line)
	}
	forge("w1", 3)
	// The victim connects; its warning is not the forger's to answer.
	victim := dial(t, s.Path())
	got := make(chan string, 1)
	release := make(chan struct{})
	go victim.Watch(context.Background(), time.Minute, func(w *Warning) error {
		got <- w.ID
		<-release
		return errors.New("no notification service")
	})
	if id := <-got; id != "w2" {
		t.Fatalf("victim got %q", id)
	}
	forge("w2", 3)
	forge("w3", 1) // never given to anyone
	time.Sleep(200 * time.Millisecond)
	close(release)
	var all []ack
	deadline := time.After(2 * time.Second)
collect:
	for {
		select {
		case a := <-acks:
			all = append(all, a)
		case <-deadline:
			break collect
		}
	}
	want := []ack{{"w1", "forged"}, {"w2", "no notification service"}}
	if len(all) != len(want) || all[0] != want[0] || all[1] != want[1] {
		t.Fatalf("answers taken %+v, want %+v", all, want)
	}
}
