//go:build !windows

package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/uevent"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/fsguard"
)

// deviceTrigger is the trigger of what a device event starts.
const deviceTrigger = "uevent"

// newUSBBackend is sysfs under roots.Sysfs, or libusb with usb.backend
// libusb.
func newUSBBackend(cfg *config.Config, roots Roots, log *slog.Logger) (usbBackend, error) {
	if cfg.USB.Backend == "libusb" {
		return newLibusbBackend(log)
	}
	return sysfsBackend{fs: usb.NewFS(roots.Sysfs)}, nil
}

// checkVolumes tells whether procfs shows the mounts.
func (c *sources) checkVolumes() error { return checkProcfs(c.roots.Procfs) }

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

// bootID is the kernel's boot id (procfs sys/kernel/random/boot_id); ""
// when it cannot be read.
func (c *sources) bootID() string { return readBootID(c.roots.Procfs) }

// listenDevices opens the kernel uevent socket.
func (c *sources) listenDevices() (uevent.Source, error) { return uevent.Listen() }

// mountWatcher watches procfs's mount table.
func (c *sources) mountWatcher() (*media.MountWatcher, error) {
	return media.NewMountWatcher(c.roots.Procfs)
}

// errOneDevice is the error of Device and OwnerOf for a backend that
// only enumerates.
func errOneDevice(backend string) error {
	return fmt.Errorf("usb backend %s reads no single device: %w", backend, errors.ErrUnsupported)
}

// sysfsBackend reads USB devices from sysfs (usb.FS).
type sysfsBackend struct{ fs usb.FS }

func (b sysfsBackend) Name() string                           { return "sysfs" }
func (b sysfsBackend) Devices() ([]usb.Device, error)         { return b.fs.Devices() }
func (b sysfsBackend) Device(path string) (usb.Device, error) { return b.fs.Device(path) }
func (b sysfsBackend) Check() error                           { return b.fs.Check() }
func (b sysfsBackend) HasBus() bool                           { return b.fs.HasUSBBus() }
func (b sysfsBackend) Numbered() bool                         { return true }
func (b sysfsBackend) Close() error                           { return nil }

func (b sysfsBackend) OwnerOf(devpath string) (string, bool, error) {
	path, ok := b.fs.OwnerOf(devpath)
	return path, ok, nil
}

// enumBackend is a backend that only enumerates (libusb): every event
// means a rescan, and a device missing from an enumeration is gone.
type enumBackend struct {
	name  string
	enum  usb.Enumerator
	close func() error
}

func (b *enumBackend) Name() string                   { return b.name }
func (b *enumBackend) Devices() ([]usb.Device, error) { return b.enum.Devices() }
func (b *enumBackend) Check() error                   { return nil }
func (b *enumBackend) HasBus() bool                   { return true }
func (b *enumBackend) Numbered() bool                 { return true }

func (b *enumBackend) Device(path string) (usb.Device, error) {
	return usb.Device{}, errOneDevice(b.name)
}

func (b *enumBackend) OwnerOf(devpath string) (string, bool, error) {
	return "", false, errOneDevice(b.name)
}

func (b *enumBackend) Close() error {
	if b.close != nil {
		return b.close()
	}
	return nil
}

// newLibusbBackend opens libusb (a build with -tags libusb; an error
// otherwise).
func newLibusbBackend(log *slog.Logger) (usbBackend, error) {
	e, err := usb.NewLibusb(log)
	if err != nil {
		return nil, fmt.Errorf("usb backend libusb: %w", err)
	}
	b := &enumBackend{name: "libusb", enum: e}
	if cl, ok := e.(interface{ Close() error }); ok {
		b.close = cl.Close
	}
	return b, nil
}

// checkProcfs tells whether procfs shows the mounts (the volumes are read
// from them on Linux).
func checkProcfs(procfs string) error {
	p := filepath.Join(procfs, "self", "mountinfo")
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("procfs %s: cannot read the mounts: %w", procfs, err)
	}
	return nil
}

// readBootID returns the kernel's boot id, or "" when it cannot be read
// (then every start is a new appearance).
func readBootID(procfs string) string {
	b, err := fsguard.ReadFile(filepath.Join(procfs, "sys/kernel/random/boot_id"), 64)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
