package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/wire"
)

// DefaultMaxPending is how many events the agent keeps in memory, in
// order, while the audit log cannot be written (a full disk, an I/O error).
const DefaultMaxPending = 10000

// pendingRetry is how often events waiting for the audit log are tried
// again (they are also tried before every new event).
const pendingRetry = 2 * time.Second

// pendingQueue holds events the audit log refused, oldest first, until
// they can be written.
type pendingQueue struct {
	events []*Event
	// lost counts events dropped, oldest first, because the queue was full;
	// since is when the first write failed, lastErr why.
	lost    int
	late    int
	since   time.Time
	lastErr string
}

// Sink consumes the agent's events after the audit log has recorded
// them: the local warning, the hub reporter, the desktop helper. Each sink
// gets a bounded queue and a goroutine of its own (see Options.Sinks), so a
// slow or stuck sink never holds the detection path; when its queue is
// full the event is dropped for that sink only, logged and counted in
// mamori_sink_dropped_events_total{sink}. It is never lost from the audit
// log, which comes first.
type Sink interface {
	// Name names the sink in logs and metrics ("warn", "report").
	Name() string
	// Handle takes one event. ev is shared with the other sinks and must
	// not be changed. An error is logged; the event is not retried here
	// (a sink that must not lose events keeps its own durable queue).
	Handle(ev *Event) error
}

// RecordSink is a Sink that needs each event's place in the audit chain
// (the hub reporter). It gets HandleRecord instead of Handle, once for
// every record the audit log writes, when it is written: an event the log
// could not take at once comes when it is written late, and the log's own
// audit_gap records come too, so the records it sees continue the chain.
// An event the log never wrote does not come.
//
// When its queue is full the records are not dropped: the sink is marked
// behind, and once it has handled what was queued its goroutine reads the
// records it missed back from the audit log (audit.ReadAfter) and hands
// them to HandleRaw, in order, until it has caught up with the log; then
// the queue takes records again. Only records that cannot be read back
// (over audit.MaxReadBack, or damaged) are lost, and told to Lost.
type RecordSink interface {
	Sink
	// HandleRecord takes one event and its audit record's seq and hash,
	// with the hash of the record before it.
	HandleRecord(ev *Event, seq uint64, hash, prevHash string) error
	// HandleRaw takes a record read back from the audit log: its seq,
	// hash and prev_hash, and its event as the JSON object the record
	// holds (audit.Entry.Fields). A record at or before the newest it was
	// handed in this run must be ignored (a read-back can overlap the
	// queue by one record).
	HandleRaw(seq uint64, hash, prevHash string, event json.RawMessage) error
	// Lost is told, on any goroutine, that n records did not reach it:
	// the read-back could not return them. It must not block.
	Lost(n int)
}

// DefaultSinkQueue is the queue length of each sink when
// Options.SinkQueue is zero.
const DefaultSinkQueue = 1024

// queuedSink runs one sink on its own goroutine behind a bounded queue.
type queuedSink struct {
	sink    Sink
	rs      RecordSink // sink, when it is one
	ch      chan sinkItem
	done    chan struct{}
	dropped func()
	log     func(err error)
	// readAfter reads the audit log's records after a seq back, for a
	// RecordSink that fell behind (audit.ReadAfter on the state dir).
	readAfter func(seq uint64) ([]audit.Entry, error)

	// mu guards the catch-up state of a RecordSink.
	mu sync.Mutex
	// behind is set when a record found the queue full; missFrom is the
	// first record not queued; lastSeq is the newest record offered.
	behind   bool
	missFrom uint64
	lastSeq  uint64
}

// sinkItem is an event with its audit record (for a RecordSink).
type sinkItem struct {
	ev  *Event
	rec chainPos
}

// chainPos is a record's place in the audit chain.
type chainPos struct {
	seq            uint64
	hash, prevHash string
}

