package agent

import (
	"fmt"
	"time"

	"github.com/mamori-agent/mamori/agent/audit"
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

// auditRecord is one line of the audit log: the event, with the violation
// kind lifted to the top so that every record names what it is about.
type auditRecord struct {
	*Event
	Kind string `json:"kind,omitempty"`
}

// emit sends one event to every sink. The audit log comes first: the event
// counts as recorded once it is flushed there. An event the log refuses is
// kept, in order, and written as soon as the log takes records again; the
// metrics and the warning do not wait for it.
func (a *Agent) emit(ev *Event) {
	ev.Time = a.now()
	ev.AssetID = a.cfg.Agent.AssetID
	a.record(ev)
	a.metrics.Handle(ev)
	if ev.Violation != nil {
		if err := a.warner.Warn(ev); err != nil {
			a.log.Warn("local warning", "err", err)
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
		a.pending.since, a.pending.lastErr = a.now(), err.Error()
	}
	q := &a.pending
	q.events = append(q.events, ev)
	if len(q.events) > a.opts.MaxPending {
		a.log.Error("audit log pending queue full; oldest event lost", "type", q.events[0].Type, "path", q.events[0].Path)
		q.events[0] = nil
		q.events = q.events[1:]
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
		if err := a.appendEvent(ev); err != nil {
			q.lastErr = err.Error()
			break
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
	rec := auditRecord{Event: ev}
	if ev.Violation != nil {
		rec.Kind = ev.Violation.Kind
	}
	r, err := a.audit.Append(rec)
	if err != nil {
		a.metrics.auditErrors.Inc()
		a.log.Error("audit log append failed; event kept to write later", "type", ev.Type, "path", ev.Path, "err", err)
		return err
	}
	a.metrics.auditRecords.Inc()
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
