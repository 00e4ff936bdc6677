package uevent

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxSize is the largest datagram Parse accepts. The kernel builds a uevent
// from "ACTION@DEVPATH" and an environment buffer of 2048 bytes
// (UEVENT_BUFFER_SIZE); anything above 8 KiB is not a kernel uevent.
const MaxSize = 8 << 10

// ErrMalformed is wrapped by every error Parse returns for input that is not
// a well-formed kernel uevent (ErrUdevMessage excepted).
var ErrMalformed = errors.New("malformed uevent")

// ErrUdevMessage is returned by Parse for a libudev-format message (it
// starts with "libudev\x00"): udevd's re-broadcast on netlink group 2, not a
// kernel uevent.
var ErrUdevMessage = errors.New("libudev-format message, not a kernel uevent")

var udevMagic = []byte("libudev\x00")

// isUdev reports whether b is a libudev-format message.
func isUdev(b []byte) bool { return bytes.HasPrefix(b, udevMagic) }

// Parse parses one kernel uevent datagram:
//
//	ACTION@DEVPATH\0KEY=VALUE\0KEY=VALUE\0...
//
// (the final NUL is optional). The header must agree with the ACTION and
// DEVPATH keys, both of which must be present; keys must be unique,
// non-empty and printable ASCII; SEQNUM, when present, must be a decimal
// number. DEVPATH must be an absolute, clean path ("/devices/..."; no ".",
// ".." or empty components, no control characters) so that joining it to a
// sysfs root cannot escape it.
//
// Values are kept byte for byte: some of them (HID_NAME, ...) come from the
// device and are attacker-controlled; pass them through safe.String before
// showing or logging them. Errors name the byte offset of the problem and
// wrap ErrMalformed, or are ErrUdevMessage.
func Parse(b []byte) (Event, error) {
	switch {
	case len(b) == 0:
		return Event{}, fmt.Errorf("%w: empty datagram", ErrMalformed)
	case isUdev(b):
		return Event{}, ErrUdevMessage
	case len(b) > MaxSize:
		return Event{}, fmt.Errorf("%w: %d bytes, more than the %d a kernel uevent can have", ErrMalformed, len(b), MaxSize)
	}
	// One string for the whole datagram: every key and value below is a
	// substring of it, so parsing costs one copy plus the map.
	s := string(b)
	s = strings.TrimSuffix(s, "\x00")

	header, rest, _ := strings.Cut(s, "\x00")
	action, devpath, ok := strings.Cut(header, "@")
	if !ok {
		return Event{}, fmt.Errorf("%w: header %q at byte 0: no '@'", ErrMalformed, clip(header))
	}
	if err := checkAction(action); err != nil {
		return Event{}, fmt.Errorf("%w: header action at byte 0: %v", ErrMalformed, err)
	}
	if err := checkDevPath(devpath); err != nil {
		return Event{}, fmt.Errorf("%w: header devpath at byte %d: %v", ErrMalformed, len(action)+1, err)
	}

	ev := Event{Action: action, DevPath: devpath}
	ev.Env = make(map[string]string, strings.Count(rest, "\x00")+1)
	off := len(header) + 1
	for rest != "" {
		var field string
		field, rest, _ = strings.Cut(rest, "\x00")
		at := off
		off += len(field) + 1
		key, value, ok := strings.Cut(field, "=")
		switch {
		case field == "":
			return Event{}, fmt.Errorf("%w: empty field at byte %d", ErrMalformed, at)
		case !ok:
			return Event{}, fmt.Errorf("%w: field %q at byte %d: no '='", ErrMalformed, clip(field), at)
		}
		if err := checkKey(key); err != nil {
			return Event{}, fmt.Errorf("%w: key at byte %d: %v", ErrMalformed, at, err)
		}
		if _, dup := ev.Env[key]; dup {
			return Event{}, fmt.Errorf("%w: key %s at byte %d: repeated", ErrMalformed, key, at)
		}
		ev.Env[key] = value
		switch key {
		case "ACTION":
			if value != action {
				return Event{}, fmt.Errorf("%w: ACTION=%q at byte %d: header says %q", ErrMalformed, clip(value), at, action)
			}
		case "DEVPATH":
			if value != devpath {
				return Event{}, fmt.Errorf("%w: DEVPATH=%q at byte %d: header says %q", ErrMalformed, clip(value), at, devpath)
			}
		case "SUBSYSTEM":
			ev.Subsystem = value
		case "DEVTYPE":
			ev.DevType = value
		case "SEQNUM":
			n, err := parseDecimal(value)
			if err != nil {
				return Event{}, fmt.Errorf("%w: SEQNUM=%q at byte %d: %v", ErrMalformed, clip(value), at, err)
			}
			ev.Seqnum = n
		}
	}
	if _, ok := ev.Env["ACTION"]; !ok {
		return Event{}, fmt.Errorf("%w: no ACTION key", ErrMalformed)
	}
	if _, ok := ev.Env["DEVPATH"]; !ok {
		return Event{}, fmt.Errorf("%w: no DEVPATH key", ErrMalformed)
	}
	return ev, nil
}

