//go:build libusb

package usb

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/google/gousb"

	"github.com/mamori-agent/mamori/collector/usbids"
	"github.com/mamori-agent/mamori/internal/safe"
)

// controlTimeout bounds each control transfer that reads a string
// descriptor, so a device that never answers cannot stall a scan.
const controlTimeout = time.Second

// Libusb enumerates USB devices through libusb (github.com/google/gousb),
// for systems where sysfs is not available. It owns a libusb context:
// call Close when done. Its methods are safe for concurrent use.
//
// What libusb cannot tell is left unknown: Authorized is nil, SysPath is
// empty, every Interface.Driver is "" (libusb does not name the bound
// driver) and BlockDevices is empty.
type Libusb struct {
	logger *slog.Logger

	mu  sync.Mutex
	ctx *gousb.Context // nil once closed
}

// NewLibusb initialises a libusb context and returns an enumerator that
// reads devices through it. The returned value is a *Libusb and
// implements io.Closer; Close releases the context. It fails when libusb
// cannot be initialised (for example when there is no usbfs).
func NewLibusb(logger *slog.Logger) (Enumerator, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, err := newContext()
	if err != nil {
		return nil, fmt.Errorf("libusb init: %w", err)
	}
	return &Libusb{logger: logger.With("collector", "usb", "backend", "libusb"), ctx: ctx}, nil
}

// newContext calls gousb.NewContext, which panics when libusb_init fails,
// and turns that panic into an error.
func newContext() (ctx *gousb.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			ctx = nil
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%v", r)
			}
		}
	}()
	return gousb.NewContext(), nil
}

// catch runs f and turns a panic in it into an error. gousb panics on
// libusb_init failure and on some malformed configuration descriptors
// (an interface whose alternate settings all duplicate earlier ones); a
// hostile device must not crash the agent.
func catch(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("gousb panicked: %w", e)
			} else {
				err = fmt.Errorf("gousb panicked: %v", r)
			}
		}
	}()
	return f()
}

// Close releases the libusb context. Devices fails after Close; a second
// Close returns nil.
func (l *Libusb) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx == nil {
		return nil
	}
	err := l.ctx.Close()
	l.ctx = nil
	if err != nil {
		return fmt.Errorf("libusb close: %w", err)
	}
	return nil
}

// Devices lists every USB device libusb sees, root hubs included, sorted
// by bus and port path. Each device is opened briefly (this needs root)
// to read its strings, serial and active configuration; when that fails
// the device is still returned with what its descriptor gives, and the
// failure is part of the returned error (errors.Join of one error per
// device). A non-nil error therefore does not mean the list is empty.
func (l *Libusb) Devices() ([]Device, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx == nil {
		return nil, errors.New("libusb enumerator is closed")
	}

	var descs []*gousb.DeviceDesc
	var errs []error
	err := catch(func() error {
		_, err := l.ctx.OpenDevices(func(desc *gousb.DeviceDesc) bool {
			descs = append(descs, desc)
			return false // keep nothing open
		})
		return err
	})
	if err != nil {
		// gousb drops a device whose descriptors it cannot read and
		// reports only the last such error; keep the devices it did read.
		errs = append(errs, fmt.Errorf("libusb list devices: %w", err))
	}

	out := make([]Device, 0, len(descs))
	for _, desc := range descs {
		d, err := deviceFromDesc(desc)
		if err != nil {
			errs = append(errs, err)
		}
		if err := l.readOpen(desc, &d); err != nil {
			l.logger.Debug("libusb: device details unreadable", "path", d.Path, "err", err)
			errs = append(errs, fmt.Errorf("usb %s: %w", d.Path, err))
		}
		out = append(out, d)
	}
	slices.SortFunc(out, compareBusPath)
	return out, errors.Join(errs...)
}

