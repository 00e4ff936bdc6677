package agent

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/collector/network"
)

// sourceState returns the self-test's state and detail of the source
// called name.
func sourceState(a *Agent, name string) (state, detail string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.sourcesStatus() {
		if s.Name == name {
			return s.State, s.Detail, true
		}
	}
	return "", "", false
}

func TestSelfTestNotesSources(t *testing.T) {
	e := newEnv(t, testConfig, kbd)
	var logs lockedLog
	src := &scriptedSource{results: make(chan error), closed: make(chan struct{})}
	r := e.start(Options{Uevents: src, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer r.stop(t)

	// The helper starts the agent with the mount watch and the network
	// turned off.
	for _, c := range []struct{ name, state, detail string }{
		{sourceDevices, localapi.SourceEvents, ""},
		{sourceMounts, localapi.SourceRescans, "turned off"},
		{sourceNetwork, localapi.SourceOff, "turned off"},
	} {
		if st, d, ok := sourceState(r.agent, c.name); !ok || st != c.state || d != c.detail {
			t.Errorf("%s: %q %q (%v), want %q %q", c.name, st, d, ok, c.state, c.detail)
		}
	}
	out := logs.String()
	for _, want := range []string{`msg="self-test: event source works" source=` + quoteName(sourceDevices) + ` state=events`,
		`msg="self-test: event source fell back to rescans" source=` + quoteName(sourceMounts) + ` state=rescans detail="turned off"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}

	// The device event source fails later: noted as fallen back.
	src.results <- errors.New("netlink: socket gone")
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, d, _ := sourceState(r.agent, sourceDevices)
		if st == localapi.SourceRescans && d == "failed: netlink: socket gone" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after its failure: %q %q", sourceDevices, st, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// quoteName is a source name as slog's text handler writes it.
func quoteName(s string) string {
	if strings.ContainsAny(s, " =\"") {
		return `"` + s + `"`
	}
	return s
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// reportingMonitor is a network source that reports its own event
// sources, as the Windows Monitor does.
type reportingMonitor struct {
	NetworkSource
	sources []network.EventSource
}

func (m reportingMonitor) EventSources() []network.EventSource { return m.sources }

func TestSelfTestNetworkSources(t *testing.T) {
	a := &Agent{}
	a.noteNetwork(reportingMonitor{sources: []network.EventSource{
		{Name: "NotifyIpInterfaceChange", Working: true, Detail: "initial notification received"},
		{Name: "NotifyRouteChange2", Detail: "registered, but no initial notification within 2s: changes seen by rescans every 5s"},
		{Name: "GetIpNetTable2", Working: true, Detail: "neighbours read at each rescan"},
		{Name: "rescan", Working: true, Detail: "rescans every 5s"},
	}})
	want := []localapi.SourceStatus{
		{Name: sourceNetwork + " (NotifyIpInterfaceChange)", State: localapi.SourceEvents, Detail: "initial notification received"},
		{Name: sourceNetwork + " (NotifyRouteChange2)", State: localapi.SourceRescans, Detail: "registered, but no initial notification within 2s: changes seen by rescans every 5s"},
		{Name: sourceNetwork + " (GetIpNetTable2)", State: localapi.SourcePolling, Detail: "neighbours read at each rescan"},
		{Name: sourceNetwork + " (rescan)", State: localapi.SourcePolling, Detail: "rescans every 5s"},
	}
	got := a.sourcesStatus()
	if len(got) != len(want) {
		t.Fatalf("sources %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("source %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// A source without its own report: the OS's default; a later note
	// of the same name replaces the earlier one.
	b := &Agent{}
	b.noteNetwork(nil)
	b.noteSource(sourceNetwork, localapi.SourceRescans, "gone\x1b[2J")
	if s := b.sourcesStatus(); len(s) != 1 || s[0].State != localapi.SourceRescans || strings.ContainsRune(s[0].Detail, 0x1b) {
		t.Errorf("sources %+v", s)
	}
}
