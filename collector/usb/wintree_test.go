package usb

import (
	"encoding/binary"
	"errors"
	"reflect"
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
			Class: "DiskDrive", FriendlyName: "SanDisk Cruzer Blade USB Device"}, Number: 1, Size: 16008609792, Removable: true},
		{winNode: winNode{ParentID: `USB\VID_04E8&PID_4001\0123456789AB`, InstanceID: `SCSI\Disk&Ven_Samsung&Prod_PSSD_T7\7&2b7a3f4&0&000000`,
			Class: "DiskDrive"}, Number: -1},
		// A SATA disk: its parents are not USB nodes.
		{winNode: winNode{ParentID: `PCI\VEN_8086&DEV_9D03&SUBSYS_225617AA&REV_21\3&11583659&0&B8`, InstanceID: `SCSI\Disk&Ven_&Prod_ST1000LM035-1RK1\4&2d1ba1b3&0&000100`,
			Class: "DiskDrive"}, Number: 0},
	}
	return nodes, disks
}

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
	disks := []winDisk{{winNode: winNode{ParentID: `USB\VID_0781&PID_5567&MI_01\1&2&3&5`, InstanceID: `USBSTOR\Disk&Ven_A&Prod_B\X&0`}, Number: 4}}
	devs, err := assembleWindows(nodes, disks)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 {
		t.Fatalf("devices %+v", devs)
	}
	d := devs[0]
	if deref(d.Serial) != `EVIL\u{202e}SN` || d.Product != `Stick\x1b]0;pwned\x07` || d.Manufacturer != `Ev\\il` || d.Interfaces[0].Driver != `USB\x00STOR` {
		t.Errorf("not sanitised: %+v serial %q", d, deref(d.Serial))
	}
	if len(d.BlockDevices) != 0 {
		t.Errorf("a disk below a parent cycle was attached: %+v", d.BlockDevices)
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
