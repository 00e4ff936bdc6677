package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/internal/fsguard"
	"github.com/mamori-agent/mamori/internal/wintest"
)

// These run on Windows and under Wine 8.0 (make wine-test).

// heldRun is what one run of the agent left: its log (JSON), the state
// directory it said it records in, and the audit_damaged it counted.
type heldRun struct {
	logs     []map[string]any
	stateDir string
	damaged  float64
}

// runHeldAgent runs an agent on state until it is ready, then stops it,
// and returns what heldRun holds. Only the state folder is the host's; no
// network, no notifications, no local API, no metrics.
func runHeldAgent(t *testing.T, state string) heldRun {
	t.Helper()
	w := runAgentOn(t, state, "version: 1\nagent:\n  asset_id: PC-WIN\n  language: en\n  rescan_interval: 1h\nmetrics:\n  listen: \"\"\n")
	run := heldRun{stateDir: w.a.StateDir()}
	w.stop()
	if w.cfg.Agent.StateDir != state {
		t.Errorf("the config the agent was given now says state_dir %s", w.cfg.Agent.StateDir)
	}
	run.logs = w.logs.lines(t)
	run.damaged = testutil.ToFloat64(w.a.Metrics().events.WithLabelValues("agent", "audit_damaged"))
	return run
}

// heldRecord is the part of an audit record these tests read.
type heldRecord struct {
	Seq     uint64 `json:"seq"`
	Type    string `json:"type"`
	Source  string `json:"source"`
	Message string `json:"message"`
}

// heldRecords reads the audit log in dir.
func heldRecords(t *testing.T, dir string) []heldRecord {
	t.Helper()
	return readAuditLog[heldRecord](t, dir)
}

// untrustedRecords are the state_dir_untrusted records among recs.
func untrustedRecords(recs []heldRecord) []heldRecord {
	var out []heldRecord
	for _, r := range recs {
		if r.Type == TypeAuditDamaged && strings.HasPrefix(r.Message, KindStateDirUntrusted+": ") {
			out = append(out, r)
		}
	}
	return out
}

// besides lists the entries beside path whose names begin with path's
// and tag.
func besides(t *testing.T, path, tag string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), filepath.Base(path)+tag) {
			out = append(out, filepath.Join(filepath.Dir(path), e.Name()))
		}
	}
	return out
}

