package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mamori-agent/mamori/hub/store"
)

// CreateAgent adds an agent with the hash of its token.
func (s *Store) CreateAgent(ctx context.Context, name, tokenHash string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO agents (name, token_hash, created) VALUES (?, ?, ?)
ON CONFLICT DO NOTHING`), text(name), tokenHash, nanos(now))
	if err != nil {
		return fmt.Errorf("add agent %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("add agent %q: %w", name, store.ErrExists)
	}
	return nil
}

// RevokeAgent revokes an agent's token; its records stay.
func (s *Store) RevokeAgent(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE agents SET revoked = ? WHERE name = ?`), true, name)
	if err != nil {
		return fmt.Errorf("revoke agent %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("revoke agent %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// RotateAgent implements store.Tokens.
func (s *Store) RotateAgent(ctx context.Context, name, tokenHash string) error {
	var revoked bool
	err := s.db.QueryRowContext(ctx, s.q(`SELECT revoked FROM agents WHERE name = ?`), name).Scan(&revoked)
	if isNoRows(err) {
		return fmt.Errorf("rotate the token of agent %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("rotate the token of agent %q: %w", name, err)
	}
	if revoked {
		return fmt.Errorf("rotate the token of agent %q: %w", name, store.ErrRevoked)
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE agents SET token_hash = ? WHERE name = ? AND revoked = ?`), tokenHash, name, false)
	if err != nil {
		return fmt.Errorf("rotate the token of agent %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("rotate the token of agent %q: %w", name, store.ErrRevoked)
	}
	return nil
}

// SetStaffToken sets (or replaces) the token of the staff member name.
func (s *Store) SetStaffToken(ctx context.Context, name, tokenHash string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO staff_tokens (name, token_hash, created) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, created = excluded.created`),
		text(name), tokenHash, nanos(now))
	if err != nil {
		return fmt.Errorf("set staff token %q: %w", name, err)
	}
	return nil
}

// Authenticate returns whose token hashes to tokenHash.
func (s *Store) Authenticate(ctx context.Context, tokenHash string) (store.Principal, error) {
	var name string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT name FROM agents WHERE token_hash = ? AND revoked = ?`),
		tokenHash, false).Scan(&name)
	if err == nil {
		return store.Principal{Name: name, Role: store.RoleAgent}, nil
	}
	if !isNoRows(err) {
		return store.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	err = s.db.QueryRowContext(ctx, s.q(`SELECT name FROM staff_tokens WHERE token_hash = ?`), tokenHash).Scan(&name)
	if isNoRows(err) {
		return store.Principal{}, store.ErrNotFound
	}
	if err != nil {
		return store.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	return store.Principal{Name: name, Role: store.RoleStaff}, nil
}
