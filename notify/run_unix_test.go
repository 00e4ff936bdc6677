//go:build unix

package notify

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/notify/notifytest"
)

// TestRunWaitsForService: a notifier whose session bus has no
// notification service (or that has no bus) does not connect to the
// agent, so the agent's status lists no notifier that cannot show
// anything; once the service is there, it connects and shows.
func TestRunWaitsForService(t *testing.T) {
	dir := t.TempDir()
	agentSock := filepath.Join(dir, "agent.sock")
	bus := notifytest.StartBus(t, notifytest.BusOptions{})
	acks := make(chan string, 4)
	agent, err := localapi.Listen(localapi.Options{Path: agentSock, Agent: "test",
		OnShown: func(p localapi.Peer, id, e string) { acks <- e }})
	if err != nil {
		t.Fatal(err)
	}
	go agent.Serve()
	defer agent.Close()
	run := func(bus string) func() {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := Run(ctx, Options{Socket: agentSock, Bus: bus, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
		return func() { cancel(); wg.Wait() }
	}
	stopNoBus := run("unix:path=" + EscapeBusPath(filepath.Join(dir, "no-bus")))
	defer stopNoBus()
	stop := run(bus.Address)
	defer stop()
	time.Sleep(time.Second)
	if n := len(agent.Watchers()); n != 0 {
		t.Fatalf("%d notifiers connected without a notification service", n)
	}
	srv := notifytest.Serve(t, bus.Address)
	deadline := time.Now().Add(10 * time.Second)
	for len(agent.Watchers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the notifier did not connect once the service was there")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(agent.Watchers()); n != 1 {
		t.Fatalf("%d notifiers connected, want the one with a service", n)
	}
	agent.Broadcast(sampleWarning("ja"))
	select {
	case e := <-acks:
		if e != "" {
			t.Fatalf("not shown: %s", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	if n := len(srv.Received()); n != 1 {
		t.Fatalf("%d notifications", n)
	}
}
