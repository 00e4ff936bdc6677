package report

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mamori-agent/mamori/internal/atomicfile"
	"github.com/mamori-agent/mamori/internal/fsguard"
)

// The queue directory's files. Segments are named by the sequence number
// of their first record, zero-padded so that names sort in order.
const (
	idName     = "queue.id"
	stateName  = "queue.ack"
	segPrefix  = "seg-"
	segSuffix  = ".q"
	segDigits  = 20
	hdrSize    = 16 // length, CRC-32C, sequence number
	idRandSize = 16
)

// DefaultSegmentSize is the size at which the queue starts a new segment
// file when QueueOptions.SegmentSize is zero.
const DefaultSegmentSize = 8 << 20

// MaxRecordSize is the largest record the queue takes, in bytes: an audit
// record (at most 1 MiB) with its place in the chain.
const MaxRecordSize = 2 << 20

// maxPendingBytes bounds what waits in memory for the next commit: Add
// blocks beyond it (a disk slower than the events).
const maxPendingBytes = 16 << 20

// ErrQueueClosed is returned by the queue's methods after Close.
var ErrQueueClosed = errors.New("report queue is closed")

var errNotRegular = fsguard.ErrNotRegular

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// QueueOptions configures OpenQueue.
type QueueOptions struct {
	// Limit is the most events the queue keeps; beyond it the oldest are
	// dropped and counted. Zero means 1,000,000.
	Limit int64
	// SegmentSize is the size at which a new segment file is started;
	// zero means DefaultSegmentSize.
	SegmentSize int64
	// Logger receives warnings (a torn tail cut, events dropped). Nil
	// discards them.
	Logger *slog.Logger
	// OnDrop, when set, is called with the number of events each time
	// some are dropped (the metric), under the queue's lock: it must not
	// call back into the queue.
	OnDrop func(n int64)
}

// Item is one record read from the queue.
type Item struct {
	// Seq is the record's sequence number in the queue, from 1.
	Seq  uint64
	Data []byte
}

// Queue is a durable FIFO of records in a directory: append-only segment
// files of length-prefixed records, each with a CRC-32C, made durable by
// group commit (one write and one fsync for every record added while the
// previous commit ran). A record counts as queued once Append returns.
// The acknowledged position and the count of dropped records not yet
// reported are kept in a small state file replaced atomically; segments
// wholly acknowledged are deleted. Its methods are safe for concurrent
// use.
//
// A crash may leave the last segment with a torn record at its end: Open
// cuts it (the CRC tells), and a damaged record elsewhere ends what is
// read of its segment, the records lost counted as dropped.
type Queue struct {
	dir    string
	prefix string
	opts   QueueOptions
	log    *slog.Logger

	mu   sync.Mutex
	cond *sync.Cond // signals the flusher (records added, closing) and blocked adders
	cur  *group     // records waiting for the next commit
	// pendBytes is the size of cur's records.
	pendBytes int
	closed    bool
	flushDone chan struct{}
	notify    chan struct{} // kicked after each commit that added records
	segs      []segment     // in order; the last is the one appended to
	tail      uint64        // next seq to give; every seq below it is on disk
	head      uint64        // first seq neither acknowledged nor dropped
	acked     uint64        // acknowledged position as persisted
	dropped   int64         // dropped and not yet reported
	dirty     bool          // head or dropped differ from the state file
	rotate    bool          // start a new segment at the next commit
	// holes are damaged ranges found by Read, [key, value), counted as
	// dropped already.
	holes map[uint64]uint64
	// last is the newest record committed (nil: the queue never held
	// one), for Last.
	last []byte

	// The flusher's own: the segment file appended to.
	f      *os.File
	fsize  int64
	wbuf   []byte
	broken bool // f could not be cut back after a failed write

	// The reader's (Read) cursor, under rmu.
	rmu sync.Mutex
	rd  cursor

	stateMu sync.Mutex // serialises state file writes
}

// segment is one segment file.
type segment struct {
	first uint64 // seq of its first record, as its name states
	size  int64  // bytes of complete, committed records
}

// cursor is where Read continues: the next record of an open segment.
type cursor struct {
	f     *os.File
	first uint64 // the segment's
	off   int64
	seq   uint64
}

// group is one commit's records.
type group struct {
	recs  [][]byte
	first uint64
	err   error
	done  chan struct{}
}

// Pending is a record added to the queue and not yet known to be on disk.
type Pending struct {
	g   *group
	idx int
}

