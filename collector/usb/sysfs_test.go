package usb

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/internal/sysfstest"
)

func str(s string) *string { return &s }

// tree builds a sysfs tree from recordings under testdata/.
func tree(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for i := range files {
		files[i] = filepath.Join("testdata", files[i])
	}
	sysfstest.Build(t, root, files...)
	return root
}

func devices(t *testing.T, root string) []Device {
	t.Helper()
	devs, err := NewFS(root).Devices()
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	return devs
}

func paths(devs []Device) []string {
	var out []string
	for _, d := range devs {
		out = append(out, d.Path)
	}
	return out
}

func find(t *testing.T, devs []Device, path string) Device {
	t.Helper()
	for _, d := range devs {
		if d.Path == path {
			return d
		}
	}
	t.Fatalf("no device %s in %v", path, paths(devs))
	return Device{}
}

func checkDevice(t *testing.T, got, want Device) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("device %s\n got %+v\nwant %+v", want.Path, dump(got), dump(want))
	}
}

// dump renders pointers so that a failing comparison shows values.
func dump(d Device) map[string]any {
	m := map[string]any{}
	v := reflect.ValueOf(d)
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() == reflect.Pointer && !f.IsNil() {
			m[v.Type().Field(i).Name] = f.Elem().Interface()
		} else {
			m[v.Type().Field(i).Name] = f.Interface()
		}
	}
	return m
}

const pciEHCI = "devices/pci0000:00/0000:00:1a.0"

// usbkbd: a HID keyboard without serial, behind its own hub and two more
// hubs. Only its interface 0 was recorded as a directory; interface 1
// comes from the descriptors, without a driver.
func TestUsbkbd(t *testing.T) {
	root := tree(t, "umockdev/usbkbd.umockdev")
	devs := devices(t, root)
	if got, want := paths(devs), []string{"usb1", "1-1", "1-1.5", "1-1.5.4", "1-1.5.4.2"}; !slices.Equal(got, want) {
		t.Fatalf("paths %v, want %v", got, want)
	}
	checkDevice(t, find(t, devs, "1-1.5.4.2"), Device{
		Path:        "1-1.5.4.2",
		SysPath:     pciEHCI + "/usb1/1-1/1-1.5/1-1.5.4/1-1.5.4.2",
		BusNum:      1,
		DevNum:      9,
		VendorID:    "05f3",
		ProductID:   "0007",
		BCDDevice:   "0320",
		VendorName:  "PI Engineering, Inc.",
		ProductName: "Kinesis Advantage PRO MPC/USB Keyboard",
		Class:       "00", SubClass: "00", Protocol: "00",
		Speed:      "12",
		Authorized: ptr(true),
		Parent:     "1-1.5.4",
		Interfaces: []Interface{
			{Number: 0, Class: "03", SubClass: "01", Protocol: "01", Driver: "usbhid"},
			{Number: 1, Class: "03", SubClass: "00", Protocol: "00"},
		},
		BlockDevices: []BlockDevice{},
	})
	checkDevice(t, find(t, devs, "1-1.5.4"), Device{
		Path:         "1-1.5.4",
		SysPath:      pciEHCI + "/usb1/1-1/1-1.5/1-1.5.4",
		BusNum:       1,
		DevNum:       7,
		VendorID:     "05f3",
		ProductID:    "0081",
		BCDDevice:    "0320",
		Manufacturer: "PI Engineering",
		Product:      "Kinesis Keyboard Hub",
		VendorName:   "PI Engineering, Inc.",
		ProductName:  "Kinesis Integrated Hub",
		Class:        "09", SubClass: "00", Protocol: "00",
		Speed:        "12",
		Authorized:   ptr(true),
		Parent:       "1-1.5",
		Interfaces:   []Interface{{Number: 0, Class: "09", SubClass: "00", Protocol: "00"}},
		BlockDevices: []BlockDevice{},
	})
	checkDevice(t, find(t, devs, "usb1"), Device{
		Path:         "usb1",
		SysPath:      pciEHCI + "/usb1",
		BusNum:       1,
		DevNum:       1,
		VendorID:     "1d6b",
		ProductID:    "0002",
		BCDDevice:    "0310",
		Serial:       str("0000:00:1a.0"),
		Manufacturer: "Linux 3.10.0-2-generic ehci_hcd",
		Product:      "EHCI Host Controller",
		VendorName:   "Linux Foundation",
		ProductName:  "2.0 root hub",
		Class:        "09", SubClass: "00", Protocol: "00",
		Speed:        "480",
		Authorized:   ptr(true),
		Interfaces:   []Interface{{Number: 0, Class: "09", SubClass: "00", Protocol: "00"}},
		BlockDevices: []BlockDevice{},
	})
	kbd := find(t, devs, "1-1.5.4.2")
	if kbd.IsStorage() || kbd.IsRootHub() || !slices.Equal(kbd.ClassNames(), []string{"hid"}) {
		t.Errorf("keyboard: storage %v root hub %v classes %v", kbd.IsStorage(), kbd.IsRootHub(), kbd.ClassNames())
	}
	if p := find(t, devs, "1-1.5").Parent; p != "1-1" {
		t.Errorf("1-1.5 parent %q", p)
	}
	if p := find(t, devs, "1-1").Parent; p != "usb1" {
		t.Errorf("1-1 parent %q", p)
	}
}

