package usb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/mamori-agent/mamori/collector/usbids"
)

// winPC is a PC as SetupAPI shows it: a root hub with a SanDisk stick, a
// Logitech Unifying receiver (composite, three HID interfaces), an
// external hub with a Samsung T7 (UASP, a SCSI\ disk) behind it, and the
// broken and unrelated nodes a real machine also has. The ids follow the
// forms of winid_test.go's sources; the T7's are its public ids
// (04E8:4001).
func winPC() ([]winNode, []winDisk) {
	root := `USB\ROOT_HUB30\4&1D2E5277&0&0`
	nodes := []winNode{
		{ParentID: `PCI\VEN_8086&DEV_9D2F&SUBSYS_225617AA&REV_21\3&11583659&0&A0`, InstanceID: root,
			HardwareIDs: []string{`USB\ROOT_HUB30&VID8086&PID9D2F&REV0021`, `USB\ROOT_HUB30&VID8086&PID9D2F`, `USB\ROOT_HUB30`},
			Class:       "USB", Description: "USB Root Hub (USB 3.0)", Manufacturer: "(Standard USB HUBs)", Service: "USBHUB3"},
		{ParentID: root, InstanceID: `USB\VID_0781&PID_5567\4C530001230719117094`,
			HardwareIDs:   []string{`USB\VID_0781&PID_5567&REV_0100`, `USB\VID_0781&PID_5567`},
			CompatibleIDs: []string{`USB\Class_08&SubClass_06&Prot_50`, `USB\Class_08&SubClass_06`, `USB\Class_08`},
			Class:         "USB", Description: "USB Mass Storage Device", Manufacturer: "Compatible USB storage device", Service: "USBSTOR"},
		{ParentID: root, InstanceID: `USB\VID_046D&PID_C52B\5&1E2A5B3C&0&2`,
			HardwareIDs:   []string{`USB\VID_046D&PID_C52B&REV_1211`, `USB\VID_046D&PID_C52B`},
			CompatibleIDs: []string{`USB\DevClass_00&SubClass_00&Prot_00`, `USB\DevClass_00&SubClass_00`, `USB\DevClass_00`, `USB\COMPOSITE`},
			Class:         "USB", Description: "USB Composite Device", Manufacturer: "(Standard USB Host Controller)", Service: "usbccgp"},
		{ParentID: `USB\VID_046D&PID_C52B\5&1E2A5B3C&0&2`, InstanceID: `USB\VID_046D&PID_C52B&MI_00\7&2A0B5C5&0&0000`,
			HardwareIDs:   []string{`USB\VID_046D&PID_C52B&REV_1211&MI_00`, `USB\VID_046D&PID_C52B&MI_00`},
			CompatibleIDs: []string{`USB\Class_03&SubClass_01&Prot_01`, `USB\Class_03&SubClass_01`, `USB\Class_03`},
			Class:         "HIDClass", Description: "USB Input Device", Service: "HidUsb"},
		{ParentID: `USB\VID_046D&PID_C52B\5&1E2A5B3C&0&2`, InstanceID: `USB\VID_046D&PID_C52B&MI_02\7&2A0B5C5&0&0002`,
			HardwareIDs:   []string{`USB\VID_046D&PID_C52B&REV_1211&MI_02`, `USB\VID_046D&PID_C52B&MI_02`},
			CompatibleIDs: []string{`USB\Class_03&SubClass_00&Prot_00`, `USB\Class_03&SubClass_00`, `USB\Class_03`},
			Class:         "HIDClass", Description: "USB Input Device", Service: "HidUsb"},
		{ParentID: `USB\VID_046D&PID_C52B\5&1E2A5B3C&0&2`, InstanceID: `USB\VID_046D&PID_C52B&MI_01\7&2A0B5C5&0&0001`,
			HardwareIDs:   []string{`USB\VID_046D&PID_C52B&REV_1211&MI_01`, `USB\VID_046D&PID_C52B&MI_01`},
			CompatibleIDs: []string{`USB\Class_03&SubClass_01&Prot_02`, `USB\Class_03&SubClass_01`, `USB\Class_03`},
			Class:         "HIDClass", Description: "USB Input Device", Service: "HidUsb"},
		{ParentID: root, InstanceID: `USB\VID_05E3&PID_0610\6&1cb538dd&0&2`,
			HardwareIDs:   []string{`USB\VID_05E3&PID_0610&REV_9223`, `USB\VID_05E3&PID_0610`},
			CompatibleIDs: []string{`USB\USB20_HUB`, `USB\Class_09&SubClass_00&Prot_02`, `USB\Class_09&SubClass_00`, `USB\Class_09`},
			Class:         "USB", Description: "Generic USB Hub", Manufacturer: "(Generic USB Hub)", Service: "USBHUB3"},
		{ParentID: `USB\VID_05E3&PID_0610\6&1cb538dd&0&2`, InstanceID: `USB\VID_04E8&PID_4001\0123456789AB`,
			HardwareIDs:   []string{`USB\VID_04E8&PID_4001&REV_0100`, `USB\VID_04E8&PID_4001`},
			CompatibleIDs: []string{`USB\Class_08&SubClass_06&Prot_62`, `USB\Class_08&SubClass_06`, `USB\Class_08`},
			Class:         "SCSIAdapter", FriendlyName: "Portable SSD T7", Description: "USB Attached SCSI (UAS) Mass Storage Device",
			Manufacturer: "Samsung", Service: "UASPStor"},
		// Broken: an instance id that does not parse is named in the
		// error and left out, with its interface.
		{ParentID: root, InstanceID: `USB\VID_XYZ&PID_0001\1`, Class: "USB"},
		{ParentID: `USB\VID_XYZ&PID_0001\1`, InstanceID: `USB\VID_XYZ&PID_0001&MI_00\8&1&0&0000`, Class: "USB",
			CompatibleIDs: []string{`USB\Class_08&SubClass_06&Prot_50`}},
		// An interface whose parent SetupAPI did not list.
		{ParentID: `USB\VID_1234&PID_5678\NOT-LISTED`, InstanceID: `USB\VID_1234&PID_5678&MI_00\8&2&0&0000`, Class: "USB"},
	}
	disks := []winDisk{
		{winNode: winNode{ParentID: `USB\VID_0781&PID_5567\4C530001230719117094`, InstanceID: `USBSTOR\Disk&Ven_SanDisk&Prod_Cruzer_Blade&Rev_1.00\4C530001230719117094&0`,
			Class: "DiskDrive", FriendlyName: "SanDisk Cruzer Blade USB Device"}, Number: 1, Size: 16008609792, Removable: true, BusType: busTypeUSB, BusKnown: true},
		{winNode: winNode{ParentID: `USB\VID_04E8&PID_4001\0123456789AB`, InstanceID: `SCSI\Disk&Ven_Samsung&Prod_PSSD_T7\7&2b7a3f4&0&000000`,
			Class: "DiskDrive"}, Number: -1, BusType: busTypeUSB, BusKnown: true},
		// A SATA disk: its parents are not USB nodes.
		{winNode: winNode{ParentID: `PCI\VEN_8086&DEV_9D03&SUBSYS_225617AA&REV_21\3&11583659&0&B8`, InstanceID: `SCSI\Disk&Ven_&Prod_ST1000LM035-1RK1\4&2d1ba1b3&0&000100`,
			Class: "DiskDrive"}, Number: 0, BusType: busTypeSATA, BusKnown: true},
	}
	walkDisks(disks, nodes, winPCAbove)
	return nodes, disks
}

