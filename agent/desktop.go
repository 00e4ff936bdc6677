package agent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/agent/report"
	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/notify"
	"github.com/mamori-agent/mamori/wire"
)

// Desktop warnings. A root service cannot talk to a user's desktop: the
// agent serves its local API (agent/localapi) and the per-user notifier,
// `mamori notify`, started with the desktop session, shows each warning
// through the session's notification service and says so. The desktop
// sink turns each violation into a warning (warning.go), lets the rate
// limit decide (ratelimit.go), hands it to every connected notifier and
// waits for their answers; a desktop session with no notifier that
// answered gets a notifier started as its user with the warning on its
// standard input (sessions_linux.go). What reached which desktop, or
// that none was reached, is recorded: warning_shown, warning_not_shown.

// Bounds of the deliveries. A warning being delivered waits for the
// notifiers' answers on a goroutine of its own (cheap: a notifier that
// never answers holds up no other warning); at most maxInFlight are
// under way, and the sink waits beyond. At most maxStarting of them
// start notifiers at once, each in every session that needs one, in
// parallel.
const (
	maxInFlight = 64
	maxStarting = 4
)

// A started notifier that failed after holding its warning up for
// slowStart or longer (its session bus or notification service did not
// answer: the notifier gives up on them after notify.ConnectTimeout)
// marks its session slow: no notifier is started there for
// slowSessionSkip, and the warnings say so.
const (
	slowStart       = notify.ConnectTimeout
	slowSessionSkip = 5 * time.Minute
)

// maxAckText bounds the text of a notifier's error kept in a record, in
// bytes, escaped.
const maxAckText = 200

// desktop is the desktop warnings. sink ("notify").
type desktop struct {
	a       *Agent
	log     *slog.Logger
	srv     atomic.Pointer[localapi.Server] // nil: no socket (yet)
	finder  sessionFinder
	limit   *warnLimiter
	ack     time.Duration
	rep     *report.Reporter // nil: reporting off
	started time.Time
	runID   string
	seq     atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// inFlight and starting are the semaphores of maxInFlight and
	// maxStarting.
	inFlight chan struct{}
	starting chan struct{}

	interval time.Duration

	mu sync.Mutex
	// pending are the warnings waiting for answers, by id: answers go to
	// the channel; the one waiting takes only those of connections the
	// warning was given to, once each.
	pending map[string]chan shownAck
	// replayed is when each open violation (uid and warning key) was
	// last shown to a notifier that connected after it was recorded.
	replayed map[string]time.Time
	// replayConn holds, by the same key, the connection a replay still
	// waiting for its answer was given to: should that connection go
	// before it answers, the next notifier of the user is given the
	// replay at once instead of after the answer's timeout.
	replayConn map[string]uint64
	// failed are the replays that notifiers did not show, by user
	// (replayUser) and warning key: what is recorded of them.
	failed map[string]*replayFail
	// slow are the sessions (by uid) whose started notifier timed out,
	// skipped until then.
	slow map[int]slowSession
	// strayLogged is when an answer from a connection not waited for was
	// last logged.
	strayLogged time.Time
	// unsent counts, by warning key, the deliveries not broadcast yet;
	// sentTo, by key, the connections a delivery under way was
	// broadcast to. A notifier connecting meanwhile gets the warning by
	// the broadcast, not by a replay too.
	unsent map[string]int
	sentTo map[string]map[uint64]int
	// stopping is set once stop has begun: no goroutine is started after.
	stopping bool
	// unlisten is set when stop closes the socket: a socket made by a
	// later try of relisten is closed at once.
	unlisten bool
}

// shownAck is a notifier's answer about a warning.
type shownAck struct {
	peer localapi.Peer
	err  string
}

// slowSession is a session whose started notifier timed out: skipped
// until until; why says what happened, and when.
type slowSession struct {
	until time.Time
	why   string
}

