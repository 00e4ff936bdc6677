// Package sysfstest builds sysfs trees for tests from recordings of real
// devices: umockdev text (umockdev-record output) and fwupd emulation
// JSON. A tree holds devices/... directories with the recorded
// attributes and links, plus what the kernel adds around them:
// bus/usb/devices links for USB devices and interfaces, class/block links
// for block devices, subsystem links and bus/*/drivers/* directories.
//
// It is a test helper: it trusts its input less than a parser must not
// (paths that would leave the root are refused) but makes no attempt to
// emulate sysfs beyond files, directories and symlinks.
package sysfstest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Recording is a list of devices, parents usually after children as
// umockdev writes them.
type Recording struct {
	Devices []Device
}

// Device is one sysfs device directory.
type Device struct {
	// Path is the directory below the sysfs root, with a leading slash:
	// "/devices/pci0000:00/0000:00:14.0/usb1/1-2".
	Path  string
	Attrs []Attr // files, in recording order; Name may hold "/"
	Links []Link // symlinks in the directory (driver, subsystem, port)
	Props []Prop // udev properties (umockdev E: lines)
}

// Attr is one attribute file.
type Attr struct {
	Name  string
	Value []byte
}

// Link is one symlink; Target is relative to the device directory, as
// sysfs writes it.
type Link struct {
	Name, Target string
}

// Prop is one udev property.
type Prop struct {
	Key, Value string
}