// Bus types of disks on internal buses (ntddstor.h): BusTypeSata,
// BusTypeNvme.
const (
	busTypeSATA = 0x0B
	busTypeNVMe = 0x11
)

// winPCAbove is the part of winPC's device tree above its USB nodes:
// the host controller and the SATA controller up to the root.
var winPCAbove = map[string]string{
	`PCI\VEN_8086&DEV_9D2F&SUBSYS_225617AA&REV_21\3&11583659&0&A0`: `ACPI\PNP0A08\0`,
	`PCI\VEN_8086&DEV_9D03&SUBSYS_225617AA&REV_21\3&11583659&0&B8`: `ACPI\PNP0A08\0`,
	`ACPI\PNP0A08\0`:     `ACPI_HAL\PNP0C08\0`,
	`ACPI_HAL\PNP0C08\0`: `ROOT\ACPI_HAL\0000`,
	`ROOT\ACPI_HAL\0000`: rootDevNode,
}

// treeParents answers parentOf for walkAncestors from the nodes' own
// ParentIDs and the parents in above; anything else is CR_NO_SUCH_DEVNODE.
func treeParents(nodes []winNode, above map[string]string) func(string) (string, error) {
	return func(id string) (string, error) {
		for _, n := range nodes {
			if idKey(n.InstanceID) == idKey(id) {
				return n.ParentID, nil
			}
		}
		if p, ok := above[id]; ok {
			return p, nil
		}
		return "", crErrForTest(0x0D)
	}
}

// walkDisks fills the disks' Ancestors and Caps as the backend does
// (placeDisk), with the tree of nodes and above; every node's
// capabilities read, none hot-pluggable.
func walkDisks(disks []winDisk, nodes []winNode, above map[string]string) {
	walkDisksCaps(disks, nodes, above, func(string) (uint32, error) { return 0, nil })
}

// walkDisksCaps is walkDisks with the capabilities capsOf gives.
func walkDisksCaps(disks []winDisk, nodes []winNode, above map[string]string, capsOf func(string) (uint32, error)) {
	for i := range disks {
		// Never gone: gone always says no.
		_ = placeDisk(&disks[i], treeParents(nodes, above), capsOf, func(error) bool { return false }, slog.New(slog.DiscardHandler))
	}
}

// crErrForTest is a CONFIGRET as the Windows backend reports it, on
// every OS.
type crErrForTest uint32

func (e crErrForTest) Error() string { return fmt.Sprintf("CONFIGRET 0x%02X", uint32(e)) }

func TestAssembleWindows(t *testing.T) {
	nodes, disks := winPC()
	devs, err := assembleWindows(nodes, disks)
	if err == nil || !strings.Contains(err.Error(), `VID_"XYZ"`) || !errors.Is(err, ErrWinID) {
		t.Errorf("error %v, want one naming VID_XYZ", err)
	}
	var paths []string
	for _, d := range devs {
		paths = append(paths, d.Path)
	}
	wantPaths := []string{
		`USB\VID_046D&PID_C52B\5&1E2A5B3C&0&2`,
		`USB\VID_04E8&PID_4001\0123456789AB`,
		`USB\VID_05E3&PID_0610\6&1cb538dd&0&2`,
		`USB\VID_0781&PID_5567\4C530001230719117094`,
		// Not left out: the broken nodes, each a device that cannot be
		// identified (an interface that does not parse cannot be told
		// from a device), and the device of an interface whose device
		// SetupAPI did not list.
		`unknown:USB\VID_1234&PID_5678\NOT-LISTED`,
		`unknown:USB\VID_XYZ&PID_0001&MI_00\8&1&0&0000`,
		`unknown:USB\VID_XYZ&PID_0001\1`,
		`usb:USB\ROOT_HUB30\4&1D2E5277&0&0`,
	}
	if !reflect.DeepEqual(paths, wantPaths) {
		t.Fatalf("paths\n  %q\nwant\n  %q", paths, wantPaths)
	}
	by := map[string]Device{}
	for _, d := range devs {
		by[d.Path] = d
	}
	rootPath := `usb:USB\ROOT_HUB30\4&1D2E5277&0&0`

	root := by[rootPath]
	if !root.IsRootHub() || root.Class != ClassHub || len(root.Interfaces) != 0 || root.Parent != "" || root.Manufacturer != "" {
		t.Errorf("root hub: %+v", root)
	}

	stick := by[`USB\VID_0781&PID_5567\4C530001230719117094`]
	want := Device{
		Path: `USB\VID_0781&PID_5567\4C530001230719117094`, VendorID: "0781", ProductID: "5567", BCDDevice: "0100",
		Serial: strp("4C530001230719117094"), Manufacturer: "Compatible USB storage device", Product: "USB Mass Storage Device",
		VendorName: usbids.Vendor("0781"), ProductName: usbids.Product("0781", "5567"),
		Parent:       rootPath,
		Interfaces:   []Interface{{Number: 0, Class: "08", SubClass: "06", Protocol: "50", Driver: "USBSTOR"}},
		BlockDevices: []BlockDevice{{Name: "PhysicalDrive1", Size: 16008609792, Removable: true}},
	}
	if !reflect.DeepEqual(stick, want) {
		t.Errorf("stick\n  %+v\nwant\n  %+v", stick, want)
	}
	if stick.IsRootHub() || !stick.IsStorage() || !reflect.DeepEqual(stick.ClassNames(), []string{"mass-storage"}) {
		t.Errorf("stick: root hub %v, storage %v, classes %v", stick.IsRootHub(), stick.IsStorage(), stick.ClassNames())
	}

	rx := by[`USB\VID_046D&PID_C52B\5&1E2A5B3C&0&2`]
	wantIfs := []Interface{
		{Number: 0, Class: "03", SubClass: "01", Protocol: "01", Driver: "HidUsb"},
		{Number: 1, Class: "03", SubClass: "01", Protocol: "02", Driver: "HidUsb"},
		{Number: 2, Class: "03", SubClass: "00", Protocol: "00", Driver: "HidUsb"},
	}
	if rx.Serial != nil || rx.Class != "00" || rx.BCDDevice != "1211" || rx.Manufacturer != "" || !reflect.DeepEqual(rx.Interfaces, wantIfs) || rx.IsStorage() {
		t.Errorf("receiver: serial %v, class %q, bcd %q, manufacturer %q, interfaces %+v", deref(rx.Serial), rx.Class, rx.BCDDevice, rx.Manufacturer, rx.Interfaces)
	}

	hub := by[`USB\VID_05E3&PID_0610\6&1cb538dd&0&2`]
	if hub.Serial != nil || hub.Class != "" || !reflect.DeepEqual(hub.ClassNames(), []string{"hub"}) || hub.Parent != rootPath {
		t.Errorf("hub: %+v, classes %v", hub, hub.ClassNames())
	}

	t7 := by[`USB\VID_04E8&PID_4001\0123456789AB`]
	if deref(t7.Serial) != "0123456789AB" || t7.Product != "Portable SSD T7" || t7.Manufacturer != "Samsung" ||
		t7.Parent != `USB\VID_05E3&PID_0610\6&1cb538dd&0&2` || !t7.IsStorage() ||
		!reflect.DeepEqual(t7.BlockDevices, []BlockDevice{{Name: `SCSI\Disk&Ven_Samsung&Prod_PSSD_T7\7&2b7a3f4&0&000000`}}) {
		t.Errorf("T7: %+v", t7)
	}
	// The broken nodes carry no ids (no approval by ids can match them)
	// but their classes: the one whose ids say storage is storage.
	for _, p := range wantPaths[4:7] {
		d := by[p]
		if d.VendorID != "" || d.ProductID != "" || d.Serial != nil || d.IsRootHub() || !strings.Contains(d.Product, "USB device not determined") {
			t.Errorf("unknown %s: %+v", p, d)
		}
	}
	if d := by[`unknown:USB\VID_XYZ&PID_0001&MI_00\8&1&0&0000`]; !d.IsStorage() {
		t.Errorf("broken storage interface: %+v, want storage", d)
	}
	if d := by[`unknown:USB\VID_1234&PID_5678\NOT-LISTED`]; len(d.Interfaces) != 1 || d.Interfaces[0].Number != 0 {
		t.Errorf("device of an orphan interface: %+v", d)
	}
	for _, d := range devs {
		if d.BusNum != 0 || d.DevNum != 0 || d.Interfaces == nil || d.BlockDevices == nil {
			t.Errorf("%s: busnum %d devnum %d interfaces %v block devices %v", d.Path, d.BusNum, d.DevNum, d.Interfaces, d.BlockDevices)
		}
	}
}

