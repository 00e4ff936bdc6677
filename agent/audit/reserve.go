package audit

import (
	"errors"
	"fmt"
	"os"
)

// SpareName is the next current file, made and reserved ahead: rotation
// renames it to CurrentName, so that rotating needs no new disk space. It
// is always empty.
const SpareName = "audit.next"

// Defaults for Options.Reserve and Options.StopReserve. The stop reserve
// is small on purpose: a record held back in memory is lost in a crash,
// while one written is not, so Append holds back only room for the few
// records of a stop (what was still held, the gap, agent_stopped: about
// a hundred of the agent's records).
const (
	DefaultReserve     = 4 << 20
	DefaultStopReserve = 64 << 10
)

// ErrNoSpace is wrapped by the errors of Append when the disk has no room
// for the record: a write failed for lack of space (ENOSPC, EDQUOT,
// ERROR_DISK_FULL), or the record would go past the space reserved ahead
// and no more can be had, the stop reserve excepted (see UseStopReserve).
// Trying again once space is freed succeeds.
var ErrNoSpace = errors.New("no space left for the audit log")

// allocStep is the granularity, in bytes, of probeAlloc's search.
const allocStep = 4096

// target is how far, in bytes from its start, a current file of size
// bytes should be allocated: Reserve ahead of its end, but not past
// MaxSize (where it rotates) while it is below it, plus the stop reserve.
func (l *Log) target(size int64) int64 {
	end := size + l.reserve
	if size < l.opts.MaxSize {
		end = min(end, l.opts.MaxSize)
	}
	return max(end, size) + l.stopRes
}

// slack is how far the current file's allocation may fall behind its
// target before Append allocates more: a quarter of Reserve, so that
// allocating costs one call per Reserve/4 bytes written.
func (l *Log) slack() int64 { return max(l.reserve/4, allocStep) }

// reserveOff turns reserving off for the Log's lifetime: the platform or
// file system cannot do it (err wraps errors.ErrUnsupported). Appends
// then go on as if there were no reserve, which is what an unreserved
// log does anyway; ReserveErr says so.
func (l *Log) reserveOff(err error) {
	if !l.reserveOn {
		return
	}
	l.reserveOn = false
	l.curErr, l.spareErr = fmt.Errorf("no space can be reserved for the audit log: %w", err), nil
	l.logger.Warn("audit log: the file system cannot reserve space ahead; a full disk stops the log", "err", err)
	l.dropSpare()
}

// probeAlloc allocates f from its start up to hi bytes or, when the space
// is not there, as far as it can: it returns the largest length, a
// multiple of allocStep above lo (lo itself when none), known to be
// allocated, found by halving. lo must be known allocated (the bytes f
// holds). The error is the first failure, nil when all of hi was had.
func probeAlloc(f *os.File, lo, hi int64) (int64, error) {
	err := allocate(f, hi)
	if err == nil || !isNoSpace(err) {
		if err == nil {
			return hi, nil
		}
		return lo, err
	}
	for bad := hi; bad-lo > allocStep; {
		mid := lo + (bad-lo)/2/allocStep*allocStep
		if mid <= lo {
			break
		}
		if allocate(f, mid) == nil {
			lo = mid
		} else {
			bad = mid
		}
	}
	return lo, err
}

// probe finds how much of a newly opened current file is allocated,
// allocating up to its target: after openCurrent, a truncate (which frees
// the blocks past the end), or a restart (Windows frees them at close).
func (l *Log) probe() {
	l.allocKnown = true
	if !l.reserveOn {
		return
	}
	got, err := probeAlloc(l.f, l.size, l.target(l.size))
	l.alloc = max(got, l.size)
	l.noteCur(err)
}

// noteCur records the outcome of allocating the current file.
func (l *Log) noteCur(err error) {
	switch {
	case err == nil:
		l.curErr = nil
	case errors.Is(err, errors.ErrUnsupported):
		l.reserveOff(err)
	default:
		l.curErr = fmt.Errorf("reserve %d bytes ahead in %s (%d reserved past its %d bytes): %w",
			l.reserve+l.stopRes, CurrentName, l.alloc-l.size, l.size, err)
	}
	l.reserveChanged()
}

