//go:build !windows

package agent

import (
	"errors"
	"log/slog"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/uevent"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
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
