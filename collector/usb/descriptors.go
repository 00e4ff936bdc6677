package usb

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// USB descriptor types (USB 2.0 §9.4, table 9-5).
const (
	descTypeDevice    = 0x01
	descTypeConfig    = 0x02
	descTypeInterface = 0x04

	deviceDescLen    = 18
	configDescLen    = 9
	interfaceDescLen = 9
)

// descriptors is what the binary sysfs "descriptors" attribute holds: the
// 18-byte device descriptor followed by every configuration descriptor,
// each with its interface, endpoint and class descriptors, as the device
// sent them (multi-byte fields little-endian).
type descriptors struct {
	VendorID  string // idVendor, 4 lower-case hex digits
	ProductID string // idProduct
	BCDDevice string // bcdDevice
	Class     string // bDeviceClass, 2 lower-case hex digits
	SubClass  string // bDeviceSubClass
	Protocol  string // bDeviceProtocol

	Configs []descConfig
}

// descConfig is one configuration: its bConfigurationValue, bmAttributes
// and bMaxPower, the first interface descriptor in it, and its
// interfaces, one per bInterfaceNumber, sorted by number. Drivers are
// unknown here.
type descConfig struct {
	Value      int  // bConfigurationValue
	Attributes byte // bmAttributes (0x40: self-powered)
	MaxPower   byte // bMaxPower: 2 mA units, 8 mA at SuperSpeed (usb_get_max_power)
	// First is the first interface descriptor of the configuration, of
	// whatever number and alternate setting: the kernel's
	// intf_cache[0]->altsetting[0], which usb_choose_configuration
	// looks at. HasFirst is false for a configuration without any.
	First    Interface
	HasFirst bool
	// Interfaces holds, per interface number, alternate setting 0, or
	// the first alternate setting listed when there is no 0: the one
	// usb_set_configuration installs and drivers match against.
	Interfaces []Interface
}

// parseDescriptors parses the contents of a sysfs "descriptors"
// attribute. A truncated or inconsistent configuration ends the parse
// with an error, but what was read before it is returned too: a device
// that sends a broken descriptor must not vanish from the inventory.
func parseDescriptors(b []byte) (descriptors, error) {
	var d descriptors
	if len(b) < deviceDescLen {
		return d, fmt.Errorf("device descriptor: %d bytes, want %d", len(b), deviceDescLen)
	}
	if b[1] != descTypeDevice {
		return d, fmt.Errorf("device descriptor: type %#02x, want %#02x", b[1], descTypeDevice)
	}
	d.Class = hex2(b[4])
	d.SubClass = hex2(b[5])
	d.Protocol = hex2(b[6])
	d.VendorID = hex4(binary.LittleEndian.Uint16(b[8:]))
	d.ProductID = hex4(binary.LittleEndian.Uint16(b[10:]))
	d.BCDDevice = hex4(binary.LittleEndian.Uint16(b[12:]))

	rest := b[deviceDescLen:]
	for off := deviceDescLen; len(rest) > 0; {
		if len(rest) < configDescLen {
			return d, fmt.Errorf("config descriptor at byte %d: %d bytes left, want %d", off, len(rest), configDescLen)
		}
		if rest[1] != descTypeConfig {
			return d, fmt.Errorf("config descriptor at byte %d: type %#02x, want %#02x", off, rest[1], descTypeConfig)
		}
		total := int(binary.LittleEndian.Uint16(rest[2:]))
		if total < configDescLen {
			return d, fmt.Errorf("config descriptor at byte %d: wTotalLength %d < %d", off, total, configDescLen)
		}
		var err error
		if total > len(rest) {
			// Keep what is there: the kernel stores what the device
			// sent, and the interfaces before the cut are still real.
			err = fmt.Errorf("config descriptor at byte %d: wTotalLength %d, only %d bytes left", off, total, len(rest))
			total = len(rest)
		}
		cfg, cerr := parseConfig(rest[:total], off)
		d.Configs = append(d.Configs, cfg)
		if err == nil {
			err = cerr
		}
		if err != nil {
			return d, err
		}
		rest = rest[total:]
		off += total
	}
	return d, nil
}

