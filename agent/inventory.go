package agent

import (
	"errors"
	"fmt"
	"log/slog"
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
}

func newSources(cfg *config.Config, roots Roots, log *slog.Logger) (*sources, error) {
	roots = roots.withDefaults()
	c := &sources{roots: roots, sysfs: usb.NewFS(roots.Sysfs), log: log}
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
	vols := media.Volumes(mounts, blocks, media.Options{SysfsRoot: c.roots.Sysfs, DevRoot: c.roots.Dev, Known: known})
	return vols, errors.Join(berr, err)
}

// mediumEncrypted tells whether the medium of storage device d is
// encrypted: known is false when it cannot tell yet (no block device has
// appeared, or none could be read).
func (c *sources) mediumEncrypted(d *usb.Device) (encrypted, known bool) {
	plain, enc := 0, 0
	for _, b := range d.BlockDevices {
		info, err := media.ProbeBlock(c.roots.Dev, b.Name)
		if err != nil {
			c.log.Debug("probe block device", "device", b.Name, "err", err)
			continue
		}
		switch {
		case info.Encryption != "":
			enc++
		case info.FSType != "":
			plain++
		}
	}
	if plain > 0 {
		return false, true
	}
	if enc > 0 {
		return true, true
	}
	return false, false
}

// Report is the result of one scan: the stable JSON of `mamori scan`.
type Report struct {
	Time       time.Time      `json:"time"`
	AssetID    string         `json:"asset_id"`
	Devices    []DeviceReport `json:"usb_devices"`
	Volumes    []media.Volume `json:"volumes"`
	Violations []Violation    `json:"violations"`
	Errors     []string       `json:"errors,omitempty"`
}

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
	devs, derr := c.devices()
	if derr != nil && devs == nil {
		// Nothing could be listed at all (no such sysfs root): not an
		// empty inventory but a failed scan.
		return nil, fmt.Errorf("usb: %w", derr)
	}
	if derr != nil {
		rep.Errors = append(rep.Errors, derr.Error())
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
		} else if dec.Entry != nil && dec.Entry.RequireEncryption && d.IsStorage() {
			if enc, known := c.mediumEncrypted(d); known && !enc {
				rep.Violations = append(rep.Violations, *pol.Unencrypted(d, dec.Entry))
			}
		}
	}
	vols, verr := c.volumes(nil)
	if verr != nil {
		rep.Errors = append(rep.Errors, verr.Error())
	}
	if vols != nil {
		rep.Volumes = vols
	}
	return rep, nil
}