// The phone has no interface directories in the recording: the
// interface comes from its binary descriptors attribute.
func TestSonyXperiaNoInterfaceDirs(t *testing.T) {
	root := tree(t, "umockdev/sony-xperia-mini-pro.umockdev")
	devs := devices(t, root)
	if got, want := paths(devs), []string{"usb1", "1-1", "1-1.5", "1-1.5.2", "1-1.5.2.4"}; !slices.Equal(got, want) {
		t.Fatalf("paths %v, want %v", got, want)
	}
	matches, _ := filepath.Glob(filepath.Join(root, pciEHCI, "usb1/1-1/1-1.5/1-1.5.2/1-1.5.2.4/*:*"))
	if len(matches) != 0 {
		t.Fatalf("fixture has interface directories: %v", matches)
	}
	checkDevice(t, find(t, devs, "1-1.5.2.4"), Device{
		Path:         "1-1.5.2.4",
		SysPath:      pciEHCI + "/usb1/1-1/1-1.5/1-1.5.2/1-1.5.2.4",
		BusNum:       1,
		DevNum:       24,
		VendorID:     "0fce",
		ProductID:    "0166",
		BCDDevice:    "0226",
		Serial:       str("0123456789ABCDEF"),
		Manufacturer: "Sony",
		Product:      "MiniPro",
		VendorName:   "Sony Ericsson Mobile Communications AB",
		ProductName:  "Xperia Mini Pro",
		Class:        "00", SubClass: "00", Protocol: "00",
		Speed:        "480",
		Authorized:   ptr(true),
		Parent:       "1-1.5.2",
		Interfaces:   []Interface{{Number: 0, Class: "ff", SubClass: "ff", Protocol: "00"}},
		BlockDevices: []BlockDevice{},
	})
}

func TestCanonCamera(t *testing.T) {
	devs := devices(t, tree(t, "umockdev/canon-powershot-sx200.umockdev"))
	cam := find(t, devs, "1-1.5.2.3")
	if cam.VendorID != "04a9" || cam.ProductID != "31c0" || cam.SerialString() != "C767F1C714174C309255F70E4A7B2EE2" ||
		cam.Manufacturer != "Canon Inc." || cam.Product != "Canon Digital Camera" || cam.ProductName != "PowerShot SX200 IS" {
		t.Errorf("camera %+v", dump(cam))
	}
	if want := []Interface{{Number: 0, Class: "06", SubClass: "01", Protocol: "01"}}; !slices.Equal(cam.Interfaces, want) {
		t.Errorf("interfaces %v", cam.Interfaces)
	}
	if !slices.Equal(cam.ClassNames(), []string{"still-image"}) || cam.IsStorage() {
		t.Errorf("classes %v storage %v", cam.ClassNames(), cam.IsStorage())
	}
}

// fido2: every attribute ends in a newline; the key is HID behind a hub,
// its interface bound to usbhid.
func TestFido2(t *testing.T) {
	devs := devices(t, tree(t, "umockdev/fido2.umockdev"))
	if got, want := paths(devs), []string{"usb1", "1-2", "1-2.3"}; !slices.Equal(got, want) {
		t.Fatalf("paths %v, want %v", got, want)
	}
	checkDevice(t, find(t, devs, "1-2.3"), Device{
		Path:         "1-2.3",
		SysPath:      "devices/pci0000:00/0000:00:08.1/0000:05:00.3/usb1/1-2/1-2.3",
		BusNum:       1,
		DevNum:       12,
		VendorID:     "1050",
		ProductID:    "0120",
		BCDDevice:    "0512",
		Manufacturer: "Yubico",
		Product:      "Security Key by Yubico",
		VendorName:   "Yubico.com",
		ProductName:  "Yubikey Touch U2F Security Key",
		Class:        "00", SubClass: "00", Protocol: "00",
		Speed:        "12",
		Authorized:   ptr(true),
		Parent:       "1-2",
		Interfaces:   []Interface{{Number: 0, Class: "03", SubClass: "00", Protocol: "00", Driver: "usbhid"}},
		BlockDevices: []BlockDevice{},
	})
	hub := find(t, devs, "1-2")
	if hub.Product != "4-Port USB 2.0 Hub" || hub.Class != ClassHub || hub.Serial != nil || hub.Parent != "usb1" {
		t.Errorf("hub %+v", dump(hub))
	}
}