// Prop returns the value of property key, or "".
func (d *Device) Prop(key string) string {
	for _, p := range d.Props {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

// Attr returns the value of attribute name and whether it is there.
func (d *Device) Attr(name string) ([]byte, bool) {
	for _, a := range d.Attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return nil, false
}

// SetAttr sets (or adds) attribute name.
func (d *Device) SetAttr(name string, value []byte) {
	for i := range d.Attrs {
		if d.Attrs[i].Name == name {
			d.Attrs[i].Value = value
			return
		}
	}
	d.Attrs = append(d.Attrs, Attr{Name: name, Value: value})
}

// DelAttr removes attribute name.
func (d *Device) DelAttr(name string) {
	d.Attrs = slices.DeleteFunc(d.Attrs, func(a Attr) bool { return a.Name == name })
}

// Name returns the last component of the device's path ("1-2", "sda1").
func (d *Device) Name() string { return path.Base(d.Path) }

// Find returns the device whose name (last path component) is name.
func (r *Recording) Find(name string) *Device {
	for i := range r.Devices {
		if r.Devices[i].Name() == name {
			return &r.Devices[i]
		}
	}
	return nil
}

// ParseUmockdev parses umockdev-record text: blocks separated by blank
// lines, each with a "P:" path and "A:" (text attribute, "\n" and "\\"
// escaped), "H:" (hex attribute), "L:" (symlink), "E:" (udev property),
// and "N:"/"S:" lines (device nodes, ignored).
func ParseUmockdev(data []byte) (*Recording, error) {
	r := &Recording{}
	var cur *Device
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(l) == "" {
			cur = nil
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		tag, val, ok := strings.Cut(l, ": ")
		if !ok {
			if t, ok2 := strings.CutSuffix(l, ":"); ok2 {
				tag, val = t, ""
			} else {
				return nil, fmt.Errorf("line %d: no \"X: \" tag in %q", line, l)
			}
		}
		if tag == "P" {
			p, err := cleanDevPath(val)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			r.Devices = append(r.Devices, Device{Path: p})
			cur = &r.Devices[len(r.Devices)-1]
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: %s: line before any P: line", line, tag)
		}
		switch tag {
		case "N", "S":
			// Device nodes and /dev links: not sysfs.
		case "E":
			k, v, _ := strings.Cut(val, "=")
			cur.Props = append(cur.Props, Prop{Key: k, Value: v})
		case "A":
			k, v, _ := strings.Cut(val, "=")
			if err := checkRelName(k); err != nil {
				return nil, fmt.Errorf("line %d: attribute: %w", line, err)
			}
			cur.Attrs = append(cur.Attrs, Attr{Name: k, Value: []byte(unescape(v))})
		case "H":
			k, v, _ := strings.Cut(val, "=")
			if err := checkRelName(k); err != nil {
				return nil, fmt.Errorf("line %d: attribute: %w", line, err)
			}
			b, err := hex.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: H: %s: %w", line, k, err)
			}
			cur.Attrs = append(cur.Attrs, Attr{Name: k, Value: b})
		case "L":
			k, v, _ := strings.Cut(val, "=")
			if err := checkRelName(k); err != nil {
				return nil, fmt.Errorf("line %d: link: %w", line, err)
			}
			cur.Links = append(cur.Links, Link{Name: k, Target: v})
		default:
			return nil, fmt.Errorf("line %d: unknown tag %q", line, tag)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

// unescape undoes umockdev's escaping of attribute values: "\\" and
// "\n" (also "\t", "\r"); other backslashes are kept.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case 't':
				b.WriteByte('\t')
				i++
				continue
			case 'r':
				b.WriteByte('\r')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cleanDevPath accepts "/devices/..." (or "/sys/devices/...") and returns
// "/devices/...".
func cleanDevPath(p string) (string, error) {
	p = strings.TrimPrefix(p, "/sys")
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("device path %q is not absolute", p)
	}
	c := path.Clean(p)
	if c != p || c == "/" {
		return "", fmt.Errorf("device path %q is not clean", p)
	}
	return c, nil
}

func checkRelName(n string) error {
	if n == "" || path.IsAbs(n) || path.Clean(n) != n || n == ".." || strings.HasPrefix(n, "../") {
		return fmt.Errorf("bad name %q", n)
	}
	return nil
}

// FromUmockdev parses umockdev text and writes it into the tree at root
// (created if needed; existing files are overwritten, so several
// recordings can be merged).
func FromUmockdev(root string, data []byte) error {
	r, err := ParseUmockdev(data)
	if err != nil {
		return err
	}
	return r.Write(root)
}

// Build writes each recording file into root, failing the test on error:
// files ending in .json are fwupd emulation logs, the rest umockdev text.
func Build(t testing.TB, root string, files ...string) {
	t.Helper()
	for _, f := range files {
		r, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Write(root); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// Load reads and parses a recording file: fwupd JSON when it ends in
// .json, umockdev text otherwise.
func Load(file string) (*Recording, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var r *Recording
	if strings.HasSuffix(file, ".json") {
		r, err = ParseFwupd(data)
	} else {
		r, err = ParseUmockdev(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

// busSubsystems are the subsystems that are buses (their links point to
// bus/<name>); others are classes.
var busSubsystems = map[string]bool{
	"usb": true, "pci": true, "hid": true, "scsi": true, "usb-serial": true,
	"platform": true, "acpi": true, "i2c": true, "pnp": true, "serio": true,
}

// ueventKeys are the properties the kernel itself puts in a device's
// uevent file; the rest of a recording's E: lines come from udev.
var ueventKeys = map[string]bool{
	"MAJOR": true, "MINOR": true, "DEVNAME": true, "DEVTYPE": true, "DRIVER": true,
	"PRODUCT": true, "TYPE": true, "BUSNUM": true, "DEVNUM": true, "INTERFACE": true,
	"MODALIAS": true, "PARTN": true, "PARTNAME": true, "DISKSEQ": true,
	"HID_ID": true, "HID_NAME": true, "HID_PHYS": true, "HID_UNIQ": true,
}

// Write creates the recording's devices under root.
func (r *Recording) Write(root string) error {
	for i := range r.Devices {
		if err := writeDevice(root, &r.Devices[i]); err != nil {
			return fmt.Errorf("%s: %w", r.Devices[i].Path, err)
		}
	}
	return nil
}

func writeDevice(root string, d *Device) error {
	if _, err := cleanDevPath(d.Path); err != nil {
		return err
	}
	dir := filepath.Join(root, filepath.FromSlash(d.Path))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hasUevent := false
	for _, a := range d.Attrs {
		if err := checkRelName(a.Name); err != nil {
			return err
		}
		hasUevent = hasUevent || a.Name == "uevent"
		p := filepath.Join(dir, filepath.FromSlash(a.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, a.Value, 0o644); err != nil {
			return err
		}
	}
	if !hasUevent && len(d.Props) > 0 {
		var b strings.Builder
		for _, p := range d.Props {
			if !ueventKeys[p.Key] {
				continue
			}
			v := p.Value
			if p.Key == "DEVNAME" {
				v = strings.TrimPrefix(v, "/dev/")
			}
			fmt.Fprintf(&b, "%s=%s\n", p.Key, v)
		}
		if err := os.WriteFile(filepath.Join(dir, "uevent"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	links := slices.Clone(d.Links)
	subsystem := d.Prop("SUBSYSTEM")
	if subsystem != "" && !slices.ContainsFunc(links, func(l Link) bool { return l.Name == "subsystem" }) {
		kind := "class"
		if busSubsystems[subsystem] {
			kind = "bus"
		}
		links = append(links, Link{Name: "subsystem", Target: relTo(d.Path+"/subsystem", "/"+kind+"/"+subsystem)})
	}
	for _, l := range links {
		if err := checkRelName(l.Name); err != nil {
			return err
		}
		if err := symlink(root, path.Join(d.Path, l.Name), l.Target); err != nil {
			return err
		}
		// Give driver and subsystem links something to point at.
		if l.Name == "driver" || l.Name == "subsystem" {
			if !leavesRoot(d.Path, l.Target) {
				t := path.Join(strings.TrimPrefix(d.Path, "/"), l.Target)
				if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(t)), 0o755); err != nil {
					return err
				}
			}
		}
	}

	name := d.Name()
	switch {
	case subsystem == "usb" || subsystem == "" && isUSBName(name) && strings.Contains(d.Path, "/usb"):
		if err := symlink(root, "/bus/usb/devices/"+name, relTo("/bus/usb/devices/"+name, d.Path)); err != nil {
			return err
		}
	case subsystem == "block" || subsystem == "" && path.Base(path.Dir(d.Path)) == "block" ||
		subsystem == "" && path.Base(path.Dir(path.Dir(d.Path))) == "block":
		if err := symlink(root, "/class/block/"+name, relTo("/class/block/"+name, d.Path)); err != nil {
			return err
		}
	}
	return nil
}

// isUSBName reports whether name is a USB device ("usb1", "1-2.3") or
// interface ("1-2.3:1.0") name.
func isUSBName(name string) bool {
	if rest, ok := strings.CutPrefix(name, "usb"); ok {
		_, err := strconv.Atoi(rest)
		return err == nil
	}
	dev, _, _ := strings.Cut(name, ":")
	bus, ports, ok := strings.Cut(dev, "-")
	if !ok {
		return false
	}
	if _, err := strconv.Atoi(bus); err != nil {
		return false
	}
	for _, p := range strings.Split(ports, ".") {
		if _, err := strconv.Atoi(p); err != nil {
			return false
		}
	}
	return true
}

// relTo returns the relative link target from the directory holding
// link (a path below the root, with leading slash) to target.
func relTo(link, target string) string {
	rel, err := filepath.Rel(path.Dir(link), target)
	if err != nil {
		return target
	}
	return filepath.ToSlash(rel)
}

// symlink makes (or replaces) the link at rel (below root) to target.
func symlink(root, rel, target string) error {
	p := filepath.Join(root, filepath.FromSlash(rel))
	if path.IsAbs(target) || leavesRoot(path.Dir(rel), target) {
		return fmt.Errorf("link %s -> %s leaves the root", rel, target)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Symlink(target, p)
}

// leavesRoot reports whether target, relative to directory dir (a path
// below the root with a leading slash), points above the root.
func leavesRoot(dir, target string) bool {
	j := path.Join(strings.TrimPrefix(dir, "/"), target)
	return j == ".." || strings.HasPrefix(j, "../") || path.IsAbs(target)
}

// Plug writes the USB device busPath of rec (with its interfaces and
// what hangs below them) into the tree at root: the device appears as
// on a hot-plug, its hubs being there already or not.
func Plug(root string, rec *Recording, busPath string) error {
	sub := rec.Subtree(busPath)
	if len(sub.Devices) == 0 {
		return fmt.Errorf("no device %s in the recording", busPath)
	}
	return sub.Write(root)
}

// Remove unplugs a USB device from the tree at root: it removes the
// device's directory (with its interfaces and the devices below it) and
// every bus/usb/devices and class/block link that pointed into it.
func Remove(root, busPath string) error {
	link := filepath.Join(root, "bus", "usb", "devices", busPath)
	target, err := os.Readlink(link)
	if err != nil {
		return err
	}
	if path.IsAbs(target) || leavesRoot("/bus/usb/devices", target) {
		return fmt.Errorf("link %s leaves the root", link)
	}
	devDir := path.Join("/bus/usb/devices", target)
	if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(devDir))); err != nil {
		return err
	}
	for _, dir := range []string{"/bus/usb/devices", "/class/block"} {
		ents, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		for _, e := range ents {
			p := filepath.Join(root, filepath.FromSlash(dir), e.Name())
			t, err := os.Readlink(p)
			if err != nil {
				continue
			}
			if r := path.Join(dir, t); r == devDir || strings.HasPrefix(r, devDir+"/") {
				if err := os.Remove(p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Rename returns a copy of the recording with USB device oldBus renamed
// newBus ("1-2.3" → "1-2.7"), in paths and link targets, with its
// interfaces ("1-2.3:1.0") and hub ports ("1-2.3-port1") alike.
func (r *Recording) Rename(oldBus, newBus string) *Recording {
	out := &Recording{Devices: make([]Device, len(r.Devices))}
	for i, d := range r.Devices {
		nd := Device{
			Path:  renamePath(d.Path, oldBus, newBus),
			Attrs: slices.Clone(d.Attrs),
			Props: slices.Clone(d.Props),
		}
		for _, l := range d.Links {
			nd.Links = append(nd.Links, Link{Name: l.Name, Target: renamePath(l.Target, oldBus, newBus)})
		}
		out.Devices[i] = nd
	}
	return out
}

func renamePath(p, oldBus, newBus string) string {
	parts := strings.Split(p, "/")
	for i, c := range parts {
		switch {
		case c == oldBus:
			parts[i] = newBus
		case strings.HasPrefix(c, oldBus+":"), strings.HasPrefix(c, oldBus+"-port"):
			parts[i] = newBus + c[len(oldBus):]
		}
	}
	return strings.Join(parts, "/")
}

// Subtree returns the devices of the recording at or below the device
// named name (the device, its interfaces and their children).
func (r *Recording) Subtree(name string) *Recording {
	d := r.Find(name)
	if d == nil {
		return &Recording{}
	}
	prefix := d.Path
	out := &Recording{}
	for _, x := range r.Devices {
		if x.Path == prefix || strings.HasPrefix(x.Path, prefix+"/") {
			out.Devices = append(out.Devices, x)
		}
	}
	return out
}

// Replicate writes rec into root, then copies of its USB device leaf
// (with its interfaces and their children) next to it on the same hub,
// under fresh port numbers, until the tree holds n USB devices in all.
// Each copy gets its own devnum. It returns the bus paths of the copies.
// This makes large trees of real-looking devices for benchmarks.
func Replicate(root string, rec *Recording, leaf string, n int) ([]string, error) {
	if err := rec.Write(root); err != nil {
		return nil, err
	}
	have := 0
	for i := range rec.Devices {
		if name := rec.Devices[i].Name(); isUSBName(name) && !strings.Contains(name, ":") {
			have++
		}
	}
	sub := rec.Subtree(leaf)
	if len(sub.Devices) == 0 {
		return nil, fmt.Errorf("no device %s in the recording", leaf)
	}
	parent, _, ok := cutLastPort(leaf)
	if !ok {
		return nil, fmt.Errorf("%s is a root hub: cannot replicate", leaf)
	}
	var paths []string
	for port := 1; have < n; port++ {
		name := parent + strconv.Itoa(port)
		if name == leaf || rec.Find(name) != nil {
			continue
		}
		cp := sub.Rename(leaf, name)
		if d := cp.Find(name); d != nil {
			d.SetAttr("devnum", []byte(strconv.Itoa(100+port)+"\n"))
			d.SetAttr("devpath", []byte(strings.SplitN(name, "-", 2)[1]+"\n"))
		}
		if err := cp.Write(root); err != nil {
			return paths, err
		}
		paths = append(paths, name)
		have++
	}
	return paths, nil
}

// cutLastPort splits "1-2.3" into "1-2." and "3", and "1-2" into "1-"
// and "2".
func cutLastPort(bus string) (prefix, port string, ok bool) {
	if i := strings.LastIndexAny(bus, ".-"); i >= 0 {
		return bus[:i+1], bus[i+1:], true
	}
	return "", "", false
}
