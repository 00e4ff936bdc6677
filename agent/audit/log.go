package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mamori-agent/mamori/internal/atomicfile"
)

// DefaultMaxSize is the size at which the current file is rotated out when
// Options.MaxSize is zero.
const DefaultMaxSize = 16 << 20

// ErrClosed is returned by Append on a closed Log.
var ErrClosed = errors.New("audit log is closed")

var errLocked = errors.New("locked by another process")

// Options configures Open.
type Options struct {
	// MaxSize rotates the current file out before an append would make it
	// larger than this many bytes. Zero means DefaultMaxSize. A single
	// record larger than MaxSize still gets a file of its own.
	MaxSize int64
	// SyncHead rewrites audit.head inside every Append, before it
	// returns, so that the head never lags behind the log, at the cost of
	// two more syncs and a rename per record (about three times slower).
	// By default a background writer follows the log, coalescing bursts;
	// after a crash the head may lag by the records appended during its
	// last write.
	SyncHead bool
	// Logger receives warnings about damage found and worked around.
	// Nil discards them.
	Logger *slog.Logger
	// Now is the clock, for naming preserved torn tails. Nil means
	// time.Now.
	Now func() time.Time
	// Reserve is how many bytes of disk space the current file keeps
	// allocated ahead of its end (but not past MaxSize while it is
	// below it), and the spare next file keeps ready, so that records
	// still find room when the disk fills up (see the package doc).
	// Zero means DefaultReserve (4 MiB); more than MaxSize means
	// MaxSize; negative turns reserving off.
	Reserve int64
	// StopReserve is how many bytes are kept allocated beyond Reserve
	// for the stop: Append leaves them alone, once the rest is used up
	// and the disk is full, until UseStopReserve. Zero means
	// DefaultStopReserve (64 KiB); more than MaxSize means MaxSize;
	// negative means none.
	StopReserve int64
}

// Record identifies an appended record.
type Record struct {
	Seq  uint64
	Hash string // 64 lower-case hex digits
}

// Log is an open audit log. Its methods are safe for concurrent use.
type Log struct {
	dir    string
	opts   Options
	logger *slog.Logger

	mu       sync.Mutex
	lock     *os.File // held for the Log's lifetime
	f        *os.File // current file, nil after a failed rotation
	size     int64    // bytes of complete records in f
	firstSeq uint64   // seq of f's first record, 0 when unknown or empty
	seq      uint64   // last record's seq, 0 before the first
	hash     string   // last record's hash
	// rotateAt holds rotation back after a failed attempt.
	rotateAt int64
	// dirty means a failed append could not be cut back: the file must be
	// truncated to size before the next write.
	dirty bool
	// needNL means the current file, changed outside, does not end in a
	// newline: the next write starts with one so its record stays a line.
	needNL bool
	damage []Damage
	// opened is how many of damage Open found; handed how many
	// TakeDamage or Check have returned (from opened on).
	opened, handed int
	// fault is the kind of damage Check found and could not recover
	// from, reported once until recovery succeeds.
	fault  DamageKind
	closed bool

	headKick chan struct{} // wakes the head writer; closed by Close
	headDone chan struct{} // closed when the head writer has returned
	headMu   sync.Mutex    // serialises head writes; mu is never taken under it
	// dirf is the state directory as opened (replaced only with mu and
	// headMu both held, so either guards reading it): the head is written
	// inside it (openat, renameat), never through the path, which someone
	// may swap for a directory of their own; Check compares what is at
	// the path with it.
	dirf     *os.File
	headLast head   // what the head file holds, as far as known
	headErr  string // last head write error, to log each once

	// Space reserved ahead (reserve.go); mu guards it.
	reserve, stopRes int64 // Options.Reserve and StopReserve, resolved
	reserveOn        bool  // reserving works here (reserveOff)
	// alloc is how many bytes of f, from its start, are known to have
	// their disk blocks; allocKnown is false until probe has looked at
	// a newly opened (or truncated) f.
	alloc       int64
	allocKnown  bool
	spare       *os.File // SpareName, empty, held open; nil when none
	spareAlloc  int64    // bytes of spare known allocated
	spareProbed bool     // spareAlloc was searched for once
	// curErr and spareErr say why the current file and the spare lack
	// their reserve; reserveLost that DamageReserveLost was reported.
	curErr, spareErr error
	reserveLost      bool
	stopping         bool     // UseStopReserve was called
	note             *os.File // UnwrittenName, held open
	unwritten        note     // what Close writes to note
}

