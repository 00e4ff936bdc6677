package agent

import (
	"errors"
	"io/fs"

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

// isGone tells from a backend's answer to Device whether a device missing
// from an enumeration has left: it is not there (fs.ErrNotExist), or the
// backend cannot look at one device (errors.ErrUnsupported). A device
// that is there, or could not be read this time, has not.
func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, errors.ErrUnsupported)
}