// TestAssembleWindowsHostile: device-chosen strings are sanitised, and a
// cycle of parents does not hang the walk from a disk.
func TestAssembleWindowsHostile(t *testing.T) {
	nodes := []winNode{
		{ParentID: `USB\VID_0781&PID_5567&MI_00\1&2&3&4`, InstanceID: "USB\\VID_0781&PID_5567\\EVIL\u202eSN", FriendlyName: "Stick\x1b]0;pwned\x07", Manufacturer: "Ev\\il",
			CompatibleIDs: []string{`USB\Class_08&SubClass_06&Prot_50`}, Service: "USB\x00STOR"},
		{ParentID: `USB\VID_0781&PID_5567&MI_01\1&2&3&5`, InstanceID: `USB\VID_0781&PID_5567&MI_00\1&2&3&4`},
		{ParentID: `USB\VID_0781&PID_5567&MI_00\1&2&3&4`, InstanceID: `USB\VID_0781&PID_5567&MI_01\1&2&3&5`},
	}
	disks := []winDisk{{winNode: winNode{ParentID: `USB\VID_0781&PID_5567&MI_01\1&2&3&5`, InstanceID: `USBSTOR\Disk&Ven_A&Prod_B\X&0`,
		FriendlyName: "Disk"}, Number: 4, BusType: busTypeSATA, BusKnown: true}}
	walkDisks(disks, nodes, nil)
	if !strings.Contains(disks[0].AncestorsErr, "a loop at") {
		t.Fatalf("walk through a cycle: %q %q", disks[0].Ancestors, disks[0].AncestorsErr)
	}
	devs, err := assembleWindows(nodes, disks)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]Device{}
	for _, d := range devs {
		by[d.Path] = d
	}
	d := by["USB\\VID_0781&PID_5567\\EVIL\\u{202e}SN"]
	if deref(d.Serial) != `EVIL\u{202e}SN` || d.Product != `Stick\x1b]0;pwned\x07` || d.Manufacturer != `Ev\\il` || d.Interfaces[0].Driver != `USB\x00STOR` {
		t.Errorf("not sanitised: %+v serial %q (devices %+v)", d, deref(d.Serial), devs)
	}
	if len(d.BlockDevices) != 0 {
		t.Errorf("a disk below a parent cycle was attached: %+v", d.BlockDevices)
	}
	// The disk is USB storage whose device is unknown: it goes to the
	// unknown device of the interface above it.
	u := by[`unknown:USB\VID_0781&PID_5567&MI_01\1&2&3&5`]
	if !u.IsStorage() || u.IsRootHub() || u.VendorID != "" || len(u.BlockDevices) != 1 || u.BlockDevices[0].Name != "PhysicalDrive4" {
		t.Errorf("disk below a cycle: %+v (devices %+v)", u, devs)
	}
	for _, d := range devs {
		checkSanitised(t, "path", d.Path)
		checkSanitised(t, "product", d.Product)
	}
}

