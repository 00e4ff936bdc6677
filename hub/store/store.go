// Package store declares what mamori-hub keeps: agents and their tokens,
// staff tokens, the events agents report (each once, in the agent's
// order, with its place in the agent's audit chain), the violations and
// the device inventory built from them, heartbeats and the versions of
// the approved lists.
//
// Only interfaces and row types live here (Fleet's split: the domain
// package declares the datastore, package sqlstore implements it over
// SQL), so that the hub and its API depend on no database.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/mamori-agent/mamori/wire"
)

// ErrNotFound is returned for a name, token or row that is not there (an
// unknown or revoked token included).
var ErrNotFound = errors.New("not found")

// ErrExists is returned when a name to be created is taken.
var ErrExists = errors.New("already exists")

// ErrRevoked is returned for a change to a revoked agent.
var ErrRevoked = errors.New("revoked")

// Role is what a token may do.
type Role string

const (
	// RoleAgent may post events and heartbeats and read the policy, as
	// the agent it names only.
	RoleAgent Role = "agent"
	// RoleStaff may query violations, agents and devices.
	RoleStaff Role = "staff"
)

// Principal is who a token belongs to.
type Principal struct {
	Name string
	Role Role
}

// Agent states, as the API shows them.
const (
	StateOK      = "ok"
	StateSilent  = "silent"
	StateStopped = "stopped"
)

// Chain states, as the API shows them.
const (
	ChainIntact = "intact"
	ChainBroken = "broken"
)

// Agent is one PC known to the hub.
type Agent struct {
	// Name is the hub's name for the PC (mamori-hub agent add NAME).
	Name string
	// AssetID is the PC's management number, as its last batch or
	// heartbeat said.
	AssetID string
	Created time.Time
	Revoked bool
	// LastSeen is when the hub last heard from it (zero: never).
	LastSeen time.Time
	// Stopped is set by the heartbeat of a clean stop and cleared by the
	// next heartbeat.
	Stopped bool
	// ChainSeq and ChainHash are the last audit record the hub has from
	// it; ChainBroken says a batch once did not continue the chain.
	ChainSeq    uint64
	ChainHash   string
	ChainBroken bool
	// Host, Version, Queue and PolicyVersion are from its last heartbeat.
	Host          wire.HostFacts
	Version       string
	Queue         int
	PolicyVersion int64
	// Dropped is the sum of the events its queue dropped (Batch.Dropped).
	Dropped int64
}

// State is StateStopped, StateSilent (nothing heard for silentAfter, or
// never) or StateOK at now.
func (a *Agent) State(now time.Time, silentAfter time.Duration) string {
	switch {
	case a.Stopped:
		return StateStopped
	case a.LastSeen.IsZero() || now.Sub(a.LastSeen) > silentAfter:
		return StateSilent
	default:
		return StateOK
	}
}

// Chain is ChainBroken or ChainIntact.
func (a *Agent) Chain() string {
	if a.ChainBroken {
		return ChainBroken
	}
	return ChainIntact
}

// Batch is a wire.Batch decoded and checked by the API: each event's
// record is parsed, and kept as it came (Raw) as well.
type Batch struct {
	AssetID string
	BootID  string
	Dropped int64
	Events  []Event
}

// Event is one event of a Batch.
type Event struct {
	ID       string
	Seq      uint64
	Hash     string
	PrevHash string
	// Raw is the event's JSON as the agent sent it; Event is it parsed.
	Raw   json.RawMessage
	Event wire.Event
	// Altered is set when Hash is not wire.RecordHash of Seq, PrevHash
	// and Raw: the record was changed after the agent's audit log wrote
	// it (its report queue edited). Ingest raises audit_chain_broken.
	Altered bool
}

// StoredEvent is an event as the hub stored it.
type StoredEvent struct {
	// ID is the hub's number of the event: the order of storing.
	ID int64
	Event
	Received time.Time
}

// EventFilter selects an agent's stored events: those with ID > After,
// at most Limit, in the order stored.
type EventFilter struct {
	Agent string
	After int64
	Limit int
}

