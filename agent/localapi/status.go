package localapi

import "time"

// Status is what the running agent sees and does now (the "status"
// answer): its devices and networks with their verdicts, the violations
// still open, the hub report queue and the notifiers connected.
type Status struct {
	// Time is when the snapshot was taken (the agent's clock).
	Time  time.Time   `json:"time"`
	Agent AgentStatus `json:"agent"`
	// USB are the USB devices attached now, by bus path; Volumes the
	// file systems mounted from them.
	USB     []USBStatus    `json:"usb_devices"`
	Volumes []VolumeStatus `json:"volumes"`
	// Interfaces are the network links (loopback left out), by index;
	// Gateways the default routes' next hops.
	Interfaces []LinkStatus    `json:"interfaces"`
	Gateways   []GatewayStatus `json:"gateways"`
	// LAN counts the devices in the neighbour table on approved networks.
	LAN LANStatus `json:"lan"`
	// Violations are those whose appearance is still open: the device
	// still attached, the network condition not cleared, the LAN device's
	// window not over.
	Violations []OpenViolation `json:"open_violations"`
	// Report is the hub reporter's state; nil when reporting is off.
	Report *ReportStatus `json:"report"`
	// Audit is the audit log's state.
	Audit AuditStatus `json:"audit"`
	// Notifiers are the notifiers connected now.
	Notifiers []PeerStatus `json:"notifiers"`
	// Sources are the agent's event sources as its self-test at start
	// found them (and as they fared since): which tell of changes as they
	// happen and which fell back to rescans, and why.
	Sources []SourceStatus `json:"sources,omitempty"`
}

// States of an event source (SourceStatus.State).
const (
	// SourceEvents: changes arrive as they happen (uevents, rtnetlink,
	// device notifications).
	SourceEvents = "events"
	// SourcePolling: looked at on a short timer of its own.
	SourcePolling = "polling"
	// SourceRescans: changes are seen at the rescans only
	// (agent.rescan_interval); Detail says why.
	SourceRescans = "rescans"
	// SourceOff: not collected on this system; Detail says why.
	SourceOff = "off"
)

// SourceStatus is one event source of the agent: "uevents", "mount
// watch", "rtnetlink" on Linux; "device notifications", "IP change
// notifications", "removable volumes" on Windows.
type SourceStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Detail says why a source fell back or is off ("" when it works).
	Detail string `json:"detail,omitempty"`
}

