package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// validLog returns the bytes of a valid n-record log and its head file.
func validLog(n int) (logData, headData []byte) {
	prev := ZeroHash
	var b []byte
	for i := 1; i <= n; i++ {
		line, h := buildLine(uint64(i), prev, []byte(`{"type":"device_added","path":"1-1","serial":"A\u0000"}`))
		b = append(b, line...)
		prev = h
	}
	return b, head{uint64(n), prev}.marshal()
}

func addLogSeeds(f *testing.F) {
	log3, head3 := validLog(3)
	f.Add(log3, head3)
	f.Add(log3, []byte(nil))
	f.Add(log3[:len(log3)-1], head3)
	f.Add(log3[:len(log3)/2], []byte(nil))
	f.Add([]byte{}, head3)
	f.Add([]byte("\n\n"), []byte("{"))
	f.Add(bytes.Replace(log3, []byte(`"1-1"`), []byte(`"1-2"`), 1), head3)
}

// FuzzVerify runs Verify on arbitrary file contents: it must never panic,
// and what it accepts must be a chain of records.
func FuzzVerify(f *testing.F) {
	addLogSeeds(f)
	f.Fuzz(func(t *testing.T, logData, headData []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, CurrentName), logData, 0o600)
		if headData != nil {
			os.WriteFile(filepath.Join(dir, HeadName), headData, 0o600)
		}
		rep, err := Verify(dir)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if !rep.OK() {
			if rep.Problem.Reason == "" || rep.Problem.File == "" {
				t.Fatalf("Problem without file or reason: %+v", rep.Problem)
			}
			return
		}
		if len(logData) > 0 && logData[len(logData)-1] != '\n' {
			t.Fatalf("accepted a log without a final newline")
		}
		if n := bytes.Count(logData, []byte("\n")); n != rep.Records || uint64(n) != rep.LastSeq {
			t.Fatalf("accepted %d records (last seq %d) from %d lines", rep.Records, rep.LastSeq, n)
		}
	})
}

// FuzzOpen opens a log with arbitrary contents and appends to it: Open must
// not panic or refuse, and appending to a log that verified keeps it
// verified.
func FuzzOpen(f *testing.F) {
	addLogSeeds(f)
	f.Fuzz(func(t *testing.T, logData, headData []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, CurrentName), logData, 0o600)
		if headData != nil {
			os.WriteFile(filepath.Join(dir, HeadName), headData, 0o600)
		}
		before, err := Verify(dir)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		l, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if before.OK() && len(l.Damaged()) != 0 {
			t.Fatalf("Open found damage in a log that verified: %v", l.Damaged())
		}
		r, err := l.Append(map[string]string{"type": "agent_started"})
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if !before.OK() {
			return
		}
		after, err := Verify(dir)
		if err != nil || !after.OK() || after.LastSeq != before.LastSeq+1 || after.LastHash != r.Hash {
			t.Fatalf("after Append to a good log: %+v %v (problem %v); before %+v", after, err, after.Problem, before)
		}
	})
}

// FuzzLine builds a line from arbitrary caller JSON: whatever Append
// accepts must parse back byte for byte with a hash that recomputes.
func FuzzLine(f *testing.F) {
	f.Add(uint64(1), []byte(`{"a":1}`))
	f.Add(uint64(1<<63), []byte(`{}`))
	f.Add(uint64(5), []byte(` { "a" : "\"hash\":\"x\"}" } `))
	f.Add(uint64(5), []byte(`{"a":{"hash":1},"b":[1,2,{"seq":3}]}`))
	f.Fuzz(func(t *testing.T, seq uint64, obj []byte) {
		p0, err := parseLine(obj)
		_ = p0
		_ = err // parseLine on arbitrary bytes must not panic
		if seq == 0 || checkFields(obj) != nil {
			return
		}
		prev := ZeroHash
		line, hash := buildLine(seq, prev, obj)
		if bytes.Count(line, []byte("\n")) != 1 {
			t.Fatalf("line has %d newlines: %q", bytes.Count(line, []byte("\n")), line)
		}
		p, err := parseLine(line[:len(line)-1])
		if err != nil {
			t.Fatalf("parseLine(%q): %v", line, err)
		}
		if p.seq != seq || p.prevHash != prev || p.hash != hash || !p.ok() {
			t.Fatalf("round trip of %q gave %+v", line, p)
		}
	})
}

// FuzzParseAnchor: whatever ParseAnchor accepts formats back to itself.
func FuzzParseAnchor(f *testing.F) {
	f.Add("12:" + ZeroHash)
	f.Add("0:" + ZeroHash)
	f.Add("18446744073709551615:" + ZeroHash)
	f.Add(" 7:ABCDEF" + ZeroHash[6:] + "\n")
	f.Add("7:")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAnchor(s)
		if err != nil {
			return
		}
		b, err := ParseAnchor(a.String())
		if err != nil || b != a || len(a.Hash) != HashLen {
			t.Fatalf("ParseAnchor(%q) = %+v; round trip %+v, %v", s, a, b, err)
		}
	})
}

// FuzzReadBack reads back arbitrary logs: no panic, entries in seq order
// as stated, no entry for a line that is not a record, and no damage for
// a log that verifies.
func FuzzReadBack(f *testing.F) {
	addLogSeeds(f)
	f.Fuzz(func(t *testing.T, logData, headData []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, CurrentName), logData, 0o600)
		if headData != nil {
			os.WriteFile(filepath.Join(dir, HeadName), headData, 0o600)
		}
		es, damage, err := ReadBack(dir, func(line []byte) bool { return bytes.Contains(line, []byte(`"agent_started"`)) })
		if err != nil {
			t.Fatalf("ReadBack: %v", err)
		}
		for _, e := range es {
			p, err := parseLine(e.Line)
			if err != nil || p.seq != e.Seq || p.hash != e.Hash {
				t.Fatalf("entry %+v does not match its line: %v", e, err)
			}
		}
		rep, err := Verify(dir)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if rep.OK() && len(damage) != 0 {
			t.Fatalf("ReadBack damage %v in a log that verifies", damage)
		}
	})
}
