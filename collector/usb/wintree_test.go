package usb

import (
	"encoding/binary"
	"errors"
	"fmt"
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

// busTypeSATA is BusTypeSata (ntddstor.h).
const busTypeSATA = 0x0B

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

// walkDisks fills the disks' Ancestors as the backend does, with the
// tree of nodes and above.
func walkDisks(disks []winDisk, nodes []winNode, above map[string]string) {
	for i := range disks {
		chain, err := walkAncestors(disks[i].ParentID, treeParents(nodes, above))
		disks[i].Ancestors = chain
		if err != nil {
			disks[i].AncestorsErr = err.Error()
		}
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
