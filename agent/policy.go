package agent

import (
	"fmt"
	"time"

	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
)

// Violation kinds. They are the contract with the central side and the
// `kind` label of mamori_violations_total.
const (
	KindStorageUnapproved = "usb_storage_unapproved"
	KindDeviceUnapproved  = "usb_device_unapproved"
	KindApprovalExpired   = "usb_approval_expired"
	KindApprovalNotYet    = "usb_approval_not_yet_valid"
	KindMediaUnencrypted  = "media_unencrypted"
	severityHigh          = "high"
	severityMedium        = "medium"
	articleStorage        = "6, 7"
	articleDevice         = "11"
	articleEncryption     = "6-3"
	remedyAskPermissionEN = "Unplug it now. Before using it, get the city's prior permission (contact the information policy division) and have it added to the approved list."
	remedyAskPermissionJA = "直ちに取り外してください。使用する場合は、事前に甲（情報政策課）の許可を得て、承認リストに登録してもらってください。"
	remedyRenewEN         = "Unplug it now and ask the city to renew the approval before using it again."
	remedyRenewJA         = "直ちに取り外し、再度使用する前に甲に承認の更新を依頼してください。"
	remedyNotYetEN        = "Unplug it: the approval is not in force yet. Use it only from the approved start date."
	remedyNotYetJA        = "直ちに取り外してください。承認の有効期間はまだ始まっていません。承認された開始日から使用してください。"
	remedyEncryptEN       = "Unplug it and copy information assets only to an encrypted medium (LUKS or BitLocker To Go), as the approval requires."
	remedyEncryptJA       = "直ちに取り外し、承認の条件どおり暗号化された媒体（LUKS または BitLocker To Go）のみを使用してください。"
	messageStorageEN      = "Unapproved USB storage %s connected at port %s. Bringing media in or out needs the city's prior permission (articles 6 and 7)."
	messageStorageJA      = "許可されていない USB 記憶媒体 %s がポート %s に接続されました。電磁的記録媒体の持ち込み・持ち出しには甲の事前の許可が必要です（第6条・第7条）。"
	messageDeviceEN       = "Unapproved USB device %s connected at port %s. Bringing in peripherals needs the city's prior permission (article 11)."
	messageDeviceJA       = "許可されていない USB 機器 %s がポート %s に接続されました。周辺機器の持ち込みには甲の事前の許可が必要です（第11条）。"
	messageExpiredEN      = "The approval \"%s\" for USB device %s at port %s ended on %s. An expired approval is no permission (articles 7 and 11)."
	messageExpiredJA      = "USB 機器 %[2]s（ポート %[3]s）の承認「%[1]s」は %[4]s に期限が切れています。期限切れの承認では使用できません（第7条・第11条）。"
	messageNotYetEN       = "The approval \"%s\" for USB device %s at port %s starts on %s, not before (articles 7 and 11)."
	messageNotYetJA       = "USB 機器 %[2]s（ポート %[3]s）の承認「%[1]s」は %[4]s からです。それまでは使用できません（第7条・第11条）。"
	messageUnencryptedEN  = "USB storage %s at port %s is approved only encrypted (\"%s\"), but its medium %s is not shown to be encrypted: %s (article 6-3)."
	messageUnencryptedJA  = "USB 記憶媒体 %[1]s（ポート %[2]s）は暗号化を条件に承認されていますが（「%[3]s」）、媒体 %[4]s が暗号化されていることを確認できません: %[5]s（第6条第3項）。"
)

// Decision is the policy's verdict on one device.
type Decision struct {
	Approved bool
	// Entry is the approved-list entry that matched, nil when none did.
	Entry *config.USBEntry
	// Violation is set when the device breaks a rule (Approved is false,
	// or it is approved but out of its dates).
	Violation *Violation
}

// Policy wraps the approved lists with the agent's rules: root hubs are
// never violations, and the kind of violation depends on the device.
type Policy struct {
	usb      *config.Policy
	language string
}

// NewPolicy builds the policy for cfg.
func NewPolicy(cfg *config.Config) *Policy {
	return &Policy{usb: config.NewPolicy(cfg.Approved.USB), language: cfg.Agent.Language}
}

// Entries returns the number of approved-list entries.
func (p *Policy) Entries() int { return p.usb.Len() }

// Decide judges one USB device at time now.
func (p *Policy) Decide(d *usb.Device, now time.Time) Decision {
	if d.IsRootHub() {
		return Decision{Approved: true}
	}
	dec := p.usb.Decide(d, now)
	switch dec.Status {
	case config.Approved:
		return Decision{Approved: true, Entry: dec.Entry}
	case config.Expired:
		v := p.violation(d, KindApprovalExpired, dec.Entry)
		return Decision{Entry: dec.Entry, Violation: v}
	case config.NotYetValid:
		v := p.violation(d, KindApprovalNotYet, dec.Entry)
		return Decision{Entry: dec.Entry, Violation: v}
	}
	kind := KindDeviceUnapproved
	if d.IsStorage() {
		kind = KindStorageUnapproved
	}
	return Decision{Violation: p.violation(d, kind, nil)}
}

