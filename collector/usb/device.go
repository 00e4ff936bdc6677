// Package usb observes USB devices: it reads them from sysfs (or, with the
// libusb build tag, from libusb) and returns them as typed Device values.
package usb

import "strings"

// Device is one USB device as the kernel presents it under
// /sys/bus/usb/devices/<Path>.
type Device struct {
	// Path is the device's bus path and sysfs name: "1-4.1.3", or "usb1"
	// for a root hub.
	Path string `json:"path"`
	// SysPath is the device's directory below the sysfs root, for example
	// "devices/pci0000:00/0000:00:14.0/usb1/1-4". Empty for backends
	// without sysfs.
	SysPath string `json:"-"`

	BusNum int `json:"busnum"` // busnum
	DevNum int `json:"devnum"` // devnum

	VendorID  string `json:"vendor_id"`  // idVendor, 4 lower-case hex digits
	ProductID string `json:"product_id"` // idProduct, 4 lower-case hex digits
	BCDDevice string `json:"bcd_device"` // bcdDevice, 4 hex digits

	// Serial is the serial attribute; nil when the device has none (no
	// file), which differs from an empty serial.
	Serial       *string `json:"serial"`
	Manufacturer string  `json:"manufacturer"` // manufacturer (sanitised)
	Product      string  `json:"product"`      // product (sanitised)

	// VendorName and ProductName come from the usb.ids database.
	VendorName  string `json:"vendor_name,omitempty"`
	ProductName string `json:"product_name,omitempty"`

	Class    string `json:"class"`    // bDeviceClass, 2 lower-case hex digits
	SubClass string `json:"subclass"` // bDeviceSubClass
	Protocol string `json:"protocol"` // bDeviceProtocol

	Speed string `json:"speed,omitempty"` // speed, Mbit/s as the kernel writes it ("480")
	// Authorized is the authorized attribute; nil when unknown.
	Authorized *bool `json:"authorized"`
	// Parent is the bus path of the hub the device hangs off ("1-4" or
	// "usb1"); empty for a root hub.
	Parent string `json:"parent,omitempty"`

	Interfaces   []Interface   `json:"interfaces"`
	BlockDevices []BlockDevice `json:"block_devices"`
}

// Interface is one interface of the active configuration, alternate
// setting 0: /sys/devices/.../<path>:<config>.<number>.
type Interface struct {
	Number   int    `json:"number"`   // bInterfaceNumber
	Class    string `json:"class"`    // bInterfaceClass, 2 lower-case hex digits
	SubClass string `json:"subclass"` // bInterfaceSubClass
	Protocol string `json:"protocol"` // bInterfaceProtocol
	Driver   string `json:"driver"`   // name of the bound driver, "" when none
}

// BlockDevice is a disk or partition found below a USB device in sysfs.
type BlockDevice struct {
	Name      string `json:"name"`      // "sda", "sda1"
	Size      int64  `json:"size"`      // bytes (size attribute × 512)
	ReadOnly  bool   `json:"read_only"` // ro
	Removable bool   `json:"removable"` // removable (of the disk)
	Partition bool   `json:"partition"` // has a partition attribute
}

// Class codes used by the agent.
const (
	ClassPerInterface = "00"
	ClassMassStorage  = "08"
	ClassHub          = "09"
)

// IsRootHub reports whether d is a root hub ("usb1").
func (d *Device) IsRootHub() bool { return strings.HasPrefix(d.Path, "usb") }

// IsStorage reports whether d is storage: any interface is mass-storage,
// or block devices were found beneath it.
func (d *Device) IsStorage() bool {
	if len(d.BlockDevices) > 0 || d.Class == ClassMassStorage {
		return true
	}
	for _, in := range d.Interfaces {
		if in.Class == ClassMassStorage {
			return true
		}
	}
	return false
}

// ClassNames returns the short class names of the device's interfaces
// (or of the device class when it has no interfaces), without repeats.
func (d *Device) ClassNames() []string {
	var out []string
	seen := map[string]bool{}
	add := func(c string) {
		n := ClassName(c)
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, in := range d.Interfaces {
		add(in.Class)
	}
	if len(out) == 0 {
		add(d.Class)
	}
	return out
}

// SerialString returns the serial, or "" when there is none.
func (d *Device) SerialString() string {
	if d.Serial == nil {
		return ""
	}
	return *d.Serial
}

var classNames = map[string]string{
	"00": "per-interface",
	"01": "audio",
	"02": "communications",
	"03": "hid",
	"05": "physical",
	"06": "still-image",
	"07": "printer",
	"08": "mass-storage",
	"09": "hub",
	"0a": "cdc-data",
	"0b": "smart-card",
	"0d": "content-security",
	"0e": "video",
	"0f": "personal-healthcare",
	"10": "audio-video",
	"11": "billboard",
	"12": "type-c-bridge",
	"dc": "diagnostic",
	"e0": "wireless",
	"ef": "misc",
	"fe": "application-specific",
	"ff": "vendor-specific",
}

// ClassName maps a 2-digit lower-case hex class code to its short name
// ("08" → "mass-storage"). Unknown codes are returned as "class-XX".
func ClassName(code string) string {
	if n, ok := classNames[code]; ok {
		return n
	}
	return "class-" + code
}

// ClassCode maps a short class name back to its code; ok is false for an
// unknown name.
func ClassCode(name string) (code string, ok bool) {
	for c, n := range classNames {
		if n == name {
			return c, true
		}
	}
	return "", false
}

// ClassNameList returns every known short class name.
func ClassNameList() []string {
	out := make([]string, 0, len(classNames))
	for _, n := range classNames {
		out = append(out, n)
	}
	return out
}
