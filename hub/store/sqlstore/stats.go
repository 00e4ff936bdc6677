package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mamori-agent/mamori/hub/store"
)

// AgentCounts counts the agents not revoked by state and chain, in one
// grouped scan of the agents table (no host facts decoded).
func (s *Store) AgentCounts(ctx context.Context, now time.Time, silentAfter time.Duration) (store.AgentCounts, error) {
	var c store.AgentCounts
	// An agent is ok when it was seen at or after cutoff (Agent.State:
	// silent when now - last_seen > silentAfter; never seen is 0).
	cutoff := nanos(now.Add(-silentAfter))
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT stopped, last_seen >= ?, chain_broken, count(*)
FROM agents WHERE revoked = ? GROUP BY 1, 2, 3`), cutoff, false)
	if err != nil {
		return c, fmt.Errorf("count agents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			stopped, fresh, broken bool
			n                      int
		)
		if err := rows.Scan(&stopped, &fresh, &broken, &n); err != nil {
			return c, fmt.Errorf("count agents: %w", err)
		}
		switch {
		case stopped:
			c.Stopped += n
		case fresh:
			c.OK += n
		default:
			c.Silent += n
		}
		if broken {
			c.ChainBroken += n
		}
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("count agents: %w", err)
	}
	return c, nil
}

// ViolationCounts counts violations by kind in buckets of step, with
// the index on violations(time).
func (s *Store) ViolationCounts(ctx context.Context, since, until time.Time, step time.Duration) ([]store.ViolationBucket, error) {
	if step <= 0 {
		return nil, fmt.Errorf("count violations: step %v", step)
	}
	from := nanos(since)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT (time - ?) / ?, kind, count(*)
FROM violations WHERE time >= ? AND time < ? GROUP BY 1, 2 ORDER BY 1, 2`), from, int64(step), from, nanos(until))
	if err != nil {
		return nil, fmt.Errorf("count violations: %w", err)
	}
	defer rows.Close()
	var out []store.ViolationBucket
	for rows.Next() {
		var (
			i int64
			b store.ViolationBucket
		)
		if err := rows.Scan(&i, &b.Kind, &b.Count); err != nil {
			return nil, fmt.Errorf("count violations: %w", err)
		}
		b.Start = fromNanos(from + i*int64(step))
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count violations: %w", err)
	}
	return out, nil
}
