// Package wire is mamori's record schema: the events the agent writes to
// its hash-chained audit log, reports to the hub and shows at the PC, with
// the violations, kinds and the subjects they are about (a USB device, a
// volume, a medium, a network link, a neighbour).
//
// Records must verify and read back for years, and the hub speaks the same
// schema without importing the agent: this package imports nothing of
// mamori's and only the standard library. Collector types are converted to
// these in one place (agent/convert.go), so a field added to a collector
// never changes what is hash-chained.
//
// Compatibility: fields are only ever added, with omitempty where an old
// record lacks them. Every record written by the USB-core release (schema
// 1, which did not say its version) reads into Event without loss.
package wire

import "time"

// SchemaVersion is the version of this schema, written in every
// agent_started and config_reloaded record (AgentRecord.Schema) and in
// every batch sent to the hub. Version 1 was the USB-core release; 2 added
// the network source (Link, Address, Route, Neighbour, the network kinds)
// and the contact in remedies.
const SchemaVersion = 2

// Event types: the "type" field of an audit record.
const (
	TypeAgentStarted = "agent_started"
	TypeAgentStopped = "agent_stopped"
	// TypeAgentUncleanStop is recorded at start when the previous run did
	// not end with agent_stopped: a crash, kill -9, power loss, or the log
	// cut after its stop record.
	TypeAgentUncleanStop = "agent_unclean_stop"
	TypeDeviceAdded      = "device_added"
	TypeDeviceRemoved    = "device_removed"
	TypeVolumeMounted    = "volume_mounted"
	TypeVolumeUnmounted  = "volume_unmounted"
	TypeViolation        = "violation"
	// TypeAuditDamaged is damage to the audit log or the state directory.
	TypeAuditDamaged = "audit_damaged"
	// TypeAuditGap says that events could not be written to the audit log
	// (a full disk, an I/O error) and how many of them were lost.
	TypeAuditGap = "audit_gap"
	// TypeConfigReloaded is recorded when a new config was put in force;
	// TypeConfigReloadFailed when it was refused (the old one stays).
	TypeConfigReloaded     = "config_reloaded"
	TypeConfigReloadFailed = "config_reload_failed"
	// TypeMetricsUnavailable is recorded when the metrics endpoint cannot
	// listen; the agent keeps watching and retries.
	TypeMetricsUnavailable = "metrics_unavailable"
	// TypeLocalAPIUnavailable is recorded when the local API's socket
	// (agent.local_socket; on Windows the named pipe) cannot be served
	// at start: mamori status and the notifiers cannot connect, and
	// warnings reach desktops only through notifiers the agent starts.
	// The agent retries every 30 s; serving again is logged.
	TypeLocalAPIUnavailable = "local_api_unavailable"
	// TypeClockChanged is recorded when the PC's wall clock was set or
	// jumped: Count is the jump in whole seconds (negative: turned back).
	TypeClockChanged = "clock_changed"
	// TypePolicyChanged is recorded when the hub's approved lists (a
	// version of them, merged with the config file's) are put in force:
	// pulled from the hub, or at start from the copy kept on disk. It
	// carries the version (Policy) and the lists now in force (Agent).
	// A version refused (it does not parse, its digest is wrong) is
	// recorded as config_reload_failed with trigger "policy".
	TypePolicyChanged = "policy_changed"
	// TypeAgentOpenState follows agent_started when the appearances it
	// carries over do not fit one record (thousands of LAN devices in
	// their windows): each holds a part of them in Open.
	TypeAgentOpenState = "agent_open_state"

	// Network link events (source "network"). A link is a network
	// interface of the agent's network namespace (rtnetlink RTM_NEWLINK,
	// RTM_DELLINK).
	TypeLinkAdded   = "link_added"
	TypeLinkRemoved = "link_removed"
	// TypeLinkRenamed is recorded when a link gets another name (the same
	// ifindex): the same appearance, under its new name (Instance).
	TypeLinkRenamed = "link_renamed"
	// TypeLinkUp and TypeLinkDown follow whether the link counts as
	// connected: administratively up and carrier present or operstate
	// unknown (Link.Connected).
	TypeLinkUp   = "link_up"
	TypeLinkDown = "link_down"
	// TypeAddressAdded and TypeAddressRemoved follow the addresses on a
	// link (RTM_NEWADDR, RTM_DELADDR); a change of lifetimes only is not
	// an event.
	TypeAddressAdded   = "address_added"
	TypeAddressRemoved = "address_removed"
	// TypeRouteChanged is recorded when the set of default routes (IPv4
	// and IPv6, every nexthop) changes, or a gateway's MAC does.
	TypeRouteChanged = "route_changed"
	// TypeSSIDChanged is recorded when a Wi-Fi link joins, leaves or
	// changes its network (nl80211).
	TypeSSIDChanged = "ssid_changed"
	// TypeViolationCleared is recorded when the condition of a network
	// violation ends (the unapproved address is gone, the second network
	// left): its next appearance is recorded again. It carries the
	// violation it clears.
	TypeViolationCleared = "violation_cleared"
)

