package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mamori-agent/mamori/hub/store"
)

const agentColumns = `name, asset_id, created, revoked, last_seen, stopped, chain_seq, chain_hash, chain_broken,
host, version, queue, policy_version, dropped`

// scanAgent reads one row of agentColumns.
func scanAgent(row interface{ Scan(...any) error }) (store.Agent, error) {
	var (
		a                      store.Agent
		created, lastSeen, seq int64
		host                   string
	)
	if err := row.Scan(&a.Name, &a.AssetID, &created, &a.Revoked, &lastSeen, &a.Stopped, &seq, &a.ChainHash,
		&a.ChainBroken, &host, &a.Version, &a.Queue, &a.PolicyVersion, &a.Dropped); err != nil {
		return a, err
	}
	a.Created, a.LastSeen, a.ChainSeq = fromNanos(created), fromNanos(lastSeen), uint64(seq)
	if err := json.Unmarshal([]byte(host), &a.Host); err != nil {
		return a, fmt.Errorf("agent %q: host facts: %w", a.Name, err)
	}
	return a, nil
}

// Agents lists every agent by name.
func (s *Store) Agents(ctx context.Context) ([]store.Agent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+agentColumns+` FROM agents ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	var out []store.Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out, nil
}

// Agent returns the agent name.
func (s *Store) Agent(ctx context.Context, name string) (store.Agent, error) {
	a, err := scanAgent(s.db.QueryRowContext(ctx, s.q(`SELECT `+agentColumns+` FROM agents WHERE name = ?`), name))
	if isNoRows(err) {
		return a, fmt.Errorf("agent %q: %w", name, store.ErrNotFound)
	}
	return a, err
}

// where collects the conditions and arguments of a query.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, arg any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, arg)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// Violations lists violations by id, oldest first (newest first when
// f.Newest).
func (s *Store) Violations(ctx context.Context, f store.ViolationFilter) ([]store.Violation, error) {
	var w where
	if f.Agent != "" {
		w.add("agent = ?", f.Agent)
	}
	if f.Kind != "" {
		w.add("kind = ?", f.Kind)
	}
	if !f.Since.IsZero() {
		w.add("time >= ?", nanos(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("time < ?", nanos(f.Until))
	}
	if f.After > 0 {
		w.add("id > ?", f.After)
	}
	if f.Before > 0 {
		w.add("id < ?", f.Before)
	}
	q := `SELECT id, event_id, agent, asset_id, kind, severity, article, device, vendor_id, product_id, serial, message, time, received
FROM violations` + w.String() + ` ORDER BY id`
	if f.Newest {
		q += ` DESC`
	}
	if f.Limit > 0 {
		q += ` LIMIT ?`
		w.args = append(w.args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q(q), w.args...)
	if err != nil {
		return nil, fmt.Errorf("list violations: %w", err)
	}
	defer rows.Close()
	var out []store.Violation
	for rows.Next() {
		var (
			v        store.Violation
			t, recvd int64
		)
		if err := rows.Scan(&v.ID, &v.EventID, &v.Agent, &v.AssetID, &v.Kind, &v.Severity, &v.Article, &v.Device,
			&v.VendorID, &v.ProductID, &v.Serial, &v.Message, &t, &recvd); err != nil {
			return nil, fmt.Errorf("list violations: %w", err)
		}
		v.Time, v.Received = fromNanos(t), fromNanos(recvd)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list violations: %w", err)
	}
	return out, nil
}

// Devices lists the device inventory.
func (s *Store) Devices(ctx context.Context, f store.DeviceFilter) ([]store.Device, error) {
	var w where
	if f.Agent != "" {
		w.add("agent = ?", f.Agent)
	}
	if f.VendorID != "" {
		w.add("vendor_id = ?", f.VendorID)
	}
	if f.ProductID != "" {
		w.add("product_id = ?", f.ProductID)
	}
	if f.Serial != "" {
		w.add("serial = ?", f.Serial)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT agent, asset_id, vendor_id, product_id, serial, product, first_seen, last_seen, seen_count
FROM devices`+w.String()+` ORDER BY vendor_id, product_id, serial, agent`), w.args...)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		var (
			d           store.Device
			first, last int64
		)
		if err := rows.Scan(&d.Agent, &d.AssetID, &d.VendorID, &d.ProductID, &d.Serial, &d.Product, &first, &last, &d.Count); err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		d.FirstSeen, d.LastSeen = fromNanos(first), fromNanos(last)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// EventIDs lists the ids of agent's events in the order they were stored.
func (s *Store) EventIDs(ctx context.Context, agent string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT event_id FROM events WHERE agent = ? ORDER BY id`), agent)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// Events implements store.Queries.
func (s *Store) Events(ctx context.Context, f store.EventFilter) ([]store.StoredEvent, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, event_id, seq, hash, prev_hash, type, time, received, body
FROM events WHERE agent = ? AND id > ? ORDER BY id LIMIT ?`), f.Agent, f.After, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []store.StoredEvent
	for rows.Next() {
		var (
			e            store.StoredEvent
			seq, t, rcvd int64
			typ, raw     string
		)
		if err := rows.Scan(&e.ID, &e.Event.ID, &seq, &e.Hash, &e.PrevHash, &typ, &t, &rcvd, &raw); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		e.Seq, e.Raw, e.Received = uint64(seq), []byte(raw), fromNanos(rcvd)
		e.Event.Event.Type, e.Event.Event.Time = typ, fromNanos(t)
		out = append(out, e)
	}
	return out, rows.Err()
}

// SetPolicy stores a new version of the approved lists.
func (s *Store) SetPolicy(ctx context.Context, approved, by string, now time.Time) (store.Policy, error) {
	approved, by = text(approved), text(by)
	sum := sha256.Sum256([]byte(approved))
	p := store.Policy{Changed: fromNanos(nanos(now)), ChangedBy: by, Approved: approved, Digest: hex.EncodeToString(sum[:])}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO policies (changed, changed_by, approved, digest) VALUES (?, ?, ?, ?)
RETURNING version`), nanos(now), by, approved, p.Digest).Scan(&p.Version)
	if err != nil {
		return p, fmt.Errorf("set policy: %w", err)
	}
	return p, nil
}

// Policy returns the current version of the approved lists.
func (s *Store) Policy(ctx context.Context) (store.Policy, error) {
	var (
		p       store.Policy
		changed int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT version, changed, changed_by, approved, digest FROM policies ORDER BY version DESC LIMIT 1`).
		Scan(&p.Version, &changed, &p.ChangedBy, &p.Approved, &p.Digest)
	if isNoRows(err) {
		return p, store.ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("get policy: %w", err)
	}
	p.Changed = fromNanos(changed)
	return p, nil
}

// Store implements store.Store.
var _ store.Store = (*Store)(nil)