// Wait returns the record's sequence number once it is on disk, or why it
// could not be written.
func (p Pending) Wait() (uint64, error) {
	<-p.g.done
	return p.g.first + uint64(p.idx), p.g.err
}

type queueState struct {
	Acked   uint64 `json:"acked"`
	Dropped int64  `json:"dropped"`
}

func segName(first uint64) string {
	return fmt.Sprintf("%s%0*d%s", segPrefix, segDigits, first, segSuffix)
}

func parseSegName(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, segPrefix)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, segSuffix)
	if !ok || len(s) != segDigits || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n > 0
}

// OpenQueue opens the queue in dir, creating dir (0700) and its files
// when missing. Only the agent writes there: a symlink, FIFO or device
// found in place of one of its files is refused, not followed.
func OpenQueue(dir string, opts QueueOptions) (*Queue, error) {
	if opts.Limit <= 0 {
		opts.Limit = 1_000_000
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := prepareDir(dir); err != nil {
		return nil, err
	}
	q := &Queue{dir: dir, opts: opts, log: opts.Logger, cur: newGroup(),
		notify: make(chan struct{}, 1), flushDone: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	var err error
	if q.prefix, err = q.loadID(); err != nil {
		return nil, err
	}
	if err := q.loadState(); err != nil {
		return nil, err
	}
	if err := q.loadSegments(); err != nil {
		if q.f != nil {
			q.f.Close()
		}
		return nil, err
	}
	q.mu.Lock()
	if q.head < q.segs[0].first {
		// Records gone from the disk without an acknowledgement.
		q.dropLocked(int64(q.segs[0].first-q.head), "segment files are missing")
		q.head = q.segs[0].first
	}
	q.enforceLimit()
	q.mu.Unlock()
	q.removeDone()
	go q.flusher()
	return q, nil
}

func newGroup() *group { return &group{done: make(chan struct{})} }

// prepareDir creates dir (0700) or checks that it is a directory and not
// a symlink.
func prepareDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("create queue directory: %w", err)
		}
		return atomicfile.SyncDir(filepath.Dir(dir))
	}
	if err != nil {
		return fmt.Errorf("queue directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("queue directory %s: is %s, not a directory", dir, fsguard.Describe(fi.Mode()))
	}
	return nil
}

// openFile opens one of the queue's files (fsguard.OpenFile: no symlink
// followed, no FIFO waited on, a regular file or an error).
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	return fsguard.OpenFile(path, flag, perm)
}

func (q *Queue) path(name string) string { return filepath.Join(q.dir, name) }

// loadID reads the queue's id prefix, or makes one.
func (q *Queue) loadID() (string, error) {
	p := q.path(idName)
	b, err := fsguard.ReadFileNoFollow(p, 256)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if raw, err := hex.DecodeString(s); err == nil && len(raw) == idRandSize {
			return s, nil
		}
		return "", fmt.Errorf("%s: not a queue id (%d hex digits)", p, 2*idRandSize)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, idRandSize)
	rand.Read(raw)
	s := hex.EncodeToString(raw)
	f, err := openFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", p, err)
	}
	_, err = f.WriteString(s + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return s, atomicfile.SyncDir(q.dir)
}

// loadState reads the acknowledged position. A state file that does not
// parse is reported and taken as nothing acknowledged: the hub drops what
// it has already (ids it has seen).
func (q *Queue) loadState() error {
	b, err := fsguard.ReadFileNoFollow(q.path(stateName), 4096)
	if errors.Is(err, fs.ErrNotExist) {
		q.head = 1
		return nil
	}
	if err != nil && !errors.Is(err, fsguard.ErrTooLarge) {
		return err
	}
	var st queueState
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		q.log.Warn("report queue state unreadable; resending from the oldest record kept (the hub drops duplicates)", "file", q.path(stateName), "err", err)
		q.dirty = true
	}
	q.acked, q.dropped, q.head = st.Acked, max(st.Dropped, 0), st.Acked+1
	return nil
}

