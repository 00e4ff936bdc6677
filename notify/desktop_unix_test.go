//go:build unix

package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/notify/notifytest"
)

func TestEscapeBusPath(t *testing.T) {
	if got := EscapeBusPath("/run/user/1000/bus"); got != "/run/user/1000/bus" {
		t.Errorf("plain path escaped: %q", got)
	}
	if got := EscapeBusPath("/tmp/a b;c=d,é"); got != "/tmp/a%20b%3bc%3dd%2c%c3%a9" {
		t.Errorf("got %q", got)
	}
}

// TestShow: a notification reaches a real notification service on a
// private session bus with the urgency, hints and texts of the warning.
func TestShow(t *testing.T) {
	bus := notifytest.StartBus(t, notifytest.BusOptions{})
	srv := notifytest.Serve(t, bus.Address, "body", "body-markup")
	ctx := context.Background()
	d, err := OpenDesktop(ctx, bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.Markup() {
		t.Errorf("capabilities %v: body-markup not seen", d.Capabilities())
	}
	n := Compose(sampleWarning("ja"), d.Markup(), nil)
	id, err := d.Show(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	got := srv.Received()
	if len(got) != 1 {
		t.Fatalf("received %d", len(got))
	}
	r := got[0]
	if r.ID != id || r.AppName != "mamori" || r.Urgency() != 2 || r.Summary != n.Summary || r.Body != n.Body || r.Timeout != 0 ||
		r.Hints["category"].Value() != "device.added" || r.Hints["desktop-entry"].Value() != "mamori-notify" || r.SenderPID != os.Getpid() {
		t.Errorf("received:\n%s", notifytest.Dump(got))
	}
}

// TestOpenDesktopWithoutService: a bus without a notification service
// is an error at once, not a hang.
func TestOpenDesktopWithoutService(t *testing.T) {
	bus := notifytest.StartBus(t, notifytest.BusOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := OpenDesktop(ctx, bus.Address); err == nil || !strings.Contains(err.Error(), "notification service") {
		t.Fatalf("err %v", err)
	}
	if _, err := OpenDesktop(ctx, "unix:path=/nonexistent/bus"); err == nil {
		t.Fatal("no error for a missing bus")
	}
}

func TestShowOnce(t *testing.T) {
	bus := notifytest.StartBus(t, notifytest.BusOptions{})
	srv := notifytest.Serve(t, bus.Address)
	line, _ := json.Marshal(localapi.Message{Type: localapi.TypeWarning, Warning: sampleWarning("ja")})
	var out bytes.Buffer
	if err := ShowOnce(context.Background(), bytes.NewReader(append(line, '\n')), &out, bus.Address); err != nil {
		t.Fatal(err)
	}
	if out.String() != `{"type":"shown","id":"w1"}`+"\n" {
		t.Errorf("answer %q", out.String())
	}
	if got := srv.Received(); len(got) != 1 || got[0].Summary != "許可されていない USB 記憶媒体（第6条・第7条）" {
		t.Errorf("received:\n%s", notifytest.Dump(got))
	}
	// The service refuses: the answer says why, and so does the error.
	srv.Fail("no screen")
	out.Reset()
	err := ShowOnce(context.Background(), bytes.NewReader(line), &out, bus.Address)
	if err == nil || !strings.Contains(out.String(), `"error":`) || !strings.Contains(out.String(), "no screen") {
		t.Errorf("err %v, answer %q", err, out.String())
	}
	for _, in := range []string{"", "garbage\n", `{"type":"ping"}` + "\n"} {
		if err := ShowOnce(context.Background(), strings.NewReader(in), &out, bus.Address); err == nil {
			t.Errorf("input %q accepted", in)
		}
	}
}

// TestRunReconnects: the notifier shows what the agent sends, replaces
// its earlier notification of the same key, and carries on when the
// session bus restarts and when the agent restarts.
func TestRunReconnects(t *testing.T) {
	dir, err := os.MkdirTemp("", "mamori-notify-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	busSock := filepath.Join(dir, "bus")
	agentSock := filepath.Join(dir, "agent.sock")
	bus := notifytest.StartBus(t, notifytest.BusOptions{Socket: busSock})
	srv := notifytest.Serve(t, bus.Address)

	type ack struct{ id, err string }
	acks := make(chan ack, 20)
	startAgent := func() *localapi.Server {
		s, err := localapi.Listen(localapi.Options{Path: agentSock, Agent: "test",
			OnShown: func(p localapi.Peer, id, e string) { acks <- ack{id, e} }})
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve()
		return s
	}
	agent := startAgent()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := Run(ctx, Options{Socket: agentSock, Bus: bus.Address, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	defer func() { cancel(); wg.Wait(); agent.Close() }()

	send := func(id string) ack {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(agent.Watchers()) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("notifier never connected")
			}
			time.Sleep(10 * time.Millisecond)
		}
		w := sampleWarning("ja")
		w.ID = id
		agent.Broadcast(w)
		select {
		case a := <-acks:
			return a
		case <-time.After(15 * time.Second):
			t.Fatalf("no ack for %s", id)
			return ack{}
		}
	}
	if a := send("a"); a != (ack{"a", ""}) {
		t.Fatalf("ack %+v", a)
	}
	if a := send("b"); a != (ack{"b", ""}) {
		t.Fatalf("ack %+v", a)
	}
	got := srv.Received()
	if len(got) != 2 || got[1].ReplacesID != got[0].ID {
		t.Fatalf("second warning of the same key did not replace the first:\n%s", notifytest.Dump(got))
	}

	// The session bus goes and comes back at the same address.
	bus.Stop()
	os.Remove(busSock)
	bus2 := notifytest.StartBus(t, notifytest.BusOptions{Socket: busSock})
	srv2 := notifytest.Serve(t, bus2.Address)
	if a := send("c"); a != (ack{"c", ""}) {
		t.Fatalf("after the bus restarted: ack %+v", a)
	}
	if n := len(srv2.Received()); n != 1 {
		t.Fatalf("new bus got %d", n)
	}

	// The agent restarts.
	agent.Close()
	agent = startAgent()
	if a := send("d"); a != (ack{"d", ""}) {
		t.Fatalf("after the agent restarted: ack %+v", a)
	}
	// No service: the agent is told why.
	srv2.Fail("service broken")
	if a := send("e"); a.id != "e" || !strings.Contains(a.err, "service broken") {
		t.Fatalf("ack %+v", a)
	}
}

// TestOpenDesktopBusNeverAnswers: a session bus socket that takes the
// connection and never answers fails OpenDesktop when its context is
// done, and ShowOnce within ConnectTimeout: it does not hang.
func TestOpenDesktopBusNeverAnswers(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, "bus"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	address := "unix:path=" + EscapeBusPath(filepath.Join(dir, "bus"))
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		line, _ := json.Marshal(localapi.Message{Type: localapi.TypeWarning, Warning: sampleWarning("ja")})
		var out bytes.Buffer
		done <- ShowOnce(context.Background(), bytes.NewReader(append(line, '\n')), &out, address)
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "session bus") {
			t.Fatalf("err %v", err)
		}
		if took := time.Since(start); took < ConnectTimeout-100*time.Millisecond || took > ConnectTimeout+2*time.Second {
			t.Errorf("gave up after %v, want about %v", took, ConnectTimeout)
		}
	case <-time.After(ConnectTimeout + 10*time.Second):
		t.Fatal("ShowOnce still waiting for a bus that never answers")
	}
}
