package fsguard

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// These run on Windows and under Wine 8.0: a squatted state folder held
// open so that it cannot be moved aside (takeback.go, "An alternate
// state folder").

// holdFolder opens the folder p as a user keeping it from being moved
// would (wintest.HoldFolder). It returns the function that lets go.
func holdFolder(t *testing.T, p string) func() {
	t.Helper()
	return wintest.HoldFolder(t, p)
}

// alternates lists the NAME.alternate-* entries beside path.
func alternates(t *testing.T, path string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), filepath.Base(path)+alternateTag) {
			out = append(out, filepath.Join(filepath.Dir(path), e.Name()))
		}
	}
	return out
}

// str is the log record's value for key as text ("" when absent).
func str(r map[string]any, key string) string {
	s, _ := r[key].(string)
	return s
}

// counter is a random source giving 1, 2, 3, ... in the last byte.
func counter() func([]byte) (int, error) {
	var n byte
	return func(b []byte) (int, error) {
		clear(b)
		n++
		b[len(b)-1] = n
		return len(b), nil
	}
}

// squat makes path a folder anyone may change, with an audit log, a
// token and a queue in it: one the agent takes back.
func squat(t *testing.T, path string) map[string]string {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	files := fill(t, path)
	wintest.SetDACL(t, path, "D:P(A;OICI;FA;;;WD)")
	return files
}

