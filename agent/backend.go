package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/mamori-agent/mamori/collector/usb"
)

// usbBackend is where the agent reads USB devices from, chosen once per
// OS by newUSBBackend: sysfs, or libusb with usb.backend libusb
// (backend_other.go); SetupAPI on Windows (backend_windows.go). The
// agent asks it, and nothing else, about USB devices, so that judging and
// recording are the same whatever reads the devices.
type usbBackend interface {
	// Name names the backend for logs and the self-test: "sysfs",
	// "libusb", "setupapi".
	Name() string
	// Devices enumerates every USB device, root hubs included, sorted by
	// path. Errors about single devices are joined into the error beside
	// the devices that could be read; nil devices with an error is a
	// failed enumeration.
	Devices() ([]usb.Device, error)
	// Device reads the one device at path again. Its error wraps
	// fs.ErrNotExist when the device is not there, errors.ErrUnsupported
	// when the backend cannot read one device alone: a device missing
	// from an enumeration then counts as gone.
	Device(path string) (usb.Device, error)
	// OwnerOf maps what a hot-plug event names (a kernel DEVPATH) to the
	// path of the USB device holding it; ok is false when no USB device
	// does. An error wrapping errors.ErrUnsupported says the backend
	// cannot map events to devices: the event means a full rescan.
	OwnerOf(devpath string) (path string, ok bool, err error)
	// Check tells whether the backend can see the system at all: a root
	// that is not a sysfs is an error, never an empty inventory.
	Check() error
	// HasBus reports whether the system has a USB bus to look at: false
	// makes an empty inventory mean "nothing to see".
	HasBus() bool
	// Numbered reports whether devices carry the kernel's device numbers
	// (usb.Device.BusNum, DevNum): then a read without a device number
	// caught a device being torn down, and a new number on the same path
	// is a new plug-in. SetupAPI has none: every device reads 0.
	Numbered() bool
	// Close releases what the backend holds (libusb's context).
	Close() error
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

// isGone tells from a backend's answer to Device whether a device missing
// from an enumeration has left: it is not there (fs.ErrNotExist), or the
// backend cannot look at one device (errors.ErrUnsupported). A device
// that is there, or could not be read this time, has not.
func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, errors.ErrUnsupported)
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
