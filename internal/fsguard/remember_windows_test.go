package fsguard

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows/registry"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// rememberedValue is the registry value for the state folder state ("" if
// none), read directly.
func rememberedValue(t *testing.T, state string) string {
	t.Helper()
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, alternatesKey, registry.QUERY_VALUE)
	if err != nil {
		return ""
	}
	defer k.Close()
	abs, _ := filepath.Abs(state)
	v, _, _ := k.GetStringValue(strings.ToLower(abs))
	return v
}

// TestWindowsPrepareStateAlternateFlood: a user who holds the squatted
// state folder and makes more folders named like alternates than the
// agent judges (maxAlternates), all with later times in their names, does
// not make the agent start a new alternate (a new audit log) at each
// start: the alternate in use is remembered in the registry and judged
// first. The remembered value is removed once the alternate is back in
// its place. Without the registry value this test fails (the agent's
// alternate is not among the newest names).
func TestWindowsPrepareStateAlternateFlood(t *testing.T) {
	base := wintest.TempDir(t)
	state := filepath.Join(base, "mamori")
	squat(t, state)
	release := holdFolder(t, state)
	ts := mustTrust(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	random := counter()
	abs, _ := filepath.Abs(state)
	t.Cleanup(func() { forgetAlternate(abs) })

	log, _ := logRecords(t)
	sd, err := prepareStateAs(state, ts, log, now, random)
	if err != nil || !sd.Alternate {
		t.Fatalf("prepareStateAs with the folder held: %+v, %v", sd, err)
	}
	if v := rememberedValue(t, state); !strings.EqualFold(v, sd.Path) {
		t.Errorf("remembered %q, want the alternate %s", v, sd.Path)
	}
	// The flood: folders named like alternates, later than the agent's,
	// that anyone may change (so not the agent's).
	for i := range maxAlternates + 8 {
		p := filepath.Join(base, fmt.Sprintf("mamori.alternate-20300101T0000%02d-%016x", i%60, i))
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		wintest.SetDACL(t, p, "D:P(A;OICI;FA;;;WD)")
	}
	log, records := logRecords(t)
	sd2, err := prepareStateAs(state, ts, log, now.Add(time.Hour), random)
	if err != nil {
		t.Fatal(err)
	}
	if !sd2.Alternate || !strings.EqualFold(sd2.Path, sd.Path) {
		t.Errorf("after the flood: %+v, want the same alternate %s", sd2, sd.Path)
	}
	var warned bool
	for _, r := range records() {
		warned = warned || strings.Contains(str(r, "msg"), "more folders named like alternate folders")
	}
	if !warned {
		t.Errorf("log %v: want the warning that not every name is judged", records())
	}

	// A remembered value that is not an alternate beside the folder is
	// not used, and said so; the agent's own is found by name again.
	if err := rememberAlternate(abs, filepath.Join(os.TempDir(), "elsewhere"), ts); err != nil {
		t.Fatal(err)
	}
	log, records = logRecords(t)
	if _, err := prepareStateAs(state, ts, log, now.Add(2*time.Hour), random); err != nil {
		t.Fatal(err)
	}
	var refused bool
	for _, r := range records() {
		refused = refused || (r["level"] == "WARN" && strings.Contains(str(r, "err"), "is not an alternate folder beside"))
	}
	if !refused {
		t.Errorf("log %v: want the remembered value refused", records())
	}

	// Let go: the alternate goes back in place and is forgotten.
	release()
	log, _ = logRecords(t)
	sd3, err := prepareStateAs(state, ts, log, now.Add(3*time.Hour), random)
	if err != nil || sd3.Alternate {
		t.Fatalf("let go: %+v, %v", sd3, err)
	}
	if v := rememberedValue(t, state); v != "" {
		t.Errorf("remembered %q after the alternate went back", v)
	}
}
