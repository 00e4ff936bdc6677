package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func kinds(ds []Damage) []DamageKind {
	var out []DamageKind
	for _, d := range ds {
		out = append(out, d.Kind)
	}
	return out
}

func wantKinds(t *testing.T, what string, got []Damage, want ...DamageKind) {
	t.Helper()
	if fmt.Sprint(kinds(got)) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want kinds %v", what, got, want)
	}
}

// TestCutLogIsVisible: every way of cutting the log at rest shows, at
// Open and in Verify.
func TestCutLogIsVisible(t *testing.T) {
	tests := []struct {
		name    string
		cut     func(t *testing.T, dir string)
		kind    DamageKind
		problem string
	}{
		{"head deleted", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, HeadName))
		}, DamageHeadMissing, "no head file"},
		{"head and current file's tail deleted", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, HeadName))
			p := filepath.Join(dir, CurrentName)
			writeLines(t, p, readLines(t, p)[:1])
		}, DamageHeadMissing, "no head file"},
		{"head deleted, current file emptied, rotated files left", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, HeadName))
			os.WriteFile(filepath.Join(dir, CurrentName), nil, 0o600)
		}, DamageHeadMissing, "no head file"},
		{"every record deleted", func(t *testing.T, dir string) {
			removeRecords(t, dir)
		}, DamageLogEmptied, "emptied"},
		{"every record and the head deleted, a torn tail left", func(t *testing.T, dir string) {
			removeRecords(t, dir)
			os.Remove(filepath.Join(dir, HeadName))
			os.WriteFile(filepath.Join(dir, CurrentName+".torn-1700000000"), []byte("{"), 0o600)
		}, DamageLogEmptied, "emptied"},
		{"head unreadable", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, HeadName), []byte("junk"), 0o600)
		}, DamageHead, "does not start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := writeLog(t, 30, Options{MaxSize: 2 << 10})
			tt.cut(t, dir)
			rep := mustVerify(t, dir)
			if rep.OK() || !strings.Contains(rep.Problems[len(rep.Problems)-1].Reason, tt.problem) {
				t.Errorf("Verify: %v; want a problem ~%q", rep.Problems, tt.problem)
			}
			l := openLog(t, dir, Options{})
			if d := l.Damaged(); len(d) == 0 || d[0].Kind != tt.kind {
				t.Errorf("Damaged = %v, want %s", d, tt.kind)
			}
		})
	}
}

// removeRecords deletes every file holding records, leaving the head.
func removeRecords(t *testing.T, dir string) {
	t.Helper()
	rotated, _ := listRotated(dir)
	for _, rf := range rotated {
		os.Remove(filepath.Join(dir, rf.name))
	}
	os.WriteFile(filepath.Join(dir, CurrentName), nil, 0o600)
}

// TestNoFalseAlarmAfterCrash: the head exists from Open on, so a crash at
// any point after leaves no head-less log; a head that lags is fine.
func TestNoFalseAlarmAfterCrash(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, HeadName)); err != nil {
		t.Fatalf("no head after Open of a new log: %v", err)
	}
	for i := range 3 {
		l.Append(testEvent(i))
	}
	// Crash before the background writer ran: the head still says 0
	// (as Open wrote it).
	close(l.headKick)
	<-l.headDone
	l.f.Close()
	l.lock.Close()
	os.WriteFile(filepath.Join(dir, HeadName), head{0, ZeroHash}.marshal(), 0o600)
	wantOK(t, dir, 3)
	l2 := openLog(t, dir, Options{})
	if d := l2.Damaged(); d != nil {
		t.Errorf("Damaged after a crash = %v", d)
	}
	// A fresh log that was opened and closed without records is no
	// damage either, at Open or in Verify.
	fresh := t.TempDir()
	openLog(t, fresh, Options{}).Close()
	l3 := openLog(t, fresh, Options{})
	if d := l3.Damaged(); d != nil {
		t.Errorf("Damaged of an empty log = %v", d)
	}
	l3.Close()
	wantOK(t, fresh, 0)
}