// AgentStatus is the agent itself.
type AgentStatus struct {
	Version string    `json:"version"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	AssetID string    `json:"asset_id,omitempty"`
	// Language is agent.language: the language texts come first in.
	Language string `json:"language"`
	Contact  string `json:"contact"`
	StateDir string `json:"state_dir"`
	// ConfigFiles and ConfigDigest are the files of the config in force
	// and the SHA-256 over them (wire.AgentRecord).
	ConfigFiles  []string `json:"config_files,omitempty"`
	ConfigDigest string   `json:"config_digest,omitempty"`
	// PolicyVersion is the version of the hub's approved lists in force,
	// 0 when none.
	PolicyVersion int64 `json:"policy_version,omitempty"`
	// ApprovedUSB, ApprovedNetworks and LANDevices count the lists in
	// force.
	ApprovedUSB      int `json:"approved_usb_entries"`
	ApprovedNetworks int `json:"approved_networks"`
	LANDevices       int `json:"registered_lan_devices"`
}

// Verdicts (USBStatus.Verdict, LinkStatus.Verdict).
const (
	VerdictApproved    = "approved"
	VerdictUnapproved  = "unapproved"
	VerdictExpired     = "expired"
	VerdictNotYetValid = "not_yet_valid"
	VerdictRootHub     = "root_hub"
	VerdictIgnored     = "ignored"
	// VerdictNone is a link on no network (no countable address, no
	// default route): nothing to judge.
	VerdictNone = "none"
)

// USBStatus is one USB device attached now.
type USBStatus struct {
	Path      string  `json:"path"`
	VendorID  string  `json:"vendor_id"`
	ProductID string  `json:"product_id"`
	Serial    *string `json:"serial"`
	// Name is the device in words ("SanDisk Ultra Fit (0781:5583, serial
	// ...)"), escaped.
	Name    string `json:"name"`
	Storage bool   `json:"storage"`
	// Verdict is approved, unapproved, expired, not_yet_valid or
	// root_hub; Entry the approved-list entry involved.
	Verdict string `json:"verdict"`
	Entry   string `json:"entry,omitempty"`
}

// VolumeStatus is one mounted file system on a USB device.
type VolumeStatus struct {
	Device     string `json:"device"`
	MountPoint string `json:"mount_point"`
	FSType     string `json:"fs_type"`
	Label      string `json:"label,omitempty"`
	Encrypted  bool   `json:"encrypted"`
	USBDevice  string `json:"usb_device"`
}

// LinkStatus is one network interface.
type LinkStatus struct {
	Name  string `json:"name"`
	Index int    `json:"index"`
	Kind  string `json:"kind"`
	MAC   string `json:"mac,omitempty"`
	SSID  string `json:"ssid,omitempty"`
	USB   string `json:"usb,omitempty"`
	// Up is the link counted as connected (admin up and carrier).
	Up        bool     `json:"up"`
	Addresses []string `json:"addresses,omitempty"`
	// Verdict is approved, unapproved, ignored or none; Networks the
	// approved networks it is on.
	Verdict  string   `json:"verdict"`
	Networks []string `json:"networks,omitempty"`
}

// GatewayStatus is one next hop of a default route.
type GatewayStatus struct {
	Interface string `json:"interface"`
	IP        string `json:"ip,omitempty"`
	MAC       string `json:"mac,omitempty"`
	// Pinned is the gateway_mac it is held to and Network the network
	// pinning it; LookAlike is set when its MAC is not the pinned one.
	Pinned    string `json:"pinned,omitempty"`
	Network   string `json:"network,omitempty"`
	LookAlike bool   `json:"look_alike,omitempty"`
}

// MaxLANListed is how many unregistered LAN devices a status lists (the
// count is always whole).
const MaxLANListed = 100

// LANStatus is the LAN devices on approved networks.
type LANStatus struct {
	Registered   int `json:"registered"`
	Unregistered int `json:"unregistered"`
	// UnregisteredDevices lists the first MaxLANListed unregistered ones.
	UnregisteredDevices []NeighbourStatus `json:"unregistered_devices,omitempty"`
}

// NeighbourStatus is one LAN device.
type NeighbourStatus struct {
	Interface string `json:"interface"`
	MAC       string `json:"mac"`
	IP        string `json:"ip,omitempty"`
}

// OpenViolation is a violation whose appearance is still open, with the
// texts of a warning about it (configured language first).
type OpenViolation struct {
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	Article  string `json:"article"`
	Device   string `json:"device"`
	// Since is when it was recorded in this run of the agent; nil for a
	// violation carried over from the previous run.
	Since *time.Time `json:"since,omitempty"`
	Texts []Text     `json:"texts"`
}

// ReportStatus is the hub reporter's state.
type ReportStatus struct {
	URL string `json:"url"`
	// Queue is how many events wait to be sent; Dropped how many the
	// queue dropped (oldest first, when full) and the hub is yet to be
	// told of.
	Queue   int64 `json:"queue"`
	Dropped int64 `json:"dropped"`
	// LastSuccess is when the hub last accepted a batch or heartbeat; nil
	// when it has not in this run.
	LastSuccess *time.Time `json:"last_success,omitempty"`
}

// AuditStatus is the audit log's state.
type AuditStatus struct {
	// LastSeq is the seq of the last record written.
	LastSeq uint64 `json:"last_seq"`
	// Pending counts events waiting in memory for the log to take them
	// (a full disk).
	Pending int `json:"pending,omitempty"`
}

// PeerStatus is a connected client: Peer's UID (on Windows the session
// id), user name, PID and, on Windows, user SID.
type PeerStatus struct {
	UID  int    `json:"uid"`
	User string `json:"user,omitempty"`
	PID  int    `json:"pid,omitempty"`
	SID  string `json:"sid,omitempty"`
}
