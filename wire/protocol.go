package wire

import (
	"encoding/json"
	"time"
)

// The protocol between the agent and mamori-hub: JSON over HTTPS under
// /api/v1/, every request with "Authorization: Bearer <token>". Every
// answer of the hub carries its time (HubTime, and the Date header), so
// the agent can keep the offset of its own clock.
const (
	// PathEvents takes a Batch (POST) and answers a BatchResult.
	PathEvents = "/api/v1/events"
	// PathHeartbeat takes a Heartbeat (POST) and answers a HeartbeatResult.
	PathHeartbeat = "/api/v1/heartbeat"
	// PathPolicy answers the PolicyBundle (GET, with If-None-Match: the
	// version's ETag; 304 when unchanged).
	PathPolicy = "/api/v1/policy"
	// PathViolations, PathAgents and PathDevices are the staff's queries.
	PathViolations = "/api/v1/violations"
	PathAgents     = "/api/v1/agents"
	PathDevices    = "/api/v1/devices"
)

// MaxBatchEvents is the most events one Batch carries; MaxBatchBytes the
// largest request body the hub reads (bytes).
const (
	MaxBatchEvents = 1000
	MaxBatchBytes  = 8 << 20
)

// Batch is what an agent sends: its events in the order it recorded them,
// each with its place in the agent's audit chain.
type Batch struct {
	// Schema is SchemaVersion of the sender.
	Schema int `json:"schema"`
	// AssetID is the PC's management number (agent.asset_id).
	AssetID string `json:"asset_id,omitempty"`
	// BootID is the kernel's boot id of the sender's current boot.
	BootID string       `json:"boot_id,omitempty"`
	Events []BatchEvent `json:"events"`
	// Dropped counts events the agent's queue dropped (oldest first, when
	// it was full) since the last batch the hub accepted: the loss is
	// reported, never silent.
	Dropped int64 `json:"dropped,omitempty"`
}

// BatchEvent is one event in a Batch.
type BatchEvent struct {
	// ID is the event's id, unique per agent for ever: the hub stores an
	// id once (at-least-once delivery, exactly once in the database).
	// The agent makes it from its boot-independent queue sequence: a
	// 16-byte random prefix chosen when its state directory was made,
	// and the position in its queue ("<hex prefix>-<n>").
	ID string `json:"id"`
	// Seq and Hash are the audit record's seq and hash: where the event
	// sits in the agent's hash chain. PrevHash is the hash of the record
	// before it. The hub checks that each batch continues the chain it
	// has seen (audit_chain_broken otherwise).
	Seq      uint64 `json:"seq"`
	Hash     string `json:"hash"`
	PrevHash string `json:"prev_hash"`
	// Event is the audit record's event as recorded (a wire.Event).
	Event json.RawMessage `json:"event"`
}

// BatchResult is the hub's answer to a Batch (200 OK).
type BatchResult struct {
	// HubTime is the hub's clock when it answered.
	HubTime time.Time `json:"hub_time"`
	// Accepted counts the events stored now; Duplicates those it had
	// already (ids seen before), which the agent may forget as well.
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	// ChainBroken is set when the batch did not continue the chain the
	// hub had for this agent; the events are stored all the same.
	ChainBroken bool `json:"chain_broken,omitempty"`
	// PolicyVersion is the current version of the approved lists at the
	// hub, so the agent pulls a new one without waiting.
	PolicyVersion int64 `json:"policy_version,omitempty"`
}

// Heartbeat tells the hub the agent is alive, what it sees, and the host.
type Heartbeat struct {
	Schema  int       `json:"schema"`
	AssetID string    `json:"asset_id,omitempty"`
	Version string    `json:"version"`
	Time    time.Time `json:"time"` // the agent's clock
	Host    HostFacts `json:"host"`
	// Inventory is a summary of what the agent sees now.
	Inventory Inventory `json:"inventory"`
	// Queue is how many events wait to be sent.
	Queue int `json:"queue"`
	// PolicyVersion is the version of the hub's approved lists in force.
	PolicyVersion int64 `json:"policy_version"`
	// Stopping is set on the heartbeat sent by a clean stop (after its
	// agent_stopped event): the hub tells "stopped" from "silent".
	Stopping bool `json:"stopping,omitempty"`
}

// HostFacts are the host's facts (gopsutil's host.Info).
type HostFacts struct {
	Hostname        string    `json:"hostname"`
	OS              string    `json:"os"`               // "linux", "windows"
	Platform        string    `json:"platform"`         // "debian"
	PlatformVersion string    `json:"platform_version"` // "12.8"
	KernelVersion   string    `json:"kernel_version"`
	BootTime        time.Time `json:"boot_time"`
	HostID          string    `json:"host_id"`
}

// Inventory counts what the agent sees now.
type Inventory struct {
	USBDevices     int `json:"usb_devices"`
	Volumes        int `json:"volumes"`
	Interfaces     int `json:"interfaces"`
	LANDevices     int `json:"lan_devices"`
	OpenViolations int `json:"open_violations"`
}

// HeartbeatResult is the hub's answer to a Heartbeat.
type HeartbeatResult struct {
	HubTime       time.Time `json:"hub_time"`
	PolicyVersion int64     `json:"policy_version,omitempty"`
}

// PolicyBundle is the approved lists the hub serves: the YAML of the
// agent config's approved: section (checked by the same parser), with
// its version. The ETag of GET PathPolicy is the version in quotes.
type PolicyBundle struct {
	Version int64     `json:"version"`
	Changed time.Time `json:"changed"`
	// ChangedBy is who set it (the staff member's token name).
	ChangedBy string `json:"changed_by,omitempty"`
	// Approved is a YAML document whose top level is the approved:
	// section's content (usb, networks, lan_devices).
	Approved string `json:"approved"`
	// Digest is the lower-case hex SHA-256 of Approved.
	Digest  string    `json:"digest"`
	HubTime time.Time `json:"hub_time"`
}

// Problem is the body of every error answer (RFC 9457 problem details,
// application/problem+json).
type Problem struct {
	Type   string `json:"type,omitempty"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// KindAuditChainBroken is raised at the hub, not by an agent: a batch did
// not continue the chain the hub had for that agent (records deleted, the
// state directory rewritten or restored from an old copy).
const KindAuditChainBroken = "audit_chain_broken"