func TestVerifyAllProblems(t *testing.T) {
	dir, recs := writeLog(t, 40, Options{MaxSize: 4 << 10})
	rotated, _ := listRotated(dir)
	if len(rotated) < 2 {
		t.Fatalf("%d rotated files", len(rotated))
	}
	// An edit in the first file, a deletion in the second, garbage and
	// an edit in the current file.
	edit := func(name string, f func(l [][]byte) [][]byte) {
		p := filepath.Join(dir, name)
		writeLines(t, p, f(readLines(t, p)))
	}
	edit(rotated[0].name, func(l [][]byte) [][]byte {
		l[1] = []byte(strings.Replace(string(l[1]), `"1-2"`, `"1-X"`, 1))
		return l
	})
	edit(rotated[1].name, func(l [][]byte) [][]byte { return append(l[:1], l[2:]...) })
	edit(CurrentName, func(l [][]byte) [][]byte {
		l[0] = []byte("garbage\n")
		l[len(l)-1] = []byte(strings.Replace(string(l[len(l)-1]), `"0781"`, `"0000"`, 1))
		return l
	})
	rep := mustVerify(t, dir)
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.File+": "+p.Reason)
	}
	want := []string{"edited", "missing", "not a record", "edited"}
	if len(rep.Problems) != len(want) {
		t.Fatalf("%d problems, want %d:\n%s", len(rep.Problems), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(rep.Problems[i].Reason, w) {
			t.Errorf("problem %d = %s, want ~%q", i, got[i], w)
		}
	}
	if rep.Problem != &rep.Problems[0] || rep.Records != 1 || rep.LastSeq != 1 {
		t.Errorf("Problem %v, Records %d, LastSeq %d; want the first problem after 1 record", rep.Problem, rep.Records, rep.LastSeq)
	}
	if rep.EndSeq != 40 || rep.EndHash != recs[39].Hash || rep.Read != 38 {
		t.Errorf("EndSeq %d, Read %d; want 40 and 38 (one deleted, one garbage)", rep.EndSeq, rep.Read)
	}
}

func TestVerifyProblemsBounded(t *testing.T) {
	dir, _ := writeLog(t, 2, Options{})
	p := filepath.Join(dir, CurrentName)
	lines := readLines(t, p)
	for range MaxProblems + 50 {
		lines = append(lines, []byte("x\n"))
	}
	writeLines(t, p, lines)
	rep := mustVerify(t, dir)
	// The garbage lines, then the head (seq 2) is fine: 1050 problems.
	if len(rep.Problems) != MaxProblems || rep.MoreProblems != 50 {
		t.Errorf("%d problems + %d more, want %d + 50", len(rep.Problems), rep.MoreProblems, MaxProblems)
	}
}

func TestParseAnchor(t *testing.T) {
	h := strings.Repeat("ab", 32)
	if a, err := ParseAnchor("12:" + strings.ToUpper(h)); err != nil || a != (Anchor{12, h}) {
		t.Errorf("ParseAnchor = %+v, %v", a, err)
	}
	if a, err := ParseAnchor((Anchor{7, h}).String()); err != nil || a.Seq != 7 {
		t.Errorf("round trip = %+v, %v", a, err)
	}
	for _, bad := range []string{"", "12", ":" + h, "x:" + h, "-1:" + h, "12:" + h[:63], "12:" + h + "0",
		"99999999999999999999:" + h, "0:" + h, "1:" + strings.Repeat("g", 64)} {
		if a, err := ParseAnchor(bad); err == nil {
			t.Errorf("ParseAnchor(%q) = %+v, want an error", bad, a)
		}
	}
}

