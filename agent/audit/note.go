package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// UnwrittenName is the file in which Close leaves how many records the
// caller still held, unwritten, when it stopped (SetUnwritten), for the
// next Open to report as DamageUnwritten. It always holds one line of
// noteLen bytes, rewritten in place, so that writing it needs no new disk
// space.
const UnwrittenName = "audit.unwritten"

// note is the content of UnwrittenName.
type note struct {
	held, dropped uint64 // records held unwritten; records dropped before
	after         uint64 // seq of the last record written
}

const (
	noteHeld    = "unwritten "
	noteDropped = " dropped "
	noteAfter   = " after_seq "
	noteDigits  = 20
	// noteLen is the length of every note: three 20-digit numbers.
	noteLen = len(noteHeld) + len(noteDropped) + len(noteAfter) + 3*noteDigits + 1
)

// marshal returns the note's line: fixed width, zero-padded.
func (n note) marshal() []byte {
	return fmt.Appendf(nil, "%s%0*d%s%0*d%s%0*d\n", noteHeld, noteDigits, n.held,
		noteDropped, noteDigits, n.dropped, noteAfter, noteDigits, n.after)
}

// parseNote reads a note exactly as marshal writes it.
func parseNote(b []byte) (note, error) {
	var n note
	if len(b) != noteLen || b[noteLen-1] != '\n' {
		return n, fmt.Errorf("not a note of %d bytes", noteLen)
	}
	rest := b[:noteLen-1]
	for _, f := range []struct {
		prefix string
		v      *uint64
	}{{noteHeld, &n.held}, {noteDropped, &n.dropped}, {noteAfter, &n.after}} {
		var ok bool
		if rest, ok = bytes.CutPrefix(rest, []byte(f.prefix)); !ok || len(rest) < noteDigits || !isDigits(rest[:noteDigits]) {
			return note{}, fmt.Errorf("expected %q and %d digits", f.prefix, noteDigits)
		}
		v, err := strconv.ParseUint(string(rest[:noteDigits]), 10, 64)
		if err != nil {
			return note{}, fmt.Errorf("%s: %w", f.prefix, err)
		}
		*f.v, rest = v, rest[noteDigits:]
	}
	if len(rest) != 0 {
		return note{}, errors.New("trailing bytes")
	}
	return n, nil
}

// openNote opens (creating if needed) the note file, reports what an
// earlier Close left in it as DamageUnwritten, and leaves it holding a
// zero note, written in place. It runs in Open, before any record. A
// note that cannot be opened or read, or holds something else, is damage
// too (fail closed: it may have said records were lost); a failure to
// reset it is logged.
func (l *Log) openNote() {
	path := l.path(UnwrittenName)
	f, _, err := openOrCreate(path, os.O_RDWR)
	if err != nil {
		l.addDamage(DamageUnwritten, UnwrittenName, l.seq,
			"cannot open it (%v): it may say that records were lost when the agent last stopped, and no loss can be noted there at the next stop", err)
		return
	}
	l.note = f
	b := make([]byte, noteLen+1)
	nr, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		l.addDamage(DamageUnwritten, UnwrittenName, l.seq,
			"cannot read it (%v): it may say that records were lost when the agent last stopped", err)
		return
	}
	zero := note{}.marshal()
	switch n, perr := parseNote(b[:nr]); {
	case nr == 0:
		// New (or emptied): nothing to report.
	case perr != nil:
		l.addDamage(DamageUnwritten, UnwrittenName, l.seq,
			"it holds %d bytes that are not a note (%v): it may have said that records were lost when the agent last stopped", nr, perr)
	case n.held > 0 || n.dropped > 0:
		l.addDamage(DamageUnwritten, UnwrittenName, n.after,
			"when the agent stopped after seq %d, %d records it held could not be written (no space for the audit log) and %d more had been dropped before: %d records are lost",
			n.after, n.held, n.dropped, n.held+n.dropped)
	case bytes.Equal(b[:nr], zero):
		return // already zero
	}
	if err := l.writeNote(note{}, false); err != nil {
		l.logger.Warn("audit log: cannot reset the note of unwritten records", "file", path, "err", err)
	}
}

// writeNote replaces the note's content with n, in place, and syncs it
// when sync is set. A note of another length is cut to noteLen. Open
// does not sync the zero note: lost in a crash, it is written again.
func (l *Log) writeNote(n note, sync bool) error {
	if l.note == nil {
		return fmt.Errorf("%s is not open", l.path(UnwrittenName))
	}
	if _, err := l.note.WriteAt(n.marshal(), 0); err != nil {
		return fmt.Errorf("write %s: %w", l.path(UnwrittenName), err)
	}
	if fi, err := l.note.Stat(); err == nil && fi.Size() != int64(noteLen) {
		if err := l.note.Truncate(int64(noteLen)); err != nil {
			return fmt.Errorf("truncate %s: %w", l.path(UnwrittenName), err)
		}
	}
	if !sync {
		return nil
	}
	if err := l.note.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", l.path(UnwrittenName), err)
	}
	return nil
}
