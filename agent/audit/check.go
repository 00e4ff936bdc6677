package audit

import (
	"errors"
	"io/fs"
	"os"

	"github.com/mamori-agent/mamori/internal/fsguard"
)

// Check looks, with a few stat calls, for what may have happened to the
// log behind the Log's back since the last look: audit.jsonl truncated,
// grown, deleted or replaced by another file, the state directory deleted
// or replaced by another one. It recovers so that recording continues
// (creating the directory or the file again; appending after what is left)
// with the chain continuing from the last record this Log wrote, so that
// Verify shows the break. Append runs the same check before every record.
//
// Check returns the damage found since the last Check or TakeDamage (by
// this Check or by Appends meanwhile), each occurrence once; nil when
// there is none. Damage Open found is not among it: see Damaged. It also
// tries again to make whole a reserve lost to a full disk
// (DamageReserveLost).
func (l *Log) Check() []Damage {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.check()
		// A reserve lost to a full disk is tried again here too, so
		// that its return is seen without waiting for a record.
		l.keepAhead()
	}
	return l.take()
}

// TakeDamage returns the damage found since Open that no earlier
// TakeDamage or Check returned, so that the caller can record each
// exactly once. It does not look for new damage; Check does.
func (l *Log) TakeDamage() []Damage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.take()
}

func (l *Log) take() []Damage {
	if l.handed >= len(l.damage) {
		return nil
	}
	out := append([]Damage(nil), l.damage[l.handed:]...)
	l.handed = len(l.damage)
	return out
}

// found records damage Check found, logs it, and remembers it as the
// current fault so that a failing recovery does not report it again at
// every call.
func (l *Log) found(kind DamageKind, file string, format string, args ...any) {
	if l.fault == kind {
		return
	}
	l.fault = kind
	l.addDamage(kind, file, l.seq, format, args...)
	d := l.damage[len(l.damage)-1]
	l.logger.Warn("audit log damaged", "kind", d.Kind, "file", d.File, "seq", d.Seq, "reason", d.Reason)
}

// sameAs reports whether fi, the file or directory now at a path (os.Stat,
// os.Lstat), is the one f is open on, and returns f's FileInfo as read
// (f.Stat). Both identities are read now, never one of them kept from when
// the file was opened: on Windows os.SameFile compares the volume serial
// number and the file index (GetFileInformationByHandle), and under Wine
// 8.0 the serial reads 0 early in a boot, until Wine's mount manager
// answers, and the volume's real serial after (measured at an automatic
// service start: 0, then 0x43000000, with the same file index), so an
// identity kept from the log's opening made every boot look like a
// replaced directory. f is read first and, on a mismatch, once more after
// fi was, so that a serial that became known between the two reads is
// read alike in both; a real replacement differs in both tries. The error
// is f.Stat's.
func sameAs(f *os.File, fi os.FileInfo) (os.FileInfo, bool, error) {
	var held os.FileInfo
	for range 2 {
		var err error
		if held, err = f.Stat(); err != nil {
			return nil, false, err
		}
		if os.SameFile(fi, held) {
			return held, true, nil
		}
	}
	return held, false, nil
}