func TestVerifyFromAnchor(t *testing.T) {
	dir, recs := writeLog(t, 60, Options{MaxSize: 4 << 10})
	rotated, _ := listRotated(dir)
	if len(rotated) < 4 {
		t.Fatalf("%d rotated files", len(rotated))
	}
	// Archive the first two files away; the anchor is the last record
	// of the second.
	anchorSeq := rotated[2].firstSeq - 1
	anchor := Anchor{anchorSeq, recs[anchorSeq-1].Hash}
	for _, rf := range rotated[:2] {
		os.Remove(filepath.Join(dir, rf.name))
	}
	if rep := mustVerify(t, dir); rep.OK() {
		t.Fatal("Verify from seq 1 accepted a log without its first files")
	}
	rep, err := VerifyWith(dir, VerifyOptions{From: &anchor})
	if err != nil || !rep.OK() {
		t.Fatalf("VerifyWith(anchor %v) = %v, %v", anchor, rep.Problems, err)
	}
	if rep.Records != 60-int(anchorSeq) || rep.LastSeq != 60 || rep.Files != len(rotated)-2+1 {
		t.Errorf("report %+v", rep)
	}
	// An anchor inside a present file: earlier records there are not
	// checked, the anchor's record must match.
	mid := Anchor{anchorSeq + 3, recs[anchorSeq+2].Hash}
	if rep, err := VerifyWith(dir, VerifyOptions{From: &mid}); err != nil || !rep.OK() || rep.Records != 60-int(mid.Seq) {
		t.Errorf("VerifyWith(mid anchor) = %+v, %v", rep.Problems, err)
	}
	wrong := Anchor{anchorSeq + 3, recs[0].Hash}
	rep, _ = VerifyWith(dir, VerifyOptions{From: &wrong})
	if rep.OK() || !strings.Contains(rep.Problem.Reason, "anchor") {
		t.Errorf("VerifyWith(wrong hash) problems %v", rep.Problems)
	}
	// The anchor's own file gone too: the next record must chain to it.
	wrongPrev := Anchor{anchorSeq, recs[0].Hash}
	rep, _ = VerifyWith(dir, VerifyOptions{From: &wrongPrev})
	if rep.OK() || !strings.Contains(rep.Problem.Reason, "prev_hash does not match the anchor") {
		t.Errorf("VerifyWith(wrong prev) problems %v", rep.Problems)
	}
	// Records after the anchor missing.
	os.Remove(filepath.Join(dir, rotated[2].name))
	rep, _ = VerifyWith(dir, VerifyOptions{From: &anchor})
	if rep.OK() || !strings.Contains(rep.Problem.Reason, "are missing") {
		t.Errorf("VerifyWith after removing the file after the anchor: %v", rep.Problems)
	}
	beyond := Anchor{100, recs[0].Hash}
	rep, _ = VerifyWith(dir, VerifyOptions{From: &beyond})
	if rep.OK() || !strings.Contains(rep.Problems[len(rep.Problems)-1].Reason, "before the anchor") {
		t.Errorf("VerifyWith(anchor past the end): %v", rep.Problems)
	}
}