// readOpen opens the device described by want, reads its strings and
// active configuration into d, and closes it again. Without a handle, d
// keeps the interfaces of the only configuration (when there is exactly
// one) and no strings.
func (l *Libusb) readOpen(want *gousb.DeviceDesc, d *Device) error {
	var dev *gousb.Device
	err := catch(func() error {
		devs, err := l.ctx.OpenDevices(func(desc *gousb.DeviceDesc) bool {
			return dev == nil && sameDevice(desc, want)
		})
		// Close anything beyond the first (should not happen).
		for i, o := range devs {
			if i == 0 {
				dev = o
				continue
			}
			o.Close()
		}
		if dev == nil {
			if err == nil {
				err = errors.New("device disappeared")
			}
			return err
		}
		return nil
	})
	if dev == nil {
		if err == nil {
			err = errors.New("device disappeared")
		}
		if cfg, ok := onlyConfig(want); ok {
			d.Interfaces = interfacesOf(cfg)
		}
		if idx := stringIndexes(want); idx.serial != 0 {
			// The device has a serial we could not read: say so rather
			// than pretend it has none.
			err = fmt.Errorf("open (serial unknown): %w", err)
		} else {
			err = fmt.Errorf("open: %w", err)
		}
		return err
	}
	defer dev.Close()
	dev.ControlTimeout = controlTimeout

	var errs []error
	idx := stringIndexes(want)
	s := stringReader{dev: dev}
	if idx.manufacturer != 0 {
		v, err := s.read(idx.manufacturer)
		if err != nil {
			errs = append(errs, fmt.Errorf("manufacturer: %w", err))
		}
		d.Manufacturer = safe.String(v)
	}
	if idx.product != 0 {
		v, err := s.read(idx.product)
		if err != nil {
			errs = append(errs, fmt.Errorf("product: %w", err))
		}
		d.Product = safe.String(v)
	}
	if idx.serial != 0 {
		v, err := s.read(idx.serial)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("serial: %w", err))
		case v == "":
			// The kernel keeps no serial for an empty string descriptor
			// (usb_cache_string), so sysfs has no serial file: say the
			// same, so that both backends match one approved list.
		default:
			v = safe.String(v)
			d.Serial = &v
		}
	}

	active, err := dev.ActiveConfigNum()
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("active configuration: %w", err))
		if cfg, ok := onlyConfig(want); ok {
			d.Interfaces = interfacesOf(cfg)
		}
	case active == 0:
		// Unconfigured: sysfs shows no interfaces either.
	default:
		cfg, ok := want.Configs[active]
		if !ok {
			errs = append(errs, fmt.Errorf("active configuration %d has no descriptor", active))
			break
		}
		d.Interfaces = interfacesOf(cfg)
	}
	return errors.Join(errs...)
}

// sameDevice reports whether a and b describe the same device: same bus,
// address, port path and ids.
func sameDevice(a, b *gousb.DeviceDesc) bool {
	return a.Bus == b.Bus && a.Address == b.Address && slices.Equal(a.Path, b.Path) &&
		a.Vendor == b.Vendor && a.Product == b.Product
}

// onlyConfig returns the configuration of a device that has exactly one.
func onlyConfig(desc *gousb.DeviceDesc) (gousb.ConfigDesc, bool) {
	if len(desc.Configs) != 1 {
		return gousb.ConfigDesc{}, false
	}
	for _, c := range desc.Configs {
		return c, true
	}
	return gousb.ConfigDesc{}, false
}

// deviceFromDesc fills what the device descriptor gives, and the usb.ids
// names. Strings,
// serial and interfaces need an open device and are left empty. The
// error is non-nil when the bus path is unknown (libusb without sysfs
// gives no port numbers); Path then is "<bus>-addr<address>".
func deviceFromDesc(desc *gousb.DeviceDesc) (Device, error) {
	d := Device{
		BusNum:     desc.Bus,
		DevNum:     desc.Address,
		VendorID:   fmt.Sprintf("%04x", uint16(desc.Vendor)),
		ProductID:  fmt.Sprintf("%04x", uint16(desc.Product)),
		BCDDevice:  fmt.Sprintf("%04x", uint16(desc.Device)),
		Class:      fmt.Sprintf("%02x", uint8(desc.Class)),
		SubClass:   fmt.Sprintf("%02x", uint8(desc.SubClass)),
		Protocol:   fmt.Sprintf("%02x", uint8(desc.Protocol)),
		Speed:      speedString(desc.Speed),
		Interfaces: []Interface{},
	}
	d.VendorName = usbids.Vendor(d.VendorID)
	d.ProductName = usbids.Product(d.VendorID, d.ProductID)
	path, parent, err := busPath(desc.Bus, desc.Address, desc.Path)
	d.Path, d.Parent = path, parent
	return d, err
}

