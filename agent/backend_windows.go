package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"golang.org/x/sys/windows/registry"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/uevent"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
)

// deviceTrigger is the trigger of the rescan a device notification
// starts.
const deviceTrigger = "device-notification"

// newUSBBackend is SetupAPI: every USB device, its interfaces and the
// disks beneath, with no audit policy, registry setting or window needed.
// usb.backend libusb is refused (there is no libusb build for Windows);
// the default, sysfs, means the system's own backend.
func newUSBBackend(cfg *config.Config, roots Roots, log *slog.Logger) (usbBackend, error) {
	if cfg.USB.Backend == "libusb" {
		return nil, errors.New("usb backend libusb: not on Windows, where SetupAPI reads the devices (leave usb.backend out)")
	}
	return &setupapiBackend{s: usb.NewSetupAPI(log)}, nil
}

// setupapiBackend reads USB devices through SetupAPI (usb.SetupAPI). A
// device's path is its device instance id; there are no device numbers.
// It keeps the drives of the last read of the volumes, by volumeKey: a
// drive unchanged since (the same medium: reuseProbe) is not probed
// again.
type setupapiBackend struct {
	s          *usb.SetupAPI
	lastDrives map[string]probedDrive
}

func (b *setupapiBackend) Name() string                           { return "setupapi" }
func (b *setupapiBackend) Devices() ([]usb.Device, error)         { return b.s.Devices() }
func (b *setupapiBackend) Device(path string) (usb.Device, error) { return b.s.Device(path) }
func (b *setupapiBackend) Check() error                           { return nil }
func (b *setupapiBackend) HasBus() bool                           { return true }
func (b *setupapiBackend) Numbered() bool                         { return false }
func (b *setupapiBackend) Close() error                           { return nil }

// OwnerOf: a device notification names an interface, not what changed
// below it; the agent reconciles with a full enumeration.
func (b *setupapiBackend) OwnerOf(string) (string, bool, error) {
	return "", false, fmt.Errorf("device notifications are reconciled by a rescan: %w", errors.ErrUnsupported)
}

// checkVolumes has nothing to check: there is no procfs.
func (c *sources) checkVolumes() error { return nil }

// volumes lists the drive letters on removable storage (media.
// WindowsVolumes): on a disk a USB device holds, on the USB bus (a USB
// SSD saying DRIVE_FIXED), or removable by drive type. known is not
// used: a drive read before with the same device, mount point, block
// name and USB device is taken from the previous read instead of being
// probed again.
func (c *sources) volumes(known func(media.Mount) (media.Volume, bool)) ([]media.Volume, error) {
	b := c.usb.(*setupapiBackend)
	devs, derr := b.Devices()
	disks := map[string]string{}
	for _, d := range devs {
		for _, b := range d.BlockDevices {
			disks[b.Name] = d.Path
		}
	}
	last := b.lastDrives
	// Known is asked about every drive kept, before it is probed: what it
	// is asked with is the drive as seen then, kept with the result.
	seen := map[string]media.Volume{}
	var internal []string
	if c.stateDir != "" {
		internal = []string{c.stateDir}
	}
	vols, err := media.WindowsVolumes(media.WindowsOptions{DiskToUSB: disks, CodePage: c.codePage, InternalDirs: internal,
		Known: func(now media.Volume) (media.Volume, bool) {
			k := volumeKey(&now)
			seen[k] = now
			p, ok := last[k]
			return p.vol, reuseProbe(p, ok, now)
		}})
	b.lastDrives = map[string]probedDrive{}
	for _, v := range vols {
		k := volumeKey(&v)
		if s, ok := seen[k]; ok {
			b.lastDrives[k] = probedDrive{vol: v, seen: s}
		}
	}
	if derr != nil && devs == nil {
		derr = fmt.Errorf("volumes: which USB device holds which disk: %w", derr)
	} else {
		derr = nil // named by the USB scan itself
	}
	return vols, errors.Join(derr, err)
}

// mountWatcher polls the drive letters (media.DrivePollInterval).
func (c *sources) mountWatcher() (*media.MountWatcher, error) { return media.NewMountWatcher("") }

// bootIDKey holds BootId, a DWORD Windows counts up at every boot (the
// prefetcher's; absent under Wine).
const (
	bootIDKey   = `SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management\PrefetchParameters`
	bootIDValue = "BootId"
)

// bootID is "windows-boot-N" from BootId; "" when it cannot be read
// (then devices attached at a restart of the agent count as new
// appearances, as after a reboot).
func (c *sources) bootID() string {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, bootIDKey, registry.QUERY_VALUE)
	if err != nil {
		return ""
	}
	defer k.Close()
	n, _, err := k.GetIntegerValue(bootIDValue)
	if err != nil {
		return ""
	}
	return "windows-boot-" + strconv.FormatUint(n, 10)
}

// listenDevices registers for device notifications (CM_Register_Notification
// for USB devices and volumes). Where Windows has none (Wine 8.0) the
// error wraps errors.ErrUnsupported and the agent rescans on its timer.
func (c *sources) listenDevices() (uevent.Source, error) {
	h, err := usb.NewHotplug()
	if err != nil {
		return nil, err
	}
	return &hotplugSource{h: h}, nil
}

// hotplugSource hands device notifications to the agent's event loop as
// events: each makes the agent enumerate again and reconcile (the
// backend's OwnerOf is unsupported), a lost burst (usb.ChangeRescan)
// included.
type hotplugSource struct{ h *usb.Hotplug }

// Receive waits for the next notification; uevent.ErrClosed after Close.
func (s *hotplugSource) Receive() (uevent.Event, error) {
	c, ok := <-s.h.Changes()
	if !ok {
		return uevent.Event{}, uevent.ErrClosed
	}
	return hotplugEvent(c, time.Now()), nil
}

// Close ends the registrations; a Receive waiting returns ErrClosed.
func (s *hotplugSource) Close() error { return s.h.Close() }

// hotplugEvent is the event a notification stands for: subsystem usb
// for a USB device, block for a volume, action add, remove or change (a
// lost burst).
func hotplugEvent(c usb.Change, at time.Time) uevent.Event {
	ev := uevent.Event{Action: "change", Subsystem: "usb", DevPath: c.Path, Received: at}
	switch c.Action {
	case usb.ChangeArrived:
		ev.Action = "add"
	case usb.ChangeRemoved:
		ev.Action = "remove"
	}
	if c.Interface == "volume" {
		ev.Subsystem = "block"
	}
	return ev
}
