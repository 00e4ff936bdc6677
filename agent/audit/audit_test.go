package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// event is shaped like the agent's audit events: every record names what
// it is about.
type event struct {
	Time      time.Time  `json:"time"`
	Type      string     `json:"type"`
	Path      string     `json:"path,omitempty"`
	VendorID  string     `json:"vendor_id,omitempty"`
	ProductID string     `json:"product_id,omitempty"`
	Serial    *string    `json:"serial,omitempty"`
	Violation *violation `json:"violation,omitempty"`
	Message   string     `json:"message,omitempty"`
}

type violation struct {
	Kind string `json:"kind"`
}

func testEvent(i int) event {
	serial := fmt.Sprintf("SN%04d\n\"quoted\"", i)
	e := event{
		Time:      time.Date(2025, 4, 1, 9, 0, i, 0, time.UTC),
		Type:      "device_added",
		Path:      fmt.Sprintf("1-%d", i),
		VendorID:  "0781",
		ProductID: "5581",
		Serial:    &serial,
		Message:   "USB メモリ",
	}
	if i%3 == 0 {
		e.Type = "violation"
		e.Violation = &violation{Kind: "unapproved_device"}
	}
	return e
}

func openLog(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// writeLog appends n events to a fresh log in a new directory and closes
// it.
func writeLog(t testing.TB, n int, opts Options) (string, []Record) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	l := openLog(t, dir, opts)
	var recs []Record
	for i := 1; i <= n; i++ {
		r, err := l.Append(testEvent(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		recs = append(recs, r)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return dir, recs
}

func mustVerify(t *testing.T, dir string) Report {
	t.Helper()
	rep, err := Verify(dir)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func wantOK(t *testing.T, dir string, records int) Report {
	t.Helper()
	rep := mustVerify(t, dir)
	if !rep.OK() {
		t.Fatalf("Verify: %v", rep.Problem)
	}
	if rep.Records != records || rep.LastSeq != uint64(records) {
		t.Fatalf("Verify: %d records, last seq %d; want %d", rep.Records, rep.LastSeq, records)
	}
	return rep
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFormat checks the line format against the documented rule with an
// independent computation.
func TestFormat(t *testing.T) {
	dir, recs := writeLog(t, 3, Options{})
	lines := readLines(t, filepath.Join(dir, CurrentName))
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	prev := strings.Repeat("0", 64)
	for i, line := range lines {
		s := strings.TrimSuffix(string(line), "\n")
		wantPrefix := fmt.Sprintf(`{"seq":%d,"prev_hash":"%s","time":"2025-04-01T09:00:0%dZ","type":`, i+1, prev, i+1)
		if !strings.HasPrefix(s, wantPrefix) {
			t.Fatalf("line %d = %s\nwant prefix %s", i+1, s, wantPrefix)
		}
		k := strings.LastIndex(s, `,"hash":"`)
		content := s[:k] + "}"
		sum := sha256.Sum256([]byte(prev + content))
		want := hex.EncodeToString(sum[:])
		if s[k:] != `,"hash":"`+want+`"}` {
			t.Fatalf("line %d hash part %s, want %s", i+1, s[k:], want)
		}
		if recs[i].Hash != want || recs[i].Seq != uint64(i+1) {
			t.Fatalf("Append returned %+v, want seq %d hash %s", recs[i], i+1, want)
		}
		for _, key := range []string{`"path":"1-`, `"vendor_id":"0781"`, `"product_id":"5581"`, `"serial":"SN000`} {
			if !strings.Contains(s, key) {
				t.Errorf("line %d lacks %s", i+1, key)
			}
		}
		prev = want
	}
	if !strings.Contains(string(lines[2]), `"violation":{"kind":"unapproved_device"}`) {
		t.Errorf("line 3 lacks the violation kind: %s", lines[2])
	}
	head, err := os.ReadFile(filepath.Join(dir, HeadName))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`{"seq":3,"hash":"%s"}`+"\n", prev); string(head) != want {
		t.Errorf("head = %q, want %q", head, want)
	}
	for name, want := range map[string]os.FileMode{".": 0o700, CurrentName: 0o600, HeadName: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
}

func TestAppendVerify(t *testing.T) {
	dir, recs := writeLog(t, 20, Options{})
	rep := wantOK(t, dir, 20)
	if rep.LastHash != recs[19].Hash || rep.Files != 1 || rep.HeadSeq != 20 {
		t.Errorf("report %+v, want last hash %s, 1 file, head 20", rep, recs[19].Hash)
	}
}

func TestEmptyRecord(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	for _, rec := range []any{struct{}{}, map[string]int{}, map[string]int{"a": 1}} {
		if _, err := l.Append(rec); err != nil {
			t.Fatalf("Append(%#v): %v", rec, err)
		}
	}
	l.Close()
	wantOK(t, dir, 3)
}

// rehash rewrites line so that its hash matches its (edited) content and
// the given prev hash, as a forger would.
func rehash(t *testing.T, line []byte) []byte {
	t.Helper()
	p, err := parseLine(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		t.Fatalf("rehash: %v", err)
	}
	sum := sha256.Sum256(append([]byte(p.prevHash), p.content...))
	return append(append(p.content[:len(p.content)-1:len(p.content)-1], `,"hash":"`+hex.EncodeToString(sum[:])+`"}`...), '\n')
}

func TestVerifyDetects(t *testing.T) {
	const n = 10
	tests := []struct {
		name   string
		edit   func(t *testing.T, lines [][]byte) [][]byte
		noHead bool
		line   int
		seq    uint64
		reason string
	}{
		{"edited middle record", func(t *testing.T, l [][]byte) [][]byte {
			l[4] = bytes.Replace(l[4], []byte(`"1-5"`), []byte(`"1-6"`), 1)
			return l
		}, false, 5, 5, "edited"},
		{"edited last record", func(t *testing.T, l [][]byte) [][]byte {
			l[9] = bytes.Replace(l[9], []byte(`"0781"`), []byte(`"0782"`), 1)
			return l
		}, false, 10, 10, "edited"},
		{"edited last record without head", func(t *testing.T, l [][]byte) [][]byte {
			l[9] = bytes.Replace(l[9], []byte(`SN0010`), []byte(`SN0011`), 1)
			return l
		}, true, 10, 10, "edited"},
		{"reformatted record", func(t *testing.T, l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`,"type":`), []byte(`, "type":`), 1)
			return l
		}, false, 3, 3, "edited"},
		{"edited seq", func(t *testing.T, l [][]byte) [][]byte {
			l[6] = bytes.Replace(l[6], []byte(`{"seq":7,`), []byte(`{"seq":8,`), 1)
			return l
		}, false, 7, 8, "missing"},
		{"edited hash", func(t *testing.T, l [][]byte) [][]byte {
			l[3] = append(bytes.Clone(l[3][:len(l[3])-4]), 'f', '"', '}', '\n')
			return l
		}, false, 4, 4, ""},
		{"deleted middle record", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:4], l[5:]...)
		}, false, 5, 6, "records 5 to 5 are missing"},
		{"deleted first record", func(t *testing.T, l [][]byte) [][]byte {
			return l[1:]
		}, false, 1, 2, "starts at seq 2"},
		{"reordered records", func(t *testing.T, l [][]byte) [][]byte {
			l[3], l[4] = l[4], l[3]
			return l
		}, false, 4, 5, "missing"},
		{"repeated record", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:5], l[4:]...)
		}, false, 6, 5, "out of order or repeated"},
		{"final line cut", func(t *testing.T, l [][]byte) [][]byte {
			l[9] = l[9][:40]
			return l
		}, false, 10, 10, "incomplete"},
		{"final newline removed", func(t *testing.T, l [][]byte) [][]byte {
			l[9] = l[9][:len(l[9])-1]
			return l
		}, false, 10, 10, "incomplete"},
		{"last record deleted", func(t *testing.T, l [][]byte) [][]byte {
			return l[:9]
		}, false, 0, 10, "shorter than its head"},
		{"all records deleted", func(t *testing.T, l [][]byte) [][]byte {
			return nil
		}, false, 0, 10, "shorter than its head"},
		{"last record forged and rehashed", func(t *testing.T, l [][]byte) [][]byte {
			l[9] = rehash(t, bytes.Replace(l[9], []byte(`"0781"`), []byte(`"0782"`), 1))
			return l
		}, false, 10, 10, "rewritten"},
		{"inserted garbage line", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:3], append([][]byte{[]byte("hello\n")}, l[3:]...)...)
		}, false, 4, 4, "not a record"},
		{"inserted empty line", func(t *testing.T, l [][]byte) [][]byte {
			return append(l[:3], append([][]byte{[]byte("\n")}, l[3:]...)...)
		}, false, 4, 4, "not a record"},
		{"CRLF line", func(t *testing.T, l [][]byte) [][]byte {
			l[1] = append(bytes.TrimSuffix(l[1], []byte("\n")), '\r', '\n')
			return l
		}, false, 2, 2, "not a record"},
		{"huge line", func(t *testing.T, l [][]byte) [][]byte {
			l[1] = append(bytes.Repeat([]byte("x"), MaxLineSize+10), '\n')
			return l
		}, false, 2, 2, "longer than"},
		{"NUL bytes", func(t *testing.T, l [][]byte) [][]byte {
			l[1] = make([]byte, 300)
			return l
		}, false, 2, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := writeLog(t, n, Options{})
			path := filepath.Join(dir, CurrentName)
			writeLines(t, path, tt.edit(t, readLines(t, path)))
			if tt.noHead {
				os.Remove(filepath.Join(dir, HeadName))
			}
			rep := mustVerify(t, dir)
			p := rep.Problem
			if p == nil {
				t.Fatalf("Verify found nothing: %+v", rep)
			}
			if p.Line != tt.line || p.Seq != tt.seq || !strings.Contains(p.Reason, tt.reason) {
				t.Errorf("Problem %v; want line %d seq %d reason ~%q", p, tt.line, tt.seq, tt.reason)
			}
			wantFile := CurrentName
			if tt.line == 0 {
				wantFile = HeadName
			}
			if p.File != wantFile {
				t.Errorf("Problem in %s, want %s", p.File, wantFile)
			}
			if p.Line > 0 && rep.Records != p.Line-1 {
				t.Errorf("%d records checked out before line %d", rep.Records, p.Line)
			}
		})
	}
}

