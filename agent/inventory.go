package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/network"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/policy"
	"github.com/mamori-agent/mamori/wire"
)

// Roots are the file-system roots the collectors read below. Every OS path
// the agent touches is under one of them, so the whole agent runs against a
// fixture tree.
type Roots struct {
	Sysfs  string // default /sys
	Procfs string // default /proc
	Dev    string // default /dev
}

func (r Roots) withDefaults() Roots {
	if r.Sysfs == "" {
		r.Sysfs = "/sys"
	}
	if r.Procfs == "" {
		r.Procfs = "/proc"
	}
	if r.Dev == "" {
		r.Dev = "/dev"
	}
	return r
}

// Inventory is what one pass of the collectors saw.
type Inventory struct {
	Devices []usb.Device
	Volumes []media.Volume
}

// sources bundles the USB and media collectors with their roots. What
// differs per OS (the USB backend, how volumes and the boot id are read,
// what tells of device changes) is chosen once, by newUSBBackend and the
// methods of backend_other.go and backend_windows.go.
type sources struct {
	roots Roots
	// sysfs is the sysfs tree the volumes' block devices are mapped in
	// (Linux), whatever the USB backend.
	sysfs usb.FS
	usb   usbBackend
	log   *slog.Logger
	// codePage decodes FAT labels when the mount does not say (932 for
	// agent.language ja).
	codePage int
	// stateDir is agent.state_dir: its drive is internal by definition
	// (Windows: media.WindowsOptions.InternalDirs).
	stateDir string
}

func newSources(cfg *config.Config, roots Roots, log *slog.Logger) (*sources, error) {
	roots = roots.withDefaults()
	c := &sources{roots: roots, sysfs: usb.NewFS(roots.Sysfs), log: log, codePage: media.CodePageForLanguage(cfg.Agent.Language),
		stateDir: cfg.Agent.StateDir}
	b, err := newUSBBackend(cfg, roots, log)
	if err != nil {
		return nil, err
	}
	c.usb = b
	return c, nil
}

func (c *sources) close() error { return c.usb.Close() }

// devices enumerates every USB device. Errors about single devices are
// returned beside the devices that could be read.
func (c *sources) devices() ([]usb.Device, error) {
	return c.usb.Devices()
}

// Report is the result of one scan: the stable JSON of `mamori scan`.
type Report struct {
	Time       time.Time      `json:"time"`
	AssetID    string         `json:"asset_id"`
	Devices    []DeviceReport `json:"usb_devices"`
	Volumes    []wire.Volume  `json:"volumes"`
	Violations []Violation    `json:"violations"`
	// Network is what the network source sees now, with the verdicts; nil
	// when the system has no network source (not Linux).
	Network *NetworkReport `json:"network,omitempty"`
	// USBBus is false when the sysfs has no USB bus at all (bus/usb): an
	// empty inventory then means "nothing to see", not "nothing attached".
	USBBus bool `json:"usb_bus"`
	// Errors are the parts that could not be read: the scan is incomplete,
	// and no violation found among the rest does not mean all clear.
	Errors []string `json:"errors,omitempty"`
}

// NetworkReport is the network part of a scan: the links (loopback left
// out), the default routes' gateways and the LAN devices on approved
// networks. MACs are lower-case and colon-separated.
type NetworkReport struct {
	Interfaces []wire.Link      `json:"interfaces"`
	Gateways   []wire.Gateway   `json:"gateways"`
	Neighbors  []wire.Neighbour `json:"neighbors"`
}

// networkReport judges snap against cfg: the report and its findings.
func networkReport(cfg *config.Config, snap *network.Snapshot, now time.Time, usbFor func(string) (bool, string)) (*NetworkReport, []policy.Finding) {
	v := policy.NewNetworkPolicy(cfg).Judge(snap, now, usbFor)
	r := &NetworkReport{Interfaces: []wire.Link{}, Gateways: []wire.Gateway{}, Neighbors: []wire.Neighbour{}}
	for i := range v.Links {
		r.Interfaces = append(r.Interfaces, v.Links[i].Wire())
	}
	for i := range v.Gateways {
		r.Gateways = append(r.Gateways, v.Gateways[i].Wire())
	}
	for i := range v.Neighbours {
		r.Neighbors = append(r.Neighbors, v.Neighbours[i].Wire())
	}
	return r, v.Findings
}

// Incomplete reports whether parts of the system could not be read.
func (r *Report) Incomplete() bool { return len(r.Errors) > 0 }

