// Package config loads and validates mamori's one config file, including
// the approved lists, and answers "is this USB device approved, and by
// which entry" (Policy), "is this MAC a registered LAN device" (LANIndex)
// and "is this address on an approved network" (NetworkEntry.MatchesAddr).
//
// The file is YAML and read strictly: "version: 1" is required, unknown
// and duplicate keys are rejected, anchors and aliases are refused, and
// every problem is reported as an *Error naming file, line and column.
//
// The approved USB list may also be kept in CSV ledgers (台帳) that Excel
// saves (approved.usb_ledger, see ReadLedger). Every file read, the config
// file and the ledgers alike, must be a regular file no larger than its
// cap (MaxFileSize, MaxLedgerSize): named pipes, devices and directories
// are refused before anything is read.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Version is the only config file version this package reads.
const Version = 1

// MaxFileSize is the largest config file Load reads, in bytes (64 MiB):
// room for about 250,000 approved entries written out in full.
const MaxFileSize = 64 << 20

// MaxLedgerSize is the largest ledger file read, in bytes (64 MiB): room
// for about 500,000 rows.
const MaxLedgerSize = 64 << 20

// MaxLedgers is how many ledger files approved.usb_ledger may name.
const MaxLedgers = 16

// MaxApprovedUSB is the most approved USB entries a config holds, the
// YAML list and the ledgers together (1,000,000).
const MaxApprovedUSB = 1_000_000

// Bounds of agent.rescan_interval, inclusive: a shorter interval keeps a
// core busy rescanning, a longer one all but turns off the rescan that
// catches what the kernel's events missed.
const (
	MinRescanInterval = time.Second
	MaxRescanInterval = time.Hour
)

// Defaults for keys the file leaves out.
const (
	DefaultLanguage       = "ja"
	DefaultRescanInterval = 60 * time.Second
	DefaultMetricsListen  = "127.0.0.1:9868"
	DefaultUSBBackend     = BackendSysfs
)

// Languages the agent speaks (agent.language).
const (
	LanguageJA = "ja"
	LanguageEN = "en"
)

// USB backends (usb.backend).
const (
	BackendSysfs  = "sysfs"
	BackendLibusb = "libusb"
)

// Config is one validated config file, with the ledgers it names.
type Config struct {
	Version  int           // always 1
	Agent    Agent         // agent:
	Metrics  Metrics       // metrics:
	USB      USB           // usb:
	Network  Network       // network:
	Report   Report        // report:
	Approved ApprovedLists // approved:
	// File is the path the config was read from ("" for Default).
	File string
	// Files are the files read, in the order read: File, then each
	// ledger of approved.usb_ledger (nil for Default).
	Files []string
	// Digest is the SHA-256 of the bytes of File followed by the bytes of
	// each ledger, in the order of Files, as 64 lower-case hex digits, so
	// that a policy changed between two runs shows ("" for Default).
	Digest string
}

// Agent is the agent: section.
type Agent struct {
	// AssetID is this PC's management number (管理番号), agent.asset_id;
	// "" when the file does not set one.
	AssetID string
	// StateDir is where the agent keeps its state, an absolute path
	// (agent.state_dir, default DefaultStateDir).
	StateDir string
	// Language is "ja" or "en" (agent.language, default "ja").
	Language string
	// RescanInterval is how often the agent rescans in full
	// (agent.rescan_interval, default 60s), from MinRescanInterval (1s)
	// to MaxRescanInterval (1h) inclusive.
	RescanInterval time.Duration
	// Contact is who the person at the PC asks for permission, named in
	// every remedy (agent.contact, default DefaultContact): a division,
	// a phone extension, an address.
	Contact string
	// LocalSocket is the path of the agent's local API socket, where
	// `mamori status` and the desktop notifier (`mamori notify`) connect
	// (agent.local_socket, default DefaultLocalSocket); "" turns the
	// local API off. An absolute path of at most MaxLocalSocketLen bytes.
	LocalSocket string
	// LocalGroup is the group whose members may read the local API (the
	// warnings and the status; never control the agent) besides root
	// (agent.local_group, default DefaultLocalGroup); "" lets root
	// only. A group name or a numeric gid; whether it exists is checked
	// when the agent starts.
	LocalGroup string
}

// Metrics is the metrics: section.
type Metrics struct {
	// Listen is the host:port of the Prometheus endpoint; "" turns the
	// endpoint off. Default "127.0.0.1:9868" when the key is absent.
	Listen string
	// WebConfigFile is the path of a Prometheus exporter-toolkit web
	// config (TLS, basic auth) for the endpoint, metrics.web_config_file;
	// a relative path in the file is taken relative to the config file's
	// directory and given here joined to it. "" when not set. Only its
	// form is checked here: the agent reads it.
	WebConfigFile string
}

// USB is the usb: section.
type USB struct {
	// Backend is how USB devices are read: "sysfs" (default) or "libusb".
	Backend string
}

// ApprovedLists is the approved: section, the approved lists. (It is not
// called Approved: that name is the Status.)
type ApprovedLists struct {
	// USB is approved.usb followed by the rows of each ledger, in the
	// order of USBLedgers. Names are unique across all of them, and no
	// two entries have the same matching fields.
	USB []USBEntry
	// USBLedgers are the CSV ledgers of approved.usb_ledger, relative
	// paths joined to the config file's directory; nil when not set.
	USBLedgers []string
	// USBLedgerEncoding is approved.usb_ledger_encoding: LedgerAuto
	// (default), LedgerUTF8 or LedgerCP932.
	USBLedgerEncoding string
	// Networks is approved.networks; names are unique.
	Networks []NetworkEntry
	// LANDevices is approved.lan_devices; names and MACs are unique.
	LANDevices []LANDevice
}

