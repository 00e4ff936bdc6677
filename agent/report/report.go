// Package report is the agent's client of mamori-hub: a durable queue in
// the state directory that every audit record enters (group-committed to
// disk), a sender that posts the queued events to the hub in batches with
// per-event ids until the hub acknowledges them (at-least-once; the hub
// stores an id once), and a heartbeat with the host's facts.
//
// Files: queue.go (the durable queue), report.go (Reporter: the sink, the
// sender, the stop), client.go (HTTP, TLS, the heartbeat), secret.go (the
// token and key files, checked by CheckFiles as New takes them),
// policy.go (the pull of the hub's approved lists), backoff.go.
//
// At stop (Close) the sender keeps sending for a bounded time
// (Options.FlushTimeout): it gives up at once when the hub refuses the
// token or does not know the URL, after two failures otherwise, and the
// stop's failures are logged in one line at its end.
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/wire"
)

// DirName is the queue's directory inside the state directory.
const DirName = "report"

// DefaultFlushTimeout bounds how long Close keeps sending what is queued.
const DefaultFlushTimeout = 2 * time.Second

// Options configures New.
type Options struct {
	// Config is the report: section; Config.URL must be set.
	Config config.Report
	// StateDir is the agent's state directory: the queue is kept in
	// StateDir/report.
	StateDir string
	// AssetID, BootID and Version are sent with every batch or heartbeat.
	AssetID, BootID, Version string
	// Inventory returns what the agent sees now, for the heartbeat; nil
	// sends zeros.
	Inventory func() wire.Inventory
	// HostFacts returns the host's facts; nil reads them with gopsutil.
	HostFacts func(ctx context.Context) (wire.HostFacts, error)
	// Registerer takes the metrics (the agent's registry); nil keeps them
	// unregistered.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Backoff paces retries; zero fields take the defaults.
	Backoff Backoff
	// FlushTimeout bounds how long Close keeps sending; zero means
	// DefaultFlushTimeout.
	FlushTimeout time.Duration
	// RequestTimeout bounds one request; zero means 30 s.
	RequestTimeout time.Duration
	// SegmentSize is the queue's segment size; zero means the default.
	SegmentSize int64
	// OnPolicy is called, from the reporter's goroutine, with each new
	// version of the hub's approved lists once it is checked and kept on
	// disk, or with the error that refused it (the version in force
	// stays). It must not block. Nil: the lists are not pulled.
	OnPolicy func(*HubPolicy, error)
	// OnClock is called, from the reporter's goroutines, when the hub's
	// time becomes known and each time the offset moves by a second or
	// more (the PC's clock was set, or drifts). It must not block.
	OnClock func()
}

// Reporter queues the agent's records durably and sends them to the hub.
// It is the agent's "report" sink (agent.RecordSink).
type Reporter struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	q       *Queue
	client  *http.Client
	token   atomic.Pointer[string] // the bearer token, re-read from token_file after a 401
	base    string
	metrics *metrics

	// anchor is the hub's time as of a monotonic reading, once an
	// answer of the hub told it.
	anchor atomic.Pointer[clockAnchor]
	// policyVer is the newest version of the approved lists the hub
	// named; policyInForce the version put in force (0: none), and
	// policySeen the last version fetched, in force or refused (its ETag
	// is sent as If-None-Match).
	policyVer     atomic.Int64
	policyInForce atomic.Int64
	policySeen    atomic.Int64
	// policyPoke wakes the policy pull when the hub names a version not
	// seen yet.
	policyPoke chan struct{}
	// policyFailing is the cause of the last failed pull ("" after one
	// that went through), to log a repeated failure once: the policy
	// loop's own.
	policyFailing string

	startOnce sync.Once
	// ctx is the context of every request, cancelled when Close's time
	// is up.
	ctx      context.Context
	cancel   context.CancelFunc
	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
	deadline atomic.Int64 // unix ns by which Close gives up flushing

	// queuedSeq is the audit seq of the newest record the queue held at
	// New (0: none), for QueuedSeq.
	queuedSeq uint64

	mu      sync.Mutex
	last    Pending // the last record added
	hasLast bool
	// handled is the newest audit seq handed to HandleRaw in this run.
	handled uint64
	// failing is the reason of the last failure ("" when the last send
	// went through), to log changes once.
	failing string
	// stopFailure is the last request that failed while Close ran: it is
	// logged once, when the stop is over, instead of at each failure.
	stopFailure *failure
}

