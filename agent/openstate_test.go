package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/wire"
)

// TestOpenStateInParts: the appearances carried over are read back from
// agent_started and the agent_open_state records after it, and a start
// that carries more than one record holds writes them in parts that the
// log takes.
func TestOpenStateInParts(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	until := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	var subjects []wire.OpenSubject
	for i := range 2500 {
		subjects = append(subjects, wire.OpenSubject{Source: wire.SourceLAN,
			ID: fmt.Sprintf("lan_device_unregistered|00:16:3e:00:%02x:%02x", i>>8, i&0xff), Recorded: []string{wire.KindLANDeviceUnregistered}, Until: &until})
	}
	appendEv := func(ev *Event) {
		t.Helper()
		if _, err := l.Append(wire.NewRecord(ev)); err != nil {
			t.Fatal(err)
		}
	}
	appendEv(&Event{Type: TypeAgentStarted, Source: "agent", Agent: &AgentRecord{BootID: "b1",
		Open: &OpenState{Devices: []OpenDevice{}, Volumes: []OpenVolume{}, Subjects: subjects[:openChunk]}}})
	for rest := subjects[openChunk:]; len(rest) > 0; {
		part := rest[:min(openChunk, len(rest))]
		rest = rest[len(part):]
		appendEv(&Event{Type: wire.TypeAgentOpenState, Source: "agent", Open: &OpenState{Subjects: part}})
	}
	appendEv(&Event{Type: wire.TypeViolationCleared, Source: wire.SourceLAN, Subject: subjects[0].ID})
	l.Close()

	p, damage, err := replay(dir, "b1")
	if err != nil || len(damage) > 0 {
		t.Fatalf("replay: %v %v", err, damage)
	}
	if got := len(p.thisBoot().Subjects); got != 2499 {
		t.Fatalf("carried %d subjects, want 2499", got)
	}
}

// TestRefusedRecordDoesNotHoldTheLog: an event the log can never take (a
// record over audit.MaxLineSize) is lost with an audit_gap saying so, and
// the events after it are recorded at once, not held behind it.
func TestRefusedRecordDoesNotHoldTheLog(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse("t.yaml", []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Agent.StateDir = dir
	a, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	a.audit, err = audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.audit.Close()
	a.emit(&Event{Type: wire.TypeLinkAdded, Source: wire.SourceNetwork, Message: strings.Repeat("x", audit.MaxLineSize)})
	a.emit(&Event{Type: wire.TypeViolation, Source: wire.SourceNetwork, Subject: "network_unapproved|if=3|172.16.0.5/24",
		Violation: &wire.Violation{Kind: wire.KindNetworkUnapproved, Device: "eth1"}})
	if n := len(a.pending.events); n != 0 {
		t.Fatalf("%d events held back", n)
	}
	entries, _, err := audit.ReadBack(dir, func([]byte) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range entries {
		var r struct{ Type string }
		if err := json.Unmarshal(e.Line, &r); err != nil {
			t.Fatal(err)
		}
		types = append(types, r.Type)
	}
	if want := []string{TypeAuditGap, TypeViolation}; !slices.Equal(types, want) {
		t.Errorf("records %v, want %v", types, want)
	}
}