// TestTrailingDeleteWithoutHead: cutting records off the end and deleting
// the head file too is still seen: a log with records has a head.
func TestTrailingDeleteWithoutHead(t *testing.T) {
	dir, _ := writeLog(t, 5, Options{})
	path := filepath.Join(dir, CurrentName)
	writeLines(t, path, readLines(t, path)[:3])
	os.Remove(filepath.Join(dir, HeadName))
	rep := mustVerify(t, dir)
	if p := rep.Problem; p == nil || p.File != HeadName || !strings.Contains(p.Reason, "no head file") || rep.Records != 3 {
		t.Fatalf("Verify: %+v, problem %v; want the missing head after 3 records", rep, p)
	}
	l := openLog(t, dir, Options{})
	if d := l.Damaged(); len(d) != 1 || d[0].Kind != DamageHeadMissing || d[0].Seq != 3 {
		t.Fatalf("Damaged = %v, want head_missing at seq 3", d)
	}
	l.Close()
	// Open wrote a new head: the damage is reported once, not at every
	// start, and Verify, which has no memory, now accepts the log.
	l = openLog(t, dir, Options{})
	if d := l.Damaged(); d != nil {
		t.Errorf("second Open: Damaged = %v", d)
	}
	l.Close()
	wantOK(t, dir, 3)
}