func TestParseStorageDescriptor(t *testing.T) {
	build := func(removable bool, bus uint32, strs ...string) []byte {
		b := make([]byte, 36)
		binary.LittleEndian.PutUint32(b[0:], 36)
		if removable {
			b[10] = 1
		}
		binary.LittleEndian.PutUint32(b[28:], bus)
		for i, s := range strs {
			if s == "" {
				continue
			}
			binary.LittleEndian.PutUint32(b[12+4*i:], uint32(len(b)))
			b = append(append(b, s...), 0)
		}
		binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
		return b
	}
	d, err := parseStorageDescriptor(build(true, busTypeUSB, "SanDisk ", "Cruzer Blade    ", "1.00", "4C530001230719117094"))
	want := storageDescriptor{Removable: true, BusType: busTypeUSB, Vendor: "SanDisk", Product: "Cruzer Blade", Revision: "1.00", Serial: "4C530001230719117094"}
	if err != nil || d != want {
		t.Errorf("got %+v, %v; want %+v", d, err, want)
	}
	// A USB SSD that calls itself fixed, no serial.
	d, err = parseStorageDescriptor(build(false, busTypeUSB, "Samsung", "PSSD T7", "0", ""))
	if err != nil || d.Removable || d.BusType != busTypeUSB || d.Serial != "" {
		t.Errorf("T7: %+v, %v", d, err)
	}
	// Hostile: an offset past the end, escapes in a string.
	b := build(false, 11, "Evil\x1b[2J", "P")
	binary.LittleEndian.PutUint32(b[20:], 5000)
	d, err = parseStorageDescriptor(b)
	if err == nil || !strings.Contains(err.Error(), "offset 5000") || d.Vendor != `Evil\x1b[2J` || d.Product != "P" {
		t.Errorf("hostile: %+v, %v", d, err)
	}
	if _, err := parseStorageDescriptor(make([]byte, 20)); err == nil {
		t.Error("a short descriptor parsed")
	}
}

func FuzzParseStorageDescriptor(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 36))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, _ := parseStorageDescriptor(b)
		for _, s := range []string{d.Vendor, d.Product, d.Revision, d.Serial} {
			checkSanitised(t, "descriptor string", s)
		}
	})
}

// TestAssembleWindowsDisksFailClosed: a disk is internal only when its
// walk up the device tree reached the root through no USB node, and its
// bus type was read and is neither USB nor removable; any other disk no
// USB device holds is USB storage whose device is unknown, never left
// out.
func TestAssembleWindowsDisksFailClosed(t *testing.T) {
	nodes, _ := winPC()
	const (
		sata  = `PCI\VEN_8086&DEV_9D03&SUBSYS_225617AA&REV_21\3&11583659&0&B8`
		root  = `USB\ROOT_HUB30\4&1D2E5277&0&0`
		stick = `USB\VID_0781&PID_5567\4C530001230719117094`
	)
	// deep is a chain of 70 nodes of a bus driver below the SATA
	// controller: deeper than any walk goes.
	above := maps.Clone(winPCAbove)
	prev := sata
	for i := range 70 {
		id := fmt.Sprintf(`VBUS\DEV\%d`, i)
		above[id] = prev
		prev = id
	}
	above[`LOOP\A\1`], above[`LOOP\B\1`] = `LOOP\B\1`, `LOOP\A\1`
	above[`CARD\READER\1`] = `USB\VID_1111&PID_2222\GONE` // a USB device not listed
	above[`USB\VID_1111&PID_2222\GONE`] = root
	above[`TB\DOCK\1`] = `USBSTOR\OTHER\1` // a USB-ish node, no USB device
	above[`USBSTOR\OTHER\1`] = sata
	disk := func(id, parent string, bus uint32, known, removable bool) winDisk {
		return winDisk{winNode: winNode{ParentID: parent, InstanceID: id, FriendlyName: "Disk " + id}, Number: 7, Size: 1 << 30,
			BusType: bus, BusKnown: known, Removable: removable}
	}
	for _, c := range []struct {
		name  string
		disk  winDisk
		owner string // "": none; "unknown": a device of its own
		why   string
	}{
		{"internal SATA disk", disk(`SCSI\Disk&Ven_&Prod_ST1\1`, sata, busTypeSATA, true, false), "", ""},
		{"USB stick", disk(`USBSTOR\Disk&Ven_A\1`, stick, busTypeUSB, true, true), stick, ""},
		{"bus type unread", disk(`SCSI\Disk&Ven_&Prod_X\2`, sata, 0, false, false), "unknown", "its bus type could not be read"},
		{"USB bus below no USB device", disk(`SCSI\Disk&Ven_&Prod_X\3`, sata, busTypeUSB, true, false), "unknown", "on the USB bus"},
		{"removable below no USB device", disk(`SD\Disk&Ven_X\4`, sata, 0x0C, true, true), "unknown", "removable"},
		{"deeper than the walk goes", disk(`SCSI\Disk&Ven_&Prod_X\5`, prev, busTypeSATA, true, false), "unknown", "more than 64 levels"},
		{"a loop above it", disk(`SCSI\Disk&Ven_&Prod_X\6`, `LOOP\A\1`, busTypeSATA, true, false), "unknown", "a loop at"},
		{"parent unknown", disk(`SCSI\Disk&Ven_&Prod_X\7`, "", busTypeSATA, true, false), "unknown", "the parent is unknown"},
		{"a parent that cannot be asked", disk(`SCSI\Disk&Ven_&Prod_X\8`, `NOWHERE\X\1`, busTypeSATA, true, false), "unknown", "CONFIGRET 0x0D"},
		{"below a USB device not listed", disk(`SCSI\Disk&Ven_&Prod_X\9`, `CARD\READER\1`, busTypeSATA, true, false), "unknown", `USB\VID_1111&PID_2222\GONE, was not read as a device`},
		{"right below a root hub", disk(`SCSI\Disk&Ven_&Prod_X\10`, root, busTypeSATA, true, false), "unknown", "no USB device between it and root hub"},
		{"below a USB-ish node only", disk(`SCSI\Disk&Ven_&Prod_X\11`, `TB\DOCK\1`, busTypeSATA, true, false), "unknown", `below USB node USBSTOR\OTHER\1`},
		{"walk not made", winDisk{winNode: winNode{ParentID: sata, InstanceID: `SCSI\Disk&Ven_&Prod_X\12`, FriendlyName: "Disk 12"}, Number: 8, BusType: busTypeSATA, BusKnown: true}, "unknown", "was not read"},
	} {
		disks := []winDisk{c.disk}
		if c.name != "walk not made" {
			walkDisks(disks, nodes, above)
		}
		devs, _ := assembleWindows(nodes, disks)
		var holder *Device
		for i := range devs {
			for _, b := range devs[i].BlockDevices {
				if b.Name == "PhysicalDrive7" || b.Name == "PhysicalDrive8" {
					if holder != nil {
						t.Errorf("%s: held by %s and %s", c.name, holder.Path, devs[i].Path)
					}
					holder = &devs[i]
				}
			}
		}
		switch {
		case c.owner == "":
			if holder != nil {
				t.Errorf("%s: held by %+v, want an internal disk", c.name, holder)
			}
		case holder == nil:
			t.Errorf("%s: no device holds it (ancestors %q, %q), want %s", c.name, disks[0].Ancestors, disks[0].AncestorsErr, c.owner)
		case c.owner == "unknown":
			want := UnknownPathPrefix + c.disk.InstanceID
			if holder.Path != want || !holder.IsStorage() || holder.IsRootHub() || holder.VendorID != "" || holder.Serial != nil ||
				holder.Class != ClassMassStorage || !strings.Contains(holder.Product, c.why) || !strings.HasPrefix(holder.Product, "Disk ") {
				t.Errorf("%s: held by %+v, want %s, storage, no ids, why %q", c.name, holder, want, c.why)
			}
		default:
			if holder.Path != c.owner {
				t.Errorf("%s: held by %s, want %s", c.name, holder.Path, c.owner)
			}
		}
	}
}

