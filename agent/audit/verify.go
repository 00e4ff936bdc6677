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
	"slices"
)

// Report is the result of Verify.
type Report struct {
	Files    int    // files read, rotated ones and the current one
	Records  int    // records that checked out before Problem
	LastSeq  uint64 // seq of the last record that checked out
	LastHash string // its hash (ZeroHash when none did)
	// HeadSeq is the seq the head file names, 0 when there is none.
	HeadSeq uint64
	// Problem is the first broken, edited, missing or misplaced record,
	// nil when the whole log checks out.
	Problem *Problem
}

// OK reports whether the log checked out.
func (r Report) OK() bool { return r.Problem == nil }

// Problem locates the first thing wrong in a log.
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

// Verify checks the audit log in dir: every line of every rotated file, in
// seq order, then the current file must be a record as Append writes it,
// with seq one more than the record before, prev_hash equal to that
// record's hash (across files), and a hash that recomputes from its bytes;
// the log must start at seq 1 and reach the record the head file names.
// The first failure is the Report's Problem. The error is for a log that
// cannot be read at all (no log in dir, permission denied, I/O error).
//
// Verify may run while an agent appends: when it finds a problem and the
// files changed meanwhile, it checks again (up to three times) before
// reporting it.
func Verify(dir string) (Report, error) {
	var rep Report
	for range 3 {
		before, err := snapshot(dir)
		if err != nil {
			return Report{}, err
		}
		rep, err = verifyOnce(dir)
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
	rep      Report
	seq      uint64 // last good record
	hash     string
	head     head
	haveHead bool
	buf      []byte
}

func verifyOnce(dir string) (Report, error) {
	v := verifier{hash: ZeroHash}
	v.rep.LastHash = ZeroHash
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
	files := slices.Clone(rotated)
	if _, err := os.Lstat(filepath.Join(dir, CurrentName)); err == nil {
		files = append(files, rotatedFile{name: CurrentName})
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Report{}, fmt.Errorf("stat %s: %w", filepath.Join(dir, CurrentName), err)
	}
	if len(files) == 0 && herr == nil && !ok {
		return Report{}, fmt.Errorf("no audit log in %s: %w", dir, fs.ErrNotExist)
	}
	for _, rf := range files {
		v.rep.Files++
		if err := v.file(dir, rf); err != nil {
			return Report{}, err
		}
		if v.rep.Problem != nil {
			return v.rep, nil
		}
	}
	switch {
	case herr != nil:
		v.problem(HeadName, 0, 0, "%v", herr)
	case v.haveHead && v.head.seq > v.seq:
		v.problem(HeadName, 0, v.head.seq, "the log ends at seq %d but the head file names seq %d: the log is shorter than its head record (records removed from the end)",
			v.seq, v.head.seq)
	}
	return v.rep, nil
}

func (v *verifier) problem(file string, line int, seq uint64, format string, args ...any) {
	v.rep.Problem = &Problem{File: file, Line: line, Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

// file checks one file of the log, setting v.rep.Problem at the first
// fault. The error is for a file that cannot be read.
func (v *verifier) file(dir string, rf rotatedFile) error {
	path := filepath.Join(dir, rf.name)
	f, err := openRegular(path, os.O_RDONLY, 0)
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
	br := bufio.NewReaderSize(f, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, complete, err := readLine(br, &v.buf)
		if err == io.EOF {
			if lineNo == 1 && rf.name != CurrentName {
				v.problem(rf.name, 0, rf.firstSeq, "rotated file is empty")
			}
			return nil
		}
		want := v.seq + 1
		if err == errLineTooLong {
			v.problem(rf.name, lineNo, want, "line longer than %d bytes: not a record", MaxLineSize)
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if !complete {
			v.problem(rf.name, lineNo, want, "last line is incomplete (%d bytes, no newline): cut short or an interrupted write", len(line))
			return nil
		}
		p, err := parseLine(line)
		if err != nil {
			v.problem(rf.name, lineNo, want, "not a record: %v", err)
			return nil
		}
		switch {
		case lineNo == 1 && rf.name != CurrentName && p.seq != rf.firstSeq:
			v.problem(rf.name, lineNo, p.seq, "file name says it starts at seq %d but its first record is seq %d", rf.firstSeq, p.seq)
		case p.seq != want && v.seq == 0:
			v.problem(rf.name, lineNo, p.seq, "the log starts at seq %d, not 1: earlier records are missing", p.seq)
		case p.seq > want:
			v.problem(rf.name, lineNo, p.seq, "seq %d follows seq %d: records %d to %d are missing", p.seq, v.seq, want, p.seq-1)
		case p.seq < want:
			v.problem(rf.name, lineNo, p.seq, "seq %d follows seq %d: out of order or repeated", p.seq, v.seq)
		case p.prevHash != v.hash:
			v.problem(rf.name, lineNo, p.seq, "prev_hash does not match the hash of the record before (seq %d): the chain is broken", v.seq)
		case !p.ok():
			v.problem(rf.name, lineNo, p.seq, "hash does not match the record's content: the record was edited")
		case v.haveHead && p.seq == v.head.seq && p.hash != v.head.hash:
			v.problem(rf.name, lineNo, p.seq, "hash differs from the one the head file records for seq %d: the chain was rewritten", p.seq)
		}
		if v.rep.Problem != nil {
			return nil
		}
		v.seq, v.hash = p.seq, p.hash
		v.rep.Records++
		v.rep.LastSeq, v.rep.LastHash = p.seq, p.hash
	}
}
