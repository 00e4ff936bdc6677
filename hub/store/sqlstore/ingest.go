package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/wire"
)

// chainArticle is the annex article an audit_chain_broken violation
// breaks: keeping the records safe from tampering.
const chainArticle = "5"

// Ingest stores a batch from agent in one transaction.
func (s *Store) Ingest(ctx context.Context, agent string, b *store.Batch, now time.Time) (store.IngestResult, error) {
	var res store.IngestResult
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("ingest: %w", err)
	}
	defer tx.Rollback()
	var (
		seq     int64
		hash    string
		broken  bool
		assetID string
	)
	err = tx.QueryRowContext(ctx, s.q(`SELECT chain_seq, chain_hash, chain_broken, asset_id FROM agents WHERE name = ?`)+s.d.lockRow,
		agent).Scan(&seq, &hash, &broken, &assetID)
	if isNoRows(err) {
		return res, fmt.Errorf("ingest from %q: %w", agent, store.ErrNotFound)
	}
	if err != nil {
		return res, fmt.Errorf("ingest: %w", err)
	}
	if b.AssetID != "" {
		assetID = text(b.AssetID)
	}
	ins, err := tx.PrepareContext(ctx, s.q(`INSERT INTO events (agent, event_id, seq, hash, prev_hash, type, time, received, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent, event_id) DO NOTHING`))
	if err != nil {
		return res, fmt.Errorf("ingest: %w", err)
	}
	defer ins.Close()
	w := ingestTx{s: s, tx: tx, agent: agent, assetID: assetID, now: now, res: &res}
	have := seq != 0 || hash != ""
	var breaks []string
	for i := range b.Events {
		ev := &b.Events[i]
		r, err := ins.ExecContext(ctx, agent, text(ev.ID), int64(ev.Seq), text(ev.Hash), text(ev.PrevHash),
			text(ev.Event.Type), nanos(ev.Event.Time), nanos(now), text(string(ev.Raw)))
		if err != nil {
			return res, fmt.Errorf("ingest: store event: %w", err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return res, fmt.Errorf("ingest: %w", err)
		} else if n == 0 {
			res.Duplicates++
			var oseq int64
			var ohash string
			if err := tx.QueryRowContext(ctx, s.q(`SELECT seq, hash FROM events WHERE agent = ? AND event_id = ?`),
				agent, text(ev.ID)).Scan(&oseq, &ohash); err != nil {
				return res, fmt.Errorf("ingest: %w", err)
			}
			if uint64(oseq) != ev.Seq || ohash != text(ev.Hash) {
				breaks = append(breaks, fmt.Sprintf("event %q came before as audit record %d and now as record %d with another hash (the state directory was restored from an old copy or rewritten)",
					ev.ID, oseq, ev.Seq))
			}
			continue
		}
		res.Accepted++
		if have {
			switch {
			case ev.Seq <= uint64(seq):
				breaks = append(breaks, fmt.Sprintf("audit record %d came after record %d: the chain went back (the state directory was restored from an old copy or made anew)", ev.Seq, seq))
			case ev.Seq > uint64(seq)+1:
				breaks = append(breaks, fmt.Sprintf("audit records %d to %d are missing (cut from the audit log)", seq+1, ev.Seq-1))
			case ev.PrevHash != hash:
				breaks = append(breaks, fmt.Sprintf("audit record %d does not continue record %d: its prev_hash is not the hash the hub has (the log was rewritten)", ev.Seq, seq))
			}
		}
		seq, hash, have = int64(ev.Seq), text(ev.Hash), true
		if err := w.derived(ctx, ev); err != nil {
			return res, err
		}
	}
	if len(breaks) > 0 {
		res.ChainBroken = true
		broken = true
		msg := "The audit chain of " + agent + " does not continue what the hub has: " + breaks[0]
		if len(breaks) > 1 {
			msg += fmt.Sprintf(" (and %d more breaks in this batch)", len(breaks)-1)
		}
		if err := w.violation(ctx, "", store.Violation{
			Kind: wire.KindAuditChainBroken, Severity: wire.SeverityCritical, Article: chainArticle,
			Message: msg, Time: now,
		}); err != nil {
			return res, err
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE agents SET asset_id = ?, last_seen = ?, chain_seq = ?, chain_hash = ?,
chain_broken = ?, dropped = dropped + ? WHERE name = ?`),
		assetID, nanos(now), seq, hash, broken, b.Dropped, agent); err != nil {
		return res, fmt.Errorf("ingest: update agent: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("ingest: commit: %w", err)
	}
	return res, nil
}

// ingestTx stores what one batch's events imply, in its transaction.
type ingestTx struct {
	s       *Store
	tx      *sql.Tx
	agent   string
	assetID string
	now     time.Time
	res     *store.IngestResult
	viol    *sql.Stmt
	dev     *sql.Stmt
}

// derived stores the violation and the device an event names.
func (w *ingestTx) derived(ctx context.Context, ev *store.Event) error {
	e := &ev.Event
	vendor, product, serial := e.VendorID, e.ProductID, ""
	if e.Serial != nil {
		serial = *e.Serial
	}
	var desc string
	if d := e.Device; d != nil {
		if vendor == "" {
			vendor, product = d.VendorID, d.ProductID
		}
		if serial == "" && d.Serial != nil {
			serial = *d.Serial
		}
		desc = strings.TrimSpace(d.Manufacturer + " " + d.Product)
	}
	if v := e.Violation; e.Type == wire.TypeViolation && v != nil {
		t := e.Time
		if t.IsZero() {
			t = w.now
		}
		msg := v.Message
		if msg == "" {
			msg = v.MessageEN
		}
		if err := w.violation(ctx, ev.ID, store.Violation{
			Kind: v.Kind, Severity: v.Severity, Article: v.Article, Device: v.Device,
			VendorID: vendor, ProductID: product, Serial: serial, Message: msg, Time: t,
		}); err != nil {
			return err
		}
	}
	if vendor == "" && product == "" {
		return nil
	}
	if w.dev == nil {
		st, err := w.tx.PrepareContext(ctx, w.s.q(`INSERT INTO devices (agent, vendor_id, product_id, serial, product, asset_id, first_seen, last_seen, seen_count)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
ON CONFLICT (agent, vendor_id, product_id, serial) DO UPDATE SET
	last_seen = excluded.last_seen, asset_id = excluded.asset_id, seen_count = devices.seen_count + 1,
	product = CASE WHEN excluded.product <> '' THEN excluded.product ELSE devices.product END`))
		if err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		w.dev = st
	}
	t := e.Time
	if t.IsZero() {
		t = w.now
	}
	if _, err := w.dev.ExecContext(ctx, w.agent, text(vendor), text(product), text(serial), text(desc),
		w.assetID, nanos(t), nanos(t)); err != nil {
		return fmt.Errorf("ingest: store device: %w", err)
	}
	return nil
}

// violation stores one violation row of the agent.
func (w *ingestTx) violation(ctx context.Context, eventID string, v store.Violation) error {
	if w.viol == nil {
		st, err := w.tx.PrepareContext(ctx, w.s.q(`INSERT INTO violations (event_id, agent, asset_id, kind, severity, article, device,
vendor_id, product_id, serial, message, time, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
		if err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		w.viol = st
	}
	if _, err := w.viol.ExecContext(ctx, text(eventID), w.agent, w.assetID, text(v.Kind), text(v.Severity), text(v.Article),
		text(v.Device), text(v.VendorID), text(v.ProductID), text(v.Serial), text(v.Message),
		nanos(v.Time), nanos(w.now)); err != nil {
		return fmt.Errorf("ingest: store violation: %w", err)
	}
	if w.res.Kinds == nil {
		w.res.Kinds = map[string]int{}
	}
	w.res.Kinds[v.Kind]++
	return nil
}

// Heartbeat records a heartbeat of agent.
func (s *Store) Heartbeat(ctx context.Context, agent string, hb *wire.Heartbeat, now time.Time) error {
	host, err := json.Marshal(hb.Host)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	q := `UPDATE agents SET last_seen = ?, host = ?, version = ?, queue = ?, policy_version = ?, stopped = ? WHERE name = ?`
	args := []any{nanos(now), text(string(host)), text(hb.Version), hb.Queue, hb.PolicyVersion, hb.Stopping, agent}
	if hb.AssetID != "" {
		q = `UPDATE agents SET last_seen = ?, host = ?, version = ?, queue = ?, policy_version = ?, stopped = ?, asset_id = ? WHERE name = ?`
		args = []any{nanos(now), text(string(host)), text(hb.Version), hb.Queue, hb.PolicyVersion, hb.Stopping, text(hb.AssetID), agent}
	}
	res, err := s.db.ExecContext(ctx, s.q(q), args...)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("heartbeat from %q: %w", agent, store.ErrNotFound)
	}
	return nil
}
