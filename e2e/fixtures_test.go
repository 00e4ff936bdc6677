//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// sysfsNode is one device directory of a recording.
type sysfsNode struct {
	Path  string            // below /sys, "/devices/..."
	Attrs map[string][]byte // relative path → content
	Links map[string]string // relative path → target
	Deep  bool              // part of the recorded subtree, not an ancestor
}

// recordDevice dumps the sysfs tree of the guest USB device busPath and
// returns it in the umockdev text format (P:, E:, A:, H:, L: lines).
func (v *vm) recordDevice(busPath string) string {
	v.t.Helper()
	out := v.Run("/bin/e2e-sysdump /sys/bus/usb/devices/" + busPath)
	nodes, err := parseDump(out)
	if err != nil {
		v.Fatalf("parse sysfs dump of %s: %v", busPath, err)
	}
	return formatUmockdev(nodes)
}

// parseDump groups the dump into device nodes: a directory with a
// uevent file is a device; files in other directories belong to the
// nearest device above them.
func parseDump(out string) ([]*sysfsNode, error) {
	type entry struct{ kind, path, val string }
	var entries []entry
	dirs := map[string]bool{}
	deep := map[string]bool{}
	first := ""
	for i, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "D":
			dirs[rest] = true
			if first == "" {
				first = rest
			}
			if strings.HasPrefix(rest, first) {
				deep[rest] = true
			}
		case "L":
			p, target, ok := strings.Cut(rest, " ")
			if !ok {
				return nil, fmt.Errorf("line %d: bad link %q", i+1, line)
			}
			entries = append(entries, entry{"L", p, target})
		case "F":
			_, pv, _ := strings.Cut(rest, " ")
			p, val, _ := strings.Cut(pv, " ")
			entries = append(entries, entry{"F", p, val})
		default:
			return nil, fmt.Errorf("line %d: unexpected %q", i+1, line)
		}
	}
	isDev := map[string]bool{}
	for _, e := range entries {
		if e.kind == "F" && filepath.Base(e.path) == "uevent" {
			isDev[filepath.Dir(e.path)] = true
		}
	}
	nodes := map[string]*sysfsNode{}
	owner := func(p string) (*sysfsNode, string) {
		for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
			if isDev[d] {
				n := nodes[d]
				if n == nil {
					n = &sysfsNode{Path: strings.TrimPrefix(d, "/sys"), Attrs: map[string][]byte{},
						Links: map[string]string{}, Deep: deep[d]}
					nodes[d] = n
				}
				rel, _ := filepath.Rel(d, p)
				return n, rel
			}
		}
		return nil, ""
	}
	for _, e := range entries {
		n, rel := owner(e.path)
		if n == nil {
			continue
		}
		if e.kind == "L" {
			// Links to other devices are kept only for the ones the
			// agent and sysfs helpers follow.
			switch rel {
			case "driver", "subsystem", "device", "port":
				n.Links[rel] = e.val
			}
			continue
		}
		data, err := base64.StdEncoding.DecodeString(e.val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.path, err)
		}
		// Ancestors outside USB keep only their uevent: PCI config
		// space and resources say nothing about USB devices.
		if !n.Deep && !strings.Contains(n.Path, "/usb") && rel != "uevent" {
			continue
		}
		n.Attrs[rel] = data
	}
	var list []*sysfsNode
	for _, n := range nodes {
		list = append(list, n)
	}
	// The recorded device and its subtree first (shallow to deep), then
	// the ancestors from the nearest up, as umockdev-record does.
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.Deep != b.Deep {
			return a.Deep
		}
		if a.Deep {
			return a.Path < b.Path
		}
		return len(a.Path) > len(b.Path)
	})
	return list, nil
}

// formatUmockdev writes nodes in umockdev's text format.
func formatUmockdev(nodes []*sysfsNode) string {
	var b strings.Builder
	for i, n := range nodes {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "P: %s\n", n.Path)
		for _, l := range strings.Split(strings.TrimSpace(string(n.Attrs["uevent"])), "\n") {
			if l != "" {
				fmt.Fprintf(&b, "E: %s\n", l)
			}
		}
		var keys []string
		for k := range n.Attrs {
			if k != "uevent" {
				keys = append(keys, k)
			}
		}
		for k := range n.Links {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if t, ok := n.Links[k]; ok {
				fmt.Fprintf(&b, "L: %s=%s\n", k, t)
				continue
			}
			v := n.Attrs[k]
			if isText(v) {
				fmt.Fprintf(&b, "A: %s=%s\n", k, strings.ReplaceAll(string(v), "\n", `\n`))
			} else {
				fmt.Fprintf(&b, "H: %s=%s\n", k, strings.ToUpper(hex.EncodeToString(v)))
			}
		}
	}
	return b.String()
}

