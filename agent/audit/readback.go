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
)

// MaxReadBack is the most record bytes ReadBack returns (256 MiB). When
// the records from the start point on are more, it returns the newest
// records that fit and an error wrapping ErrReadBackLimit.
const MaxReadBack = 256 << 20

// ErrReadBackLimit is wrapped by ReadBack's error when the records asked
// for exceed MaxReadBack bytes; the entries returned with it are the
// newest that fit, still valid.
var ErrReadBackLimit = errors.New("audit read-back limit reached")

// readBackLimit is MaxReadBack, lowered by tests.
var readBackLimit int64 = MaxReadBack

// Entry is a record read back from the log.
type Entry struct {
	Seq  uint64
	Hash string
	// Line is the record's line as stored, without its newline.
	Line []byte
}

// ReadBack returns the end of the chain in dir, for rebuilding state from
// the log: the records from the last one for which start(line) reports
// true through the end of the log, in order (every record when none
// does). It reads the files newest first, each whole, and stops at the
// first file holding a start record, so older rotated files are not read.
//
// It checks the chain over the records it returns (each record's hash,
// each prev_hash against the record before, seqs one apart) and reports
// breaks and lines that are not records (which are left out) as Damage,
// not as errors; the error is for files that cannot be read. A partial
// last line of audit.jsonl, the remains of an interrupted write that Open
// will set aside, is skipped silently.
//
// It returns at most MaxReadBack bytes of records (see ErrReadBackLimit).
// It takes no lock: call it before Open, or while no Log is open on dir;
// run while a Log appends, it may miss the newest records.
func ReadBack(dir string, start func(line []byte) bool) ([]Entry, []Damage, error) {
	rotated, err := listRotated(dir)
	if err != nil {
		return nil, nil, err
	}
	files := append(rotated, rotatedFile{name: CurrentName})
	r := readBack{start: start}
	var tail []fileEntry // records of the files already read, in order
	var tailBytes int64
	for i := len(files) - 1; i >= 0; i-- {
		cur, matched, dropped, err := r.file(dir, files[i], tailBytes)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range cur {
			tailBytes += int64(len(e.Line))
		}
		tail = append(cur, tail...)
		if matched {
			break
		}
		if dropped {
			err := fmt.Errorf("read back %s: the records exceed %d bytes; only the newest are returned: %w", dir, readBackLimit, ErrReadBackLimit)
			return entries(tail), r.chain(tail), err
		}
	}
	return entries(tail), r.chain(tail), nil
}

// fileEntry is an Entry and the file it was read from.
type fileEntry struct {
	Entry
	file string
}

func entries(fes []fileEntry) []Entry {
	if len(fes) == 0 {
		return nil
	}
	out := make([]Entry, len(fes))
	for i := range fes {
		out[i] = fes[i].Entry
	}
	return out
}

// readBack holds ReadBack's state.
type readBack struct {
	start  func([]byte) bool
	damage []Damage
	buf    []byte
	// badBefore maps an entry's seq to the number of lines that were not
	// records just before it, so the chain check does not report those
	// gaps twice.
	badBefore map[uint64]int
}

func (r *readBack) add(kind DamageKind, file string, seq uint64, format string, args ...any) {
	r.damage = append(r.damage, Damage{Kind: kind, File: file, Seq: seq, Reason: fmt.Sprintf(format, args...)})
}

