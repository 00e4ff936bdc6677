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

// maxDropped is the most dropped events an agent's row counts.
const maxDropped = int64(1) << 62

// chainArticle is the annex article an audit_chain_broken violation
// breaks: keeping the records safe from tampering.
const chainArticle = "5"

// Ingest stores a batch from agent, atomically: all of it or nothing.
//
// On PostgreSQL each batch is a transaction of its own. On SQLite, which
// takes one writer at a time and syncs the WAL at every commit, batches
// that arrive while another is being written are group-committed: the
// next writer takes every batch waiting (up to groupBatches), stores
// each inside a SAVEPOINT of one transaction (a batch that fails is
// rolled back to its savepoint alone and gets its error) and commits
// once, so many agents share one fsync. Ingest returns when its batch's
// commit has.
func (s *Store) Ingest(ctx context.Context, agent string, b *store.Batch, now time.Time) (store.IngestResult, error) {
	if !s.d.oneWriter {
		return s.ingestAlone(ctx, agent, b, cleanEvents(b.Events), now)
	}
	r := newGroupReq(agent, b, now)
	s.gmu.Lock()
	s.waiting = append(s.waiting, r)
	s.gmu.Unlock()
	for {
		unlock := s.lockWrites()
		select {
		case <-r.done:
			unlock()
			return r.res, r.err
		default:
		}
		s.gmu.Lock()
		n := min(len(s.waiting), groupBatches)
		group := s.waiting[:n:n]
		s.waiting = s.waiting[n:]
		s.gmu.Unlock()
		s.commitGroup(group)
		unlock()
	}
}

// groupBatches bounds the batches of one group commit (at the agent's
// default of 500 events a batch, 16 batches are 8,000 events: a
// transaction of a few tens of milliseconds).
const groupBatches = 16

// groupTimeout bounds one group commit; it does not depend on the
// request that happened to run it (whose client may go away).
const groupTimeout = 60 * time.Second

// groupReq is one batch waiting for a group commit.
type groupReq struct {
	agent string
	b     *store.Batch
	clean []cleanEvent
	now   time.Time
	res   store.IngestResult
	err   error
	done  chan struct{}
}

// newGroupReq returns the request to store b from agent.
func newGroupReq(agent string, b *store.Batch, now time.Time) *groupReq {
	return &groupReq{agent: agent, b: b, clean: cleanEvents(b.Events), now: now, done: make(chan struct{})}
}

// commitGroup stores the batches of group in one transaction and tells
// each request its result. When a batch fails, the transaction is rolled
// back and every batch of the group is stored again in a transaction of
// its own, so that one batch's failure is that batch's alone. (Savepoints
// around each batch would do the same without the retry, but SQLite then
// copies every page a batch changes to its statement journal first: about
// a sixth of the writer's time, for a case that almost never happens.)
func (s *Store) commitGroup(group []*groupReq) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	defer func() {
		for _, r := range group {
			close(r.done)
		}
	}()
	if len(group) == 1 {
		r := group[0]
		r.res, r.err = s.ingestAlone(ctx, r.agent, r.b, r.clean, r.now)
		return
	}
	err := func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		defer tx.Rollback()
		for _, r := range group {
			if r.res, err = s.ingestIn(ctx, tx, r.agent, r.b, r.clean, r.now); err != nil {
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("ingest: commit: %w", err)
		}
		return nil
	}()
	if err == nil {
		return
	}
	for _, r := range group {
		r.res, r.err = s.ingestAlone(ctx, r.agent, r.b, r.clean, r.now)
	}
}

// ingestAlone stores a batch in a transaction of its own.
func (s *Store) ingestAlone(ctx context.Context, agent string, b *store.Batch, clean []cleanEvent, now time.Time) (store.IngestResult, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.IngestResult{}, fmt.Errorf("ingest: %w", err)
	}
	defer tx.Rollback()
	res, err := s.ingestIn(ctx, tx, agent, b, clean, now)
	if err != nil {
		return res, err
	}
	if err := tx.Commit(); err != nil {
		return store.IngestResult{}, fmt.Errorf("ingest: commit: %w", err)
	}
	return res, nil
}

// cleanEvent is the text columns of one event as stored (text: valid
// UTF-8 without NUL), made before the writer's turn.
type cleanEvent struct {
	id, hash, prevHash, typ, body string
}

