package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// Prune implements store.Retention. Each table's oldest limit rows (by
// id, the order of storing) are looked at and those received before
// before deleted: no index on received is needed, and as ids grow with
// the hub's clock the rows past retention are always the first ones.
func (s *Store) Prune(ctx context.Context, before time.Time, limit int) (events, violations int64, err error) {
	if limit <= 0 {
		return 0, 0, fmt.Errorf("prune: limit %d", limit)
	}
	cut := nanos(before)
	for _, t := range []struct {
		table string
		n     *int64
	}{{"events", &events}, {"violations", &violations}} {
		q := s.q(`DELETE FROM ` + t.table + ` WHERE id IN (SELECT id FROM ` + t.table + ` ORDER BY id LIMIT ?) AND received < ?`)
		unlock := s.lockWrites()
		res, err := s.db.ExecContext(ctx, q, limit, cut)
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
