// Package config loads and validates mamori's one config file, including
// the approved lists, and answers "is this USB device approved, and by
// which entry" (Policy).
//
// The file is YAML and read strictly: "version: 1" is required, unknown
// and duplicate keys are rejected, anchors and aliases are refused, and
// every problem is reported as an *Error naming file, line and column.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Version is the only config file version this package reads.
const Version = 1

// MaxFileSize is the largest config file Load reads, in bytes: room for
// about 250,000 approved entries written out in full.
const MaxFileSize = 64 << 20

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

// Config is one validated config file.
type Config struct {
	Version  int           // always 1
	Agent    Agent         // agent:
	Metrics  Metrics       // metrics:
	USB      USB           // usb:
	Approved ApprovedLists // approved:
	// File is the path the config was read from ("" for Default).
	File string
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
	// RescanInterval is how often the agent rescans in full, always
	// positive (agent.rescan_interval, default 60s).
	RescanInterval time.Duration
}

// Metrics is the metrics: section.
type Metrics struct {
	// Listen is the host:port of the Prometheus endpoint; "" turns the
	// endpoint off. Default "127.0.0.1:9868" when the key is absent.
	Listen string
}

// USB is the usb: section.
type USB struct {
	// Backend is how USB devices are read: "sysfs" (default) or "libusb".
	Backend string
}

// ApprovedLists is the approved: section, the approved lists. (It is not
// called Approved: that name is the Status.)
type ApprovedLists struct {
	USB []USBEntry // approved.usb
}

// USBEntry is one entry of approved.usb. An entry matches a device when
// every matching field it sets matches: VendorID, ProductID, Serial, Port
// and Classes. Every entry sets at least one of them.
type USBEntry struct {
	// Name names the entry in violations and logs; required and unique.
	Name string
	// VendorID and ProductID are 4 lower-case hex digits, "" when not
	// set. ProductID is set only together with VendorID.
	VendorID  string
	ProductID string
	// Serial is the exact serial number; nil when not set (never empty).
	Serial *string
	// Port is the device's bus path ("1-2", "3-1.4"), "" when not set.
	Port string
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
	// Line is where the entry starts in the file (0 when not from a file).
	Line int
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
		},
		Metrics: Metrics{Listen: DefaultMetricsListen},
		USB:     USB{Backend: DefaultUSBBackend},
	}
}

// Load reads and validates the config file at path. A missing file gives
// an error that wraps fs.ErrNotExist; an invalid one an ErrorList.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}}
	}
	return Parse(path, data)
}

// Parse validates data, the contents of the config file named file (used
// only in errors and Config.File). Every problem found is returned, in
// file order, as an ErrorList of *Error.
func Parse(file string, data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, ErrorList{{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}}
	}
	p := &parser{file: file}
	cfg := p.parse(data)
	if len(p.errs) > 0 {
		p.sortErrors()
		return nil, p.errs
	}
	cfg.File = file
	return cfg, nil
}

// IsInvalid reports whether err says a config file is invalid (as opposed
// to unreadable).
func IsInvalid(err error) bool {
	var l ErrorList
	return errors.As(err, &l)
}