// busPath names a device the way sysfs does: "<bus>-<port>.<port>…" for
// a device, "usb<bus>" for a root hub (no port numbers, address 1), and
// returns the parent hub's name ("" for a root hub). When libusb gives
// no port numbers for a device that is not at address 1 (libusb without
// sysfs), the path is unknown: it returns "<bus>-addr<address>", the
// root hub as parent, and an error.
func busPath(bus, address int, ports []int) (path, parent string, err error) {
	root := "usb" + strconv.Itoa(bus)
	if len(ports) == 0 {
		if address == 1 {
			return root, "", nil
		}
		return strconv.Itoa(bus) + "-addr" + strconv.Itoa(address), root,
			fmt.Errorf("usb bus %d address %d: no port path from libusb", bus, address)
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(bus))
	b.WriteByte('-')
	for i, p := range ports {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(p))
		if i == len(ports)-2 {
			parent = b.String()
		}
	}
	if len(ports) == 1 {
		parent = root
	}
	return b.String(), parent, nil
}

// compareBusPath orders devices by bus, root hub first, then by port
// numbers taken as numbers ("1-2" < "1-2.1" < "1-10").
func compareBusPath(a, b Device) int {
	if c := cmp.Compare(a.BusNum, b.BusNum); c != 0 {
		return c
	}
	pa, pb := portsOf(a.Path), portsOf(b.Path)
	if c := slices.Compare(pa, pb); c != 0 {
		return c
	}
	return strings.Compare(a.Path, b.Path)
}