// loadSegments lists the segments and opens the last one for appending,
// cutting a torn tail.
func (q *Queue) loadSegments() error {
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return fmt.Errorf("read queue directory: %w", err)
	}
	for _, e := range entries {
		if first, ok := parseSegName(e.Name()); ok {
			q.segs = append(q.segs, segment{first: first})
		}
	}
	slices.SortFunc(q.segs, func(a, b segment) int { return cmp.Compare(a.first, b.first) })
	for i := range q.segs[:max(len(q.segs)-1, 0)] {
		fi, err := os.Lstat(q.path(segName(q.segs[i].first)))
		if err != nil {
			return fmt.Errorf("queue segment: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("queue segment %s: is %s, %w", segName(q.segs[i].first), fsguard.Describe(fi.Mode()), errNotRegular)
		}
		q.segs[i].size = fi.Size()
	}
	q.tail = q.head
	if len(q.segs) > 0 {
		last := &q.segs[len(q.segs)-1]
		p := q.path(segName(last.first))
		f, err := openFile(p, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open queue segment: %w", err)
		}
		q.f = f
		b, err := io.ReadAll(io.LimitReader(f, q.opts.SegmentSize+MaxRecordSize+hdrSize+1))
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		n, good := scanRecords(b, last.first)
		if good < int64(len(b)) {
			q.log.Warn("report queue: cutting a torn or damaged tail (a crash during a write)", "file", p, "offset", good, "bytes", int64(len(b))-good)
			if err := f.Truncate(good); err != nil {
				return fmt.Errorf("cut torn tail of %s: %w", p, err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("cut torn tail of %s: %w", p, err)
			}
		}
		if _, err := f.Seek(good, io.SeekStart); err != nil {
			return fmt.Errorf("seek %s: %w", p, err)
		}
		last.size, q.fsize = good, good
		q.last = lastRecord(b[:good], last.first, n)
		q.tail = max(q.tail, last.first+n)
		if last.first+n < q.tail {
			// The chain of sequence numbers would go back (records removed
			// behind our back): continue in a new segment.
			q.rotate = true
		}
	}
	// The newest record may be in an older segment when the last is empty
	// (started after damage or a failed write).
	for i := len(q.segs) - 2; i >= 0 && q.last == nil; i-- {
		q.last = q.lastOf(q.segs[i])
	}
	if len(q.segs) == 0 || q.rotate {
		if err := q.newSegment(q.tail); err != nil {
			return err
		}
		q.segs = append(q.segs, segment{first: q.tail})
		q.rotate = false
	}
	return nil
}

// scanRecords returns how many valid records b holds from its start, with
// sequence numbers from first on, and the offset just past them.
func scanRecords(b []byte, first uint64) (n uint64, good int64) {
	for off := 0; ; {
		size, ok := recordAt(b[off:], first+n)
		if !ok {
			return n, int64(off)
		}
		off += size
		n++
	}
}

// lastRecord returns the payload of the last of the n valid records at
// the start of b (numbered from first), nil when n is 0.
func lastRecord(b []byte, first, n uint64) []byte {
	var data []byte
	for i, off := uint64(0), 0; i < n; i++ {
		size, _ := recordAt(b[off:], first+i)
		data = b[off+hdrSize : off+size]
		off += size
	}
	return bytes.Clone(data)
}

// lastOf returns the payload of the last valid record of the segment
// file seg, nil when it holds none or cannot be read.
func (q *Queue) lastOf(seg segment) []byte {
	f, err := openFile(q.path(segName(seg.first)), os.O_RDONLY, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fsguard.CheckRegular(f, f.Name()) != nil {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(f, q.opts.SegmentSize+maxPendingBytes+2*(MaxRecordSize+hdrSize)))
	if err != nil {
		return nil
	}
	n, good := scanRecords(b, seg.first)
	return lastRecord(b[:good], seg.first, n)
}

// recordAt checks the record at the start of b, which must have sequence
// number seq, and returns its size.
func recordAt(b []byte, seq uint64) (int, bool) {
	if len(b) < hdrSize {
		return 0, false
	}
	l := binary.LittleEndian.Uint32(b)
	if l > MaxRecordSize || int(l) > len(b)-hdrSize {
		return 0, false
	}
	if binary.LittleEndian.Uint64(b[8:]) != seq {
		return 0, false
	}
	if recordCRC(b[8:hdrSize+int(l)]) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, false
	}
	return hdrSize + int(l), true
}

// recordCRC is the CRC-32C of a record's sequence number and payload.
func recordCRC(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// appendRecord encodes one record.
func appendRecord(buf []byte, seq uint64, data []byte) []byte {
	start := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(data)))
	buf = binary.LittleEndian.AppendUint32(buf, 0)
	buf = binary.LittleEndian.AppendUint64(buf, seq)
	buf = append(buf, data...)
	binary.LittleEndian.PutUint32(buf[start+4:], recordCRC(buf[start+8:]))
	return buf
}