// IngestResult says what Ingest did with a batch.
type IngestResult struct {
	// Accepted counts the events stored now; Duplicates those stored
	// before (the same id from the same agent).
	Accepted   int
	Duplicates int
	// ChainBroken is set when the batch did not continue the agent's
	// chain (an audit_chain_broken violation was stored).
	ChainBroken bool
	// Kinds counts the violations stored now by kind (the kinds as the
	// agent sent them; audit_chain_broken included). Nil when none.
	Kinds map[string]int
}

// Violation is one violation row: reported by an agent, or raised by the
// hub (audit_chain_broken, without an event).
type Violation struct {
	// ID is the row's id, increasing in the order rows were stored.
	ID int64
	// EventID is the id of the event that carried it ("" when the hub
	// raised it).
	EventID   string
	Agent     string
	AssetID   string
	Kind      string
	Severity  string
	Article   string
	Device    string
	VendorID  string
	ProductID string
	Serial    string
	Message   string
	// Time is the event's time (the agent's clock); for a violation the
	// hub raised, the hub's time. Received is the hub's time of storing.
	Time     time.Time
	Received time.Time
}

// ViolationFilter selects violations. Zero fields select everything.
type ViolationFilter struct {
	Agent string
	Kind  string
	// Since and Until bound Time: Since <= Time < Until.
	Since, Until time.Time
	// After is a cursor: only rows with an ID above it. Before is one
	// for the other way: only rows with an ID below it (0: no bound).
	After  int64
	Before int64
	// Newest lists the newest row first (by ID, descending).
	Newest bool
	// Limit is the most rows returned (0: no limit).
	Limit int
}

// Device is one USB device (vendor, product, serial) seen on one PC.
type Device struct {
	Agent     string
	AssetID   string
	VendorID  string
	ProductID string
	// Serial is "" for a device without one.
	Serial string
	// Product is the device's own description (manufacturer, product), as
	// last seen.
	Product   string
	FirstSeen time.Time
	LastSeen  time.Time
	// Count is how many events named it.
	Count int64
}

// DeviceFilter selects devices. Zero fields select everything.
type DeviceFilter struct {
	Agent     string
	VendorID  string
	ProductID string
	Serial    string
}

// Policy is one version of the approved lists.
type Policy struct {
	Version   int64
	Changed   time.Time
	ChangedBy string
	// Approved is the YAML of the approved: section's content.
	Approved string
	// Digest is the lower-case hex SHA-256 of Approved.
	Digest string
}

// Tokens keeps agents and staff tokens. Tokens are stored as their
// SHA-256 only (lower-case hex).
type Tokens interface {
	// CreateAgent adds an agent (ErrExists when the name is taken, by a
	// revoked agent too: its history keeps the name).
	CreateAgent(ctx context.Context, name, tokenHash string, now time.Time) error
	// RevokeAgent revokes an agent's token (ErrNotFound when unknown).
	RevokeAgent(ctx context.Context, name string) error
	// RotateAgent replaces an agent's token: the old one stops working at
	// once (ErrNotFound when unknown, ErrRevoked when revoked: a revoked
	// PC is added again under another name).
	RotateAgent(ctx context.Context, name, tokenHash string) error
	// SetStaffToken sets the token of a staff member, replacing any
	// earlier one of that name.
	SetStaffToken(ctx context.Context, name, tokenHash string, now time.Time) error
	// Authenticate returns whose token has this hash: ErrNotFound when
	// none, or the agent is revoked.
	Authenticate(ctx context.Context, tokenHash string) (Principal, error)
}

// Ingester takes what agents send.
type Ingester interface {
	// Ingest stores a batch from agent atomically: each event once by
	// (agent, id), in the batch's order after what the agent sent before;
	// the violations and devices they name; the agent's chain position
	// (an audit_chain_broken violation when the batch does not continue
	// it). now is the hub's time.
	Ingest(ctx context.Context, agent string, b *Batch, now time.Time) (IngestResult, error)
	// Heartbeat records that agent is alive, with its facts.
	Heartbeat(ctx context.Context, agent string, hb *wire.Heartbeat, now time.Time) error
}