// Sources: the "source" field of an event.
const (
	SourceAgent   = "agent"
	SourceUSB     = "usb"
	SourceMedia   = "media"
	SourceNetwork = "network"
	// SourceLAN is the neighbour table: devices on the local segment.
	SourceLAN = "lan"
)

// Event is one thing the agent observed or decided: one line of the audit
// log, one item the hub receives.
type Event struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Source string    `json:"source"` // SourceAgent, SourceUSB, ...
	// Trigger says what made the agent look: "start", "uevent", "rescan",
	// "mount", "signal", "reload", "netlink", "recovered", "policy" (the
	// hub's approved lists changed), "clock" (the PC's clock was set, or
	// the hub's time became known).
	Trigger string `json:"trigger,omitempty"`
	AssetID string `json:"asset_id,omitempty"`

	// What a USB event is about, flattened so that every record names it.
	Path      string  `json:"path,omitempty"`
	VendorID  string  `json:"vendor_id,omitempty"`
	ProductID string  `json:"product_id,omitempty"`
	Serial    *string `json:"serial,omitempty"`

	// UeventTime is when the agent received the kernel uevent that led to
	// this event (nil when none did), for latency measurement.
	UeventTime *time.Time `json:"uevent_time,omitempty"`
	// UeventSeqnum is the kernel's SEQNUM of that uevent.
	UeventSeqnum uint64 `json:"uevent_seqnum,omitempty"`

	Device *USBDevice `json:"device,omitempty"`
	// Decision is the policy's verdict on Device and its grounds, on
	// device_added.
	Decision *DecisionRecord `json:"decision,omitempty"`
	Volume   *Volume         `json:"volume,omitempty"`
	Medium   *MediumRecord   `json:"medium,omitempty"`

	// Network subjects (schema 2).
	Link      *Link      `json:"link,omitempty"`
	Address   *Address   `json:"address,omitempty"`
	Routes    []Gateway  `json:"routes,omitempty"`
	Neighbour *Neighbour `json:"neighbour,omitempty"`

	// Subject is the identity, within Source, of what a network or LAN
	// record is about: "link:3", "addr:3:10.20.1.5/16", or a violation's
	// condition ("network_unapproved|if=3|172.16.0.5/24"). The records of
	// one appearance share it (schema 2).
	Subject string `json:"subject,omitempty"`
	// Instance tells one appearance of Subject from the next where the
	// identity alone does not (the SSID of "ssid:3", the set of default
	// routes of "routes"), or carries what the record of its end must
	// name when the agent was not running to see it go (the interface
	// name of "link:3"; a rename is the same link).
	Instance string `json:"instance,omitempty"`
	// Until is when the appearance a windowed violation opened ends
	// (lan_device_unregistered: once per lan_report_window).
	Until *time.Time `json:"until,omitempty"`

	Violation *Violation `json:"violation,omitempty"`
	Message   string     `json:"message,omitempty"`

	// Agent facts, on agent_started and config_reloaded.
	Agent *AgentRecord `json:"agent,omitempty"`
	// Policy is the hub's approved lists put in force, on
	// policy_changed.
	Policy *PolicyRecord `json:"policy,omitempty"`
	// Open is a part of the appearances carried over, on
	// agent_open_state.
	Open *OpenState `json:"open,omitempty"`
	// Count is how many events an audit_gap lost.
	Count int `json:"count,omitempty"`
	// Warning is the warning shown (or not) on warning_shown and
	// warning_not_shown (schema 2).
	Warning *WarningRecord `json:"warning,omitempty"`
}