// TestWindowsHeldStateFolder: a user made the state folder before mamori
// was installed (here: one Everyone may change) and holds it open without
// FILE_SHARE_DELETE, so that it cannot be moved aside. The agent starts
// all the same: it records agent_started as seq 1 of a new log in a
// private alternate folder beside it, records the squat as audit_damaged
// (state_dir_untrusted, counted in mamori_events_total), logs it at
// Error, and says where it records (StateDir, as mamori status shows it);
// nothing in the squatted folder is read or changed. While it is held,
// the next start records in the same alternate, its chain going on, and
// records the squat again. Once it is let go, the next start moves it
// aside and the alternate back in its place: the chain goes on in the
// configured folder (audit verify finds it intact), and the start after
// that finds nothing to say.
func TestWindowsHeldStateFolder(t *testing.T) {
	base := wintest.TempDir(t)
	state := filepath.Join(base, "mamori")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	planted := []byte(`{"seq":41,"type":"agent_started","message":"planted"}` + "\n")
	if err := os.WriteFile(filepath.Join(state, audit.CurrentName), planted, 0o600); err != nil {
		t.Fatal(err)
	}
	wintest.SetDACL(t, state, "D:P(A;OICI;FA;;;WD)")
	release := wintest.HoldFolder(t, state)

	// Held: the agent records in an alternate.
	run := runHeldAgent(t, state)
	alts := besides(t, state, ".alternate-")
	if len(alts) != 1 {
		t.Fatalf("alternate folders %v, want one\nlog: %v", alts, run.logs)
	}
	alt := alts[0]
	if !strings.EqualFold(run.stateDir, alt) {
		t.Errorf("StateDir() = %s, want the alternate %s", run.stateDir, alt)
	}
	if err := fsguard.CheckDir(alt); err != nil {
		t.Errorf("CheckDir(alternate) = %v", err)
	}
	recs := heldRecords(t, alt)
	if len(recs) < 3 || recs[0].Type != TypeAgentStarted || recs[0].Seq != 1 || recs[len(recs)-1].Type != TypeAgentStopped {
		t.Fatalf("the alternate's log: %+v\nwant agent_started as seq 1 of a new log, then agent_stopped", recs)
	}
	found := untrustedRecords(recs)
	if len(found) != 1 || found[0].Source != "agent" || !strings.Contains(found[0].Message, state) ||
		!strings.Contains(found[0].Message, "Everyone") || !strings.Contains(found[0].Message, "moving it aside failed") ||
		!strings.Contains(found[0].Message, alt) {
		t.Errorf("state_dir_untrusted records %+v\nwant one naming the folder, why, what failed and the alternate", found)
	}
	if run.damaged != 1 {
		t.Errorf("mamori_events_total{source=agent,action=audit_damaged} = %v, want 1", run.damaged)
	}
	var said bool
	for _, l := range run.logs {
		if l["level"] == "ERROR" {
			a, _ := l["alternate"].(string)
			said = said || strings.EqualFold(a, alt)
		}
	}
	if !said {
		t.Errorf("nothing logged at Error naming the alternate: %v", run.logs)
	}
	if b, err := os.ReadFile(filepath.Join(state, audit.CurrentName)); err != nil || !bytes.Equal(b, planted) {
		t.Errorf("the squatted folder's log: %q, %v; want it untouched", b, err)
	}
	if st, err := fsguard.FindState(state); err != nil || !strings.EqualFold(st.Path, alt) {
		t.Errorf("FindState (what audit verify reads) = %+v, %v; want %s", st, err, alt)
	}
	if rep, err := audit.Verify(alt); err != nil || len(rep.Problems) != 0 {
		t.Errorf("audit verify of the alternate: %+v, %v", rep, err)
	}

	// Still held: the same alternate, its chain going on.
	first := recs
	run = runHeldAgent(t, state)
	if a := besides(t, state, ".alternate-"); len(a) != 1 || !strings.EqualFold(a[0], alt) || !strings.EqualFold(run.stateDir, alt) {
		t.Fatalf("still held: alternates %v, StateDir %s; want %s", a, run.stateDir, alt)
	}
	recs = heldRecords(t, alt)
	if len(recs) <= len(first) || recs[len(first)].Type != TypeAgentStarted || recs[len(first)].Seq != first[len(first)-1].Seq+1 {
		t.Errorf("still held: the log %+v\nwant the second run's agent_started after the first run's records", recs)
	}
	if n := len(untrustedRecords(recs)); n != 2 {
		t.Errorf("still held: %d state_dir_untrusted records, want one a start", n)
	}

	// Let go: the squat goes aside, the alternate back in place.
	release()
	second := recs
	run = runHeldAgent(t, state)
	if !strings.EqualFold(run.stateDir, state) {
		t.Errorf("let go: StateDir() = %s, want %s", run.stateDir, state)
	}
	if a := besides(t, state, ".alternate-"); len(a) != 0 {
		t.Errorf("let go: alternates left %v", a)
	}
	aside := besides(t, state, ".untrusted-")
	if len(aside) != 1 {
		t.Fatalf("let go: moved aside %v, want the squatted folder", aside)
	}
	if b, err := os.ReadFile(filepath.Join(aside[0], audit.CurrentName)); err != nil || !bytes.Equal(b, planted) {
		t.Errorf("the squatted folder's log moved aside: %q, %v; want it untouched", b, err)
	}
	recs = heldRecords(t, state)
	if len(recs) <= len(second) || recs[len(second)].Type != TypeAgentStarted || recs[len(second)].Seq != second[len(second)-1].Seq+1 {
		t.Errorf("let go: the log %+v\nwant the alternate's log going on in the state folder", recs)
	}
	found = untrustedRecords(recs[len(second):])
	if len(found) != 1 || !strings.Contains(found[0].Message, "moved aside unread to "+aside[0]) {
		t.Errorf("let go: state_dir_untrusted records %+v, want the squat moved aside", found)
	}
	if rep, err := audit.Verify(state); err != nil || len(rep.Problems) != 0 || rep.Records != len(recs) {
		t.Errorf("audit verify of the state folder: %+v, %v; want %d records intact", rep, err, len(recs))
	}
	if st, err := fsguard.FindState(state); err != nil || st.Path != state || st.Alternate {
		t.Errorf("let go: FindState = %+v, %v", st, err)
	}

	// The start after: nothing to say.
	run = runHeldAgent(t, state)
	for _, l := range run.logs {
		if l["level"] == "ERROR" {
			t.Errorf("the start after logged %v", l)
		}
	}
	if run.damaged != 0 {
		t.Errorf("the start after counted %v audit_damaged", run.damaged)
	}
}