// maxInterfaces is the kernel's USB_MAXINTERFACES: interface numbers
// beyond the first 32 distinct ones of a configuration are ignored.
const maxInterfaces = 32

// parseConfig parses one configuration descriptor and what follows it
// (b is exactly wTotalLength bytes, or fewer when truncated); off is its
// offset in the attribute, for errors. Like usb_parse_configuration
// (drivers/usb/core/config.c) it skips interface descriptors shorter
// than 9 bytes and stops at a descriptor whose bLength is below 2 or
// runs past the end.
func parseConfig(b []byte, off int) (descConfig, error) {
	cfg := descConfig{Value: int(b[5]), Attributes: b[7], MaxPower: b[8]}
	type found struct {
		in   Interface
		alt0 bool
	}
	var ifaces []found
	var err error
	for i := int(b[0]); i < len(b); {
		if i < configDescLen {
			// bLength of the configuration descriptor itself is below 9:
			// skip the fixed part anyway.
			i = configDescLen
			continue
		}
		l := int(b[i])
		if l < 2 || i+l > len(b) {
			err = fmt.Errorf("descriptor at byte %d: bLength %d with %d bytes left", off+i, l, len(b)-i)
			break
		}
		if b[i+1] == descTypeInterface && l >= interfaceDescLen {
			num, alt := int(b[i+2]), b[i+3]
			in := Interface{
				Number:   num,
				Class:    hex2(b[i+5]),
				SubClass: hex2(b[i+6]),
				Protocol: hex2(b[i+7]),
			}
			if !cfg.HasFirst {
				cfg.First, cfg.HasFirst = in, true
			}
			k := slices.IndexFunc(ifaces, func(f found) bool { return f.in.Number == num })
			switch {
			case k < 0 && len(ifaces) < maxInterfaces:
				ifaces = append(ifaces, found{in, alt == 0})
			case k >= 0 && alt == 0 && !ifaces[k].alt0:
				ifaces[k] = found{in, true}
			}
		}
		i += l
	}
	for _, f := range ifaces {
		cfg.Interfaces = append(cfg.Interfaces, f.in)
	}
	slices.SortFunc(cfg.Interfaces, func(a, b Interface) int { return a.Number - b.Number })
	return cfg, err
}

// configIndex returns the index in d.Configs of the configuration whose
// bConfigurationValue is value, or -1 (value 0 is "unconfigured" and
// never matches).
func (d *descriptors) configIndex(value int) int {
	if value == 0 {
		return -1
	}
	return slices.IndexFunc(d.Configs, func(c descConfig) bool { return c.Value == value })
}

// interfacesAt returns a copy of the interfaces of configuration i, nil
// when i is -1.
func (d *descriptors) interfacesAt(i int) []Interface {
	if i < 0 || i >= len(d.Configs) {
		return nil
	}
	return slices.Clone(d.Configs[i].Interfaces)
}

// interfaces returns the interfaces of the configuration whose
// bConfigurationValue is active or, when active is 0 or names none, of
// the configuration the kernel will choose (chooseConfig). The slice is
// a copy.
func (d *descriptors) interfaces(active int, pw busPower) []Interface {
	i := d.configIndex(active)
	if i < 0 {
		i = d.chooseConfig(pw)
	}
	return d.interfacesAt(i)
}

// busPower is what usb_choose_configuration weighs each configuration's
// bMaxPower against: udev->bus_mA, the current the parent hub's port
// gives, and the device's speed, which sets bMaxPower's unit.
type busPower struct {
	SuperSpeed bool // speed 5000 Mbit/s or more: bMaxPower in 8 mA units, else 2 mA
	BudgetMA   int  // udev->bus_mA
}