// newSegment creates the segment whose first record is first and makes
// it the file appended to. The flusher's (or Open's).
func (q *Queue) newSegment(first uint64) error {
	p := q.path(segName(first))
	f, err := openFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create queue segment: %w", err)
	}
	if err := atomicfile.SyncDir(q.dir); err != nil {
		f.Close()
		return err
	}
	if q.f != nil {
		q.f.Close()
	}
	q.f, q.fsize = f, 0
	return nil
}

// ID returns the id of the record with sequence number seq: the queue's
// random prefix, "-", and seq.
func (q *Queue) ID(seq uint64) string {
	return q.prefix + "-" + strconv.FormatUint(seq, 10)
}

// Prefix returns the queue's random id prefix (32 hex digits).
func (q *Queue) Prefix() string { return q.prefix }

// Add queues data for the next commit and returns at once; Wait on the
// result says when it is on disk. It blocks only while more than 16 MiB
// wait for the disk.
func (q *Queue) Add(data []byte) (Pending, error) {
	if len(data) > MaxRecordSize {
		return Pending{}, fmt.Errorf("report queue: record of %d bytes, more than %d", len(data), MaxRecordSize)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.pendBytes > maxPendingBytes && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return Pending{}, ErrQueueClosed
	}
	g := q.cur
	g.recs = append(g.recs, data)
	q.pendBytes += len(data) + hdrSize
	if len(g.recs) == 1 {
		q.cond.Broadcast()
	}
	return Pending{g, len(g.recs) - 1}, nil
}

// Append queues data and returns its sequence number once it is on disk
// (synced), sharing the sync with every record added meanwhile.
func (q *Queue) Append(data []byte) (uint64, error) {
	p, err := q.Add(data)
	if err != nil {
		return 0, err
	}
	return p.Wait()
}

// flusher commits what Add queued, one group at a time, until Close.
func (q *Queue) flusher() {
	defer close(q.flushDone)
	for {
		q.mu.Lock()
		for len(q.cur.recs) == 0 && !q.closed {
			q.cond.Wait()
		}
		g := q.cur
		if len(g.recs) == 0 {
			q.mu.Unlock()
			return
		}
		q.cur, q.pendBytes = newGroup(), 0
		q.cond.Broadcast()
		g.first = q.tail
		rotate := q.rotate
		q.mu.Unlock()

		newSeg, err := q.commit(g, rotate)

		q.mu.Lock()
		if q.broken {
			q.rotate, q.broken = true, false
		}
		if err != nil {
			g.err = err
			q.log.Error("report queue: write failed; these events will not reach the hub (they are in the audit log)", "events", len(g.recs), "err", err)
			q.dropLocked(int64(len(g.recs)), "the queue could not be written")
		} else {
			if newSeg {
				q.segs = append(q.segs, segment{first: g.first})
				q.rotate = false
			}
			q.tail = g.first + uint64(len(g.recs))
			q.last = g.recs[len(g.recs)-1]
			q.segs[len(q.segs)-1].size = q.fsize
			q.enforceLimit()
		}
		q.mu.Unlock()
		close(g.done)
		select {
		case q.notify <- struct{}{}:
		default:
		}
		q.removeDone()
	}
}

// commit writes g's records, from sequence number g.first, and syncs
// them; newSeg says it started a new segment for them. On error the
// segment is cut back to what it held.
func (q *Queue) commit(g *group, rotate bool) (newSeg bool, err error) {
	buf := q.wbuf[:0]
	for i, r := range g.recs {
		buf = appendRecord(buf, g.first+uint64(i), r)
	}
	q.wbuf = buf
	if cap(q.wbuf) > 4*maxPendingBytes {
		q.wbuf = nil
	}
	if rotate || q.fsize > 0 && q.fsize+int64(len(buf)) > q.opts.SegmentSize {
		if err := q.newSegment(g.first); err != nil {
			return false, err
		}
		newSeg = true
	}
	_, err = q.f.Write(buf)
	if err == nil {
		err = q.f.Sync()
	}
	if err != nil {
		if terr := q.f.Truncate(q.fsize); terr == nil {
			q.f.Seek(q.fsize, io.SeekStart)
		} else {
			q.broken = true
		}
		return newSeg, fmt.Errorf("append to %s: %w", q.f.Name(), err)
	}
	q.fsize += int64(len(buf))
	return newSeg, nil
}