// portsOf returns the port numbers of a bus path ("1-2.3" → [2 3]), nil
// for a root hub or a path it cannot read.
func portsOf(path string) []int {
	_, rest, ok := strings.Cut(path, "-")
	if !ok {
		return nil
	}
	var out []int
	for _, f := range strings.Split(rest, ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// speedString spells a libusb speed as the kernel's speed attribute does
// (Mbit/s); "" when unknown. libusb 1.0.27's SUPER_PLUS_X2 (6) is mapped
// though gousb v1.1.3 has no name for it.
func speedString(s gousb.Speed) string {
	switch s {
	case gousb.SpeedLow:
		return "1.5"
	case gousb.SpeedFull:
		return "12"
	case gousb.SpeedHigh:
		return "480"
	case gousb.SpeedSuper:
		return "5000"
	case 5: // LIBUSB_SPEED_SUPER_PLUS
		return "10000"
	case 6: // LIBUSB_SPEED_SUPER_PLUS_X2
		return "20000"
	}
	return ""
}

// interfacesOf returns one Interface per interface number of cfg, from
// alternate setting 0 (or, like the kernel, the first setting listed
// when there is no setting 0), sorted by number. Driver is "": libusb
// cannot name the bound driver.
func interfacesOf(cfg gousb.ConfigDesc) []Interface {
	out := []Interface{}
	seen := map[int]bool{}
	for _, in := range cfg.Interfaces {
		if len(in.AltSettings) == 0 || seen[in.Number] {
			continue
		}
		alt := in.AltSettings[0]
		for _, a := range in.AltSettings {
			if a.Alternate == 0 {
				alt = a
				break
			}
		}
		seen[in.Number] = true
		out = append(out, Interface{
			Number:   in.Number,
			Class:    fmt.Sprintf("%02x", uint8(alt.Class)),
			SubClass: fmt.Sprintf("%02x", uint8(alt.SubClass)),
			Protocol: fmt.Sprintf("%02x", uint8(alt.Protocol)),
		})
	}
	slices.SortFunc(out, func(a, b Interface) int { return cmp.Compare(a.Number, b.Number) })
	return out
}

// strIdx holds the string descriptor indexes of a device descriptor.
type strIdx struct{ manufacturer, product, serial int }

// stringIndexes reads iManufacturer, iProduct and iSerialNumber, which
// gousb v1.1.3 keeps in unexported DeviceDesc fields. Reading them
// needs no I/O and tells "no serial" (index 0) from "empty serial".
// TestStringIndexFields fails if a gousb upgrade renames them.
func stringIndexes(desc *gousb.DeviceDesc) strIdx {
	v := reflect.ValueOf(desc).Elem()
	get := func(name string) int {
		f := v.FieldByName(name)
		if !f.IsValid() || !f.CanInt() {
			return 0
		}
		return int(f.Int())
	}
	return strIdx{
		manufacturer: get("iManufacturer"),
		product:      get("iProduct"),
		serial:       get("iSerialNumber"),
	}
}

// stringReader reads string descriptors from an open device the way the
// kernel does: in the first language the device lists, decoded from
// UTF-16LE, so non-ASCII names match sysfs (gousb's GetStringDescriptor
// turns them into '?'; it is the fallback when the raw read fails).
type stringReader struct {
	dev     *gousb.Device
	langID  uint16
	langErr error
	langSet bool
}

const (
	reqTypeStandardIn = 0x80 // device-to-host, standard, device
	reqGetDescriptor  = 0x06
	descTypeString    = 0x03
)

func (s *stringReader) read(index int) (string, error) {
	if !s.langSet {
		s.langSet = true
		buf := make([]byte, 255)
		n, err := s.dev.Control(reqTypeStandardIn, reqGetDescriptor, descTypeString<<8, 0, buf)
		if err == nil {
			s.langID, err = parseLangIDs(buf[:n])
		}
		s.langErr = err
	}
	if s.langErr == nil {
		buf := make([]byte, 255)
		n, err := s.dev.Control(reqTypeStandardIn, reqGetDescriptor, uint16(descTypeString)<<8|uint16(uint8(index)), s.langID, buf)
		if err == nil {
			var v string
			if v, err = parseStringDescriptor(buf[:n]); err == nil {
				return v, nil
			}
		}
	}
	v, err := s.dev.GetStringDescriptor(index)
	if err != nil {
		return "", fmt.Errorf("string descriptor %d: %w", index, err)
	}
	return v, nil
}

// parseLangIDs returns the first language id of string descriptor 0.
func parseLangIDs(b []byte) (uint16, error) {
	body, err := stringDescBody(b)
	if err != nil {
		return 0, fmt.Errorf("language ids: %w", err)
	}
	if len(body) < 2 {
		return 0, errors.New("language ids: descriptor lists no language")
	}
	return uint16(body[0]) | uint16(body[1])<<8, nil
}

// parseStringDescriptor decodes a string descriptor as the kernel's
// usb_string does: the body is UTF-16LE, cut to bLength and to an even
// number of bytes, ends at the first NUL unit, and unpaired surrogates
// are dropped. The result is raw: pass it through safe.String.
func parseStringDescriptor(b []byte) (string, error) {
	body, err := stringDescBody(b)
	if err != nil {
		return "", err
	}
	units := make([]uint16, 0, len(body)/2)
	for i := 0; i+1 < len(body); i += 2 {
		u := uint16(body[i]) | uint16(body[i+1])<<8
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	var sb strings.Builder
	for i := 0; i < len(units); i++ {
		u := units[i]
		switch {
		case utf16.IsSurrogate(rune(u)):
			if u < 0xdc00 && i+1 < len(units) && units[i+1] >= 0xdc00 && units[i+1] <= 0xdfff {
				sb.WriteRune(utf16.DecodeRune(rune(u), rune(units[i+1])))
				i++
			}
			// unpaired: dropped
		default:
			sb.WriteRune(rune(u))
		}
	}
	return sb.String(), nil
}

// stringDescBody checks a string descriptor's header and returns its
// body, cut to bLength and to whole UTF-16 units.
func stringDescBody(b []byte) ([]byte, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("string descriptor: %d bytes, want at least 2", len(b))
	}
	if b[1] != descTypeString {
		return nil, fmt.Errorf("string descriptor: type 0x%02x, want 0x03", b[1])
	}
	n := len(b)
	if int(b[0]) < n {
		n = int(b[0])
	}
	if n < 2 {
		return nil, fmt.Errorf("string descriptor: bLength %d", b[0])
	}
	n -= n & 1
	return b[2:n], nil
}