func TestWalkAncestors(t *testing.T) {
	parents := map[string]string{`A\B\1`: `C\D\1`, `C\D\1`: rootDevNode, `E\F\1`: ""}
	parentOf := func(id string) (string, error) {
		if p, ok := parents[id]; ok {
			return p, nil
		}
		return "", crErrForTest(0x0D)
	}
	chain, err := walkAncestors(`a\b\1`, func(id string) (string, error) { return parentOf(strings.ToUpper(id)) })
	if err != nil || !reflect.DeepEqual(chain, []string{`a\b\1`, `C\D\1`, rootDevNode}) {
		t.Errorf("whole walk: %q, %v", chain, err)
	}
	for _, c := range []struct{ first, want string }{
		{"", "the parent is unknown"},
		{`E\F\1`, `E\F\1 has no parent and is not the root`},
		{`X\Y\1`, `the parent of X\Y\1: CONFIGRET 0x0D`},
	} {
		if _, err := walkAncestors(c.first, parentOf); !errors.Is(err, ErrDeviceTree) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("walk from %q: %v, want %q", c.first, err, c.want)
		}
	}
	// Exactly maxTreeDepth levels with the root is whole; one more is not.
	for _, extra := range []int{0, 1} {
		n := maxTreeDepth - 1 + extra
		chain, err := walkAncestors("0", func(id string) (string, error) {
			i, _ := strconv.Atoi(id)
			if i+1 == n {
				return rootDevNode, nil
			}
			return strconv.Itoa(i + 1), nil
		})
		if whole := err == nil; whole != (extra == 0) || len(chain) != maxTreeDepth {
			t.Errorf("%d levels and the root: %d met, %v", n, len(chain), err)
		}
	}
}

// TestEnumerateAll: a list longer than the limit is an error, never a
// list silently cut at the limit.
func TestEnumerateAll(t *testing.T) {
	list := func(n int, failAt int) (func(int) (bool, error), *[]int) {
		var got []int
		return func(i int) (bool, error) {
			if i == failAt {
				return false, errors.New("SetupDiEnumDeviceInfo: boom")
			}
			if i >= n {
				return true, nil
			}
			got = append(got, i)
			return false, nil
		}, &got
	}
	for _, c := range []struct {
		n, failAt, limit int
		want             int
		err              string
	}{
		{0, -1, 3, 0, ""},
		{3, -1, 3, 3, ""},
		{4, -1, 3, 4, "too many device nodes: more than 3"},
		{1000, -1, 3, 4, "too many device nodes: more than 3"},
		{5, 2, 10, 2, "item 2: SetupDiEnumDeviceInfo: boom"},
	} {
		next, got := list(c.n, c.failAt)
		n, err := enumerateAll(c.limit, next)
		if n != c.want || len(*got) != c.want || (err == nil) != (c.err == "") || err != nil && err.Error() != c.err {
			t.Errorf("%d items, limit %d, failing at %d: %d (%d read), %v; want %d, %q", c.n, c.limit, c.failAt, n, len(*got), err, c.want, c.err)
		}
		if c.err != "" && strings.Contains(c.err, "too many") && !errors.Is(err, ErrTooManyNodes) {
			t.Errorf("%v does not wrap ErrTooManyNodes", err)
		}
	}
}

