package agent

import (
	"time"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
)

// Event types, the "type" field of an audit record.
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
	// TypeAuditDamaged is damage to the audit log or the state directory,
	// found when the log is opened or while the agent runs.
	TypeAuditDamaged = "audit_damaged"
	// TypeAuditGap says that events could not be written to the audit log
	// (a full disk, an I/O error) and how many of them were lost when the
	// pending queue overflowed.
	TypeAuditGap = "audit_gap"
	// TypeConfigReloaded is recorded when SIGHUP put a new config in force;
	// TypeConfigReloadFailed when the new one was refused (the old one
	// stays in force).
	TypeConfigReloaded     = "config_reloaded"
	TypeConfigReloadFailed = "config_reload_failed"
	// TypeMetricsUnavailable is recorded when the metrics endpoint cannot
	// listen (the port is taken, the web config is bad); the agent keeps
	// watching and retries.
	TypeMetricsUnavailable = "metrics_unavailable"
)

// Event is one thing the agent observed or decided. Every sink (audit log,
// metrics, local warning, and later the central reporter) consumes the same
// stream of events.
type Event struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Source string    `json:"source"` // "usb", "media", "agent"
	// Trigger says what made the agent look: "start", "uevent", "rescan",
	// "mount", "signal", "reload".
	Trigger string `json:"trigger,omitempty"`
	AssetID string `json:"asset_id,omitempty"`

	// What the event is about, flattened so that every record names it.
	Path      string  `json:"path,omitempty"`
	VendorID  string  `json:"vendor_id,omitempty"`
	ProductID string  `json:"product_id,omitempty"`
	Serial    *string `json:"serial,omitempty"`

	// UeventTime is when the agent received the kernel uevent that led to
	// this event (zero when none did), for latency measurement.
	UeventTime *time.Time `json:"uevent_time,omitempty"`
	// UeventSeqnum is the kernel's SEQNUM of that uevent.
	UeventSeqnum uint64 `json:"uevent_seqnum,omitempty"`

	Device *usb.Device `json:"device,omitempty"`
	// Decision is the policy's verdict on Device and its grounds (the
	// entry that allowed or concerns it), on device_added.
	Decision  *DecisionRecord `json:"decision,omitempty"`
	Volume    *media.Volume   `json:"volume,omitempty"`
	Medium    *MediumRecord   `json:"medium,omitempty"`
	Violation *Violation      `json:"violation,omitempty"`
	Message   string          `json:"message,omitempty"`

	// Agent facts, on agent_started and config_reloaded.
	Agent *AgentRecord `json:"agent,omitempty"`
	// Count is how many events an audit_gap lost.
	Count int `json:"count,omitempty"`
}

// DecisionRecord is the grounds of a verdict on a USB device.
type DecisionRecord struct {
	// Status is "approved", "expired", "not_yet_valid", "unapproved" or
	// "root_hub".
	Status string `json:"status"`
	// Entry is the name of the approved-list entry that matched, "" when
	// none did; EntryLine is its line in the config file or ledger (0 when
	// unknown).
	Entry     string `json:"entry,omitempty"`
	EntryLine int    `json:"entry_line,omitempty"`
	// RequireEncryption repeats the entry's condition.
	RequireEncryption bool `json:"require_encryption,omitempty"`
}

// AgentRecord is what agent_started (and config_reloaded) records about
// the agent and the policy in force, so that a config or approved list
// swapped between two runs is visible in the log.
type AgentRecord struct {
	Version string `json:"version,omitempty"`
	PID     int    `json:"pid,omitempty"`
	// BootID is the kernel's boot id (/proc/sys/kernel/random/boot_id):
	// appearances are carried across restarts of the agent within one
	// boot, never across a reboot.
	BootID string `json:"boot_id,omitempty"`
	// ConfigFiles are the config file and ledgers read; ConfigDigest is
	// the lower-case hex SHA-256 over their bytes in that order.
	ConfigFiles  []string `json:"config_files,omitempty"`
	ConfigDigest string   `json:"config_digest,omitempty"`
	Entries      int      `json:"approved_usb_entries"`
	// Open is what the agent carried over from its previous run in this
	// boot (rebuilt from this log, never from a side file): the
	// appearances still open and what was recorded for them.
	Open *OpenState `json:"open,omitempty"`
}

// OpenState is the set of appearances open at a point of the log.
type OpenState struct {
	Devices []OpenDevice `json:"devices"`
	Volumes []OpenVolume `json:"volumes"`
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

// MediumRecord is one medium (a stick's disk, a card in a reader slot, a
// LUN) judged against require_encryption: what was seen on it.
type MediumRecord struct {
	Disk string `json:"disk"` // kernel block name, "sdc"
	// Key identifies this medium appearance: the disk, its diskseq or size,
	// and the signatures seen. A card swapped or a stick re-formatted in
	// place is a new key.
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
	Name       string `json:"name"` // "sdc1"
	Size       int64  `json:"size"` // bytes
	FSType     string `json:"fs_type,omitempty"`
	Encryption string `json:"encryption,omitempty"`
	ClearKey   bool   `json:"clear_key,omitempty"`
	// MountedDirectly is set when the kernel mounted a file system straight
	// from this unit: its data is readable without a key.
	MountedDirectly bool   `json:"mounted_directly,omitempty"`
	Encrypted       bool   `json:"encrypted"`
	Error           string `json:"error,omitempty"`
}

// Violation is a policy finding: a device or medium that breaks a rule of
// the contract.
type Violation struct {
	Kind     string `json:"kind"`
	Device   string `json:"device"` // bus path
	Severity string `json:"severity"`
	Article  string `json:"article"`
	// Entry is the name of the approved-list entry involved (expired,
	// not yet valid, encryption required), "" when none matched.
	Entry     string `json:"entry,omitempty"`
	Message   string `json:"message"` // in the configured language
	MessageJA string `json:"message_ja"`
	MessageEN string `json:"message_en"`
	// Remedy tells the person at the PC what to do, per language.
	RemedyJA string `json:"remedy_ja,omitempty"`
	RemedyEN string `json:"remedy_en,omitempty"`
}