// startDesktop serves the local API on agent.local_socket (when set)
// and adds the desktop sink to the sinks; it returns what stops both.
// A socket that cannot be made is logged as an error and the agent goes
// on: warnings then reach desktops through the notifiers it starts. A
// group that does not exist is logged and the socket lets root only
// (fail closed).
func (a *Agent) startDesktop() (stop func()) {
	o := a.opts.Desktop
	if o.Off {
		return func() {}
	}
	d := &desktop{a: a, log: a.log.With("sink", "notify"), finder: newSessionFinder(o, a.coll.roots.Procfs),
		ack: o.AckTimeout, started: a.now(), runID: strconv.FormatInt(time.Now().UnixNano(), 36),
		inFlight: make(chan struct{}, maxInFlight), starting: make(chan struct{}, maxStarting),
		pending: map[string]chan shownAck{}, replayed: map[string]time.Time{}, replayConn: map[string]uint64{}, failed: map[string]*replayFail{}, slow: map[int]slowSession{},
		unsent: map[string]int{}, sentTo: map[string]map[uint64]int{}}
	if d.ack <= 0 {
		d.ack = DefaultAckTimeout
	}
	interval := o.WarnInterval
	if interval <= 0 {
		interval = DefaultWarnInterval
	}
	d.interval = interval
	if l, ok := d.finder.(interface{ setLogger(*slog.Logger) }); ok {
		l.setLogger(d.log)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.limit = newWarnLimiter(interval, time.Now, d.deliverAsync)
	for _, s := range a.opts.Sinks {
		if r, ok := s.(*report.Reporter); ok {
			d.rep = r
		}
	}
	if path := a.cfg.Agent.LocalSocket; path != "" {
		group := a.cfg.Agent.LocalGroup
		if group != "" {
			if _, err := localapi.LookupGroup(group); err != nil {
				a.log.Error("local API: agent.local_group not found; only root may read the warnings and the status", "group", group, "err", err)
				// Recorded once the log has agent_started: every
				// notifier is refused.
				a.localAPIErr = fmt.Sprintf("local API %s served to root alone: agent.local_group %q not found (%v); the notifiers and mamori status of users are refused, desktop warnings go through notifiers the agent starts", path, group, err)
				group = ""
			}
		}
		lo := localapi.Options{Path: path, Group: group, Mode: o.SocketMode,
			Agent: "mamori " + Version, Status: d.status, OnShown: d.onShown, OnWatch: d.onWatch, PingInterval: o.PingInterval,
			Logger: a.log.With("part", "localapi")}
		if !d.listen(lo, true) {
			d.wg.Add(1)
			go d.relisten(lo)
		}
	}
	a.opts.Sinks = append(a.opts.Sinks[:len(a.opts.Sinks):len(a.opts.Sinks)], d)
	a.desk = d
	return d.stop
}

// listenRetry is how often the agent tries again to serve a local socket
// it could not make (a name someone else took while the agent was
// stopped, a directory not there yet).
var listenRetry = 30 * time.Second

// listen makes and serves the local socket; false when it could not.
// first says whether this is the first try (logged as an error; later
// failures are not logged again).
func (d *desktop) listen(o localapi.Options, first bool) bool {
	srv, err := localapi.Listen(o)
	if err != nil {
		if first {
			d.log.Error("local API not served: mamori status and notifiers cannot connect; desktop warnings go through notifiers the agent starts; trying again every "+listenRetry.String(),
				"socket", o.Path, "err", err)
			// Recorded once the log has agent_started.
			d.a.localAPIErr = fmt.Sprintf("local API %s not served: %v; mamori status and the notifiers cannot connect, desktop warnings go through notifiers the agent starts; retrying every %s", o.Path, err, listenRetry)
		}
		return false
	}
	d.mu.Lock()
	if d.unlisten {
		d.mu.Unlock()
		srv.Close()
		return true
	}
	d.srv.Store(srv)
	d.mu.Unlock()
	go srv.Serve()
	d.log.Info("local API serving", "socket", o.Path, "group", o.Group, "retried", !first)
	return true
}

// relisten tries listen every listenRetry until it serves or the agent
// stops.
func (d *desktop) relisten(o localapi.Options) {
	defer d.wg.Done()
	t := time.NewTicker(listenRetry)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			if d.listen(o, false) {
				return
			}
		}
	}
}