// hotPC is a PC whose device tree holds the ports hot-plug storage comes
// in through, as SetupAPI shows them (ids from the PCI ID Repository and
// the forms Windows gives): an internal NVMe SSD, a Thunderbolt 4 port of
// the processor (Tiger Lake-LP) with a Titan Ridge NVMe enclosure on it,
// a discrete Titan Ridge host controller, AMD's USB4 PCIe tunnel with an
// ASMedia enclosure, an AHCI controller with an internal and an eSATA
// disk, a FireWire controller with an SBP-2 disk, a card reader and an
// eMMC controller. Every node's parent is in the map.
const (
	hpACPI       = `ACPI\PNP0A08\0`
	hpNVMeRoot   = `PCI\VEN_8086&DEV_A0B0&SUBSYS_0A2B1028&REV_20\3&11583659&0&E8`
	hpNVMe       = `PCI\VEN_144D&DEV_A809&SUBSYS_A801144D&REV_00\4&2b1de7a3&0&00E8`
	hpNVMeDisk   = `SCSI\Disk&Ven_NVMe&Prod_Samsung_SSD_980\5&3a2f1c8b&0&000000`
	hpTBRoot     = `PCI\VEN_8086&DEV_9A23&SUBSYS_0A2B1028&REV_01\3&11583659&0&38`
	hpTBUp       = `PCI\VEN_8086&DEV_15EF&SUBSYS_00000000&REV_06\4&1f6c8a2e&0&0038`
	hpTBDown     = `PCI\VEN_8086&DEV_15EF&SUBSYS_00000000&REV_06\5&3b8e9a1&0&000038`
	hpTBNVMe     = `PCI\VEN_15B7&DEV_5017&SUBSYS_501715B7&REV_01\6&2c0f1d9&0&00000038`
	hpTBDisk     = `SCSI\Disk&Ven_NVMe&Prod_WD_BLACK_SN770\7&1a2b3c4d&0&000000`
	hpPCHRoot    = `PCI\VEN_8086&DEV_A334&SUBSYS_86941043&REV_F0\3&11583659&0&E4`
	hpDTBHost    = `PCI\VEN_8086&DEV_15EA&SUBSYS_86941043&REV_06\4&3a1d5f&0&00E4`
	hpDTBPort    = `PCI\VEN_8086&DEV_15EA&SUBSYS_86941043&REV_06\5&1c9d2b&0&2000E4`
	hpDTBNVMe    = `PCI\VEN_144D&DEV_A808&SUBSYS_A801144D&REV_00\6&19e0d1f&0&002000E4`
	hpDTBDisk    = `SCSI\Disk&Ven_NVMe&Prod_Samsung_SSD_970\7&2f1e0c3&0&000000`
	hpAMDTunnel  = `PCI\VEN_1022&DEV_14CD&SUBSYS_0B2D1028&REV_00\3&2411e6fe&0&0B`
	hpASMedia    = `PCI\VEN_1B21&DEV_2463&SUBSYS_00000000&REV_01\4&d1e3b2a&0&000B`
	hpASMNVMe    = `PCI\VEN_144D&DEV_A80C&SUBSYS_A801144D&REV_00\5&20e5a1c&0&00000B`
	hpASMDisk    = `SCSI\Disk&Ven_NVMe&Prod_Samsung_SSD_990\6&1f0a3b2&0&000000`
	hpAHCI       = `PCI\VEN_8086&DEV_A352&SUBSYS_86941043&REV_10\3&11583659&0&B8`
	hpSATADisk   = `SCSI\Disk&Ven_&Prod_ST1000LM035-1RK1\4&2d1ba1b3&0&000100`
	hpESATADisk  = `SCSI\Disk&Ven_WDC&Prod_WD10EZEX-00BN5A0\4&1b0b5fd4&0&040000`
	hpOHCI       = `PCI\VEN_104C&DEV_8023&SUBSYS_8023104C&REV_00\4&1e07f3b9&0&20A4`
	hp1394       = `1394\LaCie&d2_quadra_v2\D04B1A2C3D4E5F`
	hpSBP2Disk   = `SBP2\LaCie&d2_quadra_v2&LUN0\D04B1A2C3D4E5F`
	hpReader     = `PCI\VEN_10EC&DEV_5227&SUBSYS_0A2B1028&REV_01\4&2c4a1d7&0&00E1`
	hpSDCard     = `SD\VID_03&OID_5344&PID_SC64G&REV_8.0\5&1d3e7a2&0&0`
	hpSDDisk     = `SCSI\Disk&Ven_SD&Prod_SC64G\6&a1b2c3&0&000000`
	hpEMMC       = `PCI\VEN_8086&DEV_9DC4&SUBSYS_0A2B1028&REV_30\3&11583659&0&F8`
	hpEMMCCard   = `SD\VID_15&OID_0100&PID_DA4064&REV_0.1\4&3b2a1c&0&0`
	hpEMMCDisk   = `SCSI\Disk&Ven_MMC&Prod_DA4064\5&4c3b2a&0&000000`
	hpDock       = `ACPI\PNP0C15\1`
	hpDockBridge = `PCI\VEN_8086&DEV_244E&SUBSYS_00000000&REV_D5\4&31d5a0e&0&F0`
	hpDockDisk   = `SCSI\Disk&Ven_&Prod_ST500LM021\5&1a2b3c&0&000000`
)

// hotPCAbove maps each node of hotPC to its parent.
var hotPCAbove = map[string]string{
	hpACPI: `ACPI_HAL\PNP0C08\0`, `ACPI_HAL\PNP0C08\0`: `ROOT\ACPI_HAL\0000`, `ROOT\ACPI_HAL\0000`: rootDevNode,
	hpNVMeRoot: hpACPI, hpNVMe: hpNVMeRoot, hpNVMeDisk: hpNVMe,
	hpTBRoot: hpACPI, hpTBUp: hpTBRoot, hpTBDown: hpTBUp, hpTBNVMe: hpTBDown, hpTBDisk: hpTBNVMe,
	hpPCHRoot: hpACPI, hpDTBHost: hpPCHRoot, hpDTBPort: hpDTBHost, hpDTBNVMe: hpDTBPort, hpDTBDisk: hpDTBNVMe,
	hpAMDTunnel: hpACPI, hpASMedia: hpAMDTunnel, hpASMNVMe: hpASMedia, hpASMDisk: hpASMNVMe,
	hpAHCI: hpACPI, hpSATADisk: hpAHCI, hpESATADisk: hpAHCI,
	hpOHCI: hpPCHRoot, hp1394: hpOHCI, hpSBP2Disk: hp1394,
	hpReader: hpNVMeRoot, hpSDCard: hpReader, hpSDDisk: hpSDCard,
	hpEMMC: hpACPI, hpEMMCCard: hpEMMC, hpEMMCDisk: hpEMMCCard,
	hpDock: hpACPI, hpDockBridge: hpDock, hpDockDisk: hpDockBridge,
}

// Capability bits besides the hot-plug ones, as internal devices carry
// them (CM_DEVCAP_UNIQUEID, CM_DEVCAP_SILENTINSTALL,
// CM_DEVCAP_RAWDEVICEOK, CM_DEVCAP_SURPRISEREMOVALOK): none makes a node
// hot-pluggable.
const capsInternal = 0x10 | 0x20 | 0x40 | 0x80

