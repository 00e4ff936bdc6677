package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/internal/fsguard"
	"github.com/mamori-agent/mamori/internal/wintest"
)

// TestWindowsAgentRunHeldStateDir: the state folder a user made first
// (here one Everyone may change) and holds open without
// FILE_SHARE_DELETE does not stop mamori run: it says it records in the
// alternate folder beside it, and audit verify --config finds that
// folder, saying why agent.state_dir is not used. Without an alternate,
// audit verify refuses the squatted folder instead of reading it.
func TestWindowsAgentRunHeldStateDir(t *testing.T) {
	dir := wintest.TempDir(t)
	cfg, state := windowsConfig(t, dir)
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	wintest.SetDACL(t, state, "D:P(A;OICI;FA;;;WD)")
	if code, _, errOut := mamoriExe(t, "audit", "verify", "--config", cfg); code != 2 || !strings.Contains(errOut, "no alternate") {
		t.Errorf("audit verify of a squatted folder, no alternate: exit %d, want 2 saying so\n%s", code, errOut)
	}
	wintest.HoldFolder(t, state)

	r := startAgent(t, cfg)
	alts, _ := filepath.Glob(state + ".alternate-*")
	if len(alts) != 1 || !strings.Contains(r.ready, alts[0]) {
		t.Fatalf("ready line %q, alternates %v: want the line to name the one alternate\n%s", r.ready, alts, r.stderr.String())
	}
	alt := alts[0]
	waitRecord(t, alt, 10*time.Second, "agent_started", ofType("agent_started"))
	waitRecord(t, alt, 10*time.Second, "audit_damaged", ofType("audit_damaged"))
	r.stop()

	code, out, errOut := mamoriExe(t, "audit", "verify", "--config", cfg)
	if code != 0 || !strings.Contains(out, alt) || !strings.Contains(out, "chain intact") ||
		!strings.Contains(errOut, "not used: the agent records in the alternate folder "+alt) {
		t.Errorf("audit verify --config: exit %d, want 0 verifying %s and saying why\n%s%s", code, alt, out, errOut)
	}
	if st, err := fsguard.FindState(state); err != nil || st.Path != alt {
		t.Errorf("FindState = %+v, %v", st, err)
	}
}