// enforceLimit drops the oldest records beyond the limit. Under mu.
func (q *Queue) enforceLimit() {
	if n := int64(q.tail - q.head); n > q.opts.Limit {
		q.dropLocked(n-q.opts.Limit, "the queue is full")
		q.head += uint64(n - q.opts.Limit)
	}
}

// dropLocked counts n dropped records. Under mu.
func (q *Queue) dropLocked(n int64, why string) {
	if n <= 0 {
		return
	}
	q.dropped += n
	q.dirty = true
	if q.opts.OnDrop != nil {
		q.opts.OnDrop(n)
	}
	q.log.Warn("report queue: events dropped; the count goes to the hub with the next batch", "events", n, "why", why)
}

// AddDropped counts n events that never reached the queue (lost on the
// way to it): they are reported to the hub like those it drops itself,
// and the sender is woken for it (Notify), so that the count does not
// wait for the next event.
func (q *Queue) AddDropped(n int64) {
	q.mu.Lock()
	q.dropLocked(n, "lost before the queue")
	q.mu.Unlock()
	if n > 0 {
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
}

// Len returns how many records wait to be acknowledged.
func (q *Queue) Len() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(q.tail - q.head)
}

// Last returns the newest record the queue holds or held, acknowledged
// or not: it keeps the segment of its newest record, so that this is
// known across restarts. False for a queue that never held a record.
func (q *Queue) Last() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.last, q.last != nil
}

// Dropped returns how many dropped records are not yet reported.
func (q *Queue) Dropped() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// Head returns the sequence number of the oldest record kept.
func (q *Queue) Head() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head
}

// Notify returns a channel that receives after commits: records may be
// waiting to be read.
func (q *Queue) Notify() <-chan struct{} { return q.notify }

// Read returns up to max records (and about maxBytes of data, at least
// one record) from the oldest kept on, with how many dropped records are
// not yet reported. It reads only what is on disk.
func (q *Queue) Read(max, maxBytes int) ([]Item, int64, error) {
	q.rmu.Lock()
	defer q.rmu.Unlock()
	var out []Item
	size := 0
	for len(out) < max {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, 0, ErrQueueClosed
		}
		start, tail := q.head, q.tail
		if len(out) > 0 {
			start = out[len(out)-1].Seq + 1
		}
		start = q.stepHoles(start)
		if start >= tail {
			q.mu.Unlock()
			break
		}
		i := len(q.segs) - 1
		for i > 0 && q.segs[i].first > start {
			i--
		}
		seg, end := q.segs[i], tail
		if i+1 < len(q.segs) {
			end = q.segs[i+1].first
		}
		q.mu.Unlock()

		if q.rd.f == nil || q.rd.first != seg.first || q.rd.seq > start {
			if err := q.seek(seg); err != nil {
				return out, 0, err
			}
		}
		for q.rd.seq < end && q.rd.off < seg.size && len(out) < max {
			d, ok, err := q.readAt(seg.size)
			if err != nil {
				return out, 0, err
			}
			if !ok {
				break
			}
			seq := q.rd.seq - 1
			if seq < start {
				continue
			}
			if len(out) > 0 && size+len(d) > maxBytes {
				q.rd.f.Close() // read it again next time
				q.rd.f = nil
				return out, q.Dropped(), nil
			}
			size += len(d)
			out = append(out, Item{Seq: seq, Data: d})
		}
		if len(out) < max && q.rd.seq < end {
			// Damaged, or a segment shorter than its successor says: the
			// rest of it is lost.
			q.skipDamaged(seg, end)
		}
	}
	return out, q.Dropped(), nil
}

// seek opens seg for reading at its start.
func (q *Queue) seek(seg segment) error {
	if q.rd.f != nil {
		q.rd.f.Close()
		q.rd.f = nil
	}
	f, err := openFile(q.path(segName(seg.first)), os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("read queue: %w", err)
	}
	q.rd = cursor{f: f, first: seg.first, seq: seg.first}
	return nil
}

// readAt reads the record at the cursor, below limit.
func (q *Queue) readAt(limit int64) ([]byte, bool, error) {
	var hdr [hdrSize]byte
	if q.rd.off+hdrSize > limit {
		return nil, false, nil
	}
	if _, err := q.rd.f.ReadAt(hdr[:], q.rd.off); err != nil {
		return nil, false, fmt.Errorf("read %s: %w", q.rd.f.Name(), err)
	}
	l := int64(binary.LittleEndian.Uint32(hdr[:]))
	if l > MaxRecordSize || q.rd.off+hdrSize+l > limit {
		return nil, false, nil
	}
	b := make([]byte, hdrSize+l)
	if _, err := q.rd.f.ReadAt(b, q.rd.off); err != nil {
		return nil, false, fmt.Errorf("read %s: %w", q.rd.f.Name(), err)
	}
	if _, ok := recordAt(b, q.rd.seq); !ok {
		return nil, false, nil
	}
	q.rd.off += hdrSize + l
	q.rd.seq++
	return b[hdrSize:], true, nil
}

