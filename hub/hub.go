// Package hub is mamori-hub, the central endpoint mamori agents report
// to: it stores every event once, raises audit_chain_broken when an
// agent's audit chain does not continue, tells silent agents from stopped
// ones, serves the approved lists, and answers security staff (package
// api). Storage is behind store.Store (package store/sqlstore: SQLite or
// PostgreSQL); a hub keeps no state of its own, so several may run on one
// PostgreSQL behind a load balancer.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mamori-agent/mamori/hub/api"
	"github.com/mamori-agent/mamori/hub/metrics"
	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/hub/web"
)

// Hub is one mamori-hub server.
type Hub struct {
	cfg     *Config
	store   store.Store
	logger  *slog.Logger
	metrics *metrics.Metrics
	handler http.Handler
	now     func() time.Time
}

// New returns a hub serving cfg over st. The caller closes st after Run.
func New(cfg *Config, st store.Store, logger *slog.Logger, opts ...Option) *Hub {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	m := metrics.New(st, cfg.SilentAfter, o.now, logger.With("component", "metrics"))
	a := api.New(api.Options{Store: st, Logger: logger.With("component", "api"), SilentAfter: cfg.SilentAfter, Now: o.now, Metrics: m})
	mux := http.NewServeMux()
	mux.Handle("/api/", a)
	// The metrics need no token: restrict who reaches them by the listen
	// address (or a firewall in front of the hub).
	if cfg.MetricsListen == "" {
		mux.Handle("GET /metrics", m.Handler())
	}
	mux.Handle("/", web.New(web.Options{Store: st, Logger: logger.With("component", "web"), SilentAfter: cfg.SilentAfter, Now: o.now,
		ViolationsCSV: a.ViolationsCSV, DevicesCSV: a.DevicesCSV}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	now := o.now
	if now == nil {
		now = time.Now
	}
	return &Hub{cfg: cfg, store: st, logger: logger, metrics: m, handler: mux, now: now}
}

// Handler returns the hub's HTTP handler: the API under /api/v1/, the
// staff's pages (package web) at /, /violations, /agents, /devices and
// /login, the metrics at /metrics, and /healthz.
func (h *Hub) Handler() http.Handler { return h.handler }

// Metrics returns the hub's metrics (its own registry).
func (h *Hub) Metrics() *metrics.Metrics { return h.metrics }

// Run listens on cfg.Listen (TLS unless the config has none, which it
// allows on loopback only) and serves until ctx ends, then shuts down
// gracefully (at most 10 s for requests in flight).
func (h *Hub) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", h.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return h.Serve(ctx, ln)
}

// Serve is Run on a listener of the caller's.
func (h *Hub) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           h.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      5 * time.Minute, // CSV exports of years of records
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(h.logger.Handler(), slog.LevelWarn),
	}
	if h.cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", h.cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", h.metrics.Handler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute,
			ErrorLog: slog.NewLogLogger(h.logger.Handler(), slog.LevelWarn)}
		h.logger.Info("serving metrics", "url", "http://"+mln.Addr().String()+"/metrics")
		go msrv.Serve(mln)
		defer msrv.Close()
	}
	if h.cfg.Retention > 0 {
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go h.pruneLoop(pctx, pruneEvery)
	}
	errc := make(chan error, 1)
	go func() {
		if h.cfg.TLS.CertFile != "" {
			h.logger.Info("serving", "url", "https://"+ln.Addr().String())
			errc <- srv.ServeTLS(ln, h.cfg.TLS.CertFile, h.cfg.TLS.KeyFile)
		} else {
			h.logger.Info("serving", "url", "http://"+ln.Addr().String())
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
