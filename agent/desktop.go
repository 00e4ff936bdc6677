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

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/agent/report"
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

// maxDeliveries bounds the warnings being delivered at once (each may
// wait for notifiers and start one per session).
const maxDeliveries = 4

// desktop is the desktop warnings. sink ("notify").
type desktop struct {
	a       *Agent
	log     *slog.Logger
	srv     *localapi.Server // nil: no socket
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
	sem    chan struct{}

	interval time.Duration

	mu      sync.Mutex
	pending map[string]chan shownAck
	// replayed is when each open violation (uid and warning key) was
	// last shown to a notifier that connected after it was recorded.
	replayed map[string]time.Time
	// stopping is set once stop has begun: no goroutine is started after.
	stopping bool
}

// shownAck is a notifier's answer about a warning.
type shownAck struct {
	peer localapi.Peer
	err  string
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
		sem: make(chan struct{}, maxDeliveries), pending: map[string]chan shownAck{}, replayed: map[string]time.Time{}}
	if d.ack <= 0 {
		d.ack = DefaultAckTimeout
	}
	interval := o.WarnInterval
	if interval <= 0 {
		interval = DefaultWarnInterval
	}
	d.interval = interval
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
				group = ""
			}
		}
		srv, err := localapi.Listen(localapi.Options{Path: path, Group: group, Mode: o.SocketMode,
			Agent: "mamori " + Version, Status: d.status, OnShown: d.onShown, OnWatch: d.onWatch, PingInterval: o.PingInterval,
			Logger: a.log.With("part", "localapi")})
		if err != nil {
			a.log.Error("local API not served: mamori status and notifiers cannot connect; desktop warnings go through notifiers the agent starts", "socket", path, "err", err)
		} else {
			d.srv = srv
			go srv.Serve()
			a.log.Info("local API serving", "socket", path, "group", group)
		}
	}
	a.opts.Sinks = append(a.opts.Sinks[:len(a.opts.Sinks):len(a.opts.Sinks)], d)
	return d.stop
}

// stop closes the socket, drops what the rate limit holds back, ends the
// deliveries under way (killing the notifiers it started) and waits for
// them a moment.
func (d *desktop) stop() {
	if d.srv != nil {
		d.srv.Close()
	}
	d.limit.close()
	d.mu.Lock()
	d.stopping = true
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
// maxDeliveries at once (waiting for a free one).
func (d *desktop) deliverAsync(w *localapi.Warning) {
	select {
	case d.sem <- struct{}{}:
	case <-d.ctx.Done():
		return
	}
	if !d.track(func() {
		defer func() { <-d.sem }()
		d.deliver(w)
	}) {
		<-d.sem
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

// onShown takes a notifier's answer.
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
// connecting again and again does not repeat them. What the notifier
// answers is recorded as for any warning.
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
		if t, ok := d.replayed[k]; ok && now.Sub(t) < d.interval {
			continue
		}
		d.replayed[k] = now
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
	acks := make(chan shownAck, 1)
	d.mu.Lock()
	d.pending[w.ID] = acks
	d.mu.Unlock()
	d.track(func() {
		defer func() {
			d.mu.Lock()
			delete(d.pending, w.ID)
			d.mu.Unlock()
		}()
		// Behind the others given at the same time: a longer wait.
		timeout := time.NewTimer(4 * d.ack)
		defer timeout.Stop()
		shown := map[int]wire.WarningDesk{}
		var reasons []string
		select {
		case a := <-acks:
			if a.err == "" {
				shown[a.peer.UID] = wire.WarningDesk{UID: a.peer.UID, User: a.peer.User, Via: wire.ViaNotifier}
			} else {
				reasons = append(reasons, fmt.Sprintf("the notifier of uid %d (pid %d) could not show it: %s", a.peer.UID, a.peer.PID, a.err))
			}
		case <-timeout.C:
			reasons = append(reasons, fmt.Sprintf("the notifier of uid %d (pid %d) did not answer within %s", p.UID, p.PID, 4*d.ack))
		case <-d.ctx.Done():
			return
		}
		d.record(w, shown, reasons)
	})
}

// deliver hands w to the connected notifiers, waits for their answers,
// starts a notifier in each desktop session none answered for, and
// records the outcome.
func (d *desktop) deliver(w *localapi.Warning) {
	acks := make(chan shownAck, 64)
	d.mu.Lock()
	d.pending[w.ID] = acks
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.pending, w.ID)
		d.mu.Unlock()
	}()
	var peers []localapi.Peer
	if d.srv != nil {
		peers = d.srv.Broadcast(w)
	}
	shown := map[int]wire.WarningDesk{}
	var reasons []string
	timeout := time.NewTimer(d.ack)
	defer timeout.Stop()
wait:
	for got := 0; got < len(peers); {
		select {
		case a := <-acks:
			got++
			if a.err == "" {
				shown[a.peer.UID] = wire.WarningDesk{UID: a.peer.UID, User: a.peer.User, Via: wire.ViaNotifier}
			} else {
				reasons = append(reasons, fmt.Sprintf("the notifier of uid %d (pid %d) could not show it: %s", a.peer.UID, a.peer.PID, a.err))
			}
		case <-timeout.C:
			reasons = append(reasons, fmt.Sprintf("%d of %d notifiers did not answer within %s", len(peers)-got, len(peers), d.ack))
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
		return
	}
	for _, s := range sessions {
		if _, ok := shown[s.UID]; ok {
			continue
		}
		if err := d.finder.start(d.ctx, s, w); err != nil {
			if d.ctx.Err() != nil {
				return
			}
			reasons = append(reasons, fmt.Sprintf("the notifier started for uid %d (%s) could not show it: %v", s.UID, s.User, err))
			continue
		}
		shown[s.UID] = wire.WarningDesk{UID: s.UID, User: s.User, Via: wire.ViaStarted}
	}
	d.record(w, shown, reasons)
}

// record records what became of w.
func (d *desktop) record(w *localapi.Warning, shown map[int]wire.WarningDesk, reasons []string) {
	rec := &wire.WarningRecord{ID: w.ID, Kind: w.Kind, Device: w.Device, Severity: w.Severity,
		ViolationTime: w.Time, Held: w.Held, Replay: w.Replay, Reason: strings.Join(reasons, "; ")}
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
		d.log.Warn("warning reached no desktop", "id", w.ID, "kind", w.Kind, "device", w.Device, "reason", rec.Reason)
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