// USBEntry is one entry of approved.usb. An entry matches a device when
// every matching field it sets matches: VendorID, ProductID, Serial, Port
// and Terms.Classes. Every entry sets at least one of them.
//
// The fields that most entries of a long list share (classes, owner,
// approver, dates, encryption) are in Terms, which entries with equal
// values share, so that an entry is 104 bytes on 64-bit systems.
type USBEntry struct {
	// Name names the entry in violations and logs; required and unique.
	Name string
	// VendorID and ProductID are 4 lower-case hex digits, "" when not
	// set. ProductID is set only together with VendorID.
	VendorID  string
	ProductID string
	// Serial is the exact serial number; nil when not set (never empty).
	// Entries of one Config may share the pointed-to strings.
	Serial *string
	// Port is the device's bus path ("1-2", "3-1.4"), "" when not set.
	Port string
	// File is the file the entry was read from: Config.File or one of
	// ApprovedLists.USBLedgers ("" when not from a file).
	File string
	// Line is where the entry starts in File: its line in the config
	// file, or its row's line in a ledger (0 when not from a file).
	Line int
	// Terms are the entry's other fields; nil when it sets none of them
	// (the same as a pointer to a zero EntryTerms). Entries of one
	// Config share equal Terms: do not change them.
	Terms *EntryTerms
}

// EntryTerms are the fields of an approved USB entry that many entries
// share.
type EntryTerms struct {
	// Classes are short USB class names (usb.ClassNameList, or
	// "class-XX" for codes without a name), nil when not set. The entry
	// matches only if every interface of the device is in one of them.
	Classes []string
	// Owner is who is responsible for the device; ApprovedBy who approved
	// it. Informational.
	Owner      string
	ApprovedBy string
	// ValidFrom and ValidUntil bound the approval, inclusive days in the
	// PC's local time zone; nil when open.
	ValidFrom  *Date
	ValidUntil *Date
	// RequireEncryption requires storage under this entry to be encrypted.
	RequireEncryption bool
}

// noTerms is the EntryTerms of an entry whose Terms is nil.
var noTerms EntryTerms

// terms returns e.Terms, or a zero EntryTerms when it is nil.
func (e *USBEntry) terms() *EntryTerms {
	if e.Terms == nil {
		return &noTerms
	}
	return e.Terms
}

// RequiresEncryption reports whether the entry requires storage under it
// to be encrypted (Terms.RequireEncryption; false when Terms is nil).
func (e *USBEntry) RequiresEncryption() bool { return e.terms().RequireEncryption }

// Dates returns the bounds of the approval (Terms.ValidFrom and
// Terms.ValidUntil), nil when open or when Terms is nil.
func (e *USBEntry) Dates() (from, until *Date) {
	t := e.terms()
	return t.ValidFrom, t.ValidUntil
}

// Default returns the config used for every key a file leaves out, with
// no approved entries.
func Default() *Config {
	return &Config{
		Version: Version,
		Agent: Agent{
			StateDir:       DefaultStateDir,
			Language:       DefaultLanguage,
			RescanInterval: DefaultRescanInterval,
			Contact:        DefaultContact,
			LocalSocket:    DefaultLocalSocket,
			LocalGroup:     DefaultLocalGroup,
		},
		Network: Network{WatchLAN: true, LANReportWindow: DefaultLANReportWindow},
		Metrics: Metrics{Listen: DefaultMetricsListen},
		USB:     USB{Backend: DefaultUSBBackend},
		Report:  Report{HeartbeatInterval: DefaultHeartbeatInterval, BatchSize: DefaultBatchSize, QueueLimit: DefaultQueueLimit},
	}
}

// Load reads and validates the config file at path and the ledgers it
// names. A missing file gives an error that wraps fs.ErrNotExist; a file
// that is not a regular file (a directory, a named pipe, a device) or is
// larger than MaxFileSize (a ledger: MaxLedgerSize) gives an error naming
// it, without reading it; an invalid file an ErrorList.
func Load(path string) (*Config, error) {
	data, err := readFile(path, "config", MaxFileSize)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse validates data, the contents of the config file named file, and
// reads the ledgers it names (relative to file's directory). Every problem
// found is returned, in file order, as an ErrorList of *Error: those of
// the config file first, then those of each ledger.
func Parse(file string, data []byte) (*Config, error) {
	return parseWith(file, data, openLedger)
}

// parseWith is Parse with the way ledgers are opened injected.
func parseWith(file string, data []byte, open ledgerOpener) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, ErrorList{{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}}
	}
	st := newLoadState(open)
	h := sha256.New()
	h.Write(data)
	cfg, errs := st.parseConfig(file, data)
	if len(errs) > 0 {
		return nil, errs
	}
	cfg.File = file
	cfg.Files = []string{file}
	if errs := st.readLedgers(cfg, h); len(errs) > 0 {
		return nil, errs
	}
	cfg.Digest = hex.EncodeToString(h.Sum(nil))
	return cfg, nil
}

// IsInvalid reports whether err says a config file is invalid (as opposed
// to unreadable).
func IsInvalid(err error) bool {
	var l ErrorList
	return errors.As(err, &l)
}