// Unencrypted returns the media_unencrypted violation for medium m of a
// device whose approving entry e requires encryption.
func (p *Policy) Unencrypted(d *usb.Device, e *config.USBEntry, m *MediumRecord) *Violation {
	return p.violationOf(d, KindMediaUnencrypted, e, m)
}

// Record returns the grounds of dec for the audit log.
func (dec Decision) Record(d *usb.Device) *DecisionRecord {
	r := &DecisionRecord{Status: "unapproved"}
	switch {
	case d.IsRootHub():
		r.Status = "root_hub"
	case dec.Approved:
		r.Status = "approved"
	case dec.Violation != nil && dec.Violation.Kind == KindApprovalExpired:
		r.Status = "expired"
	case dec.Violation != nil && dec.Violation.Kind == KindApprovalNotYet:
		r.Status = "not_yet_valid"
	}
	if e := dec.Entry; e != nil {
		r.Entry, r.EntryLine, r.RequireEncryption = e.Name, e.Line, e.RequireEncryption
	}
	return r
}

// requiresEncryption reports whether dec approves storage device d only
// with encrypted media.
func (dec Decision) requiresEncryption(d *usb.Device) bool {
	return dec.Approved && dec.Entry != nil && dec.Entry.RequireEncryption && d.IsStorage()
}

func (p *Policy) violation(d *usb.Device, kind string, e *config.USBEntry) *Violation {
	return p.violationOf(d, kind, e, nil)
}

func (p *Policy) violationOf(d *usb.Device, kind string, e *config.USBEntry, m *MediumRecord) *Violation {
	desc := Describe(d)
	v := &Violation{Kind: kind, Device: d.Path}
	if e != nil {
		v.Entry = e.Name
	}
	storage := d.IsStorage()
	switch kind {
	case KindStorageUnapproved:
		v.Severity, v.Article = severityHigh, articleStorage
		v.MessageEN = fmt.Sprintf(messageStorageEN, desc, d.Path)
		v.MessageJA = fmt.Sprintf(messageStorageJA, desc, d.Path)
		v.RemedyEN, v.RemedyJA = remedyAskPermissionEN, remedyAskPermissionJA
	case KindDeviceUnapproved:
		v.Severity, v.Article = severityMedium, articleDevice
		v.MessageEN = fmt.Sprintf(messageDeviceEN, desc, d.Path)
		v.MessageJA = fmt.Sprintf(messageDeviceJA, desc, d.Path)
		v.RemedyEN, v.RemedyJA = remedyAskPermissionEN, remedyAskPermissionJA
	case KindApprovalExpired, KindApprovalNotYet:
		v.Severity, v.Article = severityMedium, articleDevice
		if storage {
			v.Severity, v.Article = severityHigh, articleStorage
		}
		if kind == KindApprovalExpired {
			until := e.ValidUntil.String()
			v.MessageEN = fmt.Sprintf(messageExpiredEN, e.Name, desc, d.Path, until)
			v.MessageJA = fmt.Sprintf(messageExpiredJA, e.Name, desc, d.Path, until)
			v.RemedyEN, v.RemedyJA = remedyRenewEN, remedyRenewJA
		} else {
			from := e.ValidFrom.String()
			v.MessageEN = fmt.Sprintf(messageNotYetEN, e.Name, desc, d.Path, from)
			v.MessageJA = fmt.Sprintf(messageNotYetJA, e.Name, desc, d.Path, from)
			v.RemedyEN, v.RemedyJA = remedyNotYetEN, remedyNotYetJA
		}
	case KindMediaUnencrypted:
		v.Severity, v.Article = severityHigh, articleEncryption
		disk, seen := "", "no medium read"
		if m != nil {
			disk, seen = m.Disk, m.Seen
		}
		v.MessageEN = fmt.Sprintf(messageUnencryptedEN, desc, d.Path, e.Name, disk, seen)
		v.MessageJA = fmt.Sprintf(messageUnencryptedJA, desc, d.Path, e.Name, disk, seen)
		v.RemedyEN, v.RemedyJA = remedyEncryptEN, remedyEncryptJA
	}
	v.Message = v.MessageJA
	if p.language == "en" {
		v.Message = v.MessageEN
	}
	return v
}

// Describe names a device for people: "SanDisk Cruzer (0781:5567, serial
// 4C53...)". Its parts are already sanitised by the collector.
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
	ids := d.VendorID + ":" + d.ProductID
	if d.Serial != nil && *d.Serial != "" {
		ids += ", serial " + *d.Serial
	}
	if name == "" {
		return "(" + ids + ")"
	}
	return name + " (" + ids + ")"
}