// file reads one file and returns its records from the last start record
// on (all of them when none), keeping at most readBackLimit-have bytes:
// when it had to drop older records to stay within it, dropped is true.
func (r *readBack) file(dir string, rf rotatedFile, have int64) (out []fileEntry, matched, dropped bool, err error) {
	path := filepath.Join(dir, rf.name)
	f, err := openRegular(path, os.O_RDONLY)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, false, nil
	}
	if err != nil {
		if errors.Is(err, errNotRegular) {
			r.add(DamageBadRecord, rf.name, 0, "%v", err)
			return nil, false, false, nil
		}
		return nil, false, false, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, scanChunk)
	var size int64
	bad := 0
	dropped = false
	for lineNo := 1; ; lineNo++ {
		line, complete, err := readLine(br, &r.buf)
		if err == io.EOF {
			break
		}
		if err == errLineTooLong {
			r.add(DamageBadRecord, rf.name, 0, "line %d is longer than %d bytes: not a record", lineNo, MaxLineSize)
			bad++
			if err := skipLine(br); err == io.EOF {
				break
			} else if err != nil {
				return nil, false, false, fmt.Errorf("read %s: %w", path, err)
			}
			continue
		}
		if err != nil {
			return nil, false, false, fmt.Errorf("read %s: %w", path, err)
		}
		if !complete {
			if rf.name != CurrentName {
				r.add(DamageBadRecord, rf.name, 0, "line %d is incomplete (%d bytes, no newline)", lineNo, len(line))
			}
			break
		}
		p, err := parseLine(line)
		if err != nil {
			r.add(DamageBadRecord, rf.name, 0, "line %d is not a record: %v", lineNo, err)
			bad++
			continue
		}
		if bad > 0 {
			if r.badBefore == nil {
				r.badBefore = map[uint64]int{}
			}
			r.badBefore[p.seq] = bad
			bad = 0
		}
		if r.start(line) {
			for i := range out {
				out[i] = fileEntry{} // let the dropped lines go
			}
			out, size, matched, dropped = out[:0], 0, true, false
		}
		e := fileEntry{Entry{Seq: p.seq, Hash: p.hash, Line: bytes.Clone(line)}, rf.name}
		out = append(out, e)
		size += int64(len(e.Line))
		for size+have > readBackLimit && len(out) > 0 {
			size -= int64(len(out[0].Line))
			out[0] = fileEntry{}
			out = out[1:]
			dropped = true
		}
	}
	return out, matched, dropped, nil
}

// chain checks the records ReadBack returns and returns all the damage
// found.
func (r *readBack) chain(es []fileEntry) []Damage {
	var prev *fileEntry
	for i := range es {
		e := &es[i]
		p, err := parseLine(e.Line)
		if err != nil { // parsed once already; cannot happen
			r.add(DamageBadRecord, e.file, e.Seq, "not a record: %v", err)
			continue
		}
		if !p.ok() {
			r.add(DamageBadRecord, e.file, e.Seq, "hash does not match the record's content: the record was edited")
		}
		if prev != nil {
			skipped := uint64(r.badBefore[e.Seq])
			switch {
			case skipped > 0 && e.Seq == prev.Seq+1+skipped:
				// The lines that were not records are reported already.
			case e.Seq != prev.Seq+1:
				r.add(DamageChainBroken, e.file, e.Seq, "seq %d follows seq %d", e.Seq, prev.Seq)
			case p.prevHash != prev.Hash:
				r.add(DamageChainBroken, e.file, e.Seq, "prev_hash does not match the hash of seq %d: the chain is broken", prev.Seq)
			}
		}
		prev = e
	}
	return r.damage
}

// ReadAfter returns the records of the log in dir after seq, in order,
// reading rotated files back only as far as the one holding seq: what a
// consumer of the records that stopped at seq (the hub reporter after a
// crash) missed. When the log holds no record at or before seq (it was
// emptied, or restarted its chain), only records with a higher seq are
// returned. Lines that are not records are left out, and damage to the
// chain is not reported (ReadBack and Verify do that). Like ReadBack it
// takes no lock, and returns at most MaxReadBack bytes: the newest
// records, with an error wrapping ErrReadBackLimit.
func ReadAfter(dir string, seq uint64) ([]Entry, error) {
	es, _, err := ReadBack(dir, func(line []byte) bool {
		s, ok := lineSeq(line)
		return ok && s <= seq
	})
	i := 0
	for i < len(es) && es[i].Seq <= seq {
		i++
	}
	return es[i:], err
}

// lineSeq reads the seq at the start of a record line.
func lineSeq(line []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(line, []byte(seqPrefix))
	if !ok {
		return 0, false
	}
	n := 0
	for n < len(rest) && n <= 20 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	s, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	return s, err == nil
}

// Fields returns the record's prev_hash and the record as its writer gave
// it to Append: a JSON object, the line without its seq, prev_hash and
// hash members. e must come from ReadBack or ReadAfter.
func (e Entry) Fields() (prevHash string, obj []byte, err error) {
	p, err := parseLine(e.Line)
	if err != nil {
		return "", nil, err
	}
	// p.content is {"seq":N,"prev_hash":"<hash>"[,members]}.
	_, rest, ok := bytes.Cut(p.content, []byte(prevPrefix))
	if !ok || len(rest) < HashLen+2 {
		return "", nil, errors.New("not a record")
	}
	rest = rest[HashLen+1:] // past the hash and its quote
	obj = make([]byte, 0, len(rest)+1)
	obj = append(obj, '{')
	if rest[0] == ',' {
		rest = rest[1:]
	}
	return p.prevHash, append(obj, rest...), nil
}