// TestCheck: what happens to the log's files while it is open is found by
// Check, once, and recording continues with the break visible to Verify.
func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		do    func(t *testing.T, dir string)
		kind  DamageKind
		probs []string
	}{
		{"truncated", func(t *testing.T, dir string) {
			p := filepath.Join(dir, CurrentName)
			writeLinesInPlace(t, p, readLines(t, p)[:2])
		}, DamageTruncated, []string{"records 3 to 4 are missing"}},
		{"truncated mid-line", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, CurrentName), 30)
		}, DamageTruncated, []string{"not a record", "starts at seq 5"}},
		{"grown", func(t *testing.T, dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, CurrentName), os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString(`{"forged":1}`)
			f.Close()
		}, DamageGrown, []string{"not a record"}},
		{"deleted", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, CurrentName))
		}, DamageFileMissing, []string{"starts at seq 5"}},
		{"replaced", func(t *testing.T, dir string) {
			p := filepath.Join(dir, CurrentName)
			lines := readLines(t, p)
			os.Remove(p)
			writeLines(t, p, lines[:1])
		}, DamageFileReplaced, []string{"records 2 to 4 are missing"}},
		{"dir deleted", func(t *testing.T, dir string) {
			os.RemoveAll(dir)
		}, DamageDirMissing, []string{"starts at seq 5"}},
		{"dir moved and replaced", func(t *testing.T, dir string) {
			os.Rename(dir, dir+".old")
			os.Mkdir(dir, 0o700)
		}, DamageDirReplaced, []string{"starts at seq 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			// SyncHead: no background head write races with the
			// tampering below (RemoveAll failed on its temp file).
			l := openLog(t, dir, Options{SyncHead: true})
			for i := range 4 {
				l.Append(testEvent(i))
			}
			if d := l.Check(); d != nil {
				t.Fatalf("Check before = %v", d)
			}
			tt.do(t, dir)
			wantKinds(t, "Check", l.Check(), tt.kind)
			if d := l.Check(); d != nil {
				t.Errorf("second Check = %v, want nothing new", d)
			}
			if r, err := l.Append(testEvent(5)); err != nil || r.Seq != 5 {
				t.Fatalf("Append after = %+v, %v", r, err)
			}
			if d := l.TakeDamage(); d != nil {
				t.Errorf("TakeDamage = %v, want nothing new", d)
			}
			wantKinds(t, "Damaged", l.Damaged(), tt.kind)
			if l.ReserveErr() == nil {
				// The spare is made again where the log now is.
				for _, name := range []string{SpareName, UnwrittenName} {
					if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
						t.Errorf("after recovery: %v", err)
					}
				}
			}
			l.Close()
			fi, err := os.Stat(dir)
			if err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("state dir %v, %v", fi, err)
			}
			rep := mustVerify(t, dir)
			var got []string
			for _, p := range rep.Problems {
				got = append(got, p.String())
			}
			if len(got) != len(tt.probs) {
				t.Fatalf("problems:\n%s\nwant %q", strings.Join(got, "\n"), tt.probs)
			}
			for i, w := range tt.probs {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %s, want ~%q", got[i], w)
				}
			}
			if rep.EndSeq != 5 {
				t.Errorf("log ends at seq %d, want 5", rep.EndSeq)
			}
		})
	}
}

// writeLinesInPlace rewrites the file without replacing it (same inode).
func writeLinesInPlace(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		f.Write(l)
	}
}

// TestAppendChecks: Append finds damage without Check; TakeDamage hands
// it out once.
func TestAppendChecks(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	l.Append(testEvent(1))
	os.Remove(filepath.Join(dir, CurrentName))
	if r, err := l.Append(testEvent(2)); err != nil || r.Seq != 2 {
		t.Fatalf("Append = %+v, %v", r, err)
	}
	wantKinds(t, "TakeDamage", l.TakeDamage(), DamageFileMissing)
	if d := l.TakeDamage(); d != nil {
		t.Errorf("second TakeDamage = %v", d)
	}
	if d := l.Check(); d != nil {
		t.Errorf("Check = %v", d)
	}
}