// Queries answers the staff.
type Queries interface {
	// Agents lists every agent, by name.
	Agents(ctx context.Context) ([]Agent, error)
	// Agent returns one agent (ErrNotFound when unknown).
	Agent(ctx context.Context, name string) (Agent, error)
	// Violations lists violations by ID, oldest first.
	Violations(ctx context.Context, f ViolationFilter) ([]Violation, error)
	// Devices lists the device inventory, by vendor, product, serial,
	// agent.
	Devices(ctx context.Context, f DeviceFilter) ([]Device, error)
	// Events lists an agent's stored events, in the order stored: the
	// records handed to the city (Raw is the event as the agent sent it;
	// Event is not filled in).
	Events(ctx context.Context, f EventFilter) ([]StoredEvent, error)
	// EventIDs lists the ids of an agent's stored events in the order
	// they were stored (for tests and audits).
	EventIDs(ctx context.Context, agent string) ([]string, error)
}

// Policies keeps the versions of the approved lists.
type Policies interface {
	// SetPolicy stores a new version, made by by, and returns it.
	SetPolicy(ctx context.Context, approved, by string, now time.Time) (Policy, error)
	// Policy returns the current version (ErrNotFound when none was set).
	Policy(ctx context.Context) (Policy, error)
}

// Session is a staff member's web session (a login through the web
// form). The cookie holds the session id; the store keeps only its hash.
type Session struct {
	// IDHash is HashToken of the session id.
	IDHash string
	// Staff is the staff member's name; TokenHash the hash of the staff
	// token the session was opened with: replacing that token
	// (mamori-hub admin token) ends the session.
	Staff     string
	TokenHash string
	// CSRF is the session's token for the hidden field of every form.
	CSRF    string
	Created time.Time
	Expires time.Time
}

// Sessions keeps the staff's web sessions in the database, so that a hub
// restart does not log staff out and several hubs behind a load balancer
// share them.
type Sessions interface {
	// CreateSession stores s, and deletes the sessions that expired.
	CreateSession(ctx context.Context, s Session) error
	// Session returns the session whose id hashes to idHash: ErrNotFound
	// when none, when it expired by now, or when its staff token was
	// replaced since.
	Session(ctx context.Context, idHash string, now time.Time) (Session, error)
	// DeleteSession ends a session (no error when it is not there).
	DeleteSession(ctx context.Context, idHash string) error
}

// AgentCounts counts the agents that are not revoked by state, and
// those whose audit chain is broken.
type AgentCounts struct {
	OK, Silent, Stopped int
	ChainBroken         int
}

// ViolationBucket is how many violations of one kind have a Time in
// [Start, Start+step).
type ViolationBucket struct {
	Start time.Time
	Kind  string
	Count int64
}

// Stats answers the overview page and the metrics with one cheap query
// each.
type Stats interface {
	// AgentCounts counts the agents not revoked by their state at now
	// (Agent.State) and their chain.
	AgentCounts(ctx context.Context, now time.Time, silentAfter time.Duration) (AgentCounts, error)
	// ViolationCounts counts the violations with since <= Time < until
	// by kind in buckets of step from since; buckets without violations
	// are left out. Ordered by Start, then Kind.
	ViolationCounts(ctx context.Context, since, until time.Time, step time.Duration) ([]ViolationBucket, error)
}

// Retention deletes records past the hub's retention period.
type Retention interface {
	// Prune deletes at most limit events and at most limit violations
	// the hub received before before (the hub's clock, not the agent's),
	// oldest first, and returns how many of each it deleted. Devices,
	// agents, policies and tokens are kept. Called until it deletes
	// fewer than limit of both.
	Prune(ctx context.Context, before time.Time, limit int) (events, violations int64, err error)
	// NewestReceived is when the newest event was received (zero when
	// there is none).
	NewestReceived(ctx context.Context) (time.Time, error)
}

// Store is everything the hub keeps.
type Store interface {
	Tokens
	Ingester
	Queries
	Policies
	Sessions
	Stats
	Retention
	Close() error
}
