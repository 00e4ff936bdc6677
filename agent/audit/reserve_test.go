package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseNote(t *testing.T) {
	n := note{held: 12, dropped: 3, after: 1 << 40}
	b := n.marshal()
	if len(b) != noteLen {
		t.Fatalf("note is %d bytes, want %d: %q", len(b), noteLen, b)
	}
	if got, err := parseNote(b); err != nil || got != n {
		t.Errorf("parseNote(%q) = %+v, %v", b, got, err)
	}
	zero := note{}.marshal()
	if got, err := parseNote(zero); err != nil || got != (note{}) || len(zero) != noteLen {
		t.Errorf("zero note %q parses as %+v, %v", zero, got, err)
	}
	bad := [][]byte{
		nil,
		b[:noteLen-1],
		append(bytes.Clone(b), '\n'),
		bytes.Replace(b, []byte("unwritten"), []byte("unwrittem"), 1),
		bytes.Replace(b, []byte("0000000012"), []byte("000000001x"), 1),
		bytes.Replace(b, []byte(" dropped "), []byte("-dropped "), 1),
		[]byte(strings.Replace(string(b), "\n", " ", 1)),
		[]byte("unwritten 99999999999999999999 dropped 00000000000000000000 after_seq 00000000000000000000\n"),
	}
	for _, x := range bad {
		if got, err := parseNote(x); err == nil {
			t.Errorf("parseNote(%q) = %+v, want an error", x, got)
		}
	}
}

// TestUnwrittenNote: what SetUnwritten leaves is reported by the next
// Open, once; a note that is not one is reported too (fail closed), and
// nothing is reported after a stop with nothing held.
func TestUnwrittenNote(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l := openLog(t, dir, Options{})
	l.Append(testEvent(1))
	l.Close()
	l = openLog(t, dir, Options{})
	if d := l.Damaged(); d != nil {
		t.Fatalf("Damaged after a stop with nothing held = %v", d)
	}
	l.Append(testEvent(2))
	l.SetUnwritten(4, 0)
	l.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, UnwrittenName)); len(b) != noteLen {
		t.Fatalf("note is %q", b)
	}
	l = openLog(t, dir, Options{})
	if d := l.Damaged(); len(d) != 1 || d[0].Kind != DamageUnwritten || d[0].Seq != 2 ||
		!strings.Contains(d[0].Reason, "4 records are lost") {
		t.Fatalf("Damaged after SetUnwritten(4, 0) = %v", d)
	}
	l.Close()
	l = openLog(t, dir, Options{})
	if d := l.Damaged(); d != nil {
		t.Fatalf("Damaged at the second Open = %v: reported twice", d)
	}
	l.Close()

	os.WriteFile(filepath.Join(dir, UnwrittenName), []byte("unwritten 0"), 0o600)
	l = openLog(t, dir, Options{})
	if d := l.Damaged(); len(d) != 1 || d[0].Kind != DamageUnwritten || !strings.Contains(d[0].Reason, "not a note") {
		t.Fatalf("Damaged with a note cut short = %v", d)
	}
	l.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, UnwrittenName)); !bytes.Equal(b, note{}.marshal()) {
		t.Errorf("note after Open is %q, want the zero note", b)
	}
	wantOK(t, dir, 2)
}

// TestSpareRotation: the spare is made at Open, empty; rotation renames it
// into place (the same file continues as audit.jsonl) and makes another.
func TestSpareRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l := openLog(t, dir, Options{MaxSize: 4 << 10})
	if err := l.ReserveErr(); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("no reserve, so no spare, on this platform: %v", err)
	}
	spare := filepath.Join(dir, SpareName)
	fi, err := os.Stat(spare)
	if err != nil || fi.Size() != 0 {
		t.Fatalf("spare %v, %v; want an empty file", fi, err)
	}
	before, _ := os.Stat(filepath.Join(dir, CurrentName))
	rotations := 0
	for i := 1; i <= 60; i++ {
		if _, err := l.Append(testEvent(i)); err != nil {
			t.Fatal(err)
		}
		cur, err := os.Stat(filepath.Join(dir, CurrentName))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(cur, before) {
			rotations++
			if !os.SameFile(cur, fi) {
				t.Errorf("record %d: rotated into a file that is not the spare", i)
			}
			if fi, err = os.Stat(spare); err != nil || fi.Size() != 0 || os.SameFile(fi, cur) {
				t.Fatalf("after rotation the spare is %v, %v", fi, err)
			}
		}
		before = cur
	}
	if rotations < 3 {
		t.Errorf("%d rotations", rotations)
	}
	if err := l.ReserveErr(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("ReserveErr = %v", err)
	}
	if d := l.Check(); d != nil {
		t.Errorf("Check = %v", d)
	}
	l.Close()
	wantOK(t, dir, 60)
}

// TestPlantedSpare: a spare holding bytes was not made by the log (it
// never writes one): it is replaced by an empty one; a spare that cannot
// be made (a directory in the way) leaves the log without its reserve,
// reported, and rotation makes new files as before.
func TestPlantedSpare(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	os.MkdirAll(dir, 0o700)
	spare := filepath.Join(dir, SpareName)
	os.WriteFile(spare, []byte(`{"seq":1,"prev_hash":"planted"}`+"\n"), 0o600)
	l := openLog(t, dir, Options{MaxSize: 4 << 10})
	if err := l.ReserveErr(); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("no reserve, so no spare, on this platform: %v", err)
	}
	if fi, err := os.Stat(spare); err != nil || fi.Size() != 0 {
		t.Fatalf("planted spare not replaced: %v, %v", fi, err)
	}
	for i := 1; i <= 30; i++ {
		l.Append(testEvent(i))
	}
	l.Close()
	wantOK(t, dir, 30)

	os.Remove(spare)
	os.Mkdir(spare, 0o700)
	l = openLog(t, dir, Options{MaxSize: 4 << 10})
	rerr := l.ReserveErr()
	if errors.Is(rerr, errors.ErrUnsupported) {
		t.Skipf("no reserve on this platform: %v", rerr)
	}
	if rerr == nil || !strings.Contains(rerr.Error(), SpareName) {
		t.Errorf("ReserveErr with a directory at the spare = %v", rerr)
	}
	if d := l.Damaged(); len(d) != 1 || d[0].Kind != DamageReserveLost {
		t.Errorf("Damaged = %v, want the reserve reported lost", d)
	}
	for i := 31; i <= 60; i++ {
		if _, err := l.Append(testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if d := l.Check(); d != nil {
		t.Errorf("Check = %v: the loss is reported once", d)
	}
	l.Close()
	if rep := wantOK(t, dir, 60); rep.Files < 5 {
		t.Errorf("%d files: rotation stopped without a spare", rep.Files)
	}
}