// stop closes the socket, drops what the rate limit holds back, ends the
// deliveries under way (killing the notifiers it started) and waits for
// them a moment.
func (d *desktop) stop() {
	d.mu.Lock()
	d.unlisten = true
	srv := d.srv.Load()
	d.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	d.limit.close()
	d.mu.Lock()
	d.stopping = true
	for _, f := range d.failed {
		if f.timer != nil {
			f.timer.Stop()
		}
	}
	d.mu.Unlock()
	d.cancel()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

// Name names the sink.
func (d *desktop) Name() string { return "notify" }

// nextID returns a new warning id, unique in this run.
func (d *desktop) nextID() string { return d.runID + "-" + strconv.FormatUint(d.seq.Add(1), 10) }

// Handle turns a violation into a warning for the rate limit.
func (d *desktop) Handle(ev *Event) error {
	if ev.Type != TypeViolation || ev.Violation == nil {
		return nil
	}
	d.a.mu.Lock()
	lang := d.a.cfg.Agent.Language
	d.a.mu.Unlock()
	w := warningOf(ev, lang)
	w.ID = d.nextID()
	d.limit.offer(w)
	return nil
}

// deliverAsync delivers w on a goroutine of its own, at most
// maxInFlight at once (waiting for a free one).
func (d *desktop) deliverAsync(w *localapi.Warning) {
	d.mu.Lock()
	d.unsent[w.Key]++
	d.mu.Unlock()
	select {
	case d.inFlight <- struct{}{}:
	case <-d.ctx.Done():
		d.sent(w, nil)
		return
	}
	if !d.track(func() {
		defer func() { <-d.inFlight }()
		d.deliver(w)
	}) {
		<-d.inFlight
		d.sent(w, nil)
	}
}

// sent notes (under d.mu) that the delivery of w was broadcast to peers
// (nil: given up).
func (d *desktop) sent(w *localapi.Warning, peers []localapi.Peer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sentLocked(w, peers)
}

func (d *desktop) sentLocked(w *localapi.Warning, peers []localapi.Peer) {
	if d.unsent[w.Key]--; d.unsent[w.Key] <= 0 {
		delete(d.unsent, w.Key)
	}
	if len(peers) == 0 {
		return
	}
	m := d.sentTo[w.Key]
	if m == nil {
		m = map[uint64]int{}
		d.sentTo[w.Key] = m
	}
	for _, p := range peers {
		m[p.Conn]++
	}
}

// delivered forgets the connections w's delivery went to.
func (d *desktop) delivered(w *localapi.Warning, peers []localapi.Peer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.sentTo[w.Key]
	for _, p := range peers {
		if m[p.Conn]--; m[p.Conn] <= 0 {
			delete(m, p.Conn)
		}
	}
	if len(m) == 0 {
		delete(d.sentTo, w.Key)
	}
}

// track runs f on a goroutine stop waits for, unless stop has begun.
func (d *desktop) track(f func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		return false
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
	return true
}

// onShown takes a notifier's answer (the local API passes only answers
// of a connection about a warning it was given, once; the one waiting
// checks again).
func (d *desktop) onShown(p localapi.Peer, id, errText string) {
	d.mu.Lock()
	ch := d.pending[id]
	d.mu.Unlock()
	if ch != nil {
		select {
		case ch <- shownAck{p, errText}:
		default:
		}
	}
}

// severityRank orders severities, the worst first.
func severityRank(s string) int {
	switch s {
	case wire.SeverityCritical:
		return 0
	case wire.SeverityHigh:
		return 1
	case wire.SeverityMedium:
		return 2
	}
	return 3
}

// onWatch gives a notifier that connects the warnings about the
// violations still open (a stick plugged in, a network joined, before
// the person logged in), the worst first, one per warning key. Each is
// given to one user at most once per warn interval, so that a notifier
// connecting again and again does not repeat them; one it did not show
// is given again to the next one that connects. What the notifier
// answers is recorded as for any warning, but that it did not show a
// replay at most once per interval per user and key (replayNotShownLocked).
func (d *desktop) onWatch(p localapi.Peer) []*localapi.Warning {
	a := d.a
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil
	}
	lang := a.cfg.Agent.Language
	open := a.openViolationEvents(a.cfg)
	a.mu.Unlock()
	slices.SortStableFunc(open, func(x, y openEvent) int {
		return severityRank(x.ev.Violation.Severity) - severityRank(y.ev.Violation.Severity)
	})
	// The connections watching now (read before d.mu: the server's
	// lock is never taken under it).
	live := map[uint64]bool{}
	if srv := d.srv.Load(); srv != nil {
		for _, w := range srv.Watchers() {
			live[w.Conn] = true
		}
	}
	now := time.Now()
	var out []*localapi.Warning
	d.mu.Lock()
	if len(d.replayed) > maxLimitKeys {
		for k, t := range d.replayed {
			if now.Sub(t) >= d.interval {
				delete(d.replayed, k)
			}
		}
	}
	seen := map[string]bool{}
	for _, oe := range open {
		w := warningOf(oe.ev, lang)
		k := strconv.Itoa(p.UID) + "|" + w.Key
		if seen[w.Key] {
			continue
		}
		seen[w.Key] = true
		if d.unsent[w.Key] > 0 || d.sentTo[w.Key][p.Conn] > 0 {
			// A delivery of it is under way and reaches this notifier.
			continue
		}
		if t, ok := d.replayed[k]; ok && now.Sub(t) < d.interval {
			if c, waiting := d.replayConn[k]; !waiting || live[c] {
				continue
			}
			// Given to a connection that went without answering: this
			// one gets it now (the other's wait ends in its timeout).
		}
		d.replayed[k] = now
		d.replayConn[k] = p.Conn
		w.ID, w.Replay, w.Time = d.nextID(), true, time.Time{}
		if oe.since != nil {
			w.Time = *oe.since
		}
		out = append(out, w)
	}
	d.mu.Unlock()
	for _, w := range out {
		d.awaitReplay(p, w)
	}
	return out
}

