package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mamori-agent/mamori/hub/store"
)

// CreateSession stores a web session and deletes the expired ones.
func (s *Store) CreateSession(ctx context.Context, ss store.Session) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE expires <= ?`), nanos(ss.Created)); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO sessions (id_hash, staff, token_hash, csrf, created, expires)
VALUES (?, ?, ?, ?, ?, ?)`), ss.IDHash, text(ss.Staff), ss.TokenHash, ss.CSRF, nanos(ss.Created), nanos(ss.Expires)); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns a live session whose staff token is still the one it
// was opened with.
func (s *Store) Session(ctx context.Context, idHash string, now time.Time) (store.Session, error) {
	ss := store.Session{IDHash: idHash}
	var created, expires int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT s.staff, s.token_hash, s.csrf, s.created, s.expires
FROM sessions s JOIN staff_tokens t ON t.name = s.staff AND t.token_hash = s.token_hash
WHERE s.id_hash = ? AND s.expires > ?`), idHash, nanos(now)).Scan(&ss.Staff, &ss.TokenHash, &ss.CSRF, &created, &expires)
	if isNoRows(err) {
		return ss, store.ErrNotFound
	}
	if err != nil {
		return ss, fmt.Errorf("session: %w", err)
	}
	ss.Created, ss.Expires = fromNanos(created), fromNanos(expires)
	return ss, nil
}

// DeleteSession deletes a session.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE id_hash = ?`), idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
