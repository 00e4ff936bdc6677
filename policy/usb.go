package policy

import (
	"time"

	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/wire"
)

// USBPolicy is approved.usb of one config with the agent's rules on top:
// root hubs are never violations, and the kind of a violation depends on
// whether the device is storage.
type USBPolicy struct {
	list  *config.Policy
	texts Texts
}

// NewTexts returns the texts for cfg: its language and its contact.
func NewTexts(cfg *config.Config) Texts {
	return Texts{Language: cfg.Agent.Language, Contact: cfg.Agent.Contact}
}

// NewUSBPolicy builds the USB policy of cfg.
func NewUSBPolicy(cfg *config.Config) *USBPolicy {
	return &USBPolicy{list: config.NewPolicy(cfg.Approved.USB), texts: NewTexts(cfg)}
}

// Entries returns the number of approved USB entries.
func (p *USBPolicy) Entries() int { return p.list.Len() }

// USBDecision is the verdict on one USB device.
type USBDecision struct {
	Approved bool
	// Entry is the approved-list entry that matched, nil when none did.
	Entry *config.USBEntry
	// Violation is set when the device breaks a rule: not approved, or
	// approved outside its dates.
	Violation *wire.Violation
}

// Decide judges USB device d at time now (the entry's dates are local
// days).
func (p *USBPolicy) Decide(d *usb.Device, now time.Time) USBDecision {
	if d.IsRootHub() {
		return USBDecision{Approved: true}
	}
	dec := p.list.Decide(d, now)
	switch dec.Status {
	case config.Approved:
		return USBDecision{Approved: true, Entry: dec.Entry}
	case config.Expired:
		return USBDecision{Entry: dec.Entry, Violation: p.violation(d, wire.KindUSBApprovalExpired, dec.Entry, nil)}
	case config.NotYetValid:
		return USBDecision{Entry: dec.Entry, Violation: p.violation(d, wire.KindUSBApprovalNotYet, dec.Entry, nil)}
	}
	kind := wire.KindUSBDeviceUnapproved
	if d.IsStorage() {
		kind = wire.KindUSBStorageUnapproved
	}
	return USBDecision{Violation: p.violation(d, kind, nil, nil)}
}

// Unencrypted returns the media_unencrypted violation for medium m of
// storage device d, approved by entry e on condition of encryption.
func (p *USBPolicy) Unencrypted(d *usb.Device, e *config.USBEntry, m *wire.MediumRecord) *wire.Violation {
	return p.violation(d, wire.KindMediaUnencrypted, e, m)
}

// Record returns the grounds of dec for the audit log.
func (dec USBDecision) Record(d *usb.Device) *wire.DecisionRecord {
	r := &wire.DecisionRecord{Status: "unapproved"}
	switch {
	case d.IsRootHub():
		r.Status = "root_hub"
	case dec.Approved:
		r.Status = "approved"
	case dec.Violation != nil && dec.Violation.Kind == wire.KindUSBApprovalExpired:
		r.Status = "expired"
	case dec.Violation != nil && dec.Violation.Kind == wire.KindUSBApprovalNotYet:
		r.Status = "not_yet_valid"
	}
	if e := dec.Entry; e != nil {
		r.Entry, r.EntryLine, r.RequireEncryption = e.Name, e.Line, e.RequiresEncryption()
	}
	return r
}

// RequiresEncryption reports whether dec approves storage device d only
// with encrypted media.
func (dec USBDecision) RequiresEncryption(d *usb.Device) bool {
	return dec.Approved && dec.Entry != nil && dec.Entry.RequiresEncryption() && d.IsStorage()
}

// ApprovalKinds are the violations about a device's approval: a device
// gets one of them per appearance (see RecordAgain).
var ApprovalKinds = []string{wire.KindUSBStorageUnapproved, wire.KindUSBDeviceUnapproved, wire.KindUSBApprovalExpired, wire.KindUSBApprovalNotYet}

func (p *USBPolicy) violation(d *usb.Device, kind string, e *config.USBEntry, m *wire.MediumRecord) *wire.Violation {
	vals := map[string]string{"device": Describe(d), "port": d.Path}
	if e != nil {
		vals["entry"] = e.Name
		from, until := e.Dates()
		switch {
		case kind == wire.KindUSBApprovalExpired && until != nil:
			vals["date"] = until.String()
		case kind == wire.KindUSBApprovalNotYet && from != nil:
			vals["date"] = from.String()
		}
	}
	if kind == wire.KindMediaUnencrypted {
		vals["disk"], vals["seen"] = "", "no medium read"
		if m != nil {
			vals["disk"], vals["seen"] = m.Disk, m.Seen
		}
	}
	v := p.texts.Violation(kind, d.Path, vals)
	if e != nil {
		v.Entry = e.Name
	}
	if (kind == wire.KindUSBApprovalExpired || kind == wire.KindUSBApprovalNotYet) && d.IsStorage() {
		// An approval out of its dates on storage breaks the media rule.
		v.Severity, v.Article = wire.SeverityHigh, "6, 7"
	}
	return v
}

// Describe names a device for people: "SanDisk Cruzer (0781:5567, serial
// 4C53...)"; a device without ids (USB storage whose device could not be
// determined) by its product text alone. Its parts are already sanitised
// by the collector.
func Describe(d *usb.Device) string {
	name := d.Product
	if name == "" {
		name = d.ProductName
	}
	maker := d.Manufacturer
	if maker == "" {
		maker = d.VendorName
	}
	if maker != "" && name != "" {
		name = maker + " " + name
	} else if maker != "" {
		name = maker
	}
	var ids string
	if d.VendorID != "" || d.ProductID != "" {
		ids = d.VendorID + ":" + d.ProductID
	}
	if d.Serial != nil && *d.Serial != "" {
		if ids != "" {
			ids += ", "
		}
		ids += "serial " + *d.Serial
	}
	switch {
	case ids == "" && name == "":
		return "(" + d.Path + ")"
	case ids == "":
		return name // a device whose ids are unknown (usb.UnknownPathPrefix)
	case name == "":
		return "(" + ids + ")"
	}
	return name + " (" + ids + ")"
}