func TestHeadProblems(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":   "junk",
		"empty":     "",
		"bad hash":  `{"seq":3,"hash":"` + strings.Repeat("G", 64) + `"}` + "\n",
		"long":      strings.Repeat("9", 200),
		"directory": "",
	} {
		t.Run(name, func(t *testing.T) {
			dir, _ := writeLog(t, 3, Options{})
			hp := filepath.Join(dir, HeadName)
			os.Remove(hp)
			if name == "directory" {
				os.Mkdir(hp, 0o700)
			} else {
				os.WriteFile(hp, []byte(content), 0o600)
			}
			rep := mustVerify(t, dir)
			if rep.Problem == nil || rep.Problem.File != HeadName || rep.Records != 3 {
				t.Fatalf("report %+v, problem %v; want a head problem after 3 records", rep, rep.Problem)
			}
			// Open must still work and report it.
			l := openLog(t, dir, Options{})
			if d := l.Damaged(); len(d) != 1 || d[0].Kind != DamageHead {
				t.Errorf("Damaged = %v, want one head damage", d)
			}
			if r, err := l.Append(testEvent(4)); err != nil || r.Seq != 4 {
				t.Errorf("Append = %+v, %v; want seq 4", r, err)
			}
		})
	}
}

func TestVerifyNoLog(t *testing.T) {
	_, err := Verify(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Verify(empty dir) error %v, want ErrNotExist", err)
	}
	_, err = Verify(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Verify(missing dir) error %v, want ErrNotExist", err)
	}
	dir := t.TempDir()
	openLog(t, dir, Options{}).Close()
	rep := wantOK(t, dir, 0)
	if rep.Files != 1 || rep.LastHash != ZeroHash {
		t.Errorf("fresh log report %+v", rep)
	}
}