// failure is a failed request as failed logs it.
type failure struct {
	reason string
	level  slog.Level
	msg    string
	attrs  []any
}

// New checks the config, the token file and the key file (as CheckFiles
// does), opens the queue, and registers the metrics. Start starts
// sending.
func New(opts Options) (*Reporter, error) {
	c := opts.Config
	if c.URL == "" {
		return nil, errors.New("report: no hub URL")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = DefaultFlushTimeout
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	if opts.HostFacts == nil {
		opts.HostFacts = hostFacts
	}
	if opts.Config.BatchSize <= 0 || opts.Config.BatchSize > wire.MaxBatchEvents {
		opts.Config.BatchSize = min(config.DefaultBatchSize, wire.MaxBatchEvents)
	}
	if opts.Config.HeartbeatInterval <= 0 {
		opts.Config.HeartbeatInterval = config.DefaultHeartbeatInterval
	}
	opts.Backoff = opts.Backoff.withDefaults()
	base, err := checkURL(c.URL)
	if err != nil {
		return nil, err
	}
	token, err := readToken(c.TokenFile)
	if err != nil {
		return nil, err
	}
	client, err := newClient(c, opts.RequestTimeout)
	if err != nil {
		return nil, err
	}
	r := &Reporter{opts: opts, log: opts.Logger.With("sink", "report"), now: opts.Now, client: client,
		base: base, stop: make(chan struct{}), metrics: newMetrics(), policyPoke: make(chan struct{}, 1)}
	r.token.Store(&token)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.q, err = OpenQueue(filepath.Join(opts.StateDir, DirName), QueueOptions{
		Limit: c.QueueLimit, SegmentSize: opts.SegmentSize, Logger: r.log,
		OnDrop: func(n int64) { r.metrics.dropped.Add(float64(n)) }})
	if err != nil {
		return nil, fmt.Errorf("report queue: %w", err)
	}
	r.metrics.queueLen = r.q.Len
	if d, ok := r.q.Last(); ok {
		var be wire.BatchEvent
		if json.Unmarshal(d, &be) == nil {
			r.queuedSeq = be.Seq
		}
	}
	if opts.Registerer != nil {
		if err := r.metrics.register(opts.Registerer); err != nil {
			r.q.Close()
			return nil, err
		}
	}
	return r, nil
}

// Name names the sink.
func (r *Reporter) Name() string { return "report" }

// Queue returns the reporter's queue.
func (r *Reporter) Queue() *Queue { return r.q }

// Handle queues an event that has no audit record (not the agent's way:
// it calls HandleRecord).
func (r *Reporter) Handle(ev *wire.Event) error { return r.HandleRecord(ev, 0, "", "") }

// HandleRecord queues one audit record for the hub. It returns once the
// record is handed to the queue's next group commit, without waiting for
// the disk: the records of one burst share one fsync.
func (r *Reporter) HandleRecord(ev *wire.Event, seq uint64, hash, prevHash string) error {
	evJSON, err := json.Marshal(wire.NewRecord(ev))
	if err != nil {
		r.q.AddDropped(1)
		return fmt.Errorf("report: marshal event: %w", err)
	}
	return r.HandleRaw(seq, hash, prevHash, evJSON)
}

// QueuedSeq returns the audit seq of the newest record the queue held when
// the reporter was made, sent or not: the agent hands it the records of
// its audit log after that one that never reached the queue (a crash
// between the audit log's append and the queue's, a full sink queue). It
// is 0 for a queue that never held a record: a new reporter starts with
// the records written from then on, not with the log's past.
func (r *Reporter) QueuedSeq() uint64 { return r.queuedSeq }

// HandleRaw queues one audit record as HandleRecord does, its event given
// as the JSON the audit record holds (the record without its seq,
// prev_hash and hash): the records the agent reads back from its log.
//
// A record at or before the newest one handed in this run is ignored
// (the agent's read-back after a full sink queue can overlap the queue by
// one record); the queue holds each audit record once.
func (r *Reporter) HandleRaw(seq uint64, hash, prevHash string, event json.RawMessage) error {
	r.mu.Lock()
	if r.handled != 0 && seq <= r.handled {
		r.mu.Unlock()
		return nil
	}
	r.handled = seq
	r.mu.Unlock()
	data, err := json.Marshal(wire.BatchEvent{Seq: seq, Hash: hash, PrevHash: prevHash, Event: event})
	if err != nil {
		r.q.AddDropped(1)
		return fmt.Errorf("report: marshal event: %w", err)
	}
	p, err := r.q.Add(data)
	if err != nil {
		r.q.AddDropped(1)
		return fmt.Errorf("report: %w", err)
	}
	r.mu.Lock()
	r.last, r.hasLast = p, true
	r.mu.Unlock()
	return nil
}

// Lost counts records that did not reach the reporter (the agent could
// not read them back from the audit log after its sink queue was full):
// they are reported to the hub as dropped.
func (r *Reporter) Lost(n int) { r.q.AddDropped(int64(n)) }

// ClockOffset returns the hub's clock minus this PC's (Options.Now) as of
// the hub's last answer, once an answer has told it.
func (r *Reporter) ClockOffset() (time.Duration, bool) {
	a := r.anchor.Load()
	if a == nil {
		return 0, false
	}
	return a.offset, true
}

// HubNow returns the hub's time now, once an answer of the hub has told
// it: the hub's time at its last answer plus the time passed since on the
// monotonic clock. Setting the PC's clock does not move it.
func (r *Reporter) HubNow() (time.Time, bool) {
	a := r.anchor.Load()
	if a == nil {
		return time.Time{}, false
	}
	return a.hub.Add(time.Since(a.mono)), true
}

// clockAnchor is the hub's time (hub, wall clock only) as of a reading of
// the PC's monotonic clock (mono), with the offset measured then.
type clockAnchor struct {
	hub    time.Time
	mono   time.Time
	offset time.Duration
}

// Start starts the sender, the heartbeat and, with Options.OnPolicy, the
// policy pull.
func (r *Reporter) Start() {
	r.startOnce.Do(func() {
		r.done.Add(2)
		go r.sendLoop()
		go r.heartbeatLoop()
		if r.opts.OnPolicy != nil {
			r.done.Add(1)
			go r.policyLoop()
		}
	})
}

// Close stops the reporter: what was handed to it reaches the disk, the
// sender keeps sending for up to FlushTimeout, a last heartbeat says the
// agent is stopping, and the queue is closed. Events not sent stay queued
// for the next start.
func (r *Reporter) Close() error {
	var err error
	r.stopOnce.Do(func() {
		deadline := r.now().Add(r.opts.FlushTimeout)
		r.deadline.Store(deadline.UnixNano())
		r.mu.Lock()
		last, has := r.last, r.hasLast
		r.mu.Unlock()
		if has {
			last.Wait()
		}
		close(r.stop)
		// Requests in flight end at the deadline.
		timer := time.AfterFunc(r.opts.FlushTimeout, r.cancel)
		r.startOnce.Do(func() {}) // no start after Close
		r.done.Wait()
		timer.Stop()
		// The last heartbeat gets what is left of the time, and at
		// least a moment.
		ctx, cancel := context.WithTimeout(context.Background(), max(r.flushLeft(), 300*time.Millisecond))
		hbSent := r.heartbeat(ctx, true)
		cancel()
		r.cancel()
		r.logStopFailure(hbSent)
		err = r.q.Close()
	})
	return err
}

// logStopFailure logs, once, what the stop could not deliver and why:
// the requests that failed during Close are not logged one by one.
func (r *Reporter) logStopFailure(heartbeatSent bool) {
	r.mu.Lock()
	f := r.stopFailure
	r.mu.Unlock()
	if f == nil {
		return
	}
	queued := r.q.Len()
	var msg string
	switch {
	case queued > 0 && !heartbeatSent:
		msg = "stopped without reaching the hub: the queued events are sent after the next start, and the hub shows this PC as silent, not stopped"
	case queued > 0:
		msg = "stopped before the hub took every event: the queued events are sent after the next start"
	case !heartbeatSent:
		msg = "the last heartbeat did not reach the hub: it shows this PC as silent, not stopped"
	default:
		f.level = slog.LevelDebug
		msg = "stopped; a request failed during the stop and went through when tried again"
	}
	attrs := []any{"cause", f.msg, "reason", f.reason}
	for i := 0; i+1 < len(f.attrs); i += 2 {
		if f.attrs[i] != "retry_in" { // no retry: the agent stops
			attrs = append(attrs, f.attrs[i], f.attrs[i+1])
		}
	}
	r.log.Log(context.Background(), f.level, msg, append(attrs, "queued", queued)...)
}

// stopping reports whether Close was called.
func (r *Reporter) stopping() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// flushLeft returns how long Close still lets the sender send.
func (r *Reporter) flushLeft() time.Duration {
	return time.Duration(r.deadline.Load() - r.now().UnixNano())
}

// sendLoop sends the queue to the hub, oldest first.
func (r *Reporter) sendLoop() {
	defer r.done.Done()
	var (
		b       *batch
		attempt int
		limit   = r.opts.Config.BatchSize
		// stopFails counts the sends that failed while Close flushes:
		// the stop tries at most twice, once for a wrong token or URL.
		stopFails int
	)
	for {
		if r.stopping() && (r.flushLeft() <= 0 || b == nil && r.q.Len() == 0 && r.q.Dropped() == 0) {
			return
		}
		r.q.SaveState() // a count of lost events, kept
		if b == nil || r.q.Head() > b.first {
			var err error
			b, err = r.readBatch(limit)
			if err != nil {
				r.log.Error("report queue unreadable", "err", err)
				if !r.wait(r.opts.Backoff.Max) {
					return
				}
				continue
			}
			if b == nil {
				if r.stopping() {
					return
				}
				select {
				case <-r.q.Notify():
				case <-r.stop:
				}
				continue
			}
		}
		out := r.post(b)
		switch out.verdict {
		case sent:
			queued := r.q.Len()
			if err := r.q.Ack(b.first, b.last, b.dropped); err != nil {
				r.log.Error("report queue: cannot save the acknowledged position (the hub will drop the resent events)", "err", err)
			}
			r.succeeded(len(b.items), queued)
			b, attempt, limit = nil, 0, r.opts.Config.BatchSize
			continue
		case refused:
			if len(b.items) > 1 {
				// Find the record the hub refuses: halve the batch.
				limit = max(len(b.items)/2, 1)
				r.log.Warn("hub refused a batch; sending smaller batches to single out the event it refuses", "status", out.status, "detail", out.detail, "events", len(b.items))
				b = nil
				continue
			}
			r.log.Error("hub refused an event for good; it is dropped and the drop reported", "status", out.status, "detail", out.detail,
				"id", r.q.ID(b.first))
			if len(b.items) == 1 {
				r.q.Ack(b.first, b.last, b.dropped)
				r.q.AddDropped(1)
			} else {
				// An empty batch carrying a drop count was refused: keep
				// the count, try again later.
				if !r.wait(r.opts.Backoff.Max) {
					return
				}
			}
			b = nil
			continue
		}
		if r.stopping() {
			// A wrong token or URL is not fixed within the stop time,
			// and a hub that failed twice is not hammered meanwhile:
			// what is queued stays for the next start.
			stopFails++
			if out.verdict == unauthorized || stopFails >= 2 {
				return
			}
		}
		delay := r.opts.Backoff.Next(attempt, out.retryAfter, out.verdict == unauthorized)
		attempt++
		if !r.wait(delay) {
			return
		}
	}
}

// wait waits d; false when the sender must give up. Close cuts a wait
// that began before it short (what is queued is tried at once). While
// Close flushes, a wait longer than the flush time left is not begun
// (false: the hub asked for more, or the token or URL is wrong), and a
// shorter one is waited in full: the closed stop channel must not turn
// the waits into a tight loop.
func (r *Reporter) wait(d time.Duration) bool {
	if r.stopping() {
		if d >= r.flushLeft() {
			return false
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return r.flushLeft() > 0
		case <-r.ctx.Done():
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stop:
		return r.flushLeft() > 0
	}
}

// batch is one request's worth of the queue.
type batch struct {
	items       []Item
	first, last uint64 // seqs; last is below first for a batch of no events
	dropped     int64
	body        []byte
}

// readBatch reads and encodes the next batch, nil when nothing is to be
// sent.
func (r *Reporter) readBatch(limit int) (*batch, error) {
	limit = min(limit, wire.MaxBatchEvents)
	// Room for the envelope and each event's id.
	maxBytes := wire.MaxBatchBytes - 64<<10 - limit*80
	for {
		items, dropped, err := r.q.Read(limit, maxBytes)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 && dropped == 0 {
			return nil, nil
		}
		b := &batch{items: items, dropped: dropped}
		wb := wire.Batch{Schema: wire.SchemaVersion, AssetID: r.opts.AssetID, BootID: r.opts.BootID,
			Events: make([]wire.BatchEvent, 0, len(items)), Dropped: dropped}
		head := r.q.Head()
		b.first, b.last = head, head-1
		if len(items) > 0 {
			b.first, b.last = items[0].Seq, items[len(items)-1].Seq
		}
		for _, it := range items {
			var be wire.BatchEvent
			if err := json.Unmarshal(it.Data, &be); err != nil {
				// Written by us and CRC-checked: only a bug gets here.
				r.log.Error("report queue: a record does not parse; dropped", "seq", it.Seq, "err", err)
				r.q.Ack(it.Seq, it.Seq, 0)
				r.q.AddDropped(1)
				return r.readBatch(limit)
			}
			be.ID = r.q.ID(it.Seq)
			wb.Events = append(wb.Events, be)
		}
		body, err := json.Marshal(wb)
		if err != nil {
			return nil, err
		}
		if len(body) > wire.MaxBatchBytes && len(items) > 1 {
			limit = len(items) / 2
			continue
		}
		b.body = body
		return b, nil
	}
}

// succeeded records a batch the hub took; queued is how many events the
// queue held when it did (this batch's included).
func (r *Reporter) succeeded(events int, queued int64) {
	r.metrics.lastSuccess.Set(float64(r.now().UnixNano()) / 1e9)
	r.mu.Lock()
	was := r.failing
	r.failing = ""
	r.mu.Unlock()
	if was != "" {
		r.log.Info("hub reachable again; sending what was queued", "queued", queued)
	}
	r.log.Debug("batch sent", "events", events)
}

// failed records a failed send, logging a change of reason once (an
// error again at each slow retry). While Close runs, failures are kept
// for one line at the end of the stop (logStopFailure).
func (r *Reporter) failed(reason string, level slog.Level, msg string, attrs ...any) {
	r.metrics.failures.WithLabelValues(reason).Inc()
	r.mu.Lock()
	changed := r.failing != reason
	r.failing = reason
	stopping := r.stopping()
	if stopping {
		r.stopFailure = &failure{reason: reason, level: level, msg: msg, attrs: attrs}
	}
	r.mu.Unlock()
	if stopping || !changed && level < slog.LevelError {
		level = slog.LevelDebug
	}
	r.log.Log(context.Background(), level, msg, append(attrs, "queued", r.q.Len())...)
}
