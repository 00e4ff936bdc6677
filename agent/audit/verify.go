package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxProblems is how many problems a Report lists; the rest are counted in
// MoreProblems.
const MaxProblems = 1000

// Report is the result of Verify.
type Report struct {
	Files int // files read, rotated ones and the current one
	// Records is the number of records that checked out before the first
	// problem (all of them when the log is OK), counted from the anchor
	// when verifying from one.
	Records int
	// LastSeq and LastHash are the last record that checked out before
	// the first problem (the anchor, or 0 and ZeroHash, when none did).
	LastSeq  uint64
	LastHash string
	// Read is the number of records read in all, past problems too.
	Read int
	// EndSeq and EndHash are what the last record read states, whether
	// or not it checked out (0 and "" when none was read).
	EndSeq  uint64
	EndHash string
	// HeadSeq is the seq the head file names, 0 when there is none.
	HeadSeq uint64
	// From is the anchor verification started from, nil for seq 1.
	From *Anchor
	// Problem is the first problem, nil when the whole log checks out.
	// It is &Problems[0].
	Problem *Problem
	// Problems lists the problems in log order (head and whole-log
	// problems last), at most MaxProblems of them.
	Problems []Problem
	// MoreProblems counts the problems found beyond MaxProblems.
	MoreProblems int
}

// OK reports whether the log checked out.
func (r Report) OK() bool { return r.Problem == nil }

// Problem locates something wrong in a log.
type Problem struct {
	File string // base name within the directory
	Line int    // 1-based line within File, 0 when about the file itself
	// Seq is the seq the record states or, when it cannot be read, the
	// seq expected at that place.
	Seq    uint64
	Reason string
}

// String formats p as file:line: seq N: reason.
func (p *Problem) String() string {
	if p.Line == 0 {
		return fmt.Sprintf("%s: %s", p.File, p.Reason)
	}
	return fmt.Sprintf("%s:%d: seq %d: %s", p.File, p.Line, p.Seq, p.Reason)
}

// Anchor is a record whose seq and hash were kept somewhere the PC's
// users cannot write (archived with the rotated files, or sent to the
// central endpoint): verification can start from it.
type Anchor struct {
	Seq  uint64
	Hash string // 64 lower-case hex digits
}

// String formats a as ParseAnchor reads it: SEQ:HASH.
func (a Anchor) String() string { return strconv.FormatUint(a.Seq, 10) + ":" + a.Hash }

// ParseAnchor reads an anchor written as SEQ:HASH, the seq in decimal and
// the hash in 64 hex digits (upper case is accepted).
func ParseAnchor(s string) (Anchor, error) {
	seqStr, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Anchor{}, fmt.Errorf("anchor %q: want SEQ:HASH", s)
	}
	if seqStr == "" || !isDigits([]byte(seqStr)) {
		return Anchor{}, fmt.Errorf("anchor %q: seq is not a decimal number", s)
	}
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if err != nil {
		return Anchor{}, fmt.Errorf("anchor %q: seq out of range", s)
	}
	hash = strings.ToLower(hash)
	if len(hash) != HashLen || !isHex([]byte(hash)) {
		return Anchor{}, fmt.Errorf("anchor %q: hash is not %d hex digits", s, HashLen)
	}
	if seq == 0 && hash != ZeroHash {
		return Anchor{}, fmt.Errorf("anchor %q: seq 0 is before the first record; its hash is %s", s, ZeroHash)
	}
	return Anchor{Seq: seq, Hash: hash}, nil
}

// VerifyOptions configures VerifyWith.
type VerifyOptions struct {
	// From starts verification at an anchor instead of seq 1: rotated
	// files holding only records up to the anchor may be absent (they
	// are not read); the record with the anchor's seq, when present,
	// must have the anchor's hash, and the record after it must chain
	// to that hash. Nil verifies from seq 1.
	From *Anchor
}

// Verify checks the whole audit log in dir, from seq 1. See VerifyWith.
func Verify(dir string) (Report, error) {
	return VerifyWith(dir, VerifyOptions{})
}

// VerifyWith checks the audit log in dir: every line of every rotated
// file, in seq order, then the current file must be a record as Append
// writes it, with seq one more than the record before, prev_hash equal to
// that record's hash (across files), and a hash that recomputes from its
// bytes; the log must start at seq 1 (or continue from opts.From), must
// have a head file when it holds records, and must reach the record the
// head file names, with that record's hash. An empty log whose head names
// a record, or that left torn-tail side files but no head, was emptied.
//
// It reports every problem, not just the first: after a broken record it
// takes the next record's own seq and hash as the base and goes on, so
// later breaks are found too. The error is for a log that cannot be read
// at all (no log in dir, permission denied, I/O error).
//
// VerifyWith may run while an agent appends: when it finds a problem and
// the files changed meanwhile, it checks again (up to three times) before
// reporting it.
func VerifyWith(dir string, opts VerifyOptions) (Report, error) {
	var rep Report
	for range 3 {
		before, err := snapshot(dir)
		if err != nil {
			return Report{}, err
		}
		rep, err = verifyOnce(dir, opts)
		if err != nil || rep.OK() {
			return rep, err
		}
		after, err := snapshot(dir)
		if err != nil {
			return Report{}, err
		}
		if bytes.Equal(before, after) {
			return rep, nil
		}
	}
	return rep, nil
}