// makeRoom makes sure n more bytes can be written to the current file
// within its allocation, allocating more when needed, before a write of n
// bytes. The stop reserve stays out of reach until UseStopReserve. It
// fails, wrapping ErrNoSpace, only when the file system says there is no
// more space; other allocation failures let the write go ahead (it fails
// or not on its own).
func (l *Log) makeRoom(n int64) error {
	if !l.reserveOn {
		return nil
	}
	if !l.allocKnown {
		l.probe()
		if !l.reserveOn {
			return nil
		}
	}
	held := l.stopRes
	if l.stopping {
		held = 0
	}
	need := l.size + n
	if need+held <= l.alloc {
		return nil
	}
	want := max(l.target(need), need+held)
	err := allocate(l.f, want)
	if err == nil {
		l.alloc = want
		l.noteCur(nil)
		return nil
	}
	if !isNoSpace(err) {
		l.noteCur(err)
		return nil
	}
	if want > need+held {
		// Not the whole reserve: enough for this record will do.
		if err2 := allocate(l.f, need+held); err2 == nil {
			l.alloc = need + held
			l.noteCur(err)
			return nil
		}
	}
	l.noteCur(err)
	what := "the space reserved ahead is used up"
	if held > 0 && need <= l.alloc {
		what = fmt.Sprintf("the space reserved ahead is used up, but for the %d bytes kept for the stop,", held)
	}
	return fmt.Errorf("append to %s: %w: %s and the disk (or a quota) is full: %w", l.path(CurrentName), ErrNoSpace, what, err)
}

// keepAhead allocates the current file up to its target again once it
// has fallen behind by more than the slack, after a write; and makes the
// spare when it is missing or short. A failure is recorded (ReserveErr,
// DamageReserveLost) and retried at the next Append or Check.
func (l *Log) keepAhead() {
	if !l.reserveOn || l.f == nil {
		return
	}
	if !l.allocKnown {
		l.probe()
	} else if t := l.target(l.size); l.alloc < t-l.slack() || (l.curErr != nil && l.alloc < t) {
		if err := allocate(l.f, t); err == nil {
			l.alloc = t
			l.noteCur(nil)
		} else {
			l.noteCur(err)
		}
	}
	if l.reserveOn && (l.spare == nil || l.spareErr != nil) {
		l.makeSpare()
	}
}

// makeSpare opens (creating if needed) SpareName and allocates it up to
// the target of an empty file. A spare that holds bytes is not one this
// package made (it never writes to it): it is removed and made again.
func (l *Log) makeSpare() {
	if !l.reserveOn {
		return
	}
	path := l.path(SpareName)
	if l.spare == nil {
		f, _, err := openLogFile(path)
		if err == nil {
			var fi os.FileInfo
			if fi, err = f.Stat(); err == nil && fi.Size() != 0 {
				l.logger.Warn("audit log: the spare next file holds bytes it never should; it is removed and made again", "file", path, "size", fi.Size())
				f.Close()
				if err = os.Remove(path); err == nil {
					f, _, err = openLogFile(path)
				}
			}
			if err != nil && f != nil {
				f.Close()
			}
			if err == nil {
				// Not synced: a spare lost in a crash is made again.
				l.spare, l.spareAlloc = f, 0
			}
		}
		if err != nil {
			l.spareErr = fmt.Errorf("make the spare next file %s: %w", SpareName, err)
			l.reserveChanged()
			return
		}
	}
	want := l.target(0)
	if l.spareAlloc >= want {
		l.spareErr = nil
		l.reserveChanged()
		return
	}
	var err error
	if l.spareProbed {
		// Retried after a failure: one call, not a search.
		if err = allocate(l.spare, want); err == nil {
			l.spareAlloc = want
		}
	} else {
		l.spareAlloc, err = probeAlloc(l.spare, 0, want)
		l.spareProbed = true
	}
	got := l.spareAlloc
	switch {
	case err == nil:
		// Not synced here (a sync at every Open costs a millisecond):
		// the allocation is in the file system's journal, which the
		// next record's sync commits.
		l.spareErr = nil
	case errors.Is(err, errors.ErrUnsupported):
		l.reserveOff(err)
		return
	default:
		l.spareErr = fmt.Errorf("reserve %d bytes for the next file %s (%d reserved): %w", want, SpareName, got, err)
	}
	l.reserveChanged()
}