// awaitReplay waits for p's answer about w, given to it alone, and
// records it.
func (d *desktop) awaitReplay(p localapi.Peer, w *localapi.Warning) {
	acks := make(chan shownAck, localapi.MaxConns)
	d.mu.Lock()
	d.pending[w.ID] = acks
	d.mu.Unlock()
	d.track(func() {
		k := strconv.Itoa(p.UID) + "|" + w.Key
		defer func() {
			d.mu.Lock()
			delete(d.pending, w.ID)
			if d.replayConn[k] == p.Conn {
				delete(d.replayConn, k)
			}
			d.mu.Unlock()
		}()
		// Behind the others given at the same time: a longer wait.
		timeout := time.NewTimer(4 * d.ack)
		defer timeout.Stop()
		shown := map[int]wire.WarningDesk{}
		var reasons []string
	wait:
		for {
			select {
			case a := <-acks:
				if a.peer.Conn != p.Conn {
					// Given to p alone: no other connection speaks for it.
					d.stray(a, w.ID)
					continue
				}
				if a.err == "" {
					shown[a.peer.UID] = wire.WarningDesk{UID: a.peer.UID, User: a.peer.User, Via: wire.ViaNotifier}
				} else {
					reasons = append(reasons, fmt.Sprintf("the notifier of uid %d (pid %d) could not show it: %s", a.peer.UID, a.peer.PID, ackText(a.err)))
				}
				break wait
			case <-timeout.C:
				reasons = append(reasons, fmt.Sprintf("the notifier of uid %d (pid %d) did not answer within %s", p.UID, p.PID, 4*d.ack))
				break wait
			case <-d.ctx.Done():
				return
			}
		}
		if len(shown) > 0 {
			d.record(w, shown, reasons, 0)
			return
		}
		// Not shown: the next notifier of this user to connect gets it
		// again, not only after the interval; what is recorded of it is
		// throttled (replayNotShown).
		d.mu.Lock()
		if d.replayConn[k] == p.Conn {
			// Not given again meanwhile to a newer connection.
			delete(d.replayed, k)
		}
		write, reasons, repeats := d.replayNotShownLocked(p, w, reasons, time.Now())
		d.mu.Unlock()
		if write {
			d.record(w, nil, reasons, repeats)
		}
	})
}

