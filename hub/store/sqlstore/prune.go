package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// NewestReceived implements store.Retention.
func (s *Store) NewestReceived(ctx context.Context) (time.Time, error) {
	var n sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT max(received) FROM events`).Scan(&n); err != nil {
		return time.Time{}, fmt.Errorf("newest event: %w", err)
	}
	if !n.Valid {
		return time.Time{}, nil
	}
	return fromNanos(n.Int64), nil
}

// Prune implements store.Retention: at most limit rows of each table
// received before before, the oldest by receipt first (through the
// received indexes of migration 0003).
func (s *Store) Prune(ctx context.Context, before time.Time, limit int) (events, violations int64, err error) {
	if limit <= 0 {
		return 0, 0, fmt.Errorf("prune: limit %d", limit)
	}
	cut := nanos(before)
	for _, t := range []struct {
		table string
		n     *int64
	}{{"events", &events}, {"violations", &violations}} {
		q := s.q(`DELETE FROM ` + t.table + ` WHERE id IN (SELECT id FROM ` + t.table + ` WHERE received < ? ORDER BY received LIMIT ?)`)
		unlock := s.lockWrites()
		res, err := s.db.ExecContext(ctx, q, cut, limit)
		unlock()
		if err != nil {
			return events, violations, fmt.Errorf("prune %s: %w", t.table, err)
		}
		if *t.n, err = res.RowsAffected(); err != nil {
			return events, violations, fmt.Errorf("prune %s: %w", t.table, err)
		}
	}
	return events, violations, nil
}