func newQueuedSink(s Sink, size int, dropped func(), logErr func(error), readAfter func(uint64) ([]audit.Entry, error)) *queuedSink {
	q := &queuedSink{sink: s, ch: make(chan sinkItem, size), done: make(chan struct{}), dropped: dropped, log: logErr, readAfter: readAfter}
	q.rs, _ = s.(RecordSink)
	go q.run()
	return q
}

func (q *queuedSink) run() {
	defer close(q.done)
	for it := range q.ch {
		var err error
		if q.rs != nil {
			err = q.rs.HandleRecord(it.ev, it.rec.seq, it.rec.hash, it.rec.prevHash)
		} else {
			err = q.sink.Handle(it.ev)
		}
		if err != nil {
			q.log(err)
		}
		if q.rs != nil && len(q.ch) == 0 {
			q.catchUp()
		}
	}
}

// offer queues ev (with rec for a RecordSink) without waiting; false when
// the queue was full and the event is lost for this sink. A RecordSink
// whose queue is full is marked behind instead, and reads the records
// back from the audit log (catchUp).
func (q *queuedSink) offer(ev *Event, rec chainPos) bool {
	if q.rs != nil {
		return q.offerRecord(ev, rec)
	}
	select {
	case q.ch <- sinkItem{ev, rec}:
		return true
	default:
		q.dropped()
		return false
	}
}

func (q *queuedSink) offerRecord(ev *Event, rec chainPos) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.lastSeq = rec.seq
	if q.behind {
		return true // read back by catchUp
	}
	select {
	case q.ch <- sinkItem{ev, rec}:
		return true
	default:
		if q.readAfter == nil {
			q.rs.Lost(1)
			q.dropped()
			return false
		}
		q.behind, q.missFrom = true, rec.seq
		q.log(fmt.Errorf("queue full at audit record %d: reading the records back from the audit log", rec.seq))
		return true
	}
}

// catchUp hands a RecordSink that fell behind the records it missed, read
// back from the audit log, until none is missing; then it takes records
// from the queue again. It runs on the sink's goroutine when the queue is
// empty, so records keep their order.
func (q *queuedSink) catchUp() {
	for {
		q.mu.Lock()
		behind, from, upTo := q.behind, q.missFrom, q.lastSeq
		// Records queued between the run loop's look at an empty queue
		// and here came before missFrom (nothing is queued while
		// behind): they go first, and the loop calls again when the
		// queue is empty.
		queued := len(q.ch) > 0
		q.mu.Unlock()
		if !behind || queued {
			return
		}
		entries := q.readBack(from, upTo)
		next := from
		for _, e := range entries {
			if e.Seq > upTo {
				break // written since; the next round
			}
			if e.Seq < next {
				continue // read twice across a rotation
			}
			if e.Seq > next {
				q.rs.Lost(int(e.Seq - next))
			}
			next = e.Seq + 1
			prev, obj, err := e.Fields()
			if err != nil {
				q.rs.Lost(1)
				continue
			}
			if err := q.rs.HandleRaw(e.Seq, e.Hash, prev, obj); err != nil {
				q.log(err)
			}
		}
		if next <= upTo {
			q.rs.Lost(int(upTo + 1 - next))
			next = upTo + 1
		}
		q.mu.Lock()
		if q.lastSeq < next {
			q.behind = false
			q.mu.Unlock()
			return
		}
		q.missFrom = next
		q.mu.Unlock()
	}
}

// readBack reads the records from through upTo back from the audit log.
// The log is read without its lock while the agent appends (and rotates)
// it: a read that crosses a rotation can miss or repeat records, so a
// read that does not give from through upTo in a row is tried again, a
// few times, before what it gave is taken.
func (q *queuedSink) readBack(from, upTo uint64) []audit.Entry {
	var entries []audit.Entry
	for attempt := 0; attempt < readBackTries; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
		}
		var err error
		entries, err = q.readAfter(from - 1)
		if err != nil {
			q.log(fmt.Errorf("reading back the audit records from %d: %w", from, err))
		}
		if inSequence(entries, from, upTo) {
			break
		}
	}
	return entries
}