// MarshalBinary returns e in kernel uevent format, the inverse of Parse:
// the header, ACTION, DEVPATH, SUBSYSTEM, DEVTYPE (these from the fields,
// the last two only when set or present in Env), the other Env keys in
// sorted order, SEQNUM, each NUL-terminated. It fails when the result would
// not parse. Tests use it to synthesize datagrams.
func (e Event) MarshalBinary() ([]byte, error) {
	var b []byte
	add := func(kv ...string) {
		for _, s := range kv {
			b = append(b, s...)
		}
		b = append(b, 0)
	}
	add(e.Action, "@", e.DevPath)
	add("ACTION=", e.Action)
	add("DEVPATH=", e.DevPath)
	if _, ok := e.Env["SUBSYSTEM"]; ok || e.Subsystem != "" {
		add("SUBSYSTEM=", e.Subsystem)
	}
	if _, ok := e.Env["DEVTYPE"]; ok || e.DevType != "" {
		add("DEVTYPE=", e.DevType)
	}
	keys := make([]string, 0, len(e.Env))
	for k := range e.Env {
		switch k {
		case "ACTION", "DEVPATH", "SUBSYSTEM", "DEVTYPE", "SEQNUM":
		default:
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		add(k, "=", e.Env[k])
	}
	if _, ok := e.Env["SEQNUM"]; ok || e.Seqnum != 0 {
		add("SEQNUM=", strconv.FormatUint(e.Seqnum, 10))
	}
	if _, err := Parse(b); err != nil {
		return nil, fmt.Errorf("marshal uevent: %w", err)
	}
	return b, nil
}

// checkAction accepts a lower-case word: add, remove, change, move, online,
// offline, bind, unbind, and whatever later kernels add.
func checkAction(a string) error {
	if a == "" {
		return errors.New("empty")
	}
	if len(a) > 32 {
		return fmt.Errorf("%d bytes long", len(a))
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c < 'a' || c > 'z' {
			return fmt.Errorf("byte %#02x in %q", c, clip(a))
		}
	}
	return nil
}

// checkDevPath accepts an absolute sysfs path without ".", ".." or empty
// components and without control characters.
func checkDevPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q does not start with '/'", clip(p))
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("control byte %#02x at %d", c, i)
		}
	}
	for comp := range strings.SplitSeq(p[1:], "/") {
		switch comp {
		case "", ".", "..":
			return fmt.Errorf("%q has a %q component", clip(p), comp)
		}
	}
	return nil
}

// checkKey accepts printable ASCII without '=' or space.
func checkKey(k string) error {
	if k == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("byte %#02x in %q", c, clip(k))
		}
	}
	return nil
}

// parseDecimal parses ASCII digits only (no sign, no spaces) into a uint64.
func parseDecimal(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// clip shortens s for an error message (which %q then escapes).
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// ParseProduct parses the PRODUCT value of a usb_device or usb_interface
// uevent, "58f/6387/10b": idVendor, idProduct and bcdDevice in hex without
// leading zeros. It returns each as 4 lower-case hex digits
// ("058f", "6387", "010b").
func ParseProduct(s string) (vendor, product, bcd string, err error) {
	f, err := split3(s, "PRODUCT")
	if err != nil {
		return "", "", "", err
	}
	var out [3]string
	for i, p := range f {
		if len(p) > 4 {
			return "", "", "", fmt.Errorf("PRODUCT %q: part %d %q: more than 4 hex digits", clip(s), i+1, clip(p))
		}
		n, err := strconv.ParseUint(p, 16, 16)
		if err != nil || !isHex(p) {
			return "", "", "", fmt.Errorf("PRODUCT %q: part %d %q: not hex", clip(s), i+1, clip(p))
		}
		out[i] = fmt.Sprintf("%04x", n)
	}
	return out[0], out[1], out[2], nil
}

// ParseInterface parses the INTERFACE value of a usb_interface uevent,
// "8/6/80": bInterfaceClass, bInterfaceSubClass and bInterfaceProtocol in
// decimal. It returns each as 2 lower-case hex digits ("08", "06", "50").
func ParseInterface(s string) (class, subclass, protocol string, err error) {
	return parseClassTriple(s, "INTERFACE")
}

// ParseType parses the TYPE value of a usb_device or usb_interface uevent,
// "239/2/1": bDeviceClass, bDeviceSubClass and bDeviceProtocol in decimal.
// It returns each as 2 lower-case hex digits ("ef", "02", "01").
func ParseType(s string) (class, subclass, protocol string, err error) {
	return parseClassTriple(s, "TYPE")
}

func parseClassTriple(s, name string) (a, b, c string, err error) {
	f, err := split3(s, name)
	if err != nil {
		return "", "", "", err
	}
	var out [3]string
	for i, p := range f {
		n, err := parseDecimal(p)
		if err != nil || n > 255 || len(p) > 3 {
			return "", "", "", fmt.Errorf("%s %q: part %d %q: not a decimal byte", name, clip(s), i+1, clip(p))
		}
		out[i] = fmt.Sprintf("%02x", n)
	}
	return out[0], out[1], out[2], nil
}

func split3(s, name string) ([3]string, error) {
	var f [3]string
	a, rest, ok1 := strings.Cut(s, "/")
	b, c, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || strings.Contains(c, "/") {
		return f, fmt.Errorf("%s %q: want three '/'-separated parts", name, clip(s))
	}
	f = [3]string{a, b, c}
	for i, p := range f {
		if p == "" {
			return f, fmt.Errorf("%s %q: part %d is empty", name, clip(s), i+1)
		}
	}
	return f, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