func TestRotation(t *testing.T) {
	const n = 60
	dir, recs := writeLog(t, n, Options{MaxSize: 4 << 10})
	rotated, err := listRotated(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) < 3 {
		t.Fatalf("%d rotated files, want at least 3", len(rotated))
	}
	if rotated[0].name != "audit-00000000000000000001.jsonl" {
		t.Errorf("first rotated file %s", rotated[0].name)
	}
	for _, rf := range rotated {
		fi, err := os.Stat(filepath.Join(dir, rf.name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 4<<10 {
			t.Errorf("%s is %d bytes, more than MaxSize", rf.name, fi.Size())
		}
	}
	rep := wantOK(t, dir, n)
	if rep.Files != len(rotated)+1 || rep.LastHash != recs[n-1].Hash {
		t.Errorf("report %+v", rep)
	}

	// Reopen: the chain continues in the current file.
	l := openLog(t, dir, Options{MaxSize: 4 << 10})
	if d := l.Damaged(); d != nil {
		t.Errorf("Damaged = %v", d)
	}
	if r, err := l.Append(testEvent(n + 1)); err != nil || r.Seq != n+1 {
		t.Fatalf("Append after reopen = %+v, %v", r, err)
	}
	l.Close()
	wantOK(t, dir, n+1)

	t.Run("middle file removed", func(t *testing.T) {
		mid := rotated[1]
		data, _ := os.ReadFile(filepath.Join(dir, mid.name))
		os.Remove(filepath.Join(dir, mid.name))
		defer os.WriteFile(filepath.Join(dir, mid.name), data, 0o600)
		rep := mustVerify(t, dir)
		if p := rep.Problem; p == nil || p.File != rotated[2].name || p.Line != 1 || !strings.Contains(p.Reason, "missing") {
			t.Errorf("Problem %v, want missing records at %s:1", p, rotated[2].name)
		}
	})
	t.Run("file renamed", func(t *testing.T) {
		f := rotated[2]
		bad := rotatedName(f.firstSeq + 1)
		os.Rename(filepath.Join(dir, f.name), filepath.Join(dir, bad))
		defer os.Rename(filepath.Join(dir, bad), filepath.Join(dir, f.name))
		rep := mustVerify(t, dir)
		if p := rep.Problem; p == nil || p.File != bad || !strings.Contains(p.Reason, "file name says") {
			t.Errorf("Problem %v, want a name mismatch in %s", p, bad)
		}
	})
	t.Run("first file removed", func(t *testing.T) {
		f := rotated[0]
		data, _ := os.ReadFile(filepath.Join(dir, f.name))
		os.Remove(filepath.Join(dir, f.name))
		defer os.WriteFile(filepath.Join(dir, f.name), data, 0o600)
		rep := mustVerify(t, dir)
		if p := rep.Problem; p == nil || p.File != rotated[1].name || !strings.Contains(p.Reason, "starts at seq") {
			t.Errorf("Problem %v, want earlier records missing", p)
		}
	})
	t.Run("rotated file emptied", func(t *testing.T) {
		f := rotated[1]
		data, _ := os.ReadFile(filepath.Join(dir, f.name))
		os.WriteFile(filepath.Join(dir, f.name), nil, 0o600)
		defer os.WriteFile(filepath.Join(dir, f.name), data, 0o600)
		rep := mustVerify(t, dir)
		if p := rep.Problem; p == nil || p.File != f.name || !strings.Contains(p.Reason, "empty") {
			t.Errorf("Problem %v, want empty rotated file", p)
		}
	})
	wantOK(t, dir, n+1)
}

// TestRotationCrash: a crash after the rename but before the new current
// file exists leaves only rotated files; Open resumes from the last one.
func TestRotationCrash(t *testing.T) {
	dir, recs := writeLog(t, 5, Options{})
	os.Rename(filepath.Join(dir, CurrentName), filepath.Join(dir, rotatedName(1)))
	wantOK(t, dir, 5)
	l := openLog(t, dir, Options{})
	if d := l.Damaged(); d != nil {
		t.Errorf("Damaged = %v", d)
	}
	if got := l.Last(); got != recs[4] {
		t.Errorf("Last = %+v, want %+v", got, recs[4])
	}
	l.Append(testEvent(6))
	l.Close()
	wantOK(t, dir, 6)
}

func TestBigRecordOwnFile(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{MaxSize: 1000})
	for i := range 4 {
		if _, err := l.Append(map[string]string{"big": strings.Repeat("x", 900+i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Append(map[string]string{"big": strings.Repeat("x", MaxLineSize)}); err == nil {
		t.Error("Append of a record over MaxLineSize succeeded")
	}
	l.Close()
	rep := wantOK(t, dir, 4)
	if rep.Files != 4 {
		t.Errorf("%d files, want 4 (one record each)", rep.Files)
	}
}

func TestTornTail(t *testing.T) {
	dir, recs := writeLog(t, 5, Options{})
	path := filepath.Join(dir, CurrentName)
	torn := []byte(`{"seq":6,"prev_hash":"` + recs[4].Hash[:20])
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(torn)
	f.Close()

	rep := mustVerify(t, dir)
	if p := rep.Problem; p == nil || p.Line != 6 || !strings.Contains(p.Reason, "incomplete") {
		t.Fatalf("Verify of torn log: %v", p)
	}

	now := time.Unix(1700000000, 0)
	l := openLog(t, dir, Options{Now: func() time.Time { return now }})
	d := l.Damaged()
	if len(d) != 1 || d[0].Kind != DamageTornTail {
		t.Fatalf("Damaged = %v, want one torn tail", d)
	}
	got, err := os.ReadFile(filepath.Join(dir, "audit.jsonl.torn-1700000000"))
	if err != nil || !bytes.Equal(got, torn) {
		t.Fatalf("preserved torn bytes %q, %v; want %q", got, err, torn)
	}
	if r, err := l.Append(testEvent(6)); err != nil || r.Seq != 6 {
		t.Fatalf("Append after torn tail = %+v, %v", r, err)
	}
	l.Close()
	wantOK(t, dir, 6)

	// A second torn tail in the same second keeps the first one's file.
	f, _ = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("{"))
	f.Close()
	l = openLog(t, dir, Options{Now: func() time.Time { return now }})
	l.Close()
	if got, _ := os.ReadFile(filepath.Join(dir, "audit.jsonl.torn-1700000000-2")); string(got) != "{" {
		t.Errorf("second torn file holds %q", got)
	}
	wantOK(t, dir, 6)
}

func TestTornTailOnly(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, CurrentName), []byte(`{"seq":1,"prev`), 0o600)
	l := openLog(t, dir, Options{})
	if r, err := l.Append(testEvent(1)); err != nil || r.Seq != 1 {
		t.Fatalf("Append = %+v, %v", r, err)
	}
	l.Close()
	wantOK(t, dir, 1)
}

func TestReopenContinues(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 {
		l := openLog(t, dir, Options{SyncHead: round == 1})
		if d := l.Damaged(); d != nil {
			t.Fatalf("round %d: Damaged = %v", round, d)
		}
		for i := range 5 {
			r, err := l.Append(testEvent(i))
			if err != nil || r.Seq != uint64(round*5+i+1) {
				t.Fatalf("round %d: Append = %+v, %v", round, r, err)
			}
		}
		l.Close()
	}
	rep := wantOK(t, dir, 15)
	if rep.HeadSeq != 15 {
		t.Errorf("head seq %d after Close, want 15", rep.HeadSeq)
	}
}

// TestCrashWithoutClose: after a crash the head may lag behind the log;
// that is not damage.
func TestCrashWithoutClose(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	for i := range 6 {
		r, _ := l.Append(testEvent(i))
		recs = append(recs, r)
	}
	// Crash: stop without Close, leaving the head at record 4.
	close(l.headKick)
	<-l.headDone
	l.f.Close()
	l.lock.Close()
	os.WriteFile(filepath.Join(dir, HeadName), head{4, recs[3].Hash}.marshal(), 0o600)
	rep := wantOK(t, dir, 6)
	if rep.HeadSeq != 4 {
		t.Errorf("head seq %d, want 4", rep.HeadSeq)
	}
	l2 := openLog(t, dir, Options{})
	if d := l2.Damaged(); d != nil {
		t.Errorf("Damaged = %v", d)
	}
	l2.Append(testEvent(7))
	l2.Close()
	if rep := wantOK(t, dir, 7); rep.HeadSeq != 7 {
		t.Errorf("head seq %d after Close, want 7", rep.HeadSeq)
	}

	// A head that lags but names another hash for its seq: rewritten.
	os.WriteFile(filepath.Join(dir, HeadName), head{4, recs[4].Hash}.marshal(), 0o600)
	rep = mustVerify(t, dir)
	if p := rep.Problem; p == nil || p.Line != 4 || !strings.Contains(p.Reason, "rewritten") {
		t.Errorf("Problem %v, want the head mismatch at line 4", p)
	}
}

// TestChangedOutside: records cut off while the log is open show up in
// Damaged at once and in Verify as a gap.
func TestChangedOutside(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{SyncHead: true})
	for i := range 5 {
		l.Append(testEvent(i))
	}
	path := filepath.Join(dir, CurrentName)
	lines := readLines(t, path)
	writeLines(t, path, lines[:3])
	if _, err := l.Append(testEvent(6)); err != nil {
		t.Fatal(err)
	}
	if d := l.Damaged(); len(d) != 1 || d[0].Kind != DamageTruncated {
		t.Errorf("Damaged = %v", d)
	}
	l.Close()
	rep := mustVerify(t, dir)
	if p := rep.Problem; p == nil || p.Line != 4 || p.Seq != 6 {
		t.Errorf("Problem %v, want the gap at line 4", p)
	}
}

func TestOpenEditedLastRecord(t *testing.T) {
	dir, recs := writeLog(t, 4, Options{})
	path := filepath.Join(dir, CurrentName)
	lines := readLines(t, path)
	lines[3] = bytes.Replace(lines[3], []byte(`"1-4"`), []byte(`"1-9"`), 1)
	writeLines(t, path, lines)
	l := openLog(t, dir, Options{})
	d := l.Damaged()
	if len(d) != 1 || d[0].Kind != DamageLastRecord || d[0].Seq != 4 {
		t.Fatalf("Damaged = %v, want the edited last record", d)
	}
	if got := l.Last(); got != recs[3] {
		t.Errorf("Last = %+v, want the record's stated hash %+v", got, recs[3])
	}
	if r, err := l.Append(testEvent(5)); err != nil || r.Seq != 5 {
		t.Fatalf("Append = %+v, %v", r, err)
	}
	l.Close()
	rep := mustVerify(t, dir)
	if p := rep.Problem; p == nil || p.Line != 4 || !strings.Contains(p.Reason, "edited") {
		t.Errorf("Problem %v, want the edit at line 4", p)
	}
}

// TestOpenTrailingDeleted: records removed from the end are caught by the
// head at Open, and appending continues from the head so the gap stays in
// the log for Verify.
func TestOpenTrailingDeleted(t *testing.T) {
	dir, recs := writeLog(t, 6, Options{})
	path := filepath.Join(dir, CurrentName)
	writeLines(t, path, readLines(t, path)[:4])
	l := openLog(t, dir, Options{})
	d := l.Damaged()
	if len(d) != 1 || d[0].Kind != DamageHead || !strings.Contains(d[0].Reason, "removed") {
		t.Fatalf("Damaged = %v", d)
	}
	if got := l.Last(); got != recs[5] {
		t.Errorf("Last = %+v, want head %+v", got, recs[5])
	}
	r, err := l.Append(testEvent(7))
	if err != nil || r.Seq != 7 {
		t.Fatalf("Append = %+v, %v", r, err)
	}
	l.Close()
	rep := mustVerify(t, dir)
	if p := rep.Problem; p == nil || p.Line != 5 || p.Seq != 7 || !strings.Contains(p.Reason, "records 5 to 6 are missing") {
		t.Errorf("Problem %v, want the gap at line 5", p)
	}
}

func TestOpenGarbageLast(t *testing.T) {
	dir, _ := writeLog(t, 3, Options{})
	path := filepath.Join(dir, CurrentName)
	lines := readLines(t, path)
	lines[2] = []byte("garbage\n")
	writeLines(t, path, lines)
	l := openLog(t, dir, Options{})
	kinds := map[DamageKind]bool{}
	for _, d := range l.Damaged() {
		kinds[d.Kind] = true
	}
	if !kinds[DamageLastRecord] || !kinds[DamageHead] {
		t.Errorf("Damaged = %v", l.Damaged())
	}
	if r, _ := l.Append(testEvent(4)); r.Seq != 4 {
		t.Errorf("Append seq %d, want 4 (continued from the head)", r.Seq)
	}
}

func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	if l2, err := Open(dir, Options{}); err == nil {
		l2.Close()
		t.Fatal("second Open succeeded")
	}
	l.Close()
	openLog(t, dir, Options{}).Close()
}