func TestReadBack(t *testing.T) {
	dir, recs := writeLog(t, 60, Options{MaxSize: 4 << 10})
	rotated, _ := listRotated(dir)
	isStart := func(seq uint64) func([]byte) bool {
		return func(line []byte) bool { return strings.HasPrefix(string(line), fmt.Sprintf(`{"seq":%d,`, seq)) }
	}
	for _, from := range []uint64{60, 55, 30, 1} {
		es, d, err := ReadBack(dir, isStart(from))
		if err != nil || d != nil {
			t.Fatalf("ReadBack from %d: %v, %v", from, d, err)
		}
		if len(es) != int(61-from) || es[0].Seq != from || es[len(es)-1].Hash != recs[59].Hash {
			t.Fatalf("ReadBack from %d: %d entries from %d", from, len(es), es[0].Seq)
		}
		for i, e := range es {
			if e.Seq != from+uint64(i) || e.Hash != recs[e.Seq-1].Hash || e.Line[len(e.Line)-1] != '}' {
				t.Fatalf("entry %d = %d %s %q", i, e.Seq, e.Hash, e.Line)
			}
		}
	}
	// The last match wins; no match returns everything.
	es, _, _ := ReadBack(dir, func(line []byte) bool { return strings.Contains(string(line), `"type":"violation"`) })
	if len(es) != 1 || es[0].Seq != 60 {
		t.Errorf("last violation: %d entries from %d", len(es), es[0].Seq)
	}
	es, _, _ = ReadBack(dir, func([]byte) bool { return false })
	if len(es) != 60 || es[0].Seq != 1 {
		t.Errorf("no match: %d entries", len(es))
	}
	// Files older than the start are not read: garbage there is not seen.
	os.WriteFile(filepath.Join(dir, rotated[0].name), []byte("garbage\n"), 0o600)
	if es, d, err := ReadBack(dir, isStart(50)); err != nil || d != nil || len(es) != 11 {
		t.Errorf("ReadBack past a broken old file: %d entries, %v, %v", len(es), d, err)
	}
	// Damage within what is returned is reported, and the rest kept.
	p := filepath.Join(dir, CurrentName)
	lines := readLines(t, p)
	lines[1] = []byte(strings.Replace(string(lines[1]), `"0781"`, `"0000"`, 1))
	lines = append(lines[:3], lines[4:]...)
	lines = append(lines, []byte(`{"seq":61,"prev`)) // a torn tail: skipped
	writeLines(t, p, lines)
	es, d, err := ReadBack(dir, isStart(50))
	if err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "ReadBack damage", d, DamageBadRecord, DamageChainBroken)
	if len(es) != 10 || es[len(es)-1].Seq != 60 {
		t.Errorf("%d entries", len(es))
	}
	// A read-back of more than the limit returns the newest records.
	old := readBackLimit
	readBackLimit = 3000
	defer func() { readBackLimit = old }()
	es, _, err = ReadBack(dir, func([]byte) bool { return false })
	if !errors.Is(err, ErrReadBackLimit) || len(es) == 0 || es[len(es)-1].Seq != 60 {
		t.Errorf("over the limit: %d entries, %v", len(es), err)
	}
	var n int
	for _, e := range es {
		n += len(e.Line)
	}
	if n > 3000 {
		t.Errorf("returned %d bytes, limit 3000", n)
	}
	// Then Open on the same directory works as usual.
	l := openLog(t, dir, Options{})
	if r, err := l.Append(testEvent(61)); err != nil || r.Seq != 61 {
		t.Errorf("Append after ReadBack: %+v, %v", r, err)
	}
}

// TestCheckRefusesUnsafeReplacementDir: a directory put at the state path
// while the log is open that others can write (here 0777) is never written
// to; records go on into the file opened before, which moved with the old
// directory, and the damage is reported once.
func TestCheckRefusesUnsafeReplacementDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l := openLog(t, dir, Options{})
	for i := range 3 {
		l.Append(testEvent(i))
	}
	// Made aside and renamed in, as an attacker would: never a moment
	// when the path holds a safe directory.
	swap := dir + ".swap"
	if err := os.Mkdir(swap, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(swap, 0o777)
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(swap, dir); err != nil {
		t.Fatal(err)
	}
	wantKinds(t, "Check", l.Check(), DamageDirReplaced)
	if r, err := l.Append(testEvent(4)); err != nil || r.Seq != 4 {
		t.Fatalf("Append after = %+v, %v", r, err)
	}
	if d := l.Check(); d != nil {
		t.Errorf("second Check = %v, want nothing new", d)
	}
	l.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the unsafe directory was written to: %v", entries)
	}
	if lines := readLines(t, filepath.Join(dir+".old", CurrentName)); len(lines) != 4 {
		t.Errorf("the moved log has %d records, want 4", len(lines))
	}
}