// DeviceReport is a device with the policy's verdict.
type DeviceReport struct {
	wire.USBDevice
	// Classes are the short class names of the interfaces; Name names the
	// device for people (policy.Describe). Both are for the table.
	Classes  []string `json:"-"`
	Name     string   `json:"-"`
	Storage  bool     `json:"storage"`
	Approved bool     `json:"approved"`
	Entry    *string  `json:"entry"`
}

// ScanOptions configures Scan.
type ScanOptions struct {
	Config *config.Config
	Roots  Roots
	Logger *slog.Logger
	Now    time.Time
	// NoNetwork leaves the network out; NetSysfs is the sysfs root for
	// the links' devices (default /sys).
	NoNetwork bool
	NetSysfs  string
}

// networkSnapshot takes one dump of the network of this namespace.
func networkSnapshot(sysfs string) (network.Snapshot, error) {
	m, err := network.Open(network.Options{Sysfs: sysfs})
	if err != nil {
		return network.Snapshot{}, err
	}
	defer m.Close()
	return m.Snapshot()
}

// Scan runs one inventory and policy pass.
func Scan(opts ScanOptions) (*Report, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := newSources(opts.Config, opts.Roots, log)
	if err != nil {
		return nil, err
	}
	defer c.close()
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	pol := policy.NewUSBPolicy(opts.Config)
	rep := &Report{Time: now, AssetID: opts.Config.Agent.AssetID, Devices: []DeviceReport{}, Volumes: []wire.Volume{}, Violations: []Violation{}}
	if err := c.check(); err != nil {
		// Not a sysfs, or no procfs: nothing seen is not all clear.
		return nil, err
	}
	rep.USBBus = c.hasUSBBus()
	devs, derr := c.devices()
	if derr != nil && devs == nil {
		// Nothing could be listed at all: not an empty inventory but a
		// failed scan.
		return nil, fmt.Errorf("usb: %w", derr)
	}
	if derr != nil {
		rep.Errors = append(rep.Errors, derr.Error())
	}
	vols, verr := c.volumes(nil)
	if verr != nil {
		rep.Errors = append(rep.Errors, verr.Error())
	}
	// Volumes no USB device claims (Windows) are judged on devices of
	// their own, as the agent does.
	devs = append(devs, placeVolumes(vols)...)
	for i := range vols {
		rep.Volumes = append(rep.Volumes, *wireVolume(&vols[i]))
	}
	decisions := map[string]policy.USBDecision{}
	for i := range devs {
		d := &devs[i]
		dec := pol.Decide(d, now)
		decisions[d.Path] = dec
		dr := DeviceReport{USBDevice: *wireDevice(d), Classes: d.ClassNames(), Name: policy.Describe(d), Storage: d.IsStorage(), Approved: dec.Approved}
		if dec.Entry != nil {
			name := dec.Entry.Name
			dr.Entry = &name
		}
		rep.Devices = append(rep.Devices, dr)
		if dec.Violation != nil {
			rep.Violations = append(rep.Violations, *dec.Violation)
		}
		var own []media.Volume
		for _, v := range vols {
			if v.USBDevice == d.Path {
				own = append(own, v)
			}
		}
		for _, f := range c.judgeMedia(pol, d, dec, own) {
			rep.Violations = append(rep.Violations, *f.violation)
		}
	}
	if !opts.NoNetwork {
		snap, err := networkSnapshot(opts.NetSysfs)
		switch {
		case errors.Is(err, errors.ErrUnsupported):
		case err != nil:
			rep.Errors = append(rep.Errors, "network: "+err.Error())
		default:
			usbFor := func(path string) (bool, string) {
				for i := range devs {
					if devs[i].Path == path {
						return decisions[path].Approved, policy.Describe(&devs[i])
					}
				}
				return false, path
			}
			var findings []policy.Finding
			rep.Network, findings = networkReport(opts.Config, &snap, now, usbFor)
			for _, f := range findings {
				rep.Violations = append(rep.Violations, *f.Violation)
			}
		}
	}
	return rep, nil
}

// check tells whether the roots can be seen at all: a root that is not a
// sysfs, or a procfs without self/mountinfo, is an error, never an empty
// inventory.
func (c *sources) check() error {
	if err := c.usb.Check(); err != nil {
		return err
	}
	return c.checkVolumes()
}

// hasUSBBus reports whether the system has a USB bus to look at.
func (c *sources) hasUSBBus() bool { return c.usb.HasBus() }
