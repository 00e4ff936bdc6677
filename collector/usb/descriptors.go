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

// descConfig is one configuration: its bConfigurationValue and its
// interfaces, alternate setting 0 only, one per bInterfaceNumber, sorted
// by number. Drivers are unknown here.
type descConfig struct {
	Value      int
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

// parseConfig parses one configuration descriptor and what follows it
// (b is exactly wTotalLength bytes, or fewer when truncated); off is its
// offset in the attribute, for errors.
func parseConfig(b []byte, off int) (descConfig, error) {
	cfg := descConfig{Value: int(b[5])}
	var seen [256]bool
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
			if alt == 0 && !seen[num] {
				seen[num] = true
				cfg.Interfaces = append(cfg.Interfaces, Interface{
					Number:   num,
					Class:    hex2(b[i+5]),
					SubClass: hex2(b[i+6]),
					Protocol: hex2(b[i+7]),
				})
			}
		}
		i += l
	}
	slices.SortFunc(cfg.Interfaces, func(a, b Interface) int { return a.Number - b.Number })
	return cfg, err
}

// interfaces returns the interfaces of the configuration whose
// bConfigurationValue is active, or of the first configuration when
// none matches (an unconfigured or unauthorized device has value 0).
// The slice is a copy.
func (d *descriptors) interfaces(active int) []Interface {
	if len(d.Configs) == 0 {
		return nil
	}
	cfg := d.Configs[0]
	for _, c := range d.Configs {
		if c.Value == active && active != 0 {
			cfg = c
			break
		}
	}
	return slices.Clone(cfg.Interfaces)
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