// Record is one line of the audit log as it is hash-chained: the event
// with the violation kind lifted to the top, so that every record names
// what it is about. The audit package adds seq, prev_hash and hash.
type Record struct {
	*Event
	Kind string `json:"kind,omitempty"`
}

// NewRecord wraps ev for the audit log.
func NewRecord(ev *Event) Record {
	r := Record{Event: ev}
	if ev.Violation != nil {
		r.Kind = ev.Violation.Kind
	}
	return r
}

// DecisionRecord is the grounds of a verdict on a USB device.
type DecisionRecord struct {
	// Status is "approved", "expired", "not_yet_valid", "unapproved" or
	// "root_hub".
	Status string `json:"status"`
	// Entry is the name of the approved-list entry that matched, "" when
	// none did; EntryLine is its line in the config file or ledger.
	Entry     string `json:"entry,omitempty"`
	EntryLine int    `json:"entry_line,omitempty"`
	// RequireEncryption repeats the entry's condition.
	RequireEncryption bool `json:"require_encryption,omitempty"`
}

// AgentRecord is what agent_started (and config_reloaded) records about
// the agent and the policy in force.
type AgentRecord struct {
	Version string `json:"version,omitempty"`
	// Schema is SchemaVersion of the writer; absent (0) in records of the
	// USB-core release, which wrote schema 1.
	Schema int `json:"schema,omitempty"`
	PID    int `json:"pid,omitempty"`
	// BootID is the kernel's boot id (/proc/sys/kernel/random/boot_id).
	BootID string `json:"boot_id,omitempty"`
	// ConfigFiles are the config file and ledgers read; ConfigDigest is
	// the lower-case hex SHA-256 over their bytes in that order.
	ConfigFiles  []string `json:"config_files,omitempty"`
	ConfigDigest string   `json:"config_digest,omitempty"`
	Entries      int      `json:"approved_usb_entries"`
	// Networks and LANDevices count the approved networks and registered
	// LAN devices (schema 2).
	Networks   int `json:"approved_networks,omitempty"`
	LANDevices int `json:"registered_lan_devices,omitempty"`
	// Open is what the agent carried over from its previous run in this
	// boot (rebuilt from the log): the appearances still open.
	Open *OpenState `json:"open,omitempty"`
}

// PolicyRecord is what policy_changed records about the hub's approved
// lists put in force.
type PolicyRecord struct {
	// Version is the hub's version of the lists (PolicyBundle.Version);
	// Previous the version in force before (0: none).
	Version  int64 `json:"version"`
	Previous int64 `json:"previous_version,omitempty"`
	// Digest is the lower-case hex SHA-256 of the lists' YAML as the hub
	// served it (PolicyBundle.Digest).
	Digest string `json:"digest"`
	// Changed and ChangedBy are when and by whom the version was set at
	// the hub.
	Changed   time.Time `json:"changed,omitzero"`
	ChangedBy string    `json:"changed_by,omitempty"`
	// USBEntries, Networks and LANDevices count the hub's lists; the
	// merged lists in force are counted in the event's Agent.
	USBEntries int `json:"usb_entries"`
	Networks   int `json:"networks"`
	LANDevices int `json:"lan_devices"`
	// Replaced names the local entries that an entry of the hub's with
	// the same name (a LAN device: or MAC) replaced: "usb:Camera",
	// "networks:Office", "lan_devices:Printer".
	Replaced []string `json:"replaced,omitempty"`
	// FromDisk is set when the version came from the copy kept in the
	// state directory (at start, the hub not asked yet or not reachable).
	FromDisk bool `json:"from_disk,omitempty"`
}