// Replays not shown. A replay that a notifier did not show (it answered
// an error, or nothing) is given again to the next notifier of that user
// that connects; a member of agent.local_group can connect, watch and
// answer "not shown" in a loop. So of the replays of one warning key to
// one user that were not shown, one is recorded (warning_not_shown, and
// its WARN log line) at most once per warn interval: the first at once,
// the ones after it within the interval counted, and the count written
// with the next record (WarningRecord.Reason: "it stands for N more
// replays of it to uid U not shown since HH:MM:SS") — the next failure
// after the interval, or, when none comes, the last one left out, written
// when the interval is over. Nothing is lost but the count of the last
// interval when the agent stops. Live warnings (deliver) and the replays
// shown are recorded each, as before.

// replayFail is what the not-shown replays of one warning key to one
// user are at.
type replayFail struct {
	// last is when a record of them was last written.
	last time.Time
	// leftOut counts the not-shown replays not recorded since, from
	// leftSince; w, reasons and who are the latest of them, written when
	// the interval is over (timer) unless a record came first.
	leftOut   int
	leftSince time.Time
	w         *localapi.Warning
	reasons   []string
	who       string
	// timer writes the ones left out when the interval is over; gen
	// tells its firing from that of a timer since stopped.
	timer *time.Timer
	gen   uint64
}

// replayUser is who the replays not shown are counted by: the peer's
// user SID on Windows, else its uid.
func replayUser(p localapi.Peer) string {
	if p.SID != "" {
		return p.SID
	}
	return strconv.Itoa(p.UID)
}

// replayNotShownLocked (under d.mu) counts the replay w that p did not
// show (for reasons, at now): write says whether to record it now, with
// the reasons returned; repeats is how many not-shown replays of its key
// to p's user it stands for besides itself (not recorded one by one).
func (d *desktop) replayNotShownLocked(p localapi.Peer, w *localapi.Warning, reasons []string, now time.Time) (write bool, _ []string, repeats int) {
	k := replayUser(p) + "|" + w.Key
	f := d.failed[k]
	if f != nil && now.Sub(f.last) < d.interval {
		if f.leftOut == 0 {
			f.leftSince = now
		}
		f.leftOut++
		f.w, f.reasons, f.who = w, reasons, fmt.Sprintf("uid %d", p.UID)
		if p.SID != "" {
			f.who = "user " + p.SID
		}
		if f.timer == nil && !d.stopping {
			f.gen++
			gen := f.gen
			f.timer = time.AfterFunc(f.last.Add(d.interval).Sub(now), func() {
				d.track(func() { d.flushReplayFail(k, f, gen) })
			})
		}
		return false, nil, 0
	}
	if f == nil {
		if len(d.failed) >= maxLimitKeys {
			for fk, o := range d.failed {
				if o.leftOut == 0 && now.Sub(o.last) >= d.interval {
					delete(d.failed, fk)
				}
			}
		}
		f = &replayFail{}
		d.failed[k] = f
	}
	repeats = f.leftOut
	if repeats > 0 {
		reasons = d.leftOutReason(f, reasons)
	}
	d.resetReplayFail(f, now)
	return true, reasons, repeats
}