// readBackTries is how often readBack reads before taking what it got.
const readBackTries = 5

// inSequence reports whether entries hold from through upTo, each once,
// in order (records after upTo may follow).
func inSequence(entries []audit.Entry, from, upTo uint64) bool {
	next := from
	for _, e := range entries {
		if e.Seq > upTo {
			break
		}
		if e.Seq != next {
			return false
		}
		next++
	}
	return next == upTo+1
}

// close stops taking events and waits up to wait for the queued ones to
// be handled.
func (q *queuedSink) close(wait time.Duration) {
	close(q.ch)
	select {
	case <-q.done:
	case <-time.After(wait):
	}
}

// warnSink shows violations through a Warner.
type warnSink struct{ w Warner }

func (warnSink) Name() string { return "warn" }

func (s warnSink) Handle(ev *Event) error {
	if ev.Type != TypeViolation || ev.Violation == nil {
		// violation_cleared carries the violation it clears: no warning.
		return nil
	}
	return s.w.Warn(ev)
}

// startSinks starts the warner and Options.Sinks behind their queues.
func (a *Agent) startSinks() {
	size := a.opts.SinkQueue
	if size <= 0 {
		size = DefaultSinkQueue
	}
	dir := a.cfg.Agent.StateDir // not changed by a reload
	for _, s := range append([]Sink{warnSink{a.warner}}, a.opts.Sinks...) {
		name := s.Name()
		drops := a.metrics.sinkDropped.WithLabelValues(name)
		a.sinks = append(a.sinks, newQueuedSink(s, size,
			func() {
				drops.Inc()
				a.log.Warn("sink queue full; event dropped for this sink (it is in the audit log)", "sink", name)
			},
			func(err error) { a.log.Warn("sink", "sink", name, "err", err) },
			func(seq uint64) ([]audit.Entry, error) { return audit.ReadAfter(dir, seq) }))
	}
}

// stopSinks lets each sink finish what is queued, up to a second each.
func (a *Agent) stopSinks() {
	for _, q := range a.sinks {
		q.close(time.Second)
	}
	a.sinks = nil
}

// emit sends one event to every sink. The audit log comes first: the event
// counts as recorded once it is flushed there. An event the log refuses is
// kept, in order, and written as soon as the log takes records again; the
// metrics and the other sinks do not wait for it.
func (a *Agent) emit(ev *Event) {
	ev.Time = a.now()
	ev.AssetID = a.cfg.Agent.AssetID
	a.record(ev)
	a.metrics.Handle(ev)
	for _, q := range a.sinks {
		if q.rs == nil {
			q.offer(ev, chainPos{})
		}
	}
}

// record appends ev to the audit log, behind any events still pending.
func (a *Agent) record(ev *Event) {
	if len(a.pending.events) > 0 {
		a.flushPending()
	}
	if len(a.pending.events) == 0 {
		err := a.appendEvent(ev)
		if err == nil {
			return
		}
		if errors.Is(err, audit.ErrRecordRefused) {
			a.refused(ev, err)
			return
		}
		a.pending.since, a.pending.lastErr = a.now(), err.Error()
	}
	q := &a.pending
	q.events = append(q.events, ev)
	if len(q.events) > a.opts.MaxPending {
		// The oldest event that is not a violation goes first: someone
		// who filled the disk cannot push a violation out with events
		// they make themselves (a link flapping, a device re-plugged).
		i := slices.IndexFunc(q.events, func(e *Event) bool { return e.Type != TypeViolation })
		if i < 0 {
			i = 0
		}
		a.log.Error("audit log pending queue full; an event lost", "type", q.events[i].Type, "path", q.events[i].Path)
		q.events = slices.Delete(q.events, i, i+1)
		q.lost++
		a.metrics.auditLost.Inc()
	}
	a.metrics.auditPending.Set(float64(len(q.events)))
}