// OpenState is the set of appearances open at a point of the log.
type OpenState struct {
	Devices []OpenDevice `json:"devices"`
	Volumes []OpenVolume `json:"volumes"`
	// Subjects are the open appearances of the other sources (schema 2):
	// network links, addresses, LAN neighbours.
	Subjects []OpenSubject `json:"subjects,omitempty"`
}

// OpenDevice is one open USB device appearance.
type OpenDevice struct {
	Path      string  `json:"path"`
	BusNum    int     `json:"busnum"`
	DevNum    int     `json:"devnum"`
	VendorID  string  `json:"vendor_id"`
	ProductID string  `json:"product_id"`
	Serial    *string `json:"serial,omitempty"`
	// Recorded are the violations recorded in this appearance: a kind, or
	// "media_unencrypted:" and the medium's key.
	Recorded []string `json:"recorded,omitempty"`
}

// OpenVolume is one mounted volume the agent has recorded.
type OpenVolume struct {
	Device     string `json:"device"`
	MountPoint string `json:"mount_point"`
	USBDevice  string `json:"usb_device"`
}

// OpenSubject is one open appearance of a subject other than a USB device
// or a volume: its source and identity (Subject), what identifies this
// appearance of it (Instance: an interface index, an address), and the
// violation keys recorded in it.
type OpenSubject struct {
	Source   string   `json:"source"`
	ID       string   `json:"id"`
	Instance string   `json:"instance,omitempty"`
	Recorded []string `json:"recorded,omitempty"`
	// Until is when a time-windowed appearance ends (a LAN device is
	// reported once per lan_report_window); nil when it has no end.
	Until *time.Time `json:"until,omitempty"`
}

// MediumRecord is one medium (a stick's disk, a card in a reader slot, a
// LUN) judged against require_encryption: what was seen on it.
type MediumRecord struct {
	Disk string `json:"disk"` // kernel block name, "sdc"
	// Key identifies this medium appearance: the disk, its diskseq or size,
	// and the signatures seen.
	Key   string       `json:"key"`
	Size  int64        `json:"size"` // bytes
	Units []MediumUnit `json:"units"`
	Seen  string       `json:"seen"` // the units in words
	// Encrypted is the verdict: every unit is a recognised encryption
	// container that is not mounted around.
	Encrypted bool `json:"encrypted"`
}

// MediumUnit is one data-bearing part of a medium: a partition, or the
// whole disk when it has none.
type MediumUnit struct {
	Name            string `json:"name"` // "sdc1"
	Size            int64  `json:"size"` // bytes
	FSType          string `json:"fs_type,omitempty"`
	Encryption      string `json:"encryption,omitempty"`
	ClearKey        bool   `json:"clear_key,omitempty"`
	MountedDirectly bool   `json:"mounted_directly,omitempty"`
	Encrypted       bool   `json:"encrypted"`
	Error           string `json:"error,omitempty"`
}

// Violation is a policy finding: a device, medium, network or LAN device
// that breaks a rule of the contract.
type Violation struct {
	Kind string `json:"kind"`
	// Device names the subject: a USB bus path, an interface name, or a
	// neighbour's MAC for lan_device_unregistered.
	Device   string `json:"device"`
	Severity string `json:"severity"`
	Article  string `json:"article"`
	// Entry is the name of the approved-list entry involved, "" when none.
	Entry     string `json:"entry,omitempty"`
	Message   string `json:"message"` // in the configured language
	MessageJA string `json:"message_ja"`
	MessageEN string `json:"message_en"`
	// Remedy tells the person at the PC what to do, per language, naming
	// the contact (agent.contact).
	RemedyJA string `json:"remedy_ja,omitempty"`
	RemedyEN string `json:"remedy_en,omitempty"`

	// Network violations (schema 2). Interfaces are every interface
	// involved (multi-homed, zone bridge), sorted; Interface and IP are
	// where a LAN device was seen; Networks the approved networks involved.
	Interfaces          []string `json:"interfaces,omitempty"`
	Interface           string   `json:"interface,omitempty"`
	IP                  string   `json:"ip,omitempty"`
	Networks            []string `json:"networks,omitempty"`
	LocallyAdministered bool     `json:"locally_administered,omitempty"`
}
