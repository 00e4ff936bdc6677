package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
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

// sources bundles the USB and media collectors with their roots.
type sources struct {
	roots  Roots
	sysfs  usb.FS
	enum   usb.Enumerator
	closer func() error
	log    *slog.Logger
	// codePage decodes FAT labels when the mount does not say (932 for
	// agent.language ja).
	codePage int
}

func newSources(cfg *config.Config, roots Roots, log *slog.Logger) (*sources, error) {
	roots = roots.withDefaults()
	c := &sources{roots: roots, sysfs: usb.NewFS(roots.Sysfs), log: log, codePage: media.CodePageForLanguage(cfg.Agent.Language)}
	c.enum = c.sysfs
	if cfg.USB.Backend == "libusb" {
		e, err := usb.NewLibusb(log)
		if err != nil {
			return nil, fmt.Errorf("usb backend libusb: %w", err)
		}
		c.enum = e
		if cl, ok := e.(interface{ Close() error }); ok {
			c.closer = cl.Close
		}
	}
	return c, nil
}

func (c *sources) close() error {
	if c.closer != nil {
		return c.closer()
	}
	return nil
}

// devices enumerates every USB device. Errors about single devices are
// returned beside the devices that could be read.
func (c *sources) devices() ([]usb.Device, error) {
	return c.enum.Devices()
}

// volumes lists the mounted file systems that sit on USB block devices.
func (c *sources) volumes(known func(media.Mount) (media.Volume, bool)) ([]media.Volume, error) {
	blocks, berr := c.sysfs.USBBlockDevices()
	mounts, err := media.ReadMountInfo(c.roots.Procfs)
	if err != nil && len(mounts) == 0 {
		return nil, errors.Join(berr, err)
	}
	vols := media.Volumes(mounts, blocks, media.Options{SysfsRoot: c.roots.Sysfs, DevRoot: c.roots.Dev, Known: known, CodePage: c.codePage})
	return vols, errors.Join(berr, err)
}

// Report is the result of one scan: the stable JSON of `mamori scan`.
type Report struct {
	Time       time.Time      `json:"time"`
	AssetID    string         `json:"asset_id"`
	Devices    []DeviceReport `json:"usb_devices"`
	Volumes    []media.Volume `json:"volumes"`
	Violations []Violation    `json:"violations"`
	// USBBus is false when the sysfs has no USB bus at all (bus/usb): an
	// empty inventory then means "nothing to see", not "nothing attached".
	USBBus bool `json:"usb_bus"`
	// Errors are the parts that could not be read: the scan is incomplete,
	// and no violation found among the rest does not mean all clear.
	Errors []string `json:"errors,omitempty"`
}

// Incomplete reports whether parts of the system could not be read.
func (r *Report) Incomplete() bool { return len(r.Errors) > 0 }

// DeviceReport is a device with the policy's verdict.
type DeviceReport struct {
	usb.Device
	Storage  bool    `json:"storage"`
	Approved bool    `json:"approved"`
	Entry    *string `json:"entry"`
}

// ScanOptions configures Scan.
type ScanOptions struct {
	Config *config.Config
	Roots  Roots
	Logger *slog.Logger
	Now    time.Time
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
	pol := NewPolicy(opts.Config)
	rep := &Report{Time: now, AssetID: opts.Config.Agent.AssetID, Devices: []DeviceReport{}, Volumes: []media.Volume{}, Violations: []Violation{}}
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
	if vols != nil {
		rep.Volumes = vols
	}
	for i := range devs {
		d := &devs[i]
		dec := pol.Decide(d, now)
		dr := DeviceReport{Device: *d, Storage: d.IsStorage(), Approved: dec.Approved}
		if dr.Interfaces == nil {
			dr.Interfaces = []usb.Interface{}
		}
		if dr.BlockDevices == nil {
			dr.BlockDevices = []usb.BlockDevice{}
		}
		if dec.Entry != nil {
			name := dec.Entry.Name
			dr.Entry = &name
		}
		rep.Devices = append(rep.Devices, dr)
		if dec.Violation != nil {
			rep.Violations = append(rep.Violations, *dec.Violation)
		}
		if dec.requiresEncryption(d) {
			var own []media.Volume
			for _, v := range rep.Volumes {
				if v.USBDevice == d.Path {
					own = append(own, v)
				}
			}
			for _, m := range c.media(d, own) {
				if !m.Encrypted {
					rep.Violations = append(rep.Violations, *pol.Unencrypted(d, dec.Entry, m))
				}
			}
		}
	}
	return rep, nil
}

// check tells whether the roots can be seen at all: a root that is not a
// sysfs, or a procfs without self/mountinfo, is an error, never an empty
// inventory.
func (c *sources) check() error {
	if c.enum == usb.Enumerator(c.sysfs) {
		if err := c.sysfs.Check(); err != nil {
			return err
		}
	}
	p := filepath.Join(c.roots.Procfs, "self", "mountinfo")
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("procfs %s: cannot read the mounts: %w", c.roots.Procfs, err)
	}
	return nil
}

// hasUSBBus reports whether the system has a USB bus to look at.
func (c *sources) hasUSBBus() bool {
	if c.enum != usb.Enumerator(c.sysfs) {
		return true
	}
	return c.sysfs.HasUSBBus()
}
