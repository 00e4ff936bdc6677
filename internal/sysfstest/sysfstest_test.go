package sysfstest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const sample = `P: /devices/pci0000:00/0000:00:14.0/usb1/1-2
N: bus/usb/001/002=12010002
E: SUBSYSTEM=usb
E: DEVTYPE=usb_device
E: DEVNAME=/dev/bus/usb/001/002
E: ID_VENDOR=Evil
A: busnum=1\n
A: product=two\nlines\\n
A: power/control=auto
H: descriptors=1201
L: driver=../../../../../bus/usb/drivers/usb
L: port=../1-0:1.0/usb1-port2

P: /devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0
E: SUBSYSTEM=usb
E: DEVTYPE=usb_interface
A: bInterfaceClass=08
L: driver=../../../../../../bus/usb/drivers/usb-storage

P: /devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host0/target0:0:0/0:0:0:0/block/sda
E: SUBSYSTEM=block
A: size=100

P: /devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host0/target0:0:0/0:0:0:0/block/sda/sda1
A: partition=1
`

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func link(t *testing.T, p string) string {
	t.Helper()
	s, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFromUmockdev(t *testing.T) {
	root := t.TempDir()
	if err := FromUmockdev(root, []byte(sample)); err != nil {
		t.Fatal(err)
	}
	dev := filepath.Join(root, "devices/pci0000:00/0000:00:14.0/usb1/1-2")
	for _, tc := range []struct{ file, want string }{
		{"busnum", "1\n"},
		{"product", "two\nlines\\n"},
		{"power/control", "auto"},
		{"descriptors", "\x12\x01"},
		{"uevent", "DEVTYPE=usb_device\nDEVNAME=bus/usb/001/002\n"},
	} {
		if got := read(t, filepath.Join(dev, tc.file)); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.file, got, tc.want)
		}
	}
	for _, tc := range []struct{ link, want string }{
		{dev + "/driver", "../../../../../bus/usb/drivers/usb"},
		{dev + "/subsystem", "../../../../../bus/usb"},
		{root + "/bus/usb/devices/1-2", "../../../devices/pci0000:00/0000:00:14.0/usb1/1-2"},
		{root + "/bus/usb/devices/1-2:1.0", "../../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0"},
		{root + "/class/block/sda", "../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host0/target0:0:0/0:0:0:0/block/sda"},
		{root + "/class/block/sda1", "../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host0/target0:0:0/0:0:0:0/block/sda/sda1"},
	} {
		if got := link(t, tc.link); got != tc.want {
			t.Errorf("%s -> %q, want %q", tc.link, got, tc.want)
		}
		if _, err := os.Stat(tc.link); err != nil {
			t.Errorf("%s dangles: %v", tc.link, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "bus/usb/drivers/usb-storage")); err != nil || !fi.IsDir() {
		t.Errorf("driver directory: %v", err)
	}

	// Remove takes the device, its interface, its block devices and
	// every link to them.
	if err := Remove(root, "1-2"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dev, root + "/bus/usb/devices/1-2", root + "/bus/usb/devices/1-2:1.0", root + "/class/block/sda", root + "/class/block/sda1"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if err := Remove(root, "1-2"); err == nil {
		t.Error("second Remove: no error")
	}

	// Plug puts it back, links included.
	r, err := ParseUmockdev([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if err := Plug(root, r, "1-2"); err != nil {
		t.Fatal(err)
	}
	if got := link(t, root+"/class/block/sda1"); !strings.HasSuffix(got, "/block/sda/sda1") {
		t.Errorf("after Plug: %q", got)
	}
	if err := Plug(root, r, "1-9"); err == nil {
		t.Error("Plug of an unknown device: no error")
	}
}

func TestParseUmockdevErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"attribute before path", "A: x=1\n", "line 1: A: line before any P: line"},
		{"relative path", "P: devices/x\n", "not absolute"},
		{"unclean path", "P: /devices/../x\n", "not clean"},
		{"escaping attribute", "P: /devices/x\nA: ../../etc/passwd=1\n", "bad name"},
		{"absolute link name", "P: /devices/x\nL: /etc=../y\n", "bad name"},
		{"bad hex", "P: /devices/x\nH: descriptors=12G1\n", "line 2: H: descriptors"},
		{"unknown tag", "P: /devices/x\nQ: what\n", `unknown tag "Q"`},
		{"no tag", "P: /devices/x\njunk\n", "no \"X: \" tag"},
	} {
		_, err := ParseUmockdev([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A link that would leave the root is refused when writing.
	r, err := ParseUmockdev([]byte("P: /devices/x\nL: driver=../../../../../../etc\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(t.TempDir()); err == nil || !strings.Contains(err.Error(), "leaves the root") {
		t.Errorf("escaping link: %v", err)
	}
}

func TestRecordingsParse(t *testing.T) {
	files, _ := filepath.Glob("../../collector/usb/testdata/*/*.umockdev")
	json, _ := filepath.Glob("../../collector/usb/testdata/fwupd/*.json")
	files = append(files, json...)
	if len(files) < 10 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		r, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if err := r.Write(t.TempDir()); err != nil {
			t.Errorf("%s: write: %v", f, err)
		}
	}
}

func TestFwupdDerived(t *testing.T) {
	r, err := Load("../../collector/usb/testdata/fwupd/algoltek-au84612-setup.json")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"8-1.4": {
			"busnum": "8\n", "devnum": "6\n", "idVendor": "058f\n", "idProduct": "8468\n",
			"bcdDevice": "0100\n", "bDeviceClass": "00\n",
		},
		"8-1.4:1.0": {
			"bInterfaceClass": "08\n", "bInterfaceSubClass": "06\n", "bInterfaceProtocol": "50\n",
			"bInterfaceNumber": "00\n",
		},
		"sda1": {"partition": "1\n"},
	}
	for name, attrs := range want {
		d := r.Find(name)
		if d == nil {
			t.Fatalf("no %s", name)
		}
		for k, v := range attrs {
			if got, _ := d.Attr(k); string(got) != v {
				t.Errorf("%s/%s = %q, want %q", name, k, got, v)
			}
		}
	}
	iface := r.Find("8-1.4:1.0")
	if !slices.Contains(iface.Links, Link{Name: "driver", Target: "../../../../../../../../bus/usb/drivers/usb-storage"}) {
		t.Errorf("interface links %v", iface.Links)
	}
	if _, err := ParseFwupd([]byte(`{"UsbDevices":[{"BackendId":"relative"}]}`)); err == nil {
		t.Error("relative BackendId accepted")
	}
	if _, err := ParseFwupd([]byte(`{`)); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestReplicate(t *testing.T) {
	r, err := Load("../../collector/usb/testdata/umockdev/fido2.umockdev")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	paths, err := Replicate(root, r, "1-2.3", 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1-2.1", "1-2.2", "1-2.4", "1-2.5", "1-2.6", "1-2.7", "1-2.8"}; !slices.Equal(paths, want) {
		t.Errorf("paths %v, want %v", paths, want)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "bus/usb/devices"))
	var devs []string
	for _, e := range ents {
		if !strings.Contains(e.Name(), ":") {
			devs = append(devs, e.Name())
		}
	}
	if len(devs) != 10 {
		t.Errorf("%d devices: %v", len(devs), devs)
	}
	copyDir := filepath.Join(root, "devices/pci0000:00/0000:00:08.1/0000:05:00.3/usb1/1-2/1-2.7")
	if got := read(t, copyDir+"/devnum"); got != "107\n" {
		t.Errorf("devnum %q", got)
	}
	if got := link(t, copyDir+"/1-2.7:1.0/driver"); got != "../../../../../../../../bus/usb/drivers/usbhid" {
		t.Errorf("driver link %q", got)
	}
	if _, err := Replicate(root, r, "usb1", 20); err == nil {
		t.Error("replicating a root hub: no error")
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`a\nb`:  "a\nb",
		`a\\nb`: `a\nb`,
		`a\tb`:  "a\tb",
		`a\qb`:  `a\qb`,
		`end\`:  `end\`,
		``:      ``,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseUmockdev(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("P: /devices/x\nA: a=\\\\n\n\nP: /devices/y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseUmockdev(b)
		if err != nil {
			return
		}
		for _, d := range r.Devices {
			if _, err := cleanDevPath(d.Path); err != nil {
				t.Fatalf("accepted path %q", d.Path)
			}
			for _, a := range d.Attrs {
				if checkRelName(a.Name) != nil {
					t.Fatalf("accepted attribute %q", a.Name)
				}
			}
		}
	})
}