// cleanEvents returns the text columns of events, in order.
func cleanEvents(events []store.Event) []cleanEvent {
	out := make([]cleanEvent, len(events))
	for i := range events {
		ev := &events[i]
		out[i] = cleanEvent{id: text(ev.ID), hash: text(ev.Hash), prevHash: text(ev.PrevHash),
			typ: text(ev.Event.Type), body: text(string(ev.Raw))}
	}
	return out
}

// ingestIn stores a batch from agent in tx; clean is cleanEvents of its
// events.
func (s *Store) ingestIn(ctx context.Context, tx *sql.Tx, agent string, b *store.Batch, clean []cleanEvent, now time.Time) (store.IngestResult, error) {
	var res store.IngestResult
	var (
		seq     int64
		hash    string
		broken  bool
		assetID string
	)
	err := tx.QueryRowContext(ctx, s.q(`SELECT chain_seq, chain_hash, chain_broken, asset_id FROM agents WHERE name = ?`)+s.d.lockRow,
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
	w := ingestTx{s: s, tx: tx, agent: agent, assetID: assetID, now: now, res: &res}
	inserted, err := w.insertEvents(ctx, b.Events, clean)
	if err != nil {
		return res, err
	}
	// What the hub had of the events it had already (the same id).
	before, err := w.storedBefore(ctx, clean, inserted)
	if err != nil {
		return res, err
	}
	have := seq != 0 || hash != ""
	var breaks []string
	for i := range b.Events {
		ev := &b.Events[i]
		if !inserted[i] {
			res.Duplicates++
			o := before[clean[i].id]
			if o.seq != ev.Seq || o.hash != clean[i].hash {
				breaks = append(breaks, fmt.Sprintf("event %q came before as audit record %d and now as record %d with another hash (the state directory was restored from an old copy or rewritten)",
					ev.ID, o.seq, ev.Seq))
			}
			continue
		}
		res.Accepted++
		if ev.Altered {
			breaks = append(breaks, fmt.Sprintf("audit record %d does not match its hash: it was changed after the agent wrote it (its report queue was edited)", ev.Seq))
		}
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
		seq, hash, have = int64(ev.Seq), clean[i].hash, true
		if err := w.derived(ctx, ev); err != nil {
			return res, err
		}
	}
	if err := w.flushDevices(ctx); err != nil {
		return res, err
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
	if err := w.flushViolations(ctx); err != nil {
		return res, err
	}
	// dropped saturates at maxDropped rather than overflowing (SQLite
	// would turn it into a REAL).
	d := min(max(b.Dropped, 0), maxDropped)
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE agents SET asset_id = ?, last_seen = ?, chain_seq = ?, chain_hash = ?,
chain_broken = ?, dropped = CASE WHEN dropped > ? THEN ? ELSE dropped + ? END WHERE name = ?`),
		assetID, nanos(now), seq, hash, broken, maxDropped-d, maxDropped, d, agent); err != nil {
		return res, fmt.Errorf("ingest: update agent: %w", err)
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
	// viols are the columns of the violations to insert (violationCols
	// each), in order.
	viols []any
	// devs are the devices the batch's events named, in the order they
	// first did.
	devs     map[[3]string]*deviceSeen
	devOrder []*deviceSeen
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
	t := e.Time
	if t.IsZero() {
		t = w.now
	}
	key := [3]string{text(vendor), text(product), text(serial)}
	d := w.devs[key]
	if d == nil {
		if w.devs == nil {
			w.devs = map[[3]string]*deviceSeen{}
		}
		d = &deviceSeen{key: key, first: t}
		w.devs[key] = d
		w.devOrder = append(w.devOrder, d)
	}
	d.last = t
	d.count++
	if desc != "" {
		d.product = text(desc)
	}
	return nil
}

// deviceSeen is what one batch says of one device: the device row is
// written once per batch, as if once per event (seen_count grows by
// count, last_seen is the last event's time, product the last one told).
type deviceSeen struct {
	key         [3]string // vendor, product, serial
	first, last time.Time
	count       int64
	product     string
}

// flushDevices writes the devices the batch's events named, insertRows
// to a statement (one upsert of many rows costs about what one of a
// single row does).
func (w *ingestTx) flushDevices(ctx context.Context) error {
	args := make([]any, 0, insertRows*9)
	for lo := 0; lo < len(w.devOrder); lo += insertRows {
		chunk := w.devOrder[lo:min(lo+insertRows, len(w.devOrder))]
		args = args[:0]
		for _, d := range chunk {
			args = append(args, w.agent, d.key[0], d.key[1], d.key[2], d.product,
				w.assetID, nanos(d.first), nanos(d.last), d.count)
		}
		st, err := w.s.stmt(ctx, w.tx, w.s.upsertDevicesQuery(len(chunk)))
		if err != nil {
			return fmt.Errorf("ingest: store devices: %w", err)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("ingest: store devices: %w", err)
		}
	}
	return nil
}

// stmt returns query prepared for tx. The statement is prepared once per
// database connection and kept (Store.stmts) until Close: parsing one of
// the multi-row statements (900 parameters) costs about as much as
// running it.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	st, ok := s.stmts.Load(query)
	if !ok {
		p, err := s.db.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		var loaded bool
		if st, loaded = s.stmts.LoadOrStore(query, p); loaded {
			p.Close()
		}
	}
	return tx.StmtContext(ctx, st.(*sql.Stmt)), nil
}

// upsertDevicesQuery is the upsert of n device rows (cached per n). The
// rows of one statement have distinct keys (flushDevices merges a batch's
// events per device first), as PostgreSQL requires.
func (s *Store) upsertDevicesQuery(n int) string {
	if q, ok := s.deviceQ.Load(n); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO devices (agent, vendor_id, product_id, serial, product, asset_id, first_seen, last_seen, seen_count) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	}
	b.WriteString(`
ON CONFLICT (agent, vendor_id, product_id, serial) DO UPDATE SET
	last_seen = excluded.last_seen, asset_id = excluded.asset_id, seen_count = devices.seen_count + excluded.seen_count,
	product = CASE WHEN excluded.product <> '' THEN excluded.product ELSE devices.product END`)
	q := s.q(b.String())
	s.deviceQ.Store(n, q)
	return q
}

// insertRows is how many events one INSERT statement carries.
const insertRows = 100

// insertEvents inserts the batch's events, insertRows to a statement,
// each once by (agent, id); inserted[i] tells whether events[i] was
// stored now (false: the hub had its id already, or an earlier event of
// the batch had it).
func (w *ingestTx) insertEvents(ctx context.Context, events []store.Event, clean []cleanEvent) ([]bool, error) {
	inserted := make([]bool, len(events))
	now := nanos(w.now)
	args := make([]any, 0, insertRows*9)
	for lo := 0; lo < len(events); lo += insertRows {
		chunk := events[lo:min(lo+insertRows, len(events))]
		args = args[:0]
		for i := range chunk {
			ev, c := &chunk[i], &clean[lo+i]
			args = append(args, w.agent, c.id, int64(ev.Seq), c.hash, c.prevHash, c.typ, nanos(ev.Event.Time), now, c.body)
		}
		got, err := w.insertChunk(ctx, len(chunk), args)
		if err != nil {
			return nil, fmt.Errorf("ingest: store events: %w", err)
		}
		if got == nil { // all stored
			for i := range chunk {
				inserted[lo+i] = true
			}
			continue
		}
		for i := range chunk {
			if id := clean[lo+i].id; got[id] > 0 {
				got[id]--
				inserted[lo+i] = true
			}
		}
	}
	return inserted, nil
}

// insertChunk inserts the n events of args (insertEvents' columns) and
// returns how many times each id was stored now, or nil when every event
// was (an id twice in the chunk is stored once, for its first event).
//
// On SQLite the statement returns no rows: RETURNING costs a result row
// per event, while the one writer knows which rows a statement added
// from its count and the last rowid (the AUTOINCREMENT ids of one
// statement follow each other); the ids are read back only when some
// were there already. PostgreSQL, with writers side by side, is told
// by RETURNING.
func (w *ingestTx) insertChunk(ctx context.Context, n int, args []any) (map[string]int, error) {
	st, err := w.s.stmt(ctx, w.tx, w.s.insertEventsQuery(n))
	if err != nil {
		return nil, err
	}
	var rows *sql.Rows
	if w.s.d.oneWriter {
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		added, err := res.RowsAffected()
		if err != nil {
			return nil, err
		}
		switch {
		case added == int64(n):
			return nil, nil
		case added == 0:
			return map[string]int{}, nil
		}
		last, err := res.LastInsertId()
		if err != nil {
			return nil, err
		}
		rows, err = w.tx.QueryContext(ctx, `SELECT event_id FROM events WHERE id > ? AND id <= ?`, last-added, last)
		if err != nil {
			return nil, err
		}
	} else if rows, err = st.QueryContext(ctx, args...); err != nil {
		return nil, err
	}
	defer rows.Close()
	got := make(map[string]int, n)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		got[id]++
	}
	return got, rows.Err()
}

// insertEventsQuery is the INSERT of n events (cached per n): with
// RETURNING event_id where writers run side by side (see insertChunk).
func (s *Store) insertEventsQuery(n int) string {
	if q, ok := s.insertQ.Load(n); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO events (agent, event_id, seq, hash, prev_hash, type, time, received, body) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	}
	b.WriteString(` ON CONFLICT (agent, event_id) DO NOTHING`)
	if !s.d.oneWriter {
		b.WriteString(` RETURNING event_id`)
	}
	q := s.q(b.String())
	s.insertQ.Store(n, q)
	return q
}

// chainPos is an event's place in its agent's chain as stored.
type chainPos struct {
	seq  uint64
	hash string
}

// storedBefore returns the seq and hash the hub has for the events of
// the batch not inserted now, by id.
func (w *ingestTx) storedBefore(ctx context.Context, clean []cleanEvent, inserted []bool) (map[string]chainPos, error) {
	var ids []any
	for i := range clean {
		if !inserted[i] {
			ids = append(ids, clean[i].id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out := make(map[string]chainPos, len(ids))
	for lo := 0; lo < len(ids); lo += insertRows {
		chunk := ids[lo:min(lo+insertRows, len(ids))]
		q := `SELECT event_id, seq, hash FROM events WHERE agent = ? AND event_id IN (?` + strings.Repeat(`, ?`, len(chunk)-1) + `)`
		rows, err := w.tx.QueryContext(ctx, w.s.q(q), append([]any{w.agent}, chunk...)...)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		for rows.Next() {
			var (
				id  string
				seq int64
				p   chainPos
			)
			if err := rows.Scan(&id, &seq, &p.hash); err != nil {
				rows.Close()
				return nil, fmt.Errorf("ingest: %w", err)
			}
			p.seq = uint64(seq)
			out[id] = p
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
	}
	return out, nil
}

// violation stores one violation row of the agent.
func (w *ingestTx) violation(ctx context.Context, eventID string, v store.Violation) error {
	w.viols = append(w.viols, text(eventID), w.agent, w.assetID, text(v.Kind), text(v.Severity), text(v.Article),
		text(v.Device), text(v.VendorID), text(v.ProductID), text(v.Serial), text(v.Message),
		nanos(v.Time), nanos(w.now))
	if w.res.Kinds == nil {
		w.res.Kinds = map[string]int{}
	}
	w.res.Kinds[v.Kind]++
	return nil
}

// violationCols is the number of columns violation fills.
const violationCols = 13

// flushViolations inserts the violations the batch gave, in order,
// insertRows to a statement.
func (w *ingestTx) flushViolations(ctx context.Context) error {
	rows := len(w.viols) / violationCols
	for lo := 0; lo < rows; lo += insertRows {
		n := min(insertRows, rows-lo)
		st, err := w.s.stmt(ctx, w.tx, w.s.insertViolationsQuery(n))
		if err != nil {
			return fmt.Errorf("ingest: store violations: %w", err)
		}
		if _, err := st.ExecContext(ctx, w.viols[lo*violationCols:(lo+n)*violationCols]...); err != nil {
			return fmt.Errorf("ingest: store violations: %w", err)
		}
	}
	w.viols = w.viols[:0]
	return nil
}

// insertViolationsQuery is the INSERT of n violations (cached per n).
func (s *Store) insertViolationsQuery(n int) string {
	if q, ok := s.violQ.Load(n); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO violations (event_id, agent, asset_id, kind, severity, article, device,
vendor_id, product_id, serial, message, time, received) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	}
	q := s.q(b.String())
	s.violQ.Store(n, q)
	return q
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
	unlock := s.lockWrites()
	res, err := s.db.ExecContext(ctx, s.q(q), args...)
	unlock()
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("heartbeat from %q: %w", agent, store.ErrNotFound)
	}
	return nil
}