func TestLibfprintReaders(t *testing.T) {
	for _, tc := range []struct {
		file, path, vidpid, serial, product string
		iface                               Interface
		parent                              string
		paths                               []string
	}{
		{"egis0570", "1-9", "1c7a:0570", "W700B41B", "EgisTec Touch Fingerprint Sensor", Interface{Class: "ff", SubClass: "00", Protocol: "00"}, "usb1", []string{"usb1", "1-9"}},
		{"goodixmoc", "3-2", "27c6:5840", "UIDE1AD5CBA_XXXX_MOC_B0", "Goodix USB2.0 MISC", Interface{Class: "ff", SubClass: "00", Protocol: "00"}, "usb3", []string{"usb3", "3-2"}},
		{"synaptics", "1-9", "06cb:00bd", "c087f7d72126", "", Interface{Class: "ff", SubClass: "00", Protocol: "00"}, "usb1", []string{"usb1", "1-9"}},
		// This recording has no root hub: the parent comes from the name.
		{"vfs5011", "2-6", "138a:0017", "6c3b5712a6c0", "", Interface{Class: "ff", SubClass: "00", Protocol: "00"}, "usb2", []string{"2-6"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			devs := devices(t, tree(t, "libfprint/"+tc.file+".device.umockdev"))
			if got := paths(devs); !slices.Equal(got, tc.paths) {
				t.Fatalf("devices %v, want %v", got, tc.paths)
			}
			d := find(t, devs, tc.path)
			if d.VendorID+":"+d.ProductID != tc.vidpid || d.SerialString() != tc.serial || d.Product != tc.product {
				t.Errorf("got %s:%s serial %q product %q", d.VendorID, d.ProductID, d.SerialString(), d.Product)
			}
			if len(d.Interfaces) != 1 || d.Interfaces[0] != tc.iface {
				t.Errorf("interfaces %v, want [%v]", d.Interfaces, tc.iface)
			}
			if !slices.Equal(d.ClassNames(), []string{"vendor-specific"}) {
				t.Errorf("classes %v", d.ClassNames())
			}
			if d.Parent != tc.parent {
				t.Errorf("parent %q, want %q", d.Parent, tc.parent)
			}
		})
	}
}

// The fwupd card reader log has the USB device, its usb-storage
// interface and partition sda1. The disk sda and the sizes, read-only
// and removable flags are not in the log: the test adds them (synthetic
// values; removable 0 as many USB card readers report).
func cardReader(t *testing.T) (root, disk string) {
	root = tree(t, "fwupd/algoltek-au84612-setup.json")
	const reader = "devices/pci0000:00/0000:00:08.3/0000:c7:00.4/usb8/8-1/8-1.4"
	disk = reader + "/8-1.4:1.0/host0/target0:0:0/0:0:0:0/block/sda"
	write := func(rel, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, rel), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(disk+"/size", "62333952\n") // synthetic: 29.7 GiB
	write(disk+"/ro", "0\n")
	write(disk+"/removable", "0\n")
	write(disk+"/sda1/size", "62331904\n")
	write(disk+"/sda1/ro", "0\n")
	if err := os.Symlink("../../"+disk, filepath.Join(root, "class/block/sda")); err != nil {
		t.Fatal(err)
	}
	return root, disk
}