func TestAppendRejects(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	l.Append(testEvent(1))
	for name, rec := range map[string]any{
		"seq key":       map[string]int{"seq": 1},
		"Hash key":      map[string]int{"Hash": 1},
		"PREV_HASH key": map[string]int{"PREV_HASH": 1},
		"string":        "text",
		"array":         []int{1},
		"null":          nil,
		"number":        3,
		"unmarshalable": map[string]any{"c": make(chan int)},
		"raw duplicate": rawJSON(`{"a":1,"a":2}`),
		"raw trailing":  rawJSON(`{"a":1} {"b":2}`),
		"raw hash key":  rawJSON(`{"a":1,"hash":"x"}`),
		"too big":       map[string]string{"x": strings.Repeat("y", MaxLineSize)},
	} {
		if r, err := l.Append(rec); err == nil {
			t.Errorf("%s: Append = %+v, want an error", name, r)
		}
	}
	if r, err := l.Append(testEvent(2)); err != nil || r.Seq != 2 {
		t.Errorf("Append after rejects = %+v, %v", r, err)
	}
	l.Close()
	if _, err := l.Append(testEvent(3)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	wantOK(t, dir, 2)
}

// rawJSON marshals to itself, bypassing encoding/json's checks on
// RawMessage, as a hostile Marshaler could.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

func TestConcurrentAppend(t *testing.T) {
	t.Run("background head", func(t *testing.T) { testConcurrentAppend(t, false) })
	t.Run("sync head", func(t *testing.T) { testConcurrentAppend(t, true) })
}

func testConcurrentAppend(t *testing.T, syncHead bool) {
	const workers, each = 8, 40
	dir := t.TempDir()
	l := openLog(t, dir, Options{MaxSize: 16 << 10, SyncHead: syncHead})
	var wg sync.WaitGroup
	seqs := make(chan uint64, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r, err := l.Append(testEvent(w*each + i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- r.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Errorf("seq %d returned twice", s)
		}
		seen[s] = true
	}
	l.Close()
	rep := wantOK(t, dir, workers*each)
	if rep.HeadSeq != workers*each {
		t.Errorf("head seq %d after Close", rep.HeadSeq)
	}
	if rep.Files < 3 {
		t.Errorf("%d files; expected rotation under load", rep.Files)
	}
}

func TestHostileFiles(t *testing.T) {
	t.Run("current is a directory", func(t *testing.T) {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, CurrentName), 0o700)
		if l, err := Open(dir, Options{}); err == nil {
			l.Close()
			t.Error("Open succeeded")
		}
	})
	t.Run("current is a symlink", func(t *testing.T) {
		dir := t.TempDir()
		os.Symlink("/etc/hostname", filepath.Join(dir, CurrentName))
		if l, err := Open(dir, Options{}); err == nil {
			l.Close()
			t.Error("Open succeeded")
		}
		rep, err := Verify(dir)
		if err == nil && rep.OK() {
			t.Error("Verify accepted a symlink")
		}
	})
	t.Run("rotated file is a directory", func(t *testing.T) {
		dir, _ := writeLog(t, 2, Options{})
		os.Mkdir(filepath.Join(dir, rotatedName(1)), 0o700)
		rep := mustVerify(t, dir)
		if rep.Problem == nil || rep.Problem.File != rotatedName(1) {
			t.Errorf("Problem %v", rep.Problem)
		}
	})
	t.Run("state dir is a file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "f")
		os.WriteFile(dir, nil, 0o600)
		if _, err := Open(dir, Options{}); err == nil {
			t.Error("Open succeeded")
		}
		if _, err := Verify(dir); err == nil {
			t.Error("Verify succeeded")
		}
	})
}