// leftOutReason returns reasons with what f left out appended. Under
// d.mu.
func (d *desktop) leftOutReason(f *replayFail, reasons []string) []string {
	return append(reasons, fmt.Sprintf("it stands for %d more replays of this warning to %s not shown since %s, not recorded one by one (at most one record per user and warning per %s)",
		f.leftOut, f.who, f.leftSince.Format(time.TimeOnly), d.interval))
}

// resetReplayFail notes a record of f written at now. Under d.mu.
func (d *desktop) resetReplayFail(f *replayFail, now time.Time) {
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	f.gen++
	f.last, f.leftOut, f.leftSince, f.w, f.reasons, f.who = now, 0, time.Time{}, nil, nil, ""
}

// flushReplayFail records the last replay f left out, standing for the
// others, when its interval is over and no record came since (gen).
func (d *desktop) flushReplayFail(k string, f *replayFail, gen uint64) {
	d.mu.Lock()
	if d.failed[k] != f || f.gen != gen || f.leftOut == 0 {
		d.mu.Unlock()
		return
	}
	w, repeats := f.w, f.leftOut-1
	var reasons []string
	if repeats > 0 {
		f.leftOut--
		reasons = d.leftOutReason(f, slices.Clip(f.reasons))
	} else {
		reasons = f.reasons
	}
	d.resetReplayFail(f, time.Now())
	d.mu.Unlock()
	d.record(w, nil, reasons, repeats)
}

// flushLeftOver records, at a stop, the not-shown replays each user and
// warning key left out since its last record (their interval not over
// yet), before agent_stopped: the count is not lost with the timers.
func (d *desktop) flushLeftOver() {
	type left struct {
		w       *localapi.Warning
		reasons []string
		repeats int
	}
	var todo []left
	d.mu.Lock()
	for _, f := range d.failed {
		if f.leftOut == 0 || f.w == nil {
			continue
		}
		l := left{w: f.w, repeats: f.leftOut - 1, reasons: f.reasons}
		if l.repeats > 0 {
			f.leftOut--
			l.reasons = d.leftOutReason(f, slices.Clip(f.reasons))
		}
		d.resetReplayFail(f, time.Now())
		todo = append(todo, l)
	}
	d.mu.Unlock()
	for _, l := range todo {
		d.record(l.w, nil, l.reasons, l.repeats)
	}
}

// stray logs (at most once a minute) an answer from a connection the
// warning was not given to, or a second one: it is ignored.
func (d *desktop) stray(a shownAck, id string) {
	d.mu.Lock()
	now := time.Now()
	log := now.Sub(d.strayLogged) >= time.Minute
	if log {
		d.strayLogged = now
	}
	d.mu.Unlock()
	if log {
		d.log.Warn("an answer about a warning from a notifier it was not given to, or a second one; ignored (logged once a minute)",
			"id", id, "uid", a.peer.UID, "pid", a.peer.PID)
	}
}

// ackText is a notifier's error text as a record keeps it: escaped
// (internal/safe), at most maxAckText bytes.
func ackText(s string) string { return boundedText(s, maxAckText) }

// boundedText escapes s (internal/safe) and keeps at most n bytes of the
// escaped text, cut between two escapes or characters, "…" marking a cut.
func boundedText(s string, n int) string {
	if e := safe.String(s); len(e) <= n {
		return e
	}
	var b strings.Builder
	limit := n - len(safe.Ellipsis)
	for len(s) > 0 {
		_, size := utf8.DecodeRuneInString(s)
		e := safe.String(s[:size])
		if b.Len()+len(e) > limit {
			break
		}
		b.WriteString(e)
		s = s[size:]
	}
	b.WriteString(safe.Ellipsis)
	return b.String()
}

