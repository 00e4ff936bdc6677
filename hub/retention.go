package hub

import (
	"context"
	"time"
)

// pruneEvery is how often a hub with a retention deletes what is past it
// (and once at start).
const pruneEvery = time.Hour

// pruneChunk is how many rows of a table one delete takes: short write
// transactions, so ingest goes on between them.
const pruneChunk = 5000

// pruneLoop deletes records past cfg.Retention until ctx ends. Several
// hubs on one PostgreSQL each run it; the deletes are idempotent.
func (h *Hub) pruneLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		h.Prune(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune deletes the events and violations the hub received more than
// cfg.Retention ago, in chunks of pruneChunk, and logs how many. It does
// nothing when the retention is 0 (keep every record).
func (h *Hub) Prune(ctx context.Context) (events, violations int64) {
	if h.cfg.Retention <= 0 {
		return 0, 0
	}
	now := h.now()
	before := now.Add(-h.cfg.Retention)
	// A hub clock set far ahead would delete every record: when nothing
	// at all was received within the retention period, the clock is
	// more likely wrong than the PCs all silent for that long, and
	// keeping the records is the safe side.
	newest, err := h.store.NewestReceived(ctx)
	if err != nil {
		h.logger.Error("retention: pruning failed; trying again later", "err", err)
		return 0, 0
	}
	if !newest.IsZero() && newest.Before(before) {
		h.logger.Error("retention: not pruning: nothing was received within the retention period, so the hub's clock may be wrong (check it)",
			"now", now.UTC().Format(time.RFC3339), "newest_received", newest.UTC().Format(time.RFC3339), "retention", h.cfg.Retention.String())
		return 0, 0
	}
	for ctx.Err() == nil {
		ev, vi, err := h.store.Prune(ctx, before, pruneChunk)
		events += ev
		violations += vi
		h.metrics.Pruned("events", ev)
		h.metrics.Pruned("violations", vi)
		if err != nil {
			h.logger.Error("retention: pruning failed; trying again later", "err", err)
			break
		}
		if ev < pruneChunk && vi < pruneChunk {
			break
		}
	}
	if events > 0 || violations > 0 {
		h.logger.Info("retention: deleted records received before the retention period", "before", before.UTC().Format(time.RFC3339),
			"retention", h.cfg.Retention.String(), "events", events, "violations", violations)
	}
	return events, violations
}