// Open opens the audit log in dir, creating dir (0700) and the log file
// (0600) if needed, and resumes the chain after its last record. Only one
// Log may be open on a directory: a second Open, from this process or
// another, fails.
//
// Open repairs what a crash leaves (a partial last line, preserved in a
// side file) and reports, through Damaged and the logger, a last record or
// head file that does not check out; it still opens, continuing the chain
// so that the break stays visible to Verify, because refusing to record
// new events would lose more than it protects. It checks only the end of
// the log; Verify checks all of it.
func Open(dir string, opts Options) (*Log, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	reserve, stopRes := opts.Reserve, opts.StopReserve
	if reserve == 0 {
		reserve = DefaultReserve
	}
	if stopRes == 0 {
		stopRes = DefaultStopReserve
	}
	reserve, stopRes = min(max(reserve, 0), opts.MaxSize), min(max(stopRes, 0), opts.MaxSize)
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create audit directory %s: %w", dir, err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open audit directory: %w", err)
	}
	lock, err := takeLock(dir)
	if err != nil {
		dirf.Close()
		return nil, err
	}
	l := &Log{dir: dir, opts: opts, logger: logger.With("audit_dir", dir), lock: lock, dirf: dirf,
		headKick: make(chan struct{}, 1), headDone: make(chan struct{}),
		reserve: reserve, stopRes: stopRes, reserveOn: opts.Reserve >= 0}
	if err := l.resume(); err != nil {
		if l.f != nil {
			l.f.Close()
		}
		lock.Close()
		dirf.Close()
		return nil, err
	}
	l.openNote()
	// Reserve ahead now, before the disk may fill: what the current file
	// has (blocks reserved by an earlier run stay on Linux), and the
	// spare. A failure is damage (reserve_lost), not fatal.
	l.probe()
	l.makeSpare()
	l.opened, l.handed = len(l.damage), len(l.damage)
	for _, d := range l.damage {
		l.logger.Warn("audit log damaged", "kind", d.Kind, "file", d.File, "seq", d.Seq, "reason", d.Reason)
	}
	go l.headLoop()
	return l, nil
}