// dropSpare closes the spare's handle, keeping the file.
func (l *Log) dropSpare() {
	if l.spare != nil {
		l.spare.Close()
		l.spare, l.spareAlloc, l.spareProbed = nil, 0, false
	}
}

// takeSpare renames the spare to CurrentName, whose name rotation has
// just freed, and makes it the current file. It returns false, leaving
// the current file to openCurrent, when there is no spare, when the file
// at SpareName is no longer the one the Log holds (replaced or gone), or
// when the rename fails.
func (l *Log) takeSpare() bool {
	if l.spare == nil {
		return false
	}
	path := l.path(SpareName)
	if fi, err := os.Lstat(path); err != nil || !sameSpare(l.spare, fi) {
		l.logger.Warn("audit log: the spare next file is no longer the one made; a new current file is created", "file", path, "err", err)
		l.dropSpare()
		return false
	}
	if err := os.Rename(path, l.path(CurrentName)); err != nil {
		l.logger.Warn("audit log: cannot rename the spare next file into place; a new current file is created", "err", err)
		l.dropSpare()
		return false
	}
	l.f, l.size, l.firstSeq, l.needNL = l.spare, 0, 0, false
	l.alloc, l.allocKnown = l.spareAlloc, true
	l.spare, l.spareAlloc, l.spareProbed = nil, 0, false
	l.spareErr = nil // rotate makes the next one at once (keepAhead)
	return true
}

// reserveChanged reports the reserve's loss as DamageReserveLost, once
// until it is whole again, and its return in the log.
func (l *Log) reserveChanged() {
	if !l.reserveOn {
		return
	}
	err := errors.Join(l.curErr, l.spareErr)
	switch {
	case err != nil && !l.reserveLost:
		l.reserveLost = true
		l.addDamage(DamageReserveLost, CurrentName, l.seq,
			"the space reserved ahead for the audit log is no longer whole (the disk may have been filled on purpose); records go on into what is left: %v", err)
		d := l.damage[len(l.damage)-1]
		l.logger.Warn("audit log damaged", "kind", d.Kind, "file", d.File, "seq", d.Seq, "reason", d.Reason)
	case err == nil && l.reserveLost:
		l.reserveLost = false
		l.logger.Info("audit log: the space reserved ahead is whole again")
	}
}

// ReserveErr says whether the space reserved ahead for the log is whole:
// nil when the current file has its reserve (Options.Reserve ahead of
// its end, or up to MaxSize, plus Options.StopReserve) allocated and the
// spare next file is ready with as much. Otherwise the error says what is
// missing and why: it wraps errors.ErrUnsupported where space cannot be
// reserved at all (a platform or file system without the call, Options.
// Reserve negative), or the allocation's failure (ENOSPC, ERROR_DISK_FULL
// when the disk is full).
func (l *Log) ReserveErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.reserveOn {
		if l.curErr == nil {
			return fmt.Errorf("no space is reserved for the audit log: %w (Options.Reserve is negative)", errors.ErrUnsupported)
		}
		return l.curErr
	}
	return errors.Join(l.curErr, l.spareErr)
}

// UseStopReserve lets Append use the space kept for the stop
// (Options.StopReserve) from now on: call it when stopping, before
// writing the records still held (and the record of the stop) so that
// they find room when the rest of the reserve is gone.
func (l *Log) UseStopReserve() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopping = true
}

// SetUnwritten tells the log how many records the caller still holds that
// it could not write (held) and how many it dropped before (dropped),
// when it is about to Close. Close writes the numbers to UnwrittenName (in
// place: no new space needed), and the next Open reports them as
// DamageUnwritten, so that the loss is recorded once the log can be
// written again. Zero for both clears it.
func (l *Log) SetUnwritten(held, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unwritten = note{held: uint64(max(held, 0)), dropped: uint64(max(dropped, 0))}
}

// sameSpare reports whether fi, what is at SpareName now, is the spare the
// Log holds open (sameAs: both identities read now); a spare that cannot be
// read is not.
func sameSpare(spare *os.File, fi os.FileInfo) bool {
	_, same, err := sameAs(spare, fi)
	return err == nil && same
}