// isText reports whether an attribute can be an A: line: UTF-8 without
// control characters other than newline and tab, and no backslash.
func isText(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for _, c := range v {
		if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// TestRecordFixtures re-records the sysfs fixtures in testdata/sysfs from
// the guest's real kernel. It runs only with MAMORI_E2E_RECORD=1, then
// writes the files; commit them with a look at the diff.
func TestRecordFixtures(t *testing.T) {
	if os.Getenv("MAMORI_E2E_RECORD") == "" {
		t.Skip("set MAMORI_E2E_RECORD=1 to re-record testdata/sysfs")
	}
	e := setup(t)
	v := boot(t, e)
	out := filepath.Join("testdata", "sysfs")
	if err := mkdirAll(out); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(out, name+".umockdev"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s (%d bytes)", name, len(text))
	}

	// A QEMU usb-storage stick with a serial and a FAT partition.
	img := v.newStickImage("fixture")
	s := v.PlugStick("fx", img, "E2ESTICK0001", true)
	path := v.usbPathBySerial(s.Serial, 15*time.Second)
	v.partitionUnder(path, 15*time.Second)
	write("qemu-usb-storage", v.recordDevice(path))

	// The same stick made unauthorized: interfaces and disk are gone,
	// only descriptors tell the classes.
	v.Run("echo 0 > /sys/bus/usb/devices/" + path + "/authorized")
	v.WaitGuest("the interfaces of "+path+" to go", 10*time.Second, "! ls -d /sys/bus/usb/devices/"+path+"/"+path+":* 2>/dev/null")
	write("qemu-usb-storage-unauthorized", v.recordDevice(path))
	v.UnplugStick(s)

	// QEMU's usb-kbd.
	v.PlugKeyboard("fxkbd")
	kp := v.usbPathByIDs("0627", "0001", 15*time.Second)
	v.WaitGuest("usbhid bound to "+kp, 10*time.Second, "[ -e /sys/bus/usb/devices/"+kp+":1.0/driver ]")
	write("qemu-usb-kbd", v.recordDevice(kp))
	v.Unplug("fxkbd")

	// QEMU's usb-serial (FTDI).
	v.PlugSerial("fxser")
	sp := v.usbPathByIDs("0403", "6001", 15*time.Second)
	v.WaitGuest("ttyUSB below "+sp, 10*time.Second, "ls -d /sys/bus/usb/devices/"+sp+":1.0/ttyUSB*")
	write("qemu-usb-serial-ftdi", v.recordDevice(sp))
	v.UnplugSerial("fxser")

	// A composite gadget on dummy_hcd: boot keyboard + mass storage.
	g := gadget{Name: "fxcomp", VendorID: "1209", ProductID: "c0de", Serial: "COMPOSITE-0001",
		Manufacturer: "mamori e2e", Product: "Keyboard with storage", Storage: true, Keyboard: true}
	v.PlugGadget(g)
	gp := v.usbPathBySerial(g.Serial, 15*time.Second)
	v.WaitGuest("a disk below "+gp, 15*time.Second, "ls -d /sys/bus/usb/devices/"+gp+"/*/host*/target*/*/block/*")
	write("gadget-composite-hid-storage", v.recordDevice(gp))
	v.UnplugGadget(g)

	// A gadget stick without a serial number.
	g = gadget{Name: "fxnoser", VendorID: "1209", ProductID: "0001",
		Manufacturer: "mamori e2e", Product: "Stick without serial", Storage: true}
	v.PlugGadget(g)
	np := v.usbPathByIDs("1209", "0001", 15*time.Second)
	v.WaitGuest("a disk below "+np, 15*time.Second, "ls -d /sys/bus/usb/devices/"+np+"/*/host*/target*/*/block/*")
	if out, err := v.Exec(10*time.Second, "cat /sys/bus/usb/devices/"+np+"/serial"); err == nil {
		t.Errorf("gadget without serial shows serial %q", out)
	}
	write("gadget-storage-no-serial", v.recordDevice(np))
	v.UnplugGadget(g)
}
