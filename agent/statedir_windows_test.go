package agent

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/internal/wintest"
)

// These run on Windows and under Wine 8.0 (make wine-test).

// syncBuffer is a bytes.Buffer the agent's goroutines may write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(s.b.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// runWindowsAgent runs an agent on state until it is ready, then stops
// it, and returns what it logged (JSON). Only the state folder is the
// host's; no network, no notifications, no local API, no metrics.
func runWindowsAgent(t *testing.T, state string) []map[string]any {
	t.Helper()
	return runHeldAgent(t, state).logs
}

// auditRecords reads the audit log in state: type and seq of each record.
func auditRecords(t *testing.T, state string) []record {
	t.Helper()
	return readAuditLog[record](t, state)
}

// TestWindowsUntrustedStateTakenBack: an agent started on a state folder
// it cannot trust (here one whose DACL let Everyone do anything, the case
// Wine can show: it cannot make a folder someone else owns) does not read
// it: the folder goes aside unread, with the audit log and token in it
// unchanged, and the agent records agent_started as the first record of
// a new audit log in a fresh private folder (a log it had read on would
// have continued at the old log's next seq), then the folder taken back
// as audit_damaged (state_dir_untrusted), logging at Error where the old
// folder went and why. The next start keeps the new folder and its log.
func TestWindowsUntrustedStateTakenBack(t *testing.T) {
	base := wintest.TempDir(t)
	state := filepath.Join(base, "mamori")

	// A first run makes a private folder and a log of its own.
	for _, l := range runWindowsAgent(t, state) {
		if l["level"] == "ERROR" {
			t.Errorf("first start on a new folder logged %v", l)
		}
	}
	first := auditRecords(t, state)
	if len(first) < 2 || first[0].Type != TypeAgentStarted || first[len(first)-1].Type != TypeAgentStopped {
		t.Fatalf("first run's log: %s", dump(first))
	}
	oldLog, err := os.ReadFile(filepath.Join(state, audit.CurrentName))
	if err != nil {
		t.Fatal(err)
	}
	token := []byte("planted-token\n")
	if err := os.WriteFile(filepath.Join(state, "token"), token, 0o600); err != nil {
		t.Fatal(err)
	}
	// Now anyone could have replaced what is in it.
	wintest.SetDACL(t, state, "D:P(A;OICI;FA;;;WD)")

	logs := runWindowsAgent(t, state)
	var aside []string
	ents, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "mamori.untrusted-") {
			aside = append(aside, filepath.Join(base, e.Name()))
		}
	}
	if len(aside) != 1 {
		t.Fatalf("moved aside: %v, want the one untrusted folder", aside)
	}
	if b, err := os.ReadFile(filepath.Join(aside[0], audit.CurrentName)); err != nil || !bytes.Equal(b, oldLog) {
		t.Errorf("the old audit log moved aside: %v, changed %v; want it kept as it was", err, !bytes.Equal(b, oldLog))
	}
	if b, err := os.ReadFile(filepath.Join(aside[0], "token")); err != nil || !bytes.Equal(b, token) {
		t.Errorf("the token moved aside: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(state, "token")); err == nil {
		t.Errorf("the planted token is still in the state folder")
	}
	recs := auditRecords(t, state)
	if len(recs) < 2 || recs[0].Type != TypeAgentStarted || recs[0].Seq != 1 || recs[len(recs)-1].Type != TypeAgentStopped {
		t.Errorf("the new log: %s\nwant agent_started as seq 1 of a new log, then agent_stopped", dump(recs))
	}
	// The one damage recorded is the folder taken back
	// (state_dir_untrusted), not the old log.
	found := untrustedRecords(heldRecords(t, state))
	if n := count(recs, TypeAuditDamaged, "", ""); n != len(found) {
		t.Errorf("the new log records damage: %s", dump(recs))
	}
	if len(found) != 1 || !strings.Contains(found[0].Message, "moved aside unread to "+aside[0]) || !strings.Contains(found[0].Message, "Everyone") {
		t.Errorf("state_dir_untrusted records %+v, want one saying where the folder went and why", found)
	}
	if rep, err := audit.Verify(state); err != nil || len(rep.Problems) != 0 {
		t.Errorf("audit verify of the new log: %+v, %v", rep, err)
	}
	var said bool
	for _, l := range logs {
		if l["level"] == "ERROR" && strings.Contains(l["msg"].(string), "state folder not trusted") {
			said = strings.EqualFold(l["moved_to"].(string), aside[0]) && strings.Contains(l["why"].(string), "Everyone")
			if !said {
				t.Errorf("log %v: want where it went and why", l)
			}
		}
	}
	if !said {
		t.Errorf("nothing logged at Error of the folder taken back: %v", logs)
	}

	// The next start keeps the new folder.
	for _, l := range runWindowsAgent(t, state) {
		if l["level"] == "ERROR" {
			t.Errorf("the next start logged %v", l)
		}
	}
	if n := len(auditRecords(t, state)); n <= len(recs) {
		t.Errorf("the next start wrote no records to the new log (%d, before %d)", n, len(recs))
	}
	if ents, _ := os.ReadDir(base); len(ents) != 2 {
		t.Errorf("beside the state folder: %v, want it and the one taken back", ents)
	}
}