func TestParseLine(t *testing.T) {
	good := func() string {
		line, _ := buildLine(7, strings.Repeat("a", 64), []byte(`{"x":"y"}`))
		return strings.TrimSuffix(string(line), "\n")
	}()
	if p, err := parseLine([]byte(good)); err != nil || !p.ok() || p.seq != 7 {
		t.Fatalf("parseLine(good) = %+v, %v", p, err)
	}
	h := strings.Repeat("0", 64)
	for _, bad := range []string{
		"",
		"{",
		`{"seq":`,
		`{"seq":0,"prev_hash":"` + h + `","hash":"` + h + `"}`,
		`{"seq":01,"prev_hash":"` + h + `","hash":"` + h + `"}`,
		`{"seq":-1,"prev_hash":"` + h + `","hash":"` + h + `"}`,
		`{"seq":18446744073709551616,"prev_hash":"` + h + `","hash":"` + h + `"}`,
		`{"seq":1,"prev_hash":"` + strings.ToUpper(strings.Repeat("a", 64)) + `","hash":"` + h + `"}`,
		`{"seq":1,"prev_hash":"` + h[:63] + `","hash":"` + h + `"}`,
		`{"seq":1,"prev_hash":"` + h + `"}`,
		`{"seq":1,"prev_hash":"` + h + `","hash":"` + h[:63] + `"}`,
		`{"seq":1,"prev_hash":"` + h + `","hash":"` + h + `"} `,
		`{"seq":1,"prev_hash":"` + h + `","x":,"hash":"` + h + `"}`,
		`{"seq":1,"prev_hash":"` + h + `","x":"1","hash":"` + strings.Repeat("z", 64) + `"}`,
		`{"seq":1,"prev_hash":"` + h + `"hash":"` + h + `"}`,
		`{"seq":1 ,"prev_hash":"` + h + `","hash":"` + h + `"}`,
		// The hash field may not overlap the prefix.
		`{"seq":1,"prev_hash":"` + h + `","hash":"` + h[:60] + `"}`,
	} {
		if p, err := parseLine([]byte(bad)); err == nil {
			t.Errorf("parseLine(%q) = %+v, want an error", bad, p)
		}
	}
	// A line that parses with a wrong hash is not ok.
	edited := strings.Replace(good, `"y"`, `"z"`, 1)
	if p, err := parseLine([]byte(edited)); err != nil || p.ok() {
		t.Errorf("parseLine(edited) = %+v, %v; want parsed, not ok", p, err)
	}
}

