// Package api is mamori-hub's JSON API under /api/v1/: what agents send
// (events, heartbeats) and pull (the approved lists), and what security
// staff query (violations, agents, devices, and their CSV exports).
//
// Every request carries "Authorization: Bearer <token>". An agent's token
// names the agent, so a batch can only ever be stored as the agent whose
// token sent it; agent tokens may post events and heartbeats and read the
// policy, nothing else. Staff tokens read. Every answer carries the hub's
// time (the Date header, and hub_time in JSON bodies); every error is an
// application/problem+json wire.Problem.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mamori-agent/mamori/hub/metrics"
	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/wire"
)

// Defaults of Options.
const (
	DefaultMaxIngest  = 8
	DefaultIngestWait = 500 * time.Millisecond
	DefaultRetryAfter = 2 * time.Second
)

// Paths of the CSV exports.
const (
	PathViolationsCSV = "/api/v1/violations.csv"
	PathDevicesCSV    = "/api/v1/devices.csv"
)

// maxHeartbeatBytes is the largest heartbeat body read.
const maxHeartbeatBytes = 64 << 10

// Options configure the API.
type Options struct {
	Store  store.Store
	Logger *slog.Logger
	// SilentAfter is how long an agent may be quiet before it counts as
	// silent (config silent_after).
	SilentAfter time.Duration
	// MaxIngest bounds the agent requests (events, heartbeats) handled at
	// once; IngestWait is how long one waits for a turn before the hub
	// answers 503 with RetryAfter.
	MaxIngest  int
	IngestWait time.Duration
	RetryAfter time.Duration
	// AgentRate and AgentBurst are each agent's token bucket (requests
	// per second, sustained and at once) and AgentInFlight its requests
	// handled at once; beyond them the agent is answered 429 with
	// Retry-After. Zero means the defaults (DefaultAgentRate...).
	AgentRate     float64
	AgentBurst    int
	AgentInFlight int
	// Now is the hub's clock (time.Now when nil).
	Now func() time.Time
	// Location is the zone of the times in CSV exports (time.Local when
	// nil).
	Location *time.Location
	// Metrics records ingest and its errors (nil: nothing recorded).
	Metrics *metrics.Metrics
}

// API serves /api/v1/.
type API struct {
	o      Options
	sem    chan struct{}
	limits *agentLimits
	mux    *http.ServeMux
}

// New returns the API over o.Store.
func New(o Options) *API {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SilentAfter <= 0 {
		o.SilentAfter = 10 * time.Minute
	}
	if o.MaxIngest <= 0 {
		o.MaxIngest = DefaultMaxIngest
	}
	if o.IngestWait < 0 {
		o.IngestWait = 0
	} else if o.IngestWait == 0 {
		o.IngestWait = DefaultIngestWait
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.AgentRate <= 0 {
		o.AgentRate = DefaultAgentRate
	}
	if o.AgentBurst <= 0 {
		o.AgentBurst = DefaultAgentBurst
	}
	if o.AgentInFlight <= 0 {
		o.AgentInFlight = DefaultAgentInFlight
	}
	a := &API{o: o, sem: make(chan struct{}, o.MaxIngest), mux: http.NewServeMux(),
		limits: newAgentLimits(o.AgentRate, o.AgentBurst, o.AgentInFlight)}
	a.route(wire.PathEvents, http.MethodPost, store.RoleAgent, a.limitAgent(a.ingest(wire.MaxBatchBytes, a.events)))
	a.route(wire.PathHeartbeat, http.MethodPost, store.RoleAgent, a.limitAgent(a.ingest(maxHeartbeatBytes, a.heartbeat)))
	a.route(wire.PathPolicy, http.MethodGet, "", a.limitAgent(a.policy))
	a.route(wire.PathViolations, http.MethodGet, store.RoleStaff, a.violations)
	a.route(PathViolationsCSV, http.MethodGet, store.RoleStaff, a.violationsCSV)
	a.route(wire.PathAgents, http.MethodGet, store.RoleStaff, a.agents)
	a.route(PathAgentEvents, http.MethodGet, store.RoleStaff, a.agentEvents)
	a.route(wire.PathDevices, http.MethodGet, store.RoleStaff, a.devices)
	a.route(PathDevicesCSV, http.MethodGet, store.RoleStaff, a.devicesCSV)
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		a.problem(w, http.StatusNotFound, "no such API path")
	})
	return a
}