// takeLock opens (creating if needed) and locks dir's lock file.
func takeLock(dir string) (*os.File, error) {
	lockPath := filepath.Join(dir, lockName)
	lock, _, err := openOrCreate(lockPath, os.O_RDWR)
	if err != nil {
		return nil, fmt.Errorf("open audit lock: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	return lock, nil
}

func (l *Log) path(name string) string { return filepath.Join(l.dir, name) }

func (l *Log) addDamage(kind DamageKind, file string, seq uint64, format string, args ...any) {
	l.damage = append(l.damage, Damage{Kind: kind, File: file, Seq: seq, Reason: fmt.Sprintf(format, args...)})
}

// resume opens the current file and finds where the chain stands.
func (l *Log) resume() error {
	if err := l.openCurrent(); err != nil {
		return err
	}
	// end is where the file's complete lines end: its size, unless a
	// torn tail had to be left in place.
	end := l.size
	if l.size > 0 {
		var err error
		if end, err = l.cutTornTail(); err != nil {
			return err
		}
	}
	l.seq, l.hash = 0, ZeroHash
	haveLast := false
	lastFile := ""
	var last parsed
	var lastErr error
	if end > 0 {
		lastFile = CurrentName
		var line []byte
		line, lastErr = lastLine(l.f, end)
		if lastErr == nil {
			last, lastErr = parseLine(line)
		}
		if lastErr == nil {
			if first, err := firstLine(io.NewSectionReader(l.f, 0, end)); err == nil {
				if p, err := parseLine(first); err == nil {
					l.firstSeq = p.seq
				}
			}
		}
	} else {
		rotated, err := listRotated(l.dir)
		if err != nil {
			return err
		}
		if n := len(rotated); n > 0 {
			lastFile = rotated[n-1].name
			last, lastErr = readLastRecord(l.path(lastFile))
		}
	}
	if lastFile != "" {
		if lastErr != nil {
			l.addDamage(DamageLastRecord, lastFile, 0, "cannot read the last record: %v", lastErr)
		} else {
			haveLast = true
			l.seq, l.hash = last.seq, last.hash
			if !last.ok() {
				l.addDamage(DamageLastRecord, lastFile, last.seq,
					"the last record's hash does not match its content (edited?); appending continues from its stated hash")
			}
		}
	}

	h, ok, err := readHead(l.path(HeadName))
	if ok {
		l.headLast = h
	}
	switch {
	case err != nil:
		l.addDamage(DamageHead, HeadName, 0, "head file ignored: %v", err)
	case !ok && lastFile != "":
		l.addDamage(DamageHeadMissing, HeadName, l.seq,
			"the log holds records (%s ends at seq %d) but its head file is gone: records may have been cut off the end; a new head is written", lastFile, l.seq)
	case !ok:
		torn, terr := tornFiles(l.dir)
		if terr != nil {
			return terr
		}
		if len(torn) > 0 {
			l.addDamage(DamageLogEmptied, CurrentName, 0,
				"the log is empty and its head file is gone, but %s shows it held records: the log was emptied; the chain restarts at seq 1", torn[0])
		}
	case lastFile == "" && h.seq > 0:
		l.seq, l.hash = h.seq, h.hash
		l.addDamage(DamageLogEmptied, CurrentName, h.seq,
			"the log is empty but its head file names seq %d: the log was emptied; appending continues from the head record", h.seq)
	case lastFile == "":
		// A log without records whose head says seq 0: a new log.
	case !haveLast:
		l.seq, l.hash = h.seq, h.hash
		l.addDamage(DamageHead, HeadName, h.seq, "appending continues from the head record (seq %d)", h.seq)
	case h.seq > l.seq:
		l.addDamage(DamageHead, lastFile, l.seq,
			"log ends at seq %d but its head record is seq %d: records were removed from the end; appending continues from the head record", l.seq, h.seq)
		l.seq, l.hash = h.seq, h.hash
	case h.seq == l.seq && h.hash != l.hash:
		l.addDamage(DamageHead, lastFile, l.seq,
			"last record's hash differs from the head record's: the record was replaced; appending continues from the head record's hash")
		l.hash = h.hash
	}
	if !haveLast && lastFile != "" && !ok {
		l.addDamage(DamageLastRecord, lastFile, 0, "no head file either: appending restarts the chain at seq 1")
	}
	if !ok {
		// Write the head now, before any record: a log with records and
		// no head is then always damage, never the remains of a crash.
		if err := l.storeHeadForce(head{l.seq, l.hash}); err != nil {
			// Not fatal: recording matters more; Verify will report it.
			l.logger.Warn("audit head not written", "err", err)
		}
	}
	return nil
}

// openCurrent opens (creating if needed) the current file for appending.
func (l *Log) openCurrent() error {
	path := l.path(CurrentName)
	f, created, err := openLogFile(path)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if created {
		if err := atomicfile.SyncDir(l.dir); err != nil {
			f.Close()
			return err
		}
	}
	l.f, l.size, l.firstSeq, l.needNL = f, fi.Size(), 0, false
	l.alloc, l.allocKnown = l.size, false
	return nil
}

// cutTornTail moves a partial last line into a side file and truncates
// it away, so that the next record starts on a line of its own. It
// returns where the complete lines end: the new size. When the disk has
// no room for the side file, the partial line is left in place instead
// (the next record starts with a newline, and Verify shows the line), so
// that a full disk never keeps the log from opening.
func (l *Log) cutTornTail() (int64, error) {
	path := l.path(CurrentName)
	start, err := tornStart(l.f, l.size)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	if start == l.size {
		return start, nil
	}
	n := l.size - start
	base := CurrentName + ".torn-" + strconv.FormatInt(l.opts.Now().Unix(), 10)
	name := base
	var tf *os.File
	for i := 2; ; i++ {
		tf, err = openFile(l.path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, os.ErrExist) || i > 100 {
			break
		}
		name = base + "-" + strconv.Itoa(i)
	}
	if err == nil {
		_, err = io.Copy(tf, io.NewSectionReader(l.f, start, n))
		if err == nil {
			err = tf.Sync()
		}
		if cerr := tf.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = atomicfile.SyncDir(l.dir)
		}
		if err != nil {
			os.Remove(l.path(name))
		}
	}
	if err != nil && isNoSpace(err) {
		l.needNL = true
		l.addDamage(DamageTornTail, CurrentName, 0,
			"a partial last line of %d bytes (an interrupted write, never acknowledged) is left in place: there is no space to move it aside (%v); Verify shows it as a line that is not a record", n, err)
		return start, nil
	}
	if err != nil {
		return 0, fmt.Errorf("preserve the partial last line of %s in %s: %w", path, name, err)
	}
	if err := l.f.Truncate(start); err != nil {
		return 0, fmt.Errorf("truncate %s: %w", path, err)
	}
	if err := l.f.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", path, err)
	}
	l.size = start
	l.alloc, l.allocKnown = start, false // the truncate freed the blocks past it
	l.addDamage(DamageTornTail, CurrentName, 0,
		"removed a partial last line of %d bytes (an interrupted write, never acknowledged); its bytes are in %s", n, name)
	return start, nil
}