// flushPending writes the pending events in order, stopping at the first
// that the log still refuses. Once they are all in, an audit_gap record
// says how many were written late and how many were lost.
func (a *Agent) flushPending() {
	q := &a.pending
	if len(q.events) == 0 && q.lost == 0 {
		return
	}
	for len(q.events) > 0 {
		ev := q.events[0]
		if err := a.appendEvent(ev); err != nil && !errors.Is(err, audit.ErrRecordRefused) {
			q.lastErr = err.Error()
			break
		} else if err != nil {
			a.refused(ev, err)
		}
		q.events[0] = nil
		q.events = q.events[1:]
		q.late++
	}
	a.metrics.auditPending.Set(float64(len(q.events)))
	if len(q.events) > 0 {
		return
	}
	gap := &Event{Type: TypeAuditGap, Source: "agent", Trigger: "recovered", Time: a.now(), AssetID: a.cfg.Agent.AssetID,
		Count: q.lost,
		Message: fmt.Sprintf("the audit log refused records from %s (%s): %d events were written late, in order, with their own times; %d were lost because more than %d were waiting",
			q.since.Format(time.RFC3339), q.lastErr, q.late, q.lost, a.opts.MaxPending)}
	if err := a.appendEvent(gap); err != nil {
		return // tried again with the next event
	}
	a.log.Warn("audit log writable again", "written_late", q.late, "lost", q.lost)
	a.metrics.Handle(gap)
	*q = pendingQueue{}
}

// appendEvent writes one event to the audit log.
func (a *Agent) appendEvent(ev *Event) error {
	rec := wire.NewRecord(ev)
	// The agent is the log's only writer (under its lock): the last
	// record now is the one the new record chains to.
	prev := a.audit.Last()
	r, err := a.audit.Append(rec)
	if err != nil {
		a.metrics.auditErrors.Inc()
		a.log.Error("audit log append failed; event kept to write later", "type", ev.Type, "path", ev.Path, "err", err)
		return err
	}
	a.metrics.auditRecords.Inc()
	pos := chainPos{seq: r.Seq, hash: r.Hash}
	if r.Seq == prev.Seq+1 {
		pos.prevHash = prev.Hash
	}
	for _, q := range a.sinks {
		if q.rs != nil {
			q.offer(ev, pos)
		}
	}
	attrs := []any{"seq", r.Seq, "type", ev.Type}
	if ev.Path != "" {
		attrs = append(attrs, "path", ev.Path)
	}
	if rec.Kind != "" {
		attrs = append(attrs, "kind", rec.Kind)
	}
	a.log.Info("recorded", attrs...)
	return nil
}

// refused handles an event the log can never take (a record too large):
// it is not kept to retry, where it would hold every later event, but
// lost, counted, and said so by an audit_gap record at once.
func (a *Agent) refused(ev *Event, err error) {
	a.metrics.auditLost.Inc()
	a.log.Error("audit log refused a record; recorded as lost", "type", ev.Type, "err", err)
	gap := &Event{Type: TypeAuditGap, Source: wire.SourceAgent, Trigger: "refused", Time: a.now(), AssetID: a.cfg.Agent.AssetID,
		Count: 1, Message: safe.String(fmt.Sprintf("a %s record (source %s, subject %q, path %q) could not be written and is lost: %v",
			ev.Type, ev.Source, ev.Subject, ev.Path, err))}
	if err := a.appendEvent(gap); err == nil {
		a.metrics.Handle(gap)
	}
}

// recordDamage records damage to the audit log or the state directory.
// The audit package has logged it already where it found it.
func (a *Agent) recordDamage(d audit.Damage, trigger string) {
	a.emit(&Event{Type: TypeAuditDamaged, Source: "agent", Trigger: trigger,
		Message: fmt.Sprintf("%s in %s (seq %d): %s", d.Kind, d.File, d.Seq, d.Reason)})
}

// checkAudit looks for damage done to the log or the state directory
// while the agent runs (truncated, replaced, moved away, deleted) and
// records it.
func (a *Agent) checkAudit(trigger string) {
	for _, d := range a.audit.Check() {
		a.recordDamage(d, trigger)
	}
}