// skipDamaged gives up the rest of seg, whose records end before end:
// they are counted as dropped, once, and Read and Ack step over them.
func (q *Queue) skipDamaged(seg segment, end uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	from := max(q.rd.seq, q.head)
	if _, seen := q.holes[from]; !seen && end > from {
		q.log.Error("report queue: a damaged record; the rest of its segment is lost", "file", segName(seg.first), "seq", from)
		q.dropLocked(int64(end-from), "a damaged segment")
		if q.holes == nil {
			q.holes = map[uint64]uint64{}
		}
		q.holes[from] = end
	}
	if seg.first == q.segs[len(q.segs)-1].first {
		q.rotate = true // append after the damage no more
	}
	q.rd.off, q.rd.seq = seg.size, end
}

// stepHoles moves start past the damaged ranges it falls on, and head with
// it when they start there. Under mu.
func (q *Queue) stepHoles(start uint64) uint64 {
	for {
		e, ok := q.holes[start]
		if !ok {
			return start
		}
		if start == q.head {
			delete(q.holes, start)
			q.head, q.dirty = e, true
		}
		start = e
	}
}

// Ack records that the records from first to last (seqs; last below
// first for none) reached the hub, and that reported of the dropped
// records were reported there. Records of that range dropped meanwhile
// (the queue overflowed while the batch was on its way) are not counted
// as dropped after all. Segments wholly acknowledged are deleted after
// the position is persisted.
func (q *Queue) Ack(first, last uint64, reported int64) error {
	q.mu.Lock()
	if last >= first && q.head > first {
		// Dropped while in flight, and delivered: not lost.
		q.dropped -= int64(min(q.head, last+1) - first)
	}
	if last >= q.head {
		q.head = min(last+1, q.tail)
	}
	q.stepHoles(q.head)
	q.dropped = max(q.dropped-reported, 0)
	q.dirty = true
	q.mu.Unlock()
	if err := q.SaveState(); err != nil {
		return err
	}
	q.removeDone()
	return nil
}

// SaveState persists the acknowledged position and the dropped count when
// they changed.
func (q *Queue) SaveState() error {
	q.stateMu.Lock()
	defer q.stateMu.Unlock()
	q.mu.Lock()
	if !q.dirty {
		q.mu.Unlock()
		return nil
	}
	st := queueState{Acked: q.head - 1, Dropped: q.dropped}
	q.dirty = false
	q.mu.Unlock()
	b, _ := json.Marshal(st)
	if err := atomicfile.WriteFile(q.path(stateName), append(b, '\n')); err != nil {
		q.mu.Lock()
		q.dirty = true
		q.mu.Unlock()
		return err
	}
	q.mu.Lock()
	q.acked = st.Acked
	q.mu.Unlock()
	return nil
}

// removeDone deletes the segments whose records are all below the
// persisted acknowledged position, or dropped, never the one appended
// to nor the one holding the newest record (Last). A record dropped but
// not persisted so is counted again at Open from the gap it leaves.
func (q *Queue) removeDone() {
	q.mu.Lock()
	var gone []uint64
	newest := len(q.segs) - 1 // the newest segment holding a record
	for newest > 0 && q.segs[newest].size == 0 {
		newest--
	}
	for len(q.segs) > 1 && q.segs[1].first <= q.head && newest > 0 {
		newest--
		gone = append(gone, q.segs[0].first)
		q.segs = q.segs[1:]
	}
	q.mu.Unlock()
	for _, first := range gone {
		if err := os.Remove(q.path(segName(first))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			q.log.Warn("report queue: cannot delete a sent segment", "err", err)
		}
	}
}

// Close commits what was added, persists the state and closes the files.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	<-q.flushDone
	err := q.SaveState()
	q.rmu.Lock()
	if q.rd.f != nil {
		q.rd.f.Close()
		q.rd.f = nil
	}
	q.rmu.Unlock()
	if q.f != nil {
		if cerr := q.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
