package agent

import (
	"time"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
)

// Event types, the "type" field of an audit record.
const (
	TypeAgentStarted    = "agent_started"
	TypeAgentStopped    = "agent_stopped"
	TypeDeviceAdded     = "device_added"
	TypeDeviceRemoved   = "device_removed"
	TypeVolumeMounted   = "volume_mounted"
	TypeVolumeUnmounted = "volume_unmounted"
	TypeViolation       = "violation"
	TypeAuditDamaged    = "audit_damaged"
)

// Event is one thing the agent observed or decided. Every sink (audit log,
// metrics, local warning, and later the central reporter) consumes the same
// stream of events.
type Event struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Source string    `json:"source"` // "usb", "media", "agent"
	// Trigger says what made the agent look: "start", "uevent", "rescan",
	// "mount", "signal".
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

	Device    *usb.Device   `json:"device,omitempty"`
	Volume    *media.Volume `json:"volume,omitempty"`
	Violation *Violation    `json:"violation,omitempty"`
	Message   string        `json:"message,omitempty"`
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