// deliver hands w to the connected notifiers, waits for their answers,
// starts a notifier in each desktop session none answered for (in
// parallel), and records the outcome. A warning no desktop was shown
// gives its rate-limit slot back.
func (d *desktop) deliver(w *localapi.Warning) {
	acks := make(chan shownAck, localapi.MaxConns)
	d.mu.Lock()
	d.pending[w.ID] = acks
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.pending, w.ID)
		d.mu.Unlock()
	}()
	var peers []localapi.Peer
	// Broadcast under d.mu: a notifier that connects meanwhile either
	// is among peers, or its replay (onWatch, under d.mu) comes after
	// and sees the key unsent.
	d.mu.Lock()
	if srv := d.srv.Load(); srv != nil {
		peers = srv.Broadcast(w)
	}
	d.sentLocked(w, peers)
	d.mu.Unlock()
	defer d.delivered(w, peers)
	// The connections it was given to, each answering once.
	waiting := make(map[uint64]localapi.Peer, len(peers))
	for _, p := range peers {
		waiting[p.Conn] = p
	}
	shown := map[int]wire.WarningDesk{}
	var reasons []string
	timeout := time.NewTimer(d.ack)
	defer timeout.Stop()
wait:
	for len(waiting) > 0 {
		select {
		case a := <-acks:
			if _, ok := waiting[a.peer.Conn]; !ok {
				d.stray(a, w.ID)
				continue
			}
			delete(waiting, a.peer.Conn)
			if a.err == "" {
				shown[a.peer.UID] = wire.WarningDesk{UID: a.peer.UID, User: a.peer.User, Via: wire.ViaNotifier}
			} else {
				reasons = append(reasons, fmt.Sprintf("the notifier of uid %d (pid %d) could not show it: %s", a.peer.UID, a.peer.PID, ackText(a.err)))
			}
		case <-timeout.C:
			reasons = append(reasons, fmt.Sprintf("%d of %d notifiers did not answer within %s", len(waiting), len(peers), d.ack))
			break wait
		case <-d.ctx.Done():
			return
		}
	}
	sessions, err := d.finder.sessions()
	if err != nil {
		reasons = append(reasons, "desktop sessions: "+err.Error())
	}
	if len(peers) == 0 && len(sessions) == 0 && err == nil {
		// Nobody at a desktop to warn (a PC at the login screen, a
		// server): the violation's own record stands.
		d.log.Info("no desktop to warn: no notifier connected, no desktop session", "id", w.ID, "kind", w.Kind, "device", w.Device)
		d.limit.release(w)
		return
	}
	var todo []session
	now := time.Now()
	d.mu.Lock()
	for _, s := range sessions {
		if _, ok := shown[s.UID]; ok {
			continue
		}
		if sl, ok := d.slow[s.UID]; ok {
			if now.Before(sl.until) {
				reasons = append(reasons, fmt.Sprintf("no notifier started for uid %d (%s): %s; skipped until %s",
					s.UID, s.User, sl.why, sl.until.Format(time.TimeOnly)))
				continue
			}
			delete(d.slow, s.UID)
		}
		todo = append(todo, s)
	}
	d.mu.Unlock()
	if len(todo) > 0 {
		select {
		case d.starting <- struct{}{}:
		case <-d.ctx.Done():
			return
		}
		// Each session's notifier at once, each with its own timeout:
		// one that does not answer holds up no other session.
		errs := make([]error, len(todo))
		took := make([]time.Duration, len(todo))
		var wg sync.WaitGroup
		for i, s := range todo {
			wg.Go(func() {
				t0 := time.Now()
				errs[i] = d.finder.start(d.ctx, s, w)
				took[i] = time.Since(t0)
			})
		}
		wg.Wait()
		<-d.starting
		if d.ctx.Err() != nil {
			return
		}
		for i, s := range todo {
			err := errs[i]
			switch {
			case err == nil:
				shown[s.UID] = wire.WarningDesk{UID: s.UID, User: s.User, Via: finderVia(d.finder)}
			case took[i] >= slowStart:
				held := took[i].Round(100 * time.Millisecond)
				d.mu.Lock()
				d.slow[s.UID] = slowSession{until: time.Now().Add(slowSessionSkip),
					why: fmt.Sprintf("its notifier held warning %s up for %s at %s and could not show it", w.ID, held, time.Now().Format(time.TimeOnly))}
				d.mu.Unlock()
				reasons = append(reasons, fmt.Sprintf("%s held it up for %s and could not show it: %v; nothing is started there for %s",
					finderTarget(d.finder, s), held, err, slowSessionSkip))
			default:
				reasons = append(reasons, fmt.Sprintf("%s could not show it: %v", finderTarget(d.finder, s), err))
			}
		}
	}
	if len(shown) == 0 {
		d.limit.release(w)
	}
	d.record(w, shown, reasons, 0)
}