// Damaged returns everything Open, and Check and Append since, found wrong
// and worked around; nil when nothing was. It hands nothing out: see
// TakeDamage.
func (l *Log) Damaged() []Damage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Damage(nil), l.damage...)
}

// Last returns the last record of the chain (Seq 0 and ZeroHash before the
// first).
func (l *Log) Last() Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Record{Seq: l.seq, Hash: l.hash}
}

// ErrRecordRefused is wrapped by the errors of Append for a record that no
// retry can write.
var ErrRecordRefused = errors.New("record refused")

// Append adds rec, which must marshal to a JSON object without the keys
// seq, prev_hash and hash, as the next record, and returns once the record
// is synced to disk. On error nothing of the record stays in the log. A
// record that can never be written (larger than MaxLineSize, not JSON, a
// field the chain owns) gives an error wrapping ErrRecordRefused: trying it
// again is useless, unlike a full disk.
func (l *Log) Append(rec any) (Record, error) {
	obj, err := json.Marshal(rec)
	if err != nil {
		return Record{}, fmt.Errorf("marshal audit record: %w: %w", ErrRecordRefused, err)
	}
	if err := checkFields(obj); err != nil {
		return Record{}, fmt.Errorf("audit record: %w: %w", ErrRecordRefused, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Record{}, ErrClosed
	}
	seq := l.seq + 1
	line, hash := buildLine(seq, l.hash, obj)
	if len(line) > MaxLineSize {
		return Record{}, fmt.Errorf("audit record: %w: %d bytes, more than %d", ErrRecordRefused, len(line), MaxLineSize)
	}
	l.check()
	if l.dirty && l.f != nil {
		if err := l.cutBack(); err != nil {
			return Record{}, fmt.Errorf("append to %s: earlier failed write not undone: %w", l.path(CurrentName), err)
		}
	}
	if l.f != nil && l.size > 0 && l.size+int64(len(line)) > l.opts.MaxSize && l.size >= l.rotateAt {
		if err := l.rotate(); err != nil {
			// Keep recording into the current file; try again later.
			l.rotateAt = l.size + l.opts.MaxSize/8
			l.logger.Warn("audit log rotation failed", "err", err)
		}
	}
	if l.f == nil {
		if err := l.openCurrent(); err != nil {
			return Record{}, err
		}
	}
	n := int64(len(line))
	if l.needNL {
		n++
	}
	if err := l.makeRoom(n); err != nil {
		return Record{}, err
	}
	if err := l.write(line); err != nil {
		return Record{}, err
	}
	l.keepAhead()
	if l.firstSeq == 0 {
		l.firstSeq = seq
	}
	l.seq, l.hash = seq, hash
	if l.opts.SyncHead {
		// The record is durable; a head failure only weakens the check
		// for removed trailing records.
		l.storeHead(head{seq, hash})
	} else {
		select {
		case l.headKick <- struct{}{}:
		default: // a write is already due; it will take this record
		}
	}
	return Record{Seq: seq, Hash: hash}, nil
}

// write appends line to the current file and syncs it, or leaves the file
// as it was.
func (l *Log) write(line []byte) error {
	path := l.path(CurrentName)
	if l.needNL {
		// The file was changed outside and ends in a partial line:
		// end it, so that this record is a line of its own.
		line = append([]byte{'\n'}, line...)
	}
	n, err := appendTo(l.f, line)
	if err != nil && n == 0 {
		// Nothing was written, as far as the file's size tells: leave
		// it alone, since a truncate, even to the same size, frees the
		// blocks reserved past its end.
		if fi, serr := l.f.Stat(); serr == nil && fi.Size() == l.size {
			return appendErr(path, err)
		}
	}
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		l.dirty = true
		if cerr := l.cutBack(); cerr != nil {
			l.logger.Warn("audit log: cannot undo a failed write", "file", path, "err", cerr)
		}
		return appendErr(path, err)
	}
	l.size += int64(len(line))
	l.needNL = false
	return nil
}

// appendErr is the error of a failed write to path: it wraps ErrNoSpace
// when the disk (or a quota) is full. The *os.PathError of the write or
// sync is unwrapped: it names the file as opened, and a spare renamed into
// place was opened as SpareName.
func appendErr(path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	if isNoSpace(err) {
		return fmt.Errorf("append to %s: %w: %w", path, ErrNoSpace, err)
	}
	return fmt.Errorf("append to %s: %w", path, err)
}