// TestAssembleWindowsHotPlugged: a disk no USB device holds is external storage
// (USB storage whose device is unknown, the disk its block device, why in
// Product) when it or a node above it is hot-pluggable (the removable,
// eject or dock capability), when a node above it is a Thunderbolt or
// USB4 PCIe port or on the 1394 or PCMCIA bus, when its bus type is 1394,
// SD or MMC, and, failing closed, when a capability could not be read; an
// internal NVMe or SATA disk (no hot-plug capability anywhere, every
// capability read, bus internal) stays internal.
func TestAssembleWindowsHotPlugged(t *testing.T) {
	type capsTable map[string]uint32
	for _, c := range []struct {
		name    string
		disk    string
		bus     uint32
		caps    capsTable        // nodes with capabilities besides capsInternal
		unread  map[string]error // nodes whose capabilities cannot be read
		why     string           // "": internal
		because string           // the node the reason names
	}{
		{name: "internal NVMe", disk: hpNVMeDisk, bus: busTypeNVMe},
		{name: "internal SATA", disk: hpSATADisk, bus: busTypeSATA},
		{name: "Thunderbolt NVMe, removable below the slot", disk: hpTBDisk, bus: busTypeNVMe,
			caps: capsTable{hpTBNVMe: cmDevcapRemovable, hpTBDown: cmDevcapRemovable, hpTBUp: cmDevcapRemovable},
			why:  "behind a hot-plug port", because: hpTBNVMe + " can be removed while the system runs (CM_DEVCAP_REMOVABLE)"},
		{name: "Thunderbolt NVMe, no capability says so", disk: hpTBDisk, bus: busTypeNVMe,
			why: "behind a hot-plug port", because: hpTBDown + " is a Thunderbolt/USB4 PCI Express port (Titan Ridge DD)"},
		{name: "discrete Thunderbolt host, no capability says so", disk: hpDTBDisk, bus: busTypeNVMe,
			why: "behind a hot-plug port", because: hpDTBPort + " is a Thunderbolt/USB4 PCI Express port (Titan Ridge 4C)"},
		{name: "USB4 enclosure on AMD, bridges not in the table", disk: hpASMDisk, bus: busTypeNVMe,
			why: "behind a hot-plug port", because: hpAMDTunnel + " is a Thunderbolt/USB4 PCI Express port (AMD USB4 PCIe tunnel)"},
		{name: "USB4 enclosure, removable", disk: hpASMDisk, bus: busTypeNVMe, caps: capsTable{hpASMedia: cmDevcapRemovable | cmDevcapEjectSupported},
			why: "behind a hot-plug port", because: hpASMedia + " can be removed while the system runs (CM_DEVCAP_REMOVABLE|CM_DEVCAP_EJECTSUPPORTED)"},
		{name: "eSATA disk (storahci: external port)", disk: hpESATADisk, bus: busTypeSATA, caps: capsTable{hpESATADisk: cmDevcapRemovable},
			why: "behind a hot-plug port", because: hpESATADisk + " can be removed while the system runs (CM_DEVCAP_REMOVABLE)"},
		{name: "FireWire disk", disk: hpSBP2Disk, bus: busType1394, why: "behind a hot-plug port", because: "its bus type is IEEE 1394 (FireWire)"},
		{name: "FireWire disk, bus type SCSI", disk: hpSBP2Disk, bus: 0x01,
			why: "behind a hot-plug port", because: hpSBP2Disk + " is on the IEEE 1394 (FireWire) bus"},
		{name: "SD card, medium not said removable", disk: hpSDDisk, bus: busTypeSD, why: "behind a hot-plug port", because: "its bus type is SD"},
		{name: "eMMC", disk: hpEMMCDisk, bus: busTypeMMC, why: "behind a hot-plug port", because: "its bus type is MMC"},
		{name: "disk in a dock's bay", disk: hpDockDisk, bus: busTypeSATA, caps: capsTable{hpDock: cmDevcapDockDevice | cmDevcapEjectSupported},
			why: "behind a hot-plug port", because: hpDock + " can be removed while the system runs (CM_DEVCAP_EJECTSUPPORTED|CM_DEVCAP_DOCKDEVICE)"},
		{name: "internal NVMe, its controller's capabilities unreadable", disk: hpNVMeDisk, bus: busTypeNVMe,
			unread: map[string]error{hpNVMe: crErrForTest(0x25)},
			why:    "whether it is behind a hot-plug port could not be determined", because: "the capabilities of " + hpNVMe + " could not be read: CONFIGRET 0x25"},
		{name: "internal SATA, the ACPI node's capabilities unreadable", disk: hpSATADisk, bus: busTypeSATA,
			unread: map[string]error{`ROOT\ACPI_HAL\0000`: errors.New("access denied")},
			why:    "could not be determined", because: `the capabilities of ROOT\ACPI_HAL\0000 could not be read: access denied`},
		{name: "the disk's own capabilities unreadable", disk: hpNVMeDisk, bus: busTypeNVMe,
			unread: map[string]error{hpNVMeDisk: crErrForTest(0x13)},
			why:    "could not be determined", because: "the capabilities of " + hpNVMeDisk},
		{name: "a hot-plug node wins over an unread one above it", disk: hpTBDisk, bus: busTypeNVMe,
			caps: capsTable{hpTBNVMe: cmDevcapRemovable}, unread: map[string]error{hpACPI: crErrForTest(0x13)},
			why: "behind a hot-plug port", because: hpTBNVMe},
	} {
		t.Run(c.name, func(t *testing.T) {
			asked := map[string]bool{}
			capsOf := func(id string) (uint32, error) {
				asked[id] = true
				if err, ok := c.unread[id]; ok {
					return 0, err
				}
				return capsInternal | c.caps[id], nil
			}
			disks := []winDisk{{winNode: winNode{ParentID: hotPCAbove[c.disk], InstanceID: c.disk, FriendlyName: "Disk"},
				Number: 3, Size: 1 << 40, BusType: c.bus, BusKnown: true}}
			walkDisksCaps(disks, nil, hotPCAbove, capsOf)
			if disks[0].AncestorsErr != "" || disks[0].Ancestors[len(disks[0].Ancestors)-1] != rootDevNode {
				t.Fatalf("walk: %q, %s", disks[0].Ancestors, disks[0].AncestorsErr)
			}
			if asked[rootDevNode] || !asked[c.disk] || !asked[hotPCAbove[c.disk]] {
				t.Errorf("capabilities asked of %v: want the disk and its parent, never the root", asked)
			}
			devs, err := assembleWindows(nil, disks)
			if err != nil {
				t.Fatal(err)
			}
			if c.why == "" {
				if len(devs) != 0 {
					t.Errorf("an internal disk became %+v", devs)
				}
				return
			}
			if len(devs) != 1 {
				t.Fatalf("devices %+v, want one of the disk's own", devs)
			}
			d := devs[0]
			want := BlockDevice{Name: "PhysicalDrive3", Size: 1 << 40}
			if d.Path != UnknownPathPrefix+c.disk || d.Class != ClassMassStorage || !d.IsStorage() || d.VendorID != "" || d.Serial != nil ||
				!reflect.DeepEqual(d.BlockDevices, []BlockDevice{want}) {
				t.Errorf("device %+v, want %s%s, mass storage, no ids, PhysicalDrive3", d, UnknownPathPrefix, c.disk)
			}
			if !strings.HasPrefix(d.Product, "Disk (USB device not determined: ") || !strings.Contains(d.Product, c.why) || !strings.Contains(d.Product, c.because) {
				t.Errorf("product %q, want it to say %q and %q", d.Product, c.why, c.because)
			}
		})
	}
}