// record records what became of w: warning_shown when shown lists a
// desktop, else warning_not_shown and a WARN log line. repeats is how
// many not-shown replays of it the record stands for besides itself
// (replayNotShownLocked; its reasons say so too), logged as "left_out".
func (d *desktop) record(w *localapi.Warning, shown map[int]wire.WarningDesk, reasons []string, repeats int) {
	rec := &wire.WarningRecord{ID: w.ID, Kind: w.Kind, Device: w.Device, Severity: w.Severity,
		ViolationTime: w.Time, Held: w.Held, Replay: w.Replay, Reason: strings.Join(reasons, "; ")}
	if len(shown) == 0 {
		rec.NotShownRepeats = repeats
	}
	for _, s := range shown {
		rec.Shown = append(rec.Shown, s)
	}
	slices.SortFunc(rec.Shown, func(a, b wire.WarningDesk) int { return a.UID - b.UID })
	ev := &Event{Type: wire.TypeWarningShown, Source: wire.SourceAgent, Trigger: "warning", Warning: rec}
	held := ""
	if w.Held > 0 {
		held = fmt.Sprintf(", standing for %d held back by the rate limit", w.Held)
	}
	if w.Replay {
		held += ", still open when the notifier connected,"
	}
	if len(rec.Shown) == 0 {
		ev.Type = wire.TypeWarningNotShown
		if rec.Reason == "" {
			rec.Reason = "no notifier answered and no notifier could be started"
		}
		ev.Message = fmt.Sprintf("warning %s about %s on %s%s reached no desktop: %s", w.ID, w.Kind, w.Device, held, rec.Reason)
		args := []any{"id", w.ID, "kind", w.Kind, "device", w.Device, "reason", rec.Reason}
		if w.Replay {
			args = append(args, "replay", true)
		}
		if repeats > 0 {
			args = append(args, "left_out", repeats, "left_out_within", d.interval)
		}
		d.log.Warn("warning reached no desktop", args...)
	} else {
		var who []string
		for _, s := range rec.Shown {
			name := s.User
			if name == "" {
				name = "uid " + strconv.Itoa(s.UID)
			}
			who = append(who, name+" ("+s.Via+")")
		}
		ev.Message = fmt.Sprintf("warning %s about %s on %s%s shown to %s", w.ID, w.Kind, w.Device, held, strings.Join(who, ", "))
	}
	d.a.locked(func() { d.a.emit(ev) })
}

// finderTarget names what the session finder's start used to reach
// session s: "the notifier started for uid 1000 (alice)", unless the
// finder says otherwise.
func finderTarget(f sessionFinder, s session) string {
	if t, ok := f.(interface{ target(session) string }); ok {
		return t.target(s)
	}
	return fmt.Sprintf("the notifier started for uid %d (%s)", s.UID, s.User)
}

// finderVia is how the session finder's start reaches a desktop:
// wire.ViaStarted (a notifier started as the user), unless the finder
// says otherwise (a message box on Windows).
func finderVia(f sessionFinder) string {
	if v, ok := f.(interface{ via() string }); ok {
		return v.via()
	}
	return wire.ViaStarted
}