func TestParseHead(t *testing.T) {
	h := strings.Repeat("b", 64)
	if got, err := parseHead([]byte(`{"seq":12,"hash":"` + h + `"}` + "\n")); err != nil || got != (head{12, h}) {
		t.Errorf("parseHead(good) = %+v, %v", got, err)
	}
	if got := (head{12, h}).marshal(); string(got) != `{"seq":12,"hash":"`+h+`"}`+"\n" {
		t.Errorf("marshal = %q", got)
	}
	for _, bad := range []string{
		"", "{", `{"seq":,"hash":"` + h + `"}` + "\n",
		`{"seq":012,"hash":"` + h + `"}` + "\n",
		`{"seq":12,"hash":"` + h + `"}`,
		`{"seq":12,"hash":"` + h + `"}` + "\n\n",
		`{"seq":12,"hash":"` + h[:63] + `"}` + "\n",
		`{"seq":99999999999999999999,"hash":"` + h + `"}` + "\n",
		`{"seq":1a,"hash":"` + h + `"}` + "\n",
	} {
		if got, err := parseHead([]byte(bad)); err == nil {
			t.Errorf("parseHead(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestRotatedName(t *testing.T) {
	if got := rotatedName(42); got != "audit-00000000000000000042.jsonl" {
		t.Errorf("rotatedName(42) = %s", got)
	}
	for name, want := range map[string]bool{
		"audit-00000000000000000042.jsonl":  true,
		"audit-0000000000000000042.jsonl":   false,
		"audit-0000000000000000004x.jsonl":  false,
		"audit-99999999999999999999.jsonl":  false, // overflows uint64
		"audit-00000000000000000042.jsonl~": false,
		"audit.jsonl":                       false,
	} {
		if _, ok := parseRotatedName(name); ok != want {
			t.Errorf("parseRotatedName(%s) ok = %v, want %v", name, ok, want)
		}
	}
}

// TestReadAfter: the records after a seq, across rotated files, with
// each record's prev_hash and its fields as given to Append.
func TestReadAfter(t *testing.T) {
	dir, recs := writeLog(t, 60, Options{MaxSize: 2048})
	if rotated, _ := listRotated(dir); len(rotated) < 3 {
		t.Fatalf("test setup: %d rotated files", len(rotated))
	}
	for _, after := range []uint64{0, 1, 17, 59, 60, 100} {
		es, err := ReadAfter(dir, after)
		if err != nil {
			t.Fatal(err)
		}
		want := recs[min(after, 60):]
		if len(es) != len(want) {
			t.Fatalf("after %d: %d entries, want %d", after, len(es), len(want))
		}
		for i, e := range es {
			prev := ZeroHash
			if e.Seq > 1 {
				prev = recs[e.Seq-2].Hash
			}
			p, obj, err := e.Fields()
			if err != nil {
				t.Fatal(err)
			}
			wantObj, _ := json.Marshal(testEvent(int(e.Seq)))
			if e.Seq != want[i].Seq || e.Hash != want[i].Hash || p != prev || !bytes.Equal(obj, wantObj) {
				t.Fatalf("after %d, entry %d: seq %d prev %s fields %s; want seq %d prev %s fields %s",
					after, i, e.Seq, p, obj, want[i].Seq, prev, wantObj)
			}
		}
	}
	// A record of no fields.
	dir = t.TempDir()
	l := openLog(t, dir, Options{})
	if _, err := l.Append(struct{}{}); err != nil {
		t.Fatal(err)
	}
	es, err := ReadAfter(dir, 0)
	if err != nil || len(es) != 1 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	if _, obj, err := es[0].Fields(); err != nil || string(obj) != "{}" {
		t.Fatalf("fields %s, %v", obj, err)
	}
}