// TestWindowsPrepareStateHeld: a squatted state folder held open without
// FILE_SHARE_DELETE cannot be moved aside. PrepareState does not fail: it
// makes a private alternate folder beside it (the squatted folder and
// what is in it left as they were, unread), logs at Error, and says why
// in a finding. The next start while it is still held uses the same
// alternate (what was recorded there goes on), and says so again. Once
// the folder is let go, the next start moves it aside and the alternate
// back in its place, with what is in it: the configured folder is in use
// again and no alternate is left.
func TestWindowsPrepareStateHeld(t *testing.T) {
	base := wintest.TempDir(t)
	state := filepath.Join(base, "mamori")
	files := squat(t, state)
	release := holdFolder(t, state)
	ts := mustTrust(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	random := counter()

	log, records := logRecords(t)
	sd, err := prepareStateAs(state, ts, log, now, random)
	if err != nil {
		t.Fatalf("prepareStateAs with the folder held: %v", err)
	}
	alt := filepath.Join(base, "mamori.alternate-20260304T050607-0000000000000001")
	if !sd.Alternate || !strings.EqualFold(sd.Path, alt) || sd.Configured != state {
		t.Fatalf("StateDir %+v, want the alternate %s", sd, alt)
	}
	if len(sd.Findings) != 1 || !strings.EqualFold(sd.Findings[0].Path, state) ||
		!strings.Contains(sd.Findings[0].Problem, "S-1-1-0 (Everyone)") ||
		!strings.Contains(sd.Findings[0].Done, "moving it aside failed") || !strings.Contains(sd.Findings[0].Done, sd.Path) {
		t.Errorf("findings %+v, want the folder, why it is not trusted, that it could not be moved and where the agent records", sd.Findings)
	}
	t.Logf("finding: %s", sd.Findings[0])
	if err := CheckDir(sd.Path); err != nil {
		t.Errorf("CheckDir(alternate) = %v", err)
	}
	if everyoneWrites(t, sd.Path) {
		t.Errorf("the alternate lets Everyone write")
	}
	if ents, err := os.ReadDir(sd.Path); err != nil || len(ents) != 0 {
		t.Errorf("the alternate holds %v, %v; want it new and empty", ents, err)
	}
	for name, body := range files {
		if b, err := os.ReadFile(filepath.Join(state, name)); err != nil || string(b) != body {
			t.Errorf("%s in the held folder: %q, %v; want it left as it was", name, b, err)
		}
	}
	if a := asides(t, state); len(a) != 0 {
		t.Errorf("moved aside: %v", a)
	}
	var said bool
	for _, r := range records() {
		if r["level"] == "ERROR" && strings.Contains(str(r, "msg"), "alternate") {
			said = strings.EqualFold(str(r, "alternate"), sd.Path) && strings.Contains(str(r, "why"), "Everyone") &&
				strings.Contains(str(r, "err"), "moving it aside failed")
		}
	}
	if !said {
		t.Errorf("log %v: want an error naming the folder, the alternate, why and what failed", records())
	}

	// What the agent records there goes on at the next start.
	if err := os.WriteFile(filepath.Join(sd.Path, "audit.jsonl"), []byte("the agent's record\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log, records = logRecords(t)
	sd2, err := prepareStateAs(state, ts, log, now.Add(time.Hour), random)
	if err != nil {
		t.Fatalf("prepareStateAs, still held: %v", err)
	}
	if !sd2.Alternate || !strings.EqualFold(sd2.Path, sd.Path) || len(sd2.Findings) != 1 {
		t.Errorf("still held: %+v, want the same alternate %s and the finding again", sd2, sd.Path)
	}
	if a := alternates(t, state); len(a) != 1 {
		t.Errorf("alternates %v, want the one", a)
	}
	said = false
	for _, r := range records() {
		said = said || (r["level"] == "ERROR" && strings.EqualFold(str(r, "alternate"), sd.Path))
	}
	if !said {
		t.Errorf("still held: log %v, want the error again", records())
	}

	// Let go: taken back, and the alternate is the state folder again.
	release()
	log, records = logRecords(t)
	sd3, err := prepareStateAs(state, ts, log, now.Add(2*time.Hour), random)
	if err != nil {
		t.Fatalf("prepareStateAs, let go: %v", err)
	}
	if sd3.Alternate || sd3.Path != state {
		t.Errorf("let go: %+v, want the state folder", sd3)
	}
	moved := asides(t, state)
	if len(moved) != 1 || len(sd3.Findings) != 1 || !strings.Contains(sd3.Findings[0].Done, "moved aside unread to "+moved[0]) {
		t.Fatalf("let go: moved aside %v, findings %+v; want the folder moved aside and said so", moved, sd3.Findings)
	}
	for name, body := range files {
		if b, err := os.ReadFile(filepath.Join(moved[0], name)); err != nil || string(b) != body {
			t.Errorf("%s moved aside: %q, %v", name, b, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(state, "audit.jsonl")); err != nil || string(b) != "the agent's record\n" {
		t.Errorf("the state folder's audit log: %q, %v; want the alternate's", b, err)
	}
	if _, err := os.Stat(filepath.Join(state, "token")); err == nil {
		t.Errorf("the planted token is in the state folder")
	}
	if a := alternates(t, state); len(a) != 0 {
		t.Errorf("alternates left: %v", a)
	}
	if err := CheckDir(state); err != nil {
		t.Errorf("CheckDir(state) = %v", err)
	}
	var back bool
	for _, r := range records() {
		back = back || (r["level"] == "WARN" && strings.Contains(str(r, "msg"), "back in its place"))
	}
	if !back {
		t.Errorf("log %v: want a warning that the alternate is back", records())
	}

	// And the start after keeps it, without a word at Error.
	log, records = logRecords(t)
	if sd4, err := prepareStateAs(state, ts, log, now.Add(3*time.Hour), random); err != nil || sd4.Alternate || len(sd4.Findings) != 0 {
		t.Errorf("the start after: %+v, %v", sd4, err)
	}
	for _, r := range records() {
		if r["level"] == "ERROR" || r["level"] == "WARN" {
			t.Errorf("the start after logged %v", r)
		}
	}
}

// TestWindowsPrepareStateForeignAlternate: a folder named like an
// alternate that someone else could change (made by them, newer than the
// agent's) is never used nor read: the agent's own alternate is.
func TestWindowsPrepareStateForeignAlternate(t *testing.T) {
	base := wintest.TempDir(t)
	state := filepath.Join(base, "mamori")
	squat(t, state)
	holdFolder(t, state)
	ts := mustTrust(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	log, _ := logRecords(t)
	sd, err := prepareStateAs(state, ts, log, now, counter())
	if err != nil || !sd.Alternate {
		t.Fatalf("prepareStateAs: %+v, %v", sd, err)
	}
	decoy := filepath.Join(base, "mamori.alternate-20300101T000000-ffffffffffffffff")
	if err := os.Mkdir(decoy, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(decoy, "audit.jsonl"), []byte("planted\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wintest.SetDACL(t, decoy, "D:P(A;OICI;FA;;;WD)")
	log, records := logRecords(t)
	sd2, err := prepareStateAs(state, ts, log, now.Add(time.Hour), counter())
	if err != nil || !strings.EqualFold(sd2.Path, sd.Path) {
		t.Fatalf("with a decoy: %+v, %v; want the agent's alternate %s", sd2, err, sd.Path)
	}
	var warned bool
	for _, r := range records() {
		warned = warned || (r["level"] == "WARN" && strings.Contains(str(r, "folders"), decoy))
	}
	if !warned {
		t.Errorf("log %v: want a warning naming the decoy", records())
	}
	if b, err := os.ReadFile(filepath.Join(decoy, "audit.jsonl")); err != nil || string(b) != "planted\n" {
		t.Errorf("the decoy changed: %q, %v", b, err)
	}
	if st, err := FindState(state); err != nil || !strings.EqualFold(st.Path, sd.Path) {
		t.Errorf("FindState with a decoy: %+v, %v; want %s", st, err, sd.Path)
	}
}

// TestWindowsPrepareStateMissingWithAlternate: a state folder removed
// (by an administrator, say) while the agent recorded in an alternate:
// the alternate goes back in its place at the next start.
func TestWindowsPrepareStateMissingWithAlternate(t *testing.T) {
	base := wintest.TempDir(t)
	state := filepath.Join(base, "mamori")
	ts := mustTrust(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	alt, err := mkdirAlternate(base, "mamori", ts, now, counter())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(alt, "audit.jsonl"), []byte("kept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := FindState(state); err != nil || !st.Alternate || !strings.EqualFold(st.Path, alt) {
		t.Errorf("FindState(missing, with an alternate) = %+v, %v; want %s", st, err, alt)
	}
	log, _ := logRecords(t)
	sd, err := prepareStateAs(state, ts, log, now, counter())
	if err != nil || sd.Alternate || sd.Path != state || len(sd.Findings) != 0 {
		t.Fatalf("prepareStateAs = %+v, %v; want the state folder, nothing found", sd, err)
	}
	if b, err := os.ReadFile(filepath.Join(state, "audit.jsonl")); err != nil || string(b) != "kept\n" {
		t.Errorf("the state folder's audit log: %q, %v; want the alternate's", b, err)
	}
	if a := alternates(t, state); len(a) != 0 {
		t.Errorf("alternates left: %v", a)
	}
}

// TestWindowsMkdirAlternateTaken: a name someone made first is drawn
// again; the one made is private, and a random source that fails is an
// error, never a guessable name.
func TestWindowsMkdirAlternateTaken(t *testing.T) {
	base := wintest.TempDir(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	first := filepath.Join(base, "mamori.alternate-20260304T050607-0000000000000001")
	if err := os.Mkdir(first, 0o777); err != nil {
		t.Fatal(err)
	}
	alt, err := mkdirAlternate(base, "mamori", mustTrust(t), now, counter())
	if want := filepath.Join(base, "mamori.alternate-20260304T050607-0000000000000002"); err != nil || !strings.EqualFold(alt, want) {
		t.Errorf("mkdirAlternate = %q, %v; want %s", alt, err, want)
	}
	if err := CheckDir(alt); err != nil {
		t.Errorf("CheckDir(alternate) = %v", err)
	}
	broken := func([]byte) (int, error) { return 0, errors.New("no entropy") }
	if _, err := mkdirAlternate(base, "mamori", mustTrust(t), now, broken); err == nil || !strings.Contains(err.Error(), "no entropy") {
		t.Errorf("mkdirAlternate with a failing random source = %v", err)
	}
}

// TestWindowsFindState: what audit verify reads. A private state folder
// is itself; one the agent would take back, with no alternate beside it,
// is an error saying why; with the agent's alternate beside it, the
// alternate and why.
func TestWindowsFindState(t *testing.T) {
	base := wintest.TempDir(t)
	state := filepath.Join(base, "mamori")
	if st, err := FindState(state); err != nil || st.Path != state || st.Alternate {
		t.Errorf("FindState(missing) = %+v, %v", st, err)
	}
	if err := MkdirAll(state); err != nil {
		t.Fatal(err)
	}
	if st, err := FindState(state); err != nil || st.Path != state || st.Alternate || len(st.Findings) != 0 {
		t.Errorf("FindState(private) = %+v, %v", st, err)
	}
	wintest.SetDACL(t, state, "D:P(A;OICI;FA;;;WD)")
	if st, err := FindState(state); err == nil || !strings.Contains(err.Error(), "Everyone") || !strings.Contains(err.Error(), "no alternate") || st.Path != "" {
		t.Errorf("FindState(untrusted, no alternate) = %+v, %v", st, err)
	}
	alt, err := mkdirAlternate(base, "mamori", mustTrust(t), time.Now(), counter())
	if err != nil {
		t.Fatal(err)
	}
	st, err := FindState(state)
	if err != nil || !st.Alternate || !strings.EqualFold(st.Path, alt) || len(st.Findings) != 1 || !strings.Contains(st.Findings[0].Problem, "Everyone") {
		t.Errorf("FindState(untrusted, an alternate) = %+v, %v; want %s and why", st, err, alt)
	}
}