func TestCardReaderStorage(t *testing.T) {
	root, disk := cardReader(t)
	fsys := NewFS(root)
	devs := devices(t, root)
	// Only the reader was recorded: its hubs are directories without
	// attributes and without bus/usb/devices links.
	if got := paths(devs); !slices.Equal(got, []string{"8-1.4"}) {
		t.Fatalf("paths %v", got)
	}
	d := devs[0]
	checkDevice(t, d, Device{
		Path:        "8-1.4",
		SysPath:     "devices/pci0000:00/0000:00:08.3/0000:c7:00.4/usb8/8-1/8-1.4",
		BusNum:      8,
		DevNum:      6,
		VendorID:    "058f",
		ProductID:   "8468",
		BCDDevice:   "0100",
		VendorName:  "Alcor Micro Corp.",
		ProductName: "",
		Class:       "00", SubClass: "00", Protocol: "00",
		Parent:     "8-1",
		Interfaces: []Interface{{Number: 0, Class: "08", SubClass: "06", Protocol: "50", Driver: "usb-storage"}},
		BlockDevices: []BlockDevice{
			{Name: "sda", Size: 62333952 * 512},
			{Name: "sda1", Size: 62331904 * 512, Partition: true},
		},
	})
	if !d.IsStorage() || !slices.Equal(d.ClassNames(), []string{"mass-storage"}) {
		t.Errorf("storage %v classes %v", d.IsStorage(), d.ClassNames())
	}
	blocks, err := fsys.USBBlockDevices()
	if err != nil || !reflect.DeepEqual(blocks, map[string]string{"sda": "8-1.4", "sda1": "8-1.4"}) {
		t.Errorf("USBBlockDevices = %v, %v", blocks, err)
	}
	if bus, ok := fsys.OwnerOf("/" + disk + "/sda1"); !ok || bus != "8-1.4" {
		t.Errorf("OwnerOf(sda1) = %q %v", bus, ok)
	}
	one, err := fsys.Device("8-1.4")
	if err != nil {
		t.Fatal(err)
	}
	checkDevice(t, one, d)

	// Storage is decided by the parent chain, not the interface class:
	// a vendor-class interface with a disk below it is storage too.
	if err := os.WriteFile(filepath.Join(root, d.SysPath, "8-1.4:1.0/bInterfaceClass"), []byte("ff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	desc := filepath.Join(root, d.SysPath, "descriptors")
	raw, _ := os.ReadFile(desc)
	raw[18+9+5] = 0xff // bInterfaceClass in the descriptors
	if err := os.WriteFile(desc, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	one, _ = fsys.Device("8-1.4")
	if one.Interfaces[0].Class != "ff" || !one.IsStorage() {
		t.Errorf("vendor-class reader with a disk: %v storage %v", one.Interfaces, one.IsStorage())
	}
}

// The Scribe camera: an IAD device (ef/02/01) with video, vendor and HID
// interfaces, recorded by fwupd with its descriptors.
func TestLogiScribe(t *testing.T) {
	devs := devices(t, tree(t, "fwupd/logi-scribe-setup.json"))
	d := find(t, devs, "1-2")
	want := ifs("0:0e/01/00", "1:0e/02/00", "2:ff/65/01", "3:ff/66/01", "4:03/00/00")
	if !slices.Equal(d.Interfaces, want) || d.Class != "ef" || d.VendorName != "Logitech, Inc." {
		t.Errorf("scribe %+v", dump(d))
	}
	if got := d.ClassNames(); !slices.Equal(got, []string{"video", "vendor-specific", "hid"}) {
		t.Errorf("classes %v", got)
	}
}

func TestFramework16(t *testing.T) {
	devs := devices(t, tree(t, "fwupd/framework16-ansi-setup.json"))
	d := find(t, devs, "1-4.2")
	if d.VendorID != "32ac" || d.ProductID != "0012" || len(d.Interfaces) < 2 {
		t.Fatalf("framework %+v", dump(d))
	}
	for _, in := range d.Interfaces {
		if in.Class != "03" {
			t.Errorf("interface %v", in)
		}
	}
}

// Hot-plug: a device removed from the tree is gone for Device (an error
// wrapping fs.ErrNotExist) and for Devices; plugged back, it returns.
func TestHotplug(t *testing.T) {
	root := tree(t, "umockdev/fido2.umockdev")
	fsys := NewFS(root)
	before, err := fsys.Device("1-2.3")
	if err != nil {
		t.Fatal(err)
	}
	if err := sysfstest.Remove(root, "1-2.3"); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Device("1-2.3"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Device after unplug: %v", err)
	}
	if got := paths(devices(t, root)); !slices.Equal(got, []string{"usb1", "1-2"}) {
		t.Errorf("after unplug %v", got)
	}
	rec, err := sysfstest.Load("testdata/umockdev/fido2.umockdev")
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Subtree("1-2.3").Write(root); err != nil {
		t.Fatal(err)
	}
	after, err := fsys.Device("1-2.3")
	if err != nil {
		t.Fatal(err)
	}
	checkDevice(t, after, before)
	for _, bad := range []string{"", "1-", "../../etc", "1-2.3:1.0", "usb", "usbx"} {
		if _, err := fsys.Device(bad); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Device(%q): %v", bad, err)
		}
	}
}

func TestOwnerOf(t *testing.T) {
	fsys := NewFS("/sys")
	const dev = "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2.3"
	for _, tc := range []struct {
		in, want string
	}{
		{dev, "1-2.3"},
		{dev + "/1-2.3:1.0", "1-2.3"},
		{dev + "/1-2.3:1.0/host6", "1-2.3"},
		{dev + "/1-2.3:1.0/host6/target6:0:0", "1-2.3"},
		{dev + "/1-2.3:1.0/host6/target6:0:0/6:0:0:0/block/sdb", "1-2.3"},
		{dev + "/1-2.3:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1", "1-2.3"},
		{dev + "/1-2.3:1.0/0003:1050:0120.000A/hidraw/hidraw5", "1-2.3"},
		{"/sys" + dev + "/1-2.3:1.0", "1-2.3"},
		{"/devices/pci0000:00/0000:00:14.0/usb1", "usb1"},
		{"/devices/pci0000:00/0000:00:14.0/usb1/1-0:1.0", "usb1"},
		{"/devices/pci0000:00/0000:00:14.0/usb1/1-0:1.0/usb1-port2", "usb1"},
		{"/devices/pci0000:00/0000:00:14.0/usb1/1-2", "1-2"},
		// An I²C device "1-0050" is no USB device...
		{"/devices/pci0000:00/0000:00:02.0/i2c-1/1-0050", ""},
		// ...unless it hangs below a USB adapter, which owns it.
		{"/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/i2c-5/5-0050", "1-3"},
		{"/devices/virtual/block/loop0", ""},
		{"/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1", ""},
		{"", ""},
		{"/", ""},
	} {
		got, ok := fsys.OwnerOf(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("OwnerOf(%q) = %q %v, want %q", tc.in, got, ok, tc.want)
		}
	}
	// A path under the FS root is accepted as well.
	root := NewFS("/tmp/x")
	if got, ok := root.OwnerOf("/tmp/x" + dev); !ok || got != "1-2.3" {
		t.Errorf("under root: %q %v", got, ok)
	}
}

func TestNoUSBBus(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"devices/virtual/net/lo", "class/net"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fsys := NewFS(root)
	if err := fsys.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if fsys.HasUSBBus() {
		t.Error("HasUSBBus without bus/usb")
	}
	devs, err := fsys.Devices()
	if err != nil || devs == nil || len(devs) != 0 {
		t.Errorf("Devices on a sysfs without bus/usb = %#v, %v; want empty, nil", devs, err)
	}
	blocks, err := fsys.USBBlockDevices()
	if err != nil || len(blocks) != 0 {
		t.Errorf("USBBlockDevices = %v, %v", blocks, err)
	}
	if _, err := fsys.Device("1-1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Device: %v", err)
	}
}

// TestCheck: a root that is not a sysfs tree is an error wrapping
// ErrNotSysfs, from Check and from Devices, never an empty inventory.
func TestCheck(t *testing.T) {
	mk := func(t *testing.T, dirs ...string) string {
		root := t.TempDir()
		for _, d := range dirs {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	file := filepath.Join(t.TempDir(), "file")
	writeAttr(t, filepath.Dir(file), "file", []byte("x"))
	for _, tc := range []struct {
		name    string
		root    string
		wantErr string // "" for a sysfs
		usb     bool
	}{
		{"etc-like", mk(t, "ssh", "default"), "has no devices/ directory", false},
		{"empty", mk(t), "has no devices/ directory", false},
		{"devices only", mk(t, "devices"), "has devices/ but neither bus/ nor class/", false},
		{"bus/usb without devices/", mk(t, "bus/usb/devices"), "has no devices/ directory", true},
		{"missing", filepath.Join(t.TempDir(), "missing"), "no such file or directory", false},
		{"a file", file, "is not a directory", false},
		{"devices and class", mk(t, "devices", "class"), "", false},
		{"devices and bus/usb", mk(t, "devices", "bus/usb/devices"), "", true},
		{"recorded tree", tree(t, "umockdev/fido2.umockdev"), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := NewFS(tc.root)
			err := fsys.Check()
			if got := fsys.HasUSBBus(); got != tc.usb {
				t.Errorf("HasUSBBus = %v, want %v", got, tc.usb)
			}
			devs, derr := fsys.Devices()
			if tc.wantErr == "" {
				if err != nil || derr != nil || devs == nil {
					t.Errorf("Check: %v; Devices: %d, %v", err, len(devs), derr)
				}
				return
			}
			want := "not a sysfs tree: " + tc.root
			if err == nil || !errors.Is(err, ErrNotSysfs) || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Check: %v, want %q ... %q", err, want, tc.wantErr)
			}
			if devs != nil || derr == nil || derr.Error() != err.Error() {
				t.Errorf("Devices = %v, %v; want nil and Check's error", devs, derr)
			}
		})
	}
	if _, err := os.Stat("/sys/devices"); err == nil {
		if mounted, _ := isSysfsMount("/sys"); mounted {
			if err := NewFS("/sys").Check(); err != nil {
				t.Errorf("/sys: %v", err)
			}
			if err := NewFS("/sys/class").Check(); !errors.Is(err, ErrNotSysfs) || !strings.Contains(err.Error(), "inside sysfs") {
				t.Errorf("/sys/class: %v", err)
			}
		}
	}
	if err := NewFS(filepath.Join(t.TempDir(), "missing")).Check(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing root: %v does not wrap fs.ErrNotExist", err)
	}
}

// malformedTree builds the fido2 tree and returns its root and the key's
// directory, for tests that break one thing.
func malformedTree(t *testing.T) (root, key string) {
	root = tree(t, "umockdev/fido2.umockdev")
	return root, filepath.Join(root, "devices/pci0000:00/0000:00:08.1/0000:05:00.3/usb1/1-2/1-2.3")
}

func writeAttr(t *testing.T, dir, name string, v []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), v, 0o644); err != nil {
		t.Fatal(err)
	}
}

