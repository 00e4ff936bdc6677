// Package hubtest runs an in-process mamori-hub for tests: the real hub
// on a loopback httptest server, over SQLite in t.TempDir().
package hubtest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub"
	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/hub/store/sqlstore"
)

// Hub is a running test hub.
type Hub struct {
	// URL is the hub's base URL (http://127.0.0.1:port); an agent appends
	// /api/v1/....
	URL string
	// Store is the hub's store, to look at what arrived.
	Store  *sqlstore.Store
	Config *hub.Config
	Server *httptest.Server
	t      testing.TB
}

// New starts a hub (silent_after 10m) that stops when the test ends.
func New(t testing.TB) *Hub {
	t.Helper()
	return NewWithConfig(t, nil)
}

// NewWithClock starts a hub (as New) whose clock is now: the time in its
// answers, for tests of an agent whose clock differs from the hub's.
func NewWithClock(t testing.TB, now func() time.Time) *Hub {
	t.Helper()
	return NewWithConfig(t, nil, hub.WithClock(now))
}

// NewWithConfig starts a hub with cfg (its Database is replaced by a
// SQLite file in t.TempDir(); nil: the defaults) and opts.
func NewWithConfig(t testing.TB, cfg *hub.Config, opts ...hub.Option) *Hub {
	t.Helper()
	if cfg == nil {
		cfg = &hub.Config{Listen: "127.0.0.1:0", SilentAfter: hub.DefaultSilentAfter}
	}
	cfg.Database = "sqlite://" + filepath.Join(t.TempDir(), "hub.db")
	st, err := sqlstore.Open(context.Background(), cfg.Database)
	if err != nil {
		t.Fatalf("hubtest: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := httptest.NewServer(hub.New(cfg, st, logger, opts...).Handler())
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return &Hub{URL: srv.URL, Store: st, Config: cfg, Server: srv, t: t}
}

// AddAgent adds an agent named name and returns its token.
func (h *Hub) AddAgent(name string) string {
	h.t.Helper()
	tok := store.NewToken()
	if err := h.Store.CreateAgent(context.Background(), name, store.HashToken(tok), time.Now()); err != nil {
		h.t.Fatalf("hubtest: add agent: %v", err)
	}
	return tok
}

// RevokeAgent revokes an agent's token.
func (h *Hub) RevokeAgent(name string) {
	h.t.Helper()
	if err := h.Store.RevokeAgent(context.Background(), name); err != nil {
		h.t.Fatalf("hubtest: revoke agent: %v", err)
	}
}

// AdminToken returns a new staff token (named "admin").
func (h *Hub) AdminToken() string {
	h.t.Helper()
	tok := store.NewToken()
	if err := h.Store.SetStaffToken(context.Background(), "admin", store.HashToken(tok), time.Now()); err != nil {
		h.t.Fatalf("hubtest: admin token: %v", err)
	}
	return tok
}

// SetPolicy sets the approved lists (YAML of the approved: section).
func (h *Hub) SetPolicy(approved string) store.Policy {
	h.t.Helper()
	p, err := h.Store.SetPolicy(context.Background(), approved, "hubtest", time.Now())
	if err != nil {
		h.t.Fatalf("hubtest: set policy: %v", err)
	}
	return p
}

// testWriter sends the hub's log to the test's.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