// ServeHTTP serves the API; every answer has the hub's time in Date.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", a.o.Now().UTC().Format(http.TimeFormat))
	a.mux.ServeHTTP(w, r)
}

// handler is an API handler, called after authentication.
type handler func(w http.ResponseWriter, r *http.Request, who store.Principal)

// route registers h at path for method, for tokens of role (any role
// when "").
func (a *API) route(path, method string, role store.Role, h handler) {
	a.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if role == store.RoleAgent && a.o.Metrics != nil {
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			defer func() { a.o.Metrics.IngestStatus(sw.status) }()
			w = sw
		}
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			a.problem(w, http.StatusMethodNotAllowed, "use "+method)
			return
		}
		who, ok := a.authenticate(w, r)
		if !ok {
			return
		}
		if role != "" && who.Role != role {
			a.problem(w, http.StatusForbidden, fmt.Sprintf("%s token may not use %s %s", article(string(who.Role)), method, path))
			return
		}
		h(w, r, who)
	})
}

// article is s with its indefinite article ("an agent", "a staff").
func article(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

// statusWriter remembers the status of an answer (for the metrics of
// agent requests).
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Unwrap is for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// authenticate finds the request's bearer token in the store.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (store.Principal, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > 512 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mamori-hub"`)
		a.problem(w, http.StatusUnauthorized, "an Authorization: Bearer token is required")
		return store.Principal{}, false
	}
	who, err := a.o.Store.Authenticate(r.Context(), store.HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mamori-hub", error="invalid_token"`)
		a.problem(w, http.StatusUnauthorized, "unknown or revoked token")
		return store.Principal{}, false
	}
	if err != nil {
		a.internal(w, r, err)
		return store.Principal{}, false
	}
	return who, true
}

// bodyTimeout bounds the reading of an agent request's body: a client
// that sends it slower is cut off.
const bodyTimeout = 30 * time.Second

// bodyHandler is an agent handler given the request's body.
type bodyHandler func(w http.ResponseWriter, r *http.Request, who store.Principal, body []byte)

// ingest reads an agent request's body (at most limit bytes, within
// bodyTimeout), then bounds the requests handled at once: beyond
// MaxIngest (after waiting IngestWait) the answer is 503 with
// Retry-After, so a reconnect storm is turned away cheaply instead of
// piling up. The body is read before a turn is taken, so clients that
// send slowly hold only their own per-agent turns (limitAgent), never
// the hub's.
func (a *API) ingest(limit int64, h bodyHandler) handler {
	return func(w http.ResponseWriter, r *http.Request, who store.Principal) {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
		data, ok := a.readBody(w, r, limit)
		if !ok {
			return
		}
		select {
		case a.sem <- struct{}{}:
		default:
			t := time.NewTimer(a.o.IngestWait)
			select {
			case a.sem <- struct{}{}:
				t.Stop()
			case <-t.C:
				a.busy(w)
				return
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		defer func() { <-a.sem }()
		h(w, r, who, data)
	}
}

// busy answers 503 with Retry-After.
func (a *API) busy(w http.ResponseWriter) {
	secs := int((a.o.RetryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	a.problem(w, http.StatusServiceUnavailable, "the hub is busy; retry after "+strconv.Itoa(secs)+" s")
}

// writeJSON answers v as JSON (HTML-escaped: <, > and & as \u003c...).
func (a *API) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// problem answers an error as application/problem+json.
func (a *API) problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(wire.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

// internal logs err and answers 500 without its details.
func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client went away (it hung up or timed out): nothing
		// failed at the hub, and there is no one to answer.
		a.o.Logger.Debug("client gone", "method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	a.o.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	a.problem(w, http.StatusInternalServerError, "the hub could not do this; see its log")
}

// policyVersion is the current version of the approved lists (0: none).
func (a *API) policyVersion(ctx context.Context) (int64, error) {
	p, err := a.o.Store.Policy(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return p.Version, err
}