// Hub port budgets (hub_configure in drivers/usb/core/hub.c): a root hub
// or self-powered hub gives each port a full load, a bus-powered hub one
// unit load.
const (
	fullLoadMA   = 500
	fullLoadSSMA = 900
	unitLoadMA   = 100
	unitLoadSSMA = 150
)

// Interface class codes usb_choose_configuration tests.
const (
	classAudio  = "01" // USB_CLASS_AUDIO
	classComm   = "02" // USB_CLASS_COMM
	classMisc   = "ef" // USB_CLASS_MISC
	classVendor = "ff" // USB_CLASS_VENDOR_SPEC
	uacVersion3 = "30" // UAC_VERSION_3, bInterfaceProtocol of a UAC3 audio interface
)

// chooseConfig returns the index in d.Configs of the configuration that
// usb_choose_configuration (drivers/usb/core/generic.c) sets on a device
// the kernel configures (at enumeration, or when it is authorized), or
// -1 when it sets none. Walking the configurations in order:
//
//   - one that draws more than the port gives (bMaxPower × 2 mA, × 8 mA
//     at SuperSpeed, above pw.BudgetMA) is skipped;
//   - one whose first interface is audio is taken at once if it is UAC3
//     (bInterfaceProtocol 0x30), kept as the choice if it is the first
//     configuration, and otherwise passed over;
//   - when there are several configurations, a first one whose first
//     interface is RNDIS (02/02/ff) or ActiveSync (ef/01/01) is kept as
//     the choice without ending the walk: this assumes a kernel built
//     with CONFIG_USB_NET_RNDIS_HOST (Debian, Ubuntu and Fedora build it
//     as a module); without it such a configuration is skipped;
//   - the first one whose first interface is not vendor-specific (ff),
//     on a device whose bDeviceClass is not vendor-specific, is taken;
//   - else the first one not skipped is kept.
//
// What descriptors cannot show is not modelled: a device driver's own
// choose_configuration (r8152's configuration selector picks the vendor
// configuration of Realtek network adapters on kernels that have it) and
// a port claimed through usbfs.
func (d *descriptors) chooseConfig(pw busPower) int {
	mul := 2
	if pw.SuperSpeed {
		mul = 8
	}
	best := -1
	for i, c := range d.Configs {
		if int(c.MaxPower)*mul > pw.BudgetMA {
			continue
		}
		first := c.First
		if c.HasFirst && first.Class == classAudio {
			if first.Protocol == uacVersion3 {
				return i
			}
			if i == 0 {
				best = i
			}
			continue
		}
		switch {
		case i == 0 && len(d.Configs) > 1 && c.HasFirst && (isRNDIS(first) || isActiveSync(first)):
			best = i
		case d.Class != classVendor && c.HasFirst && first.Class != classVendor:
			return i
		case best < 0:
			best = i
		}
	}
	return best
}

// isRNDIS is the kernel's is_rndis: Microsoft's RNDIS as CDC 02/02/ff.
func isRNDIS(in Interface) bool {
	return in.Class == classComm && in.SubClass == "02" && in.Protocol == "ff"
}

// isActiveSync is the kernel's is_activesync: ef/01/01.
func isActiveSync(in Interface) bool {
	return in.Class == classMisc && in.SubClass == "01" && in.Protocol == "01"
}

const hexDigits = "0123456789abcdef"

// hex2Table is every two-digit lower-case hex string, concatenated, so
// that formatting a byte is a slice and never allocates.
const hex2Table = "" +
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" +
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f" +
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f" +
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" +
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf" +
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf" +
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"

func hex2(v byte) string { return hex2Table[2*int(v) : 2*int(v)+2] }

func hex4(v uint16) string {
	return string([]byte{hexDigits[v>>12], hexDigits[v>>8&0xf], hexDigits[v>>4&0xf], hexDigits[v&0xf]})
}