// check is Check without the lock and the hand-out. l.mu is held.
func (l *Log) check() {
	fi, err := os.Stat(l.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		l.found(DamageDirMissing, ".", "the state directory %s was deleted or moved away while the log was open; it is created again and the chain continues from seq %d", l.dir, l.seq)
		l.recoverDir()
		return
	case err != nil:
		l.logger.Warn("audit log: cannot check the state directory", "err", err)
		return
	}
	_, same, err := sameAs(l.dirf, fi)
	if err != nil {
		l.logger.Warn("audit log: cannot check the state directory", "err", err)
		return
	}
	if !same {
		l.found(DamageDirReplaced, ".", "the state directory %s was replaced by another directory while the log was open; the log continues there, chained to seq %d", l.dir, l.seq)
		l.recoverDir()
		return
	}
	if l.f == nil {
		return // after a failed rotation; Append opens the file again
	}
	path := l.path(CurrentName)
	pfi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		l.found(DamageFileMissing, CurrentName, "%s was deleted or renamed away while the log was open (%d bytes written, last seq %d); a new file continues the chain", CurrentName, l.size, l.seq)
		l.reopen()
		return
	case err != nil:
		l.logger.Warn("audit log: cannot check the current file", "err", err)
		return
	}
	ffi, same, err := sameAs(l.f, pfi)
	if err != nil {
		l.logger.Warn("audit log: cannot check the current file", "err", err)
		return
	}
	if !same {
		l.found(DamageFileReplaced, CurrentName, "%s was replaced by another file (%s, %d bytes) while the log was open; appending continues in it, chained to seq %d", CurrentName, pfi.Mode().Type(), pfi.Size(), l.seq)
		l.reopen()
		return
	}
	l.fault = ""
	size := ffi.Size()
	if size == l.size || l.dirty {
		// A dirty file is cut back to l.size before the next write.
		return
	}
	if size < l.size {
		l.found(DamageTruncated, CurrentName, "%s was cut from %d to %d bytes outside the log: records were removed; appending continues chained to seq %d", CurrentName, l.size, size, l.seq)
	} else {
		l.found(DamageGrown, CurrentName, "%s grew from %d to %d bytes outside the log: someone else wrote to it", CurrentName, l.size, size)
	}
	l.fault = ""
	l.adoptSize(size)
}

// adoptSize takes the current file's size as it now is, and notes whether
// it ends in a partial line.
func (l *Log) adoptSize(size int64) {
	l.size = size
	l.needNL = false
	if size > 0 {
		b := make([]byte, 1)
		if _, err := l.f.ReadAt(b, size-1); err != nil || b[0] != '\n' {
			l.needNL = true
		}
	}
}

// reopen replaces the handle on a current file that is no longer at its
// path by one on the file now there (created when there is none).
func (l *Log) reopen() bool {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	if err := l.openCurrent(); err != nil {
		l.logger.Warn("audit log: cannot open the current file again", "err", err)
		return false
	}
	l.fault = ""
	l.adoptSize(l.size)
	return true
}

// recoverDir creates the state directory again if it is missing, takes a
// new lock and current file in whatever directory is now at the path, and
// writes the head there at once, so that the new directory's log reads as
// a continuation of this one (Verify then reports its missing start).
func (l *Log) recoverDir() {
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		l.logger.Warn("audit log: cannot create the state directory again", "err", err)
		return
	}
	if err := fsguard.CheckDir(l.dir); err != nil {
		// Someone else's directory (a symlink swapped in /tmp, say):
		// never write there. The open file moved with the old
		// directory; records go on into it, and the fault stays.
		l.logger.Warn("audit log: the directory now at the state path is not safe; records go on into the file opened before", "err", err)
		return
	}
	dirf, err := os.Open(l.dir)
	if err != nil {
		l.logger.Warn("audit log: cannot open the state directory", "err", err)
		return
	}
	lock, err := takeLock(l.dir)
	if err != nil {
		// Another process holds the new directory: keep the old lock
		// and write anyway; the chain shows any fork.
		l.logger.Warn("audit log: cannot lock the new state directory", "err", err)
	} else {
		l.lock.Close()
		l.lock = lock
	}
	if !l.reopen() {
		dirf.Close()
		return
	}
	// The spare and the note stayed in the old directory: make them
	// again here (the spare at the next Append or Check).
	l.dropSpare()
	if l.note != nil {
		l.note.Close()
		l.note = nil
	}
	l.openNote()
	l.headMu.Lock()
	l.dirf.Close()
	l.dirf = dirf
	l.headLast = head{}
	err = l.writeHead(head{l.seq, l.hash})
	l.headMu.Unlock()
	if err != nil {
		l.logger.Warn("audit head update failed", "err", err)
	}
	l.fault = ""
}