// cutBack truncates the current file to the end of its last complete
// record, undoing a partial or unsynced write. The truncate frees the
// blocks reserved past the end: the next Append allocates them again.
func (l *Log) cutBack() error {
	l.allocKnown = false
	if err := l.f.Truncate(l.size); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return err
	}
	l.dirty = false
	return nil
}

// rotate renames the current file out of the way and continues in the
// spare next file, renamed into place (no new space needed), or in a new
// file when there is no spare. With reserving on and no spare for lack
// of space, it does not rotate: the current file's reserve is what is
// left, and a new file would have none.
func (l *Log) rotate() error {
	first := l.firstSeq
	if first == 0 {
		// The first record is unreadable; name the file after its
		// last record so that names still sort. Verify reports it.
		first = l.seq
	}
	name := rotatedName(first)
	if _, err := os.Lstat(l.path(name)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate %s: %s already exists", CurrentName, name)
	}
	if l.reserveOn && (l.spare == nil || l.spareErr != nil) {
		l.makeSpare()
	}
	if l.reserveOn && isNoSpace(l.spareErr) {
		// A new file, or a spare without its reserve, would have no
		// room: the current file's reserve is what is left.
		return fmt.Errorf("rotate %s: no spare next file with its reserve to continue in: %w", CurrentName, l.spareErr)
	}
	if err := l.f.Close(); err != nil {
		l.logger.Warn("audit log close failed", "err", err)
	}
	l.f = nil
	if err := os.Rename(l.path(CurrentName), l.path(name)); err != nil {
		if oerr := l.openCurrent(); oerr != nil {
			l.logger.Warn("audit log reopen failed", "err", oerr)
		}
		return fmt.Errorf("rotate %s: %w", CurrentName, err)
	}
	spared := l.takeSpare()
	if err := atomicfile.SyncDir(l.dir); err != nil {
		l.logger.Warn("audit log rotation not synced", "err", err)
	}
	l.logger.Info("audit log rotated", "file", name, "first_seq", first, "last_seq", l.seq, "into_spare", spared)
	if !spared {
		if err := l.openCurrent(); err != nil {
			return err
		}
	}
	l.keepAhead()
	return nil
}

// headLoop writes the head file whenever Append kicks it, until Close.
func (l *Log) headLoop() {
	defer close(l.headDone)
	for range l.headKick {
		l.mu.Lock()
		h := head{l.seq, l.hash}
		l.mu.Unlock()
		l.storeHead(h)
	}
}

// storeHead replaces the head file with h unless it holds h or a later
// record already. It logs failures (each distinct one once) and returns
// them.
func (l *Log) storeHead(h head) error {
	l.headMu.Lock()
	defer l.headMu.Unlock()
	if h.seq == 0 || h == l.headLast || h.seq < l.headLast.seq {
		return nil
	}
	return l.writeHead(h)
}

// storeHeadForce writes h to the head file whatever it held.
func (l *Log) storeHeadForce(h head) error {
	l.headMu.Lock()
	defer l.headMu.Unlock()
	return l.writeHead(h)
}

// writeHead replaces the head file with h; headMu is held.
func (l *Log) writeHead(h head) error {
	err := replaceAt(l.dirf, l.dir, HeadName, h.marshal())
	if err != nil {
		if msg := err.Error(); msg != l.headErr {
			l.headErr = msg
			l.logger.Warn("audit head update failed", "err", err)
		}
		return err
	}
	l.headLast, l.headErr = h, ""
	return nil
}

// Close writes the head file and closes the log. Further Appends fail
// with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	h := head{l.seq, l.hash}
	l.mu.Unlock()
	close(l.headKick)
	<-l.headDone
	errs := []error{l.storeHead(h)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if u := l.unwritten; u.held > 0 || u.dropped > 0 {
		u.after = l.seq
		if err := l.writeNote(u, true); err != nil {
			l.logger.Error("audit log: cannot leave the number of unwritten records for the next start", "held", u.held, "dropped", u.dropped, "err", err)
			errs = append(errs, err)
		}
	}
	if l.note != nil {
		errs = append(errs, l.note.Close())
	}
	l.dropSpare()
	if l.f != nil {
		errs = append(errs, l.f.Close())
	}
	errs = append(errs, l.lock.Close())
	l.headMu.Lock()
	errs = append(errs, l.dirf.Close())
	l.headMu.Unlock()
	return errors.Join(errs...)
}