func removeAttr(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMalformed(t *testing.T) {
	hugeDesc := append(mustHex(t, "12010002000000405010200112050102000109022900010100800F0904000002030000000921100100012222000705040340000207058403400002"),
		make([]byte, maxAttrSize)...)
	for _, tc := range []struct {
		name    string
		edit    func(t *testing.T, root, key string)
		paths   []string // devices returned
		wantErr string   // substring of the error; "" for none
		check   func(t *testing.T, key Device)
	}{
		{
			name: "missing idVendor and descriptors",
			edit: func(t *testing.T, root, key string) {
				removeAttr(t, key, "descriptors", "idVendor")
			},
			paths:   []string{"usb1", "1-2"},
			wantErr: "usb device 1-2.3: open",
		},
		{
			name: "non-hex idProduct without descriptors",
			edit: func(t *testing.T, root, key string) {
				removeAttr(t, key, "descriptors")
				writeAttr(t, key, "idProduct", []byte("zz\x1b!\n"))
			},
			paths:   []string{"usb1", "1-2"},
			wantErr: `usb device 1-2.3: hex value "zz\\x1b!": not hex`,
		},
		{
			name: "ids from attributes without descriptors",
			edit: func(t *testing.T, root, key string) {
				removeAttr(t, key, "descriptors")
				writeAttr(t, key, "idVendor", []byte("0x1050"))
				writeAttr(t, key, "idProduct", []byte("120\n"))
				writeAttr(t, key, "bDeviceClass", []byte("0\n"))
				removeAttr(t, key, "bDeviceSubClass")
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
			check: func(t *testing.T, d Device) {
				if d.VendorID != "1050" || d.ProductID != "0120" || d.BCDDevice != "0512" || d.Class != "00" || d.SubClass != "" {
					t.Errorf("ids %+v", dump(d))
				}
				// Interfaces then come from the directories.
				if want := []Interface{{Number: 0, Class: "03", SubClass: "00", Protocol: "00", Driver: "usbhid"}}; !slices.Equal(d.Interfaces, want) {
					t.Errorf("interfaces %v", d.Interfaces)
				}
			},
		},
		{
			name: "descriptors over the size cap",
			edit: func(t *testing.T, root, key string) {
				writeAttr(t, key, "descriptors", hugeDesc)
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
			check: func(t *testing.T, d Device) {
				// Read from idVendor and friends instead.
				if d.VendorID != "1050" || d.ProductID != "0120" || len(d.Interfaces) != 1 {
					t.Errorf("%+v", dump(d))
				}
			},
		},
		{
			name: "huge product",
			edit: func(t *testing.T, root, key string) {
				writeAttr(t, key, "product", []byte(strings.Repeat("A", 1<<20)))
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
			check: func(t *testing.T, d Device) {
				// Read up to the 64 KiB cap, then cut by safe.String.
				if want := strings.Repeat("A", safe.MaxLen) + "…"; d.Product != want {
					t.Errorf("product of %d bytes: %.20q..., want %d bytes", len(d.Product), d.Product, len(want))
				}
			},
		},
		{
			name: "control characters and invalid UTF-8",
			edit: func(t *testing.T, root, key string) {
				writeAttr(t, key, "product", []byte("Evil\x1b[31mKey\xff\xfe\n"))
				writeAttr(t, key, "manufacturer", []byte("A\u202eB\r\n"))
				writeAttr(t, key, "serial", []byte("12\x0034\n"))
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
			check: func(t *testing.T, d Device) {
				if d.Product != `Evil\x1b[31mKey\xff\xfe` {
					t.Errorf("product %q", d.Product)
				}
				if d.Manufacturer != `A\u{202e}B\x0d` {
					t.Errorf("manufacturer %q", d.Manufacturer)
				}
				if d.SerialString() != `12\x0034` {
					t.Errorf("serial %q", d.SerialString())
				}
			},
		},
		{
			name: "only the kernel's newline is removed",
			edit: func(t *testing.T, root, key string) {
				writeAttr(t, key, "serial", []byte(" SN 01  \n\n"))
				writeAttr(t, key, "product", []byte("Key\\\r\n"))
				writeAttr(t, key, "manufacturer", []byte("NoNewline "))
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
			check: func(t *testing.T, d Device) {
				if d.SerialString() != ` SN 01  \x0a` {
					t.Errorf("serial %q", d.SerialString())
				}
				if d.Product != `Key\\\x0d` {
					t.Errorf("product %q", d.Product)
				}
				if d.Manufacturer != "NoNewline " {
					t.Errorf("manufacturer %q", d.Manufacturer)
				}
			},
		},
		{
			name: "empty serial is not a missing serial",
			edit: func(t *testing.T, root, key string) {
				writeAttr(t, key, "serial", []byte("\n"))
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
			check: func(t *testing.T, d Device) {
				if d.Serial == nil || *d.Serial != "" {
					t.Errorf("serial %v", d.Serial)
				}
			},
		},
		{
			name: "dangling bus link (device vanished)",
			edit: func(t *testing.T, root, key string) {
				if err := os.Symlink("../../../devices/pci0000:00/gone/1-7", filepath.Join(root, "bus/usb/devices/1-7")); err != nil {
					t.Fatal(err)
				}
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
		},
		{
			name: "device directory removed under its link",
			edit: func(t *testing.T, root, key string) {
				if err := os.RemoveAll(key); err != nil {
					t.Fatal(err)
				}
			},
			paths: []string{"usb1", "1-2"},
		},
		{
			name: "device that is a file",
			edit: func(t *testing.T, root, key string) {
				if err := os.WriteFile(filepath.Join(root, "devices/1-8"), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("../../../devices/1-8", filepath.Join(root, "bus/usb/devices/1-8")); err != nil {
					t.Fatal(err)
				}
			},
			paths:   []string{"usb1", "1-2", "1-2.3"},
			wantErr: "usb device 1-8: open",
		},
		{
			name: "link leaving the root",
			edit: func(t *testing.T, root, key string) {
				if err := os.Symlink("../../../../../../../../etc", filepath.Join(root, "bus/usb/devices/1-6")); err != nil {
					t.Fatal(err)
				}
			},
			paths:   []string{"usb1", "1-2", "1-2.3"},
			wantErr: "usb device 1-6: link target",
		},
		{
			name: "dangling driver link and unbound interface",
			edit: func(t *testing.T, root, key string) {
				drv := filepath.Join(key, "1-2.3:1.0/driver")
				removeAttr(t, filepath.Dir(drv), "driver")
				if err := os.Symlink("../../../../../../../../bus/usb/drivers/gone-driver", drv); err != nil {
					t.Fatal(err)
				}
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
			check: func(t *testing.T, d Device) {
				if d.Interfaces[0].Driver != "gone-driver" {
					t.Errorf("driver %q", d.Interfaces[0].Driver)
				}
			},
		},
		{
			name: "unauthorized device without interface directories",
			edit: func(t *testing.T, root, key string) {
				if err := os.RemoveAll(filepath.Join(key, "1-2.3:1.0")); err != nil {
					t.Fatal(err)
				}
				writeAttr(t, key, "authorized", []byte("0\n"))
				writeAttr(t, key, "bConfigurationValue", []byte("\n"))
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
			check: func(t *testing.T, d Device) {
				if d.Authorized == nil || *d.Authorized {
					t.Errorf("authorized %v", d.Authorized)
				}
				if want := []Interface{{Number: 0, Class: "03", SubClass: "00", Protocol: "00"}}; !slices.Equal(d.Interfaces, want) {
					t.Errorf("interfaces %v", d.Interfaces)
				}
			},
		},
		{
			name: "authorized missing or garbage",
			edit: func(t *testing.T, root, key string) {
				writeAttr(t, key, "authorized", []byte("yes\n"))
				removeAttr(t, key, "speed", "devnum")
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
			check: func(t *testing.T, d Device) {
				if d.Authorized != nil || d.Speed != "" || d.DevNum != 0 {
					t.Errorf("%+v", dump(d))
				}
			},
		},
		{
			name: "interface directory the descriptors do not list",
			edit: func(t *testing.T, root, key string) {
				dir := filepath.Join(key, "1-2.3:1.5")
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				writeAttr(t, dir, "bInterfaceNumber", []byte("05\n"))
				writeAttr(t, dir, "bInterfaceClass", []byte("08\n"))
				writeAttr(t, dir, "bInterfaceSubClass", []byte("6\n"))
				writeAttr(t, dir, "bInterfaceProtocol", []byte("0x50"))
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
			check: func(t *testing.T, d Device) {
				want := []Interface{
					{Number: 0, Class: "03", SubClass: "00", Protocol: "00", Driver: "usbhid"},
					{Number: 5, Class: "08", SubClass: "06", Protocol: "50"},
				}
				if !slices.Equal(d.Interfaces, want) || !d.IsStorage() {
					t.Errorf("interfaces %v", d.Interfaces)
				}
			},
		},
		{
			name: "names that are not devices",
			edit: func(t *testing.T, root, key string) {
				for _, n := range []string{"1-2.x", "usb", "foo", "1-2.3:1.9"} {
					if err := os.Symlink("../../../devices/nowhere", filepath.Join(root, "bus/usb/devices", n)); err != nil {
						t.Fatal(err)
					}
				}
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
		},
		{
			name: "truncated descriptors",
			edit: func(t *testing.T, root, key string) {
				raw, err := os.ReadFile(filepath.Join(key, "descriptors"))
				if err != nil {
					t.Fatal(err)
				}
				writeAttr(t, key, "descriptors", raw[:30])
			},
			paths: []string{"usb1", "1-2", "1-2.3"},
			check: func(t *testing.T, d Device) {
				// The cut falls inside the interface descriptor: the
				// directory tells the interface.
				if d.VendorID != "1050" || len(d.Interfaces) != 1 || d.Interfaces[0].Class != "03" {
					t.Errorf("%+v", dump(d))
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, key := malformedTree(t)
			tc.edit(t, root, key)
			devs, err := NewFS(root).Devices()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if got := paths(devs); !slices.Equal(got, tc.paths) {
				t.Fatalf("paths %v, want %v", got, tc.paths)
			}
			if tc.check != nil {
				tc.check(t, find(t, devs, "1-2.3"))
			}
		})
	}
}

func TestComparePath(t *testing.T) {
	want := []string{"usb1", "1-1", "1-2", "1-2.1", "1-2.1.4", "1-2.2", "1-10", "usb2", "2-1", "usb10", "10-1"}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, comparePath)
	if !slices.Equal(got, want) {
		t.Errorf("sorted %v", got)
	}
}

func TestNames(t *testing.T) {
	for name, want := range map[string]bool{
		"usb1": true, "usb12": true, "1-2": true, "1-2.3.4": true, "10-11": true,
		"usb": false, "usbx": false, "1-": false, "-1": false, "1-2.": false, "1-2..3": false,
		"1-2:1.0": false, "a-1": false, "1-2.3a": false, "": false, "1-1234567890": false,
	} {
		if got := isDeviceName(name); got != want {
			t.Errorf("isDeviceName(%q) = %v", name, got)
		}
	}
	for _, tc := range []struct {
		name, bus string
		cfg, num  int
		ok        bool
	}{
		{"1-2.3:1.0", "1-2.3", 1, 0, true},
		{"1-2.3:2.11", "1-2.3", 2, 11, true},
		{"1-0:1.0", "usb1", 1, 0, true},
		{"1-2.3:1.0", "1-2", 0, 0, false},
		{"1-2.3:1", "1-2.3", 0, 0, false},
		{"1-2.3:x.0", "1-2.3", 0, 0, false},
		{"power", "1-2.3", 0, 0, false},
	} {
		cfg, num, ok := parseInterfaceName(tc.name, tc.bus)
		if cfg != tc.cfg || num != tc.num || ok != tc.ok {
			t.Errorf("parseInterfaceName(%q, %q) = %d %d %v", tc.name, tc.bus, cfg, num, ok)
		}
	}
}

func TestParseHexAttr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		bits int
		want string
		err  bool
	}{
		{"05f3\n", 16, "05f3", false},
		{"05F3", 16, "05f3", false},
		{"5f3", 16, "05f3", false},
		{"0x05f3\n", 16, "05f3", false},
		{" 9\n", 8, "09", false},
		{"ff", 8, "ff", false},
		{"", 16, "", true},
		{"\n", 16, "", true},
		{"0x", 16, "", true},
		{"10000", 16, "", true},
		{"100", 8, "", true},
		{"-1", 16, "", true},
		{"+1", 16, "", true},
		{"zzzz", 16, "", true},
		{"05f3 extra", 16, "", true},
	} {
		got, err := parseHexAttr([]byte(tc.in), tc.bits)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("parseHexAttr(%q, %d) = %q, %v", tc.in, tc.bits, got, err)
		}
	}
}

func FuzzParseHexAttr(f *testing.F) {
	for _, s := range []string{"05f3\n", "0x1", "ff", "", "zz", "+1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, bits := range []int{8, 16} {
			v, err := parseHexAttr(b, bits)
			if err == nil && (len(v) != bits/4 || strings.Trim(v, "0123456789abcdef") != "") {
				t.Fatalf("parseHexAttr(%q) = %q", b, v)
			}
		}
	})
}

// The device list and one-device read agree on every recording.
func TestDeviceMatchesDevices(t *testing.T) {
	root := tree(t, "umockdev/usbkbd.umockdev")
	fsys := NewFS(root)
	for _, d := range devices(t, root) {
		one, err := fsys.Device(d.Path)
		if err != nil {
			t.Fatal(err)
		}
		checkDevice(t, one, d)
	}
}

// A large tree is read by several goroutines; the result must not depend
// on that.
func TestDevices100(t *testing.T) {
	root := tree100(t)
	devs := devices(t, root)
	if len(devs) != 100 {
		t.Fatalf("%d devices", len(devs))
	}
	seen := map[int]bool{}
	for i, d := range devs {
		if i > 0 && comparePath(devs[i-1].Path, d.Path) >= 0 {
			t.Errorf("not sorted: %s before %s", devs[i-1].Path, d.Path)
		}
		if seen[d.DevNum] {
			t.Errorf("devnum %d twice", d.DevNum)
		}
		seen[d.DevNum] = true
		if d.Path != "usb1" && d.Path != "1-2" {
			if d.VendorID != "1050" || len(d.Interfaces) != 1 || d.Interfaces[0].Driver != "usbhid" || d.Parent != "1-2" {
				t.Errorf("copy %s: %+v", d.Path, dump(d))
			}
		}
	}
}

// TestSerialEscapeCollision reads the two ST-Link/V2 probes of the
// serial-escape-collision fixture: 2-10 sends its serial as raw bytes
// (C0 and C1 controls among them), 2-11's serial is the printed text of
// 2-10's. They must stay two serials, each exactly as escaped, and each
// must unescape to the attribute's bytes without the kernel's newline.
func TestSerialEscapeCollision(t *testing.T) {
	devs := devices(t, tree(t, "umockdev/st-link-serial-collision.umockdev"))
	for _, tc := range []struct {
		path, want, raw string
	}{
		{"2-10", `Rÿq\x06J\u{0086}KR2F\x15\u{0087}`, "R\u00ffq\x06J\u0086KR2F\x15\u0087"},
		{"2-11", `Rÿq\\x06J\\u{0086}KR2F\\x15\\u{0087}`, `Rÿq\x06J\u{0086}KR2F\x15\u{0087}`},
	} {
		d := find(t, devs, tc.path)
		if d.Serial == nil || *d.Serial != tc.want {
			t.Errorf("%s: serial %q, want %q", tc.path, d.SerialString(), tc.want)
			continue
		}
		if raw, err := safe.Unescape(*d.Serial); err != nil || raw != tc.raw {
			t.Errorf("%s: Unescape(serial) = %q, %v; want %q", tc.path, raw, err, tc.raw)
		}
		if d.Product != "STM32 STLink" || d.Manufacturer != "STMicroelectronics" {
			t.Errorf("%s: strings %q %q", tc.path, d.Manufacturer, d.Product)
		}
	}
}
