package fsguard

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// These run on Windows and under Wine 8.0. Wine keeps a DACL as a Unix
// mode and cannot make a file someone else owns (an owner given to
// SetNamedSecurityInfo or CreateDirectory is ignored), but everything
// here is owned by someone else for a process that trusts SYSTEM alone:
// the tests that need a foreign owner judge as SYSTEM.

// logRecords is a JSON slog logger and what it wrote, one map a record.
func logRecords(t *testing.T) (*slog.Logger, func() []map[string]any) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return log, func() []map[string]any {
		var out []map[string]any
		for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			out = append(out, m)
		}
		return out
	}
}

// fill puts an audit log, a token and a queue file in dir.
func fill(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{"audit.jsonl": "planted record\n", "token": "stolen-or-planted\n", filepath.Join("report", "q.jsonl"): "x\n"}
	if err := os.Mkdir(filepath.Join(dir, "report"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// asides lists the NAME.untrusted-* entries beside path.
func asides(t *testing.T, path string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), filepath.Base(path)+".untrusted-") {
			out = append(out, filepath.Join(filepath.Dir(path), e.Name()))
		}
	}
	return out
}

// TestWindowsMkdirStateTakesBack: a state folder whose DACL let Everyone
// do anything (so anything in it may have been replaced) is renamed
// aside with everything in it, unchanged, and a new, empty, private
// folder takes its place; the log says so at Error, with where it went
// and why. MkdirAll, which never moves anything, refuses the same
// folder. A second start keeps the new folder.
func TestWindowsMkdirStateTakesBack(t *testing.T) {
	base := wintest.TempDir(t)
	state := filepath.Join(base, "mamori")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	files := fill(t, state)
	wintest.SetDACL(t, state, "D:P(A;OICI;FA;;;WD)")
	if err := MkdirAll(state); err == nil {
		t.Fatalf("MkdirAll accepted a folder Everyone controls")
	}

	log, records := logRecords(t)
	if err := MkdirState(state, log); err != nil {
		t.Fatalf("MkdirState: %v", err)
	}
	moved := asides(t, state)
	if len(moved) != 1 {
		t.Fatalf("folders moved aside: %v, want one", moved)
	}
	for name, body := range files {
		if b, err := os.ReadFile(filepath.Join(moved[0], name)); err != nil || string(b) != body {
			t.Errorf("%s moved aside: %q, %v; want it kept as it was", name, b, err)
		}
	}
	if ents, err := os.ReadDir(state); err != nil || len(ents) != 0 {
		t.Errorf("the new state folder holds %v, %v; want it new and empty", ents, err)
	}
	if err := CheckDir(state); err != nil {
		t.Errorf("CheckDir(new state folder) = %v", err)
	}
	if everyoneWrites(t, state) {
		t.Errorf("the new state folder lets Everyone write")
	}
	recs := records()
	if len(recs) != 1 || recs[0]["level"] != "ERROR" || !strings.EqualFold(recs[0]["path"].(string), state) ||
		!strings.EqualFold(recs[0]["moved_to"].(string), moved[0]) || !strings.Contains(recs[0]["why"].(string), "S-1-1-0 (Everyone)") ||
		!strings.Contains(recs[0]["msg"].(string), "nothing that was in it") {
		t.Errorf("log %v, want one error naming the folder, where it went and why", recs)
	}

	log2, records2 := logRecords(t)
	if err := MkdirState(state, log2); err != nil {
		t.Fatalf("MkdirState again: %v", err)
	}
	if n := len(asides(t, state)); n != 1 {
		t.Errorf("a second start moved the new folder aside too (%d aside)", n)
	}
	for _, r := range records2() {
		if r["level"] == "ERROR" {
			t.Errorf("a second start logged %v", r)
		}
	}
}

// TestWindowsTakeBackForeignOwner: a folder someone else owns (the test's
// user, as SYSTEM sees it) is judged to be taken back, and is renamed
// aside through the handle it was judged by: everything in it goes with
// it, unopened, and a name taken already is skipped.
func TestWindowsTakeBackForeignOwner(t *testing.T) {
	self := mustTrust(t).self
	if self == sidSystem {
		t.Skip("running as SYSTEM: everything here is SYSTEM's")
	}
	base := wintest.TempDir(t)
	state := filepath.Join(base, "mamori")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	files := fill(t, state)
	h, f, err := openFolder(state)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(h)
	a, why := decideFolder(f, trustSet{self: sidSystem})
	if a != folderTakeBack || !strings.Contains(why, "is owned by "+self) {
		t.Fatalf("decideFolder(as SYSTEM) = %v, %q; want it taken back for its owner", a, why)
	}
	if a, why := decideFolder(f, mustTrust(t)); a == folderTakeBack {
		t.Errorf("decideFolder(as its owner) = %v, %q", a, why)
	}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := os.Mkdir(filepath.Join(base, "mamori.untrusted-20260304T050607"), 0o700); err != nil {
		t.Fatal(err)
	}
	dst, err := takeBack(h, state, now)
	if err != nil {
		t.Fatalf("takeBack: %v", err)
	}
	if want := filepath.Join(base, "mamori.untrusted-20260304T050607-2"); !strings.EqualFold(dst, want) {
		t.Errorf("moved to %s, want %s", dst, want)
	}
	if _, err := os.Lstat(state); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", state, err)
	}
	for name, body := range files {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != body {
			t.Errorf("%s moved aside: %q, %v", name, b, err)
		}
	}
	// The handle judged is on the folder moved: one swapped in at the
	// old name is not what was judged, and is not moved.
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := takeBack(h, state, now); err == nil || !strings.Contains(err.Error(), "replaced while it was judged") {
		t.Errorf("takeBack of a folder swapped in = %v", err)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("the folder swapped in was moved: %v", err)
	}
}