// snapshot describes the log's files enough to tell whether an agent
// wrote to them.
func snapshot(dir string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	var b bytes.Buffer
	for _, e := range entries {
		n := e.Name()
		if _, ok := parseRotatedName(n); !ok && n != CurrentName && n != HeadName {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile: the next listing differs
		}
		fmt.Fprintf(&b, "%s %d %d\n", n, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.Bytes(), nil
}

// verifier walks the chain.
type verifier struct {
	rep     Report
	from    Anchor
	reached bool   // a record past the anchor's seq, or the anchor, was read
	seq     uint64 // the base: last record read (or the anchor)
	hash    string
	skipped int // lines that were not records since the base
	// any counts every record line found, those before an anchor too: an
	// anchor past the end does not make a full log look emptied.
	any      int
	head     head
	haveHead bool
	buf      []byte
}

func verifyOnce(dir string, opts VerifyOptions) (Report, error) {
	v := verifier{hash: ZeroHash, reached: true}
	if a := opts.From; a != nil && a.Seq > 0 {
		v.from = *a
		v.seq, v.hash = a.Seq, a.Hash
		v.reached = false
		v.rep.From = &Anchor{a.Seq, a.Hash}
	}
	v.rep.LastSeq, v.rep.LastHash = v.seq, v.hash
	// Read the head before the records: an agent writes it after the
	// records it names, so it can only lag behind what is read next.
	h, ok, herr := readHead(filepath.Join(dir, HeadName))
	if herr == nil && ok {
		v.head, v.haveHead = h, true
		v.rep.HeadSeq = h.seq
	}
	rotated, err := listRotated(dir)
	if err != nil {
		return Report{}, err
	}
	torn, err := tornFiles(dir)
	if err != nil {
		return Report{}, err
	}
	var files []rotatedFile
	for i, rf := range rotated {
		// With an anchor, a rotated file whose successor starts at or
		// before the record after the anchor holds nothing to check.
		if !v.reached && i+1 < len(rotated) && rotated[i+1].firstSeq <= v.from.Seq+1 {
			continue
		}
		files = append(files, rf)
	}
	if _, err := os.Lstat(filepath.Join(dir, CurrentName)); err == nil {
		files = append(files, rotatedFile{name: CurrentName})
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Report{}, fmt.Errorf("stat %s: %w", filepath.Join(dir, CurrentName), err)
	}
	if len(files) == 0 && len(rotated) == 0 && len(torn) == 0 && herr == nil && !ok {
		return Report{}, fmt.Errorf("no audit log in %s: %w", dir, fs.ErrNotExist)
	}
	for _, rf := range files {
		v.rep.Files++
		if err := v.file(dir, rf); err != nil {
			return Report{}, err
		}
	}
	switch {
	case herr != nil:
		v.problem(HeadName, 0, 0, "%v", herr)
	case !v.haveHead && (v.any > 0 || len(rotated) > 0):
		v.problem(HeadName, 0, 0, "the log holds records (up to seq %d) but has no head file: it was deleted, and records cut off the end would go unseen", v.rep.EndSeq)
	case !v.haveHead && len(torn) > 0:
		v.problem(CurrentName, 0, 0, "the log is empty and has no head file, but %s shows it held records: the log was emptied", torn[0])
	case v.haveHead && v.head.seq > 0 && v.any == 0 && len(rotated) == 0:
		v.problem(HeadName, 0, v.head.seq, "the log is empty but the head file names seq %d: the log was emptied (it is shorter than its head record)", v.head.seq)
	case v.haveHead && v.head.seq > v.seq:
		v.problem(HeadName, 0, v.head.seq, "the log ends at seq %d but the head file names seq %d: the log is shorter than its head record (records removed from the end)",
			v.seq, v.head.seq)
	}
	if !v.reached {
		v.problem(CurrentName, 0, v.from.Seq, "the log ends at seq %d, before the anchor (seq %d): records were removed since it was taken", v.rep.EndSeq, v.from.Seq)
	}
	return v.rep, nil
}

func (v *verifier) problem(file string, line int, seq uint64, format string, args ...any) {
	if len(v.rep.Problems) >= MaxProblems {
		v.rep.MoreProblems++
		return
	}
	v.rep.Problems = append(v.rep.Problems, Problem{File: file, Line: line, Seq: seq, Reason: fmt.Sprintf(format, args...)})
	v.rep.Problem = &v.rep.Problems[0]
}

// notRecord notes a line that is not a record.
func (v *verifier) notRecord(file string, line int, format string, args ...any) {
	v.problem(file, line, v.seq+1+uint64(v.skipped), format, args...)
	v.skipped++
}

// file checks one file of the log, adding a problem for each fault. The
// error is for a file that cannot be read.
func (v *verifier) file(dir string, rf rotatedFile) error {
	path := filepath.Join(dir, rf.name)
	f, err := openRegular(path, os.O_RDONLY)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			v.problem(rf.name, 0, v.seq+1, "file disappeared while verifying")
			return nil
		}
		if !errors.Is(err, fs.ErrPermission) {
			// Not a regular file: part of the log was replaced.
			v.problem(rf.name, 0, v.seq+1, "%v", err)
			return nil
		}
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, scanChunk)
	for lineNo := 1; ; lineNo++ {
		line, complete, err := readLine(br, &v.buf)
		if err == io.EOF {
			if lineNo == 1 && rf.name != CurrentName {
				v.problem(rf.name, 0, rf.firstSeq, "rotated file is empty")
			}
			return nil
		}
		if err == errLineTooLong {
			v.notRecord(rf.name, lineNo, "line longer than %d bytes: not a record", MaxLineSize)
			if err := skipLine(br); err == io.EOF {
				return nil
			} else if err != nil {
				return fmt.Errorf("read %s: %w", path, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if !complete {
			v.notRecord(rf.name, lineNo, "last line is incomplete (%d bytes, no newline): cut short or an interrupted write", len(line))
			return nil
		}
		p, err := parseLine(line)
		if err != nil {
			v.notRecord(rf.name, lineNo, "not a record: %v", err)
			continue
		}
		v.record(rf, lineNo, p)
	}
}

// record checks one parsed record against the base and makes it the new
// base.
func (v *verifier) record(rf rotatedFile, lineNo int, p parsed) {
	v.any++
	v.rep.Read++
	v.rep.EndSeq, v.rep.EndHash = p.seq, p.hash
	defer func() { v.seq, v.hash, v.skipped = p.seq, p.hash, 0 }()
	if rf.name != CurrentName && lineNo == 1 && p.seq != rf.firstSeq {
		v.problem(rf.name, lineNo, p.seq, "file name says it starts at seq %d but its first record is seq %d", rf.firstSeq, p.seq)
	}
	first := !v.reached || (v.rep.Read == 1 && v.from.Seq == 0)
	if !v.reached {
		switch {
		case p.seq < v.from.Seq:
			// Before the anchor: not checked. Its own problems (the
			// name above) are still reported.
			v.rep.Read--
			return
		case p.seq == v.from.Seq:
			v.reached = true
			if p.hash != v.from.Hash {
				v.problem(rf.name, lineNo, p.seq, "hash differs from the anchor's for seq %d: the chain was rewritten since the anchor was taken", p.seq)
			} else if !p.ok() {
				v.problem(rf.name, lineNo, p.seq, "hash does not match the record's content: the record was edited")
			}
			if v.rep.Problem == nil {
				v.rep.LastSeq, v.rep.LastHash = p.seq, p.hash
			}
			v.rep.Read--
			return
		}
		v.reached = true
	}
	want := v.seq + 1
	// After lines that were not records, a record whose seq counts them
	// as the missing records is not also reported as a gap, and its
	// prev_hash cannot be checked.
	linkUnknown := v.skipped > 0 && p.seq == want+uint64(v.skipped)
	bad := true
	switch {
	case linkUnknown:
		bad = false
	case p.seq != want && first && v.from.Seq == 0:
		v.problem(rf.name, lineNo, p.seq, "the log starts at seq %d, not 1: earlier records are missing", p.seq)
	case p.seq != want && first:
		v.problem(rf.name, lineNo, p.seq, "seq %d follows the anchor (seq %d): records %d to %d are missing", p.seq, v.from.Seq, want, p.seq-1)
	case p.seq > want:
		v.problem(rf.name, lineNo, p.seq, "seq %d follows seq %d: records %d to %d are missing", p.seq, v.seq, want, p.seq-1)
	case p.seq < want:
		v.problem(rf.name, lineNo, p.seq, "seq %d follows seq %d: out of order or repeated", p.seq, v.seq)
	case p.prevHash != v.hash && first && v.from.Seq > 0:
		v.problem(rf.name, lineNo, p.seq, "prev_hash does not match the anchor's hash (seq %d): the chain was rewritten since the anchor was taken", v.seq)
	case p.prevHash != v.hash:
		v.problem(rf.name, lineNo, p.seq, "prev_hash does not match the hash of the record before (seq %d): the chain is broken", v.seq)
	default:
		bad = false
	}
	switch {
	case bad:
	case !p.ok():
		v.problem(rf.name, lineNo, p.seq, "hash does not match the record's content: the record was edited")
	case v.haveHead && p.seq == v.head.seq && p.hash != v.head.hash:
		v.problem(rf.name, lineNo, p.seq, "hash differs from the one the head file records for seq %d: the chain was rewritten", p.seq)
	}
	if v.rep.Problem == nil {
		v.rep.Records++
		v.rep.LastSeq, v.rep.LastHash = p.seq, p.hash
	}
}

// skipLine discards the rest of a line readLine refused as too long.
func skipLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}