// TestAssembleWindowsHotPluggedHostile: instance ids and errors in the reason are
// sanitised; an id that only looks like a Thunderbolt bridge's is not
// taken for one; a disk whose capabilities were never read is external.
func TestAssembleWindowsHotPluggedHostile(t *testing.T) {
	evil := "PCI\\VEN_8086&DEV_15EF&SUBSYS_\u202e&REV_06\\5&1\u202e"
	k := winDisk{winNode: winNode{InstanceID: hpTBDisk}, BusType: busTypeNVMe, BusKnown: true,
		Ancestors: []string{evil, hpACPI, rootDevNode},
		Caps:      map[string]nodeCaps{idKey(hpTBDisk): {}, idKey(hpACPI): {Err: "bad\x07"}}}
	why := hotPlugged(&k)
	if !strings.Contains(why, "is a Thunderbolt/USB4 PCI Express port") {
		t.Errorf("hostile Thunderbolt id: %q", why)
	}
	checkSanitised(t, "reason", why)
	// An id with a control character does not parse: not taken for a
	// Thunderbolt bridge, and its capabilities, not read, fail closed.
	k.Ancestors[0] = "PCI\\VEN_8086&DEV_15EF&SUBSYS_\x1b[2J&REV_06\\5&1"
	why = hotPlugged(&k)
	if !strings.Contains(why, "could not be determined: the capabilities of PCI") || strings.Contains(why, "Thunderbolt") {
		t.Errorf("an id that does not parse: %q", why)
	}
	checkSanitised(t, "reason", why)
	k.Ancestors[0] = `PCI\VEN_80Z6&DEV_15EF&SUBSYS_00000000&REV_06\5&1`
	k.Caps[idKey(k.Ancestors[0])] = nodeCaps{}
	why = hotPlugged(&k)
	if !strings.Contains(why, `could not be determined: the capabilities of ACPI\PNP0A08\0 could not be read: bad\x07`) {
		t.Errorf("a bad vendor id, an unread ACPI node: %q", why)
	}
	checkSanitised(t, "reason", why)
	k.Caps = nil
	if why := hotPlugged(&k); !strings.Contains(why, "could not be determined") || !strings.Contains(why, "not read") {
		t.Errorf("no capabilities read: %q", why)
	}
}

// TestAssembleWindowsPlaceDisk: the capabilities are read for the disk and every node
// above it but the root, only once the walk reached the root; a failure
// gone says means the disk is gone drops the disk, any other is kept in
// AncestorsErr or Caps.
func TestAssembleWindowsPlaceDisk(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	errGone := errors.New("gone")
	notGone := func(error) bool { return false }
	isGone := func(err error) bool { return errors.Is(err, errGone) }
	parents := treeParents(nil, hotPCAbove)

	var asked []string
	d := winDisk{winNode: winNode{ParentID: hpNVMe, InstanceID: hpNVMeDisk}}
	if placeDisk(&d, parents, func(id string) (uint32, error) {
		asked = append(asked, id)
		if id == hpNVMeRoot {
			return 0, errors.New("boom")
		}
		return capsInternal, nil
	}, notGone, log) {
		t.Fatal("gone")
	}
	wantAsked := []string{hpNVMeDisk, hpNVMe, hpNVMeRoot, hpACPI, `ACPI_HAL\PNP0C08\0`, `ROOT\ACPI_HAL\0000`}
	if !reflect.DeepEqual(asked, wantAsked) || !reflect.DeepEqual(d.Ancestors, append(wantAsked[1:], rootDevNode)) {
		t.Errorf("asked %q, ancestors %q", asked, d.Ancestors)
	}
	if c := d.Caps[idKey(hpNVMeRoot)]; c.Err != "boom" || len(d.Caps) != len(wantAsked) || d.Caps[idKey(hpNVMeDisk)] != (nodeCaps{Flags: capsInternal}) {
		t.Errorf("caps %+v", d.Caps)
	}

	// A walk that fails reads no capabilities.
	asked = nil
	d = winDisk{winNode: winNode{ParentID: `NOWHERE\X\1`, InstanceID: hpNVMeDisk}}
	if placeDisk(&d, parents, func(id string) (uint32, error) { asked = append(asked, id); return 0, nil }, notGone, log) ||
		d.AncestorsErr == "" || d.Caps != nil || asked != nil {
		t.Errorf("failed walk: %+v, asked %q", d, asked)
	}
	// Gone during the walk, gone during the capabilities.
	d = winDisk{winNode: winNode{ParentID: hpNVMe, InstanceID: hpNVMeDisk}}
	goneParents := func(id string) (string, error) {
		if id == hpACPI {
			return "", errGone
		}
		return parents(id)
	}
	if !placeDisk(&d, goneParents, func(string) (uint32, error) { return 0, nil }, isGone, log) {
		t.Error("a disk gone during the walk was kept")
	}
	d = winDisk{winNode: winNode{ParentID: hpNVMe, InstanceID: hpNVMeDisk}}
	if !placeDisk(&d, parents, func(id string) (uint32, error) { return 0, errGone }, isGone, log) {
		t.Error("a disk gone during the capabilities was kept")
	}
}

func TestAssembleWindowsParseCapabilities(t *testing.T) {
	if v, err := parseCapabilities(regDWORD, []byte{0x84, 0, 0, 0x01}); err != nil || v != 0x01000084 {
		t.Errorf("REG_DWORD: %#x, %v", v, err)
	}
	for _, c := range []struct {
		typ uint32
		b   []byte
	}{{regDWORD, []byte{4, 0, 0}}, {regDWORD, []byte{4, 0, 0, 0, 0}}, {3, []byte{4, 0, 0, 0}}, {regDWORD, nil}} {
		if v, err := parseCapabilities(c.typ, c.b); err == nil || !errors.Is(err, ErrWinID) {
			t.Errorf("type %d, %x: %#x, %v; want an error", c.typ, c.b, v, err)
		}
	}
}

// TestAssembleWindowsThunderboltBridges holds the table to its form: "VVVV:DDDD" in
// upper-case hex, as hotPlugNode looks ids up.
func TestAssembleWindowsThunderboltBridges(t *testing.T) {
	for k, name := range thunderboltBridges {
		v, d, ok := strings.Cut(k, ":")
		if !ok || len(v) != 4 || len(d) != 4 || !isHex(v+d) || strings.ToUpper(k) != k || name == "" {
			t.Errorf("%q: %q", k, name)
		}
	}
	if hotPlugNode(`PCI\VEN_8086&DEV_15ef&SUBSYS_00000000&REV_06\5&1`) == "" {
		t.Error("a lower-case Thunderbolt bridge id not found")
	}
	for _, id := range []string{hpNVMeRoot, hpNVMe, hpAHCI, `PCI\VEN_8086\1`, `PCI\DEV_15EF&VEN_8086&VEN_8087\1`, `USB\VID_8086&PID_15EF\1`} {
		if why := hotPlugNode(id); why != "" {
			t.Errorf("%s: %q", id, why)
		}
	}
}