// TestWindowsMkdirStateAdopts: a folder this user owns that others may
// only read (Wine's 0755; an installer's folder on Windows, which Users
// may also add to) is kept where it is with what is in it (the
// installer's config), made private, and logged at Warn.
func TestWindowsMkdirStateAdopts(t *testing.T) {
	base := wintest.TempDir(t)
	state := filepath.Join(base, "mamori")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(state, "mamori.yaml")
	if err := os.WriteFile(conf, []byte("version: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	self := mustTrust(t).self
	wintest.SetDACL(t, state, "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;"+self+")(A;OICI;0x1200a9;;;WD)")
	log, records := logRecords(t)
	if err := MkdirState(state, log); err != nil {
		t.Fatalf("MkdirState: %v", err)
	}
	if a := asides(t, state); len(a) != 0 {
		t.Errorf("moved aside: %v", a)
	}
	if b, err := os.ReadFile(conf); err != nil || string(b) != "version: 1\n" {
		t.Errorf("config after: %q, %v", b, err)
	}
	recs := records()
	if len(recs) == 0 || recs[0]["level"] != "WARN" || !strings.Contains(recs[0]["why"].(string), "is readable by S-1-1-0 (Everyone)") {
		t.Errorf("log %v, want a warning that it was made private", recs)
	}
	for _, r := range recs {
		if r["level"] == "ERROR" {
			t.Errorf("logged %v", r)
		}
	}
	if !wintest.IsWine() {
		sd, err := readSD(state)
		if err != nil {
			t.Fatal(err)
		}
		if p := judgeRead(sd, mustTrust(t), kindDir); p != "" {
			t.Errorf("after MkdirState the folder %s", p)
		}
	}
}

// TestWindowsPlantedMovedAside: seen as SYSTEM, everything this user put
// in a folder is someone else's: plantedIn lists the top entries (not
// what is in a planted folder), and adoptFolder moves them aside, unread,
// into NAME.untrusted-... beside it.
func TestWindowsPlantedMovedAside(t *testing.T) {
	if mustTrust(t).self == sidSystem {
		t.Skip("running as SYSTEM: everything here is SYSTEM's")
	}
	base := wintest.TempDir(t)
	state := filepath.Join(base, "mamori")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	files := fill(t, state)
	planted, err := plantedIn(state, trustSet{self: sidSystem})
	if err != nil {
		t.Fatal(err)
	}
	if len(planted) != 3 { // audit.jsonl, report (not report\q.jsonl), token
		t.Fatalf("planted %v, want the three top entries", planted)
	}
	if p, err := plantedIn(state, mustTrust(t)); err != nil || len(p) != 0 {
		t.Errorf("plantedIn(as this user) = %v, %v", p, err)
	}
	// adoptFolder as SYSTEM: made private (SYSTEM and Administrators,
	// which this process is only when elevated, or under Wine), then
	// what was planted moved aside.
	if !wintest.IsWine() && !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("making the folder SYSTEM's and Administrators' locks this unelevated process out")
	}
	if err := os.WriteFile(filepath.Join(state, "report", "more"), []byte("y"), 0o600); err != nil {
		t.Fatal(err)
	}
	log, records := logRecords(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	planted, q, err := adoptFolder(state, trustSet{self: sidSystem}, log, now, "lets S-1-5-32-545 (Users) write it")
	if err != nil {
		t.Fatalf("adoptFolder: %v", err)
	}
	if want := filepath.Join(base, "mamori.untrusted-20260304T050607"); !strings.EqualFold(q, want) || len(planted) != 3 {
		t.Errorf("adoptFolder moved %v to %s, want the three top entries to %s", planted, q, want)
	}
	files[filepath.Join("report", "more")] = "y"
	for name, body := range files {
		if b, err := os.ReadFile(filepath.Join(q, name)); err != nil || string(b) != body {
			t.Errorf("%s moved aside to %s: %q, %v", name, q, b, err)
		}
	}
	if ents, err := os.ReadDir(state); err != nil || len(ents) != 0 {
		t.Errorf("left in the folder: %v, %v", ents, err)
	}
	recs := records()
	if len(recs) != 2 || recs[0]["level"] != "WARN" || recs[1]["level"] != "ERROR" || !strings.EqualFold(recs[1]["moved_to"].(string), q) ||
		!strings.Contains(recs[1]["entries"].(string), "token") {
		t.Errorf("log %v, want a warning (made private) and an error (what was moved where)", recs)
	}
}
