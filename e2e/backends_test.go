//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// scanDevice is the part of `mamori scan --format json` compared across
// USB backends.
type scanDevice struct {
	Path         string  `json:"path"`
	VendorID     string  `json:"vendor_id"`
	ProductID    string  `json:"product_id"`
	Serial       *string `json:"serial"`
	Manufacturer string  `json:"manufacturer"`
	Product      string  `json:"product"`
	Class        string  `json:"class"`
	Interfaces   []struct {
		Number int    `json:"number"`
		Class  string `json:"class"`
	} `json:"interfaces"`
}

func (d scanDevice) summary() string {
	s := "<none>"
	if d.Serial != nil {
		s = *d.Serial
	}
	var cl []string
	for _, in := range d.Interfaces {
		cl = append(cl, fmt.Sprintf("%d:%s", in.Number, in.Class))
	}
	return fmt.Sprintf("%s:%s serial=%s strings=%q/%q class=%s interfaces=%v", d.VendorID, d.ProductID, s, d.Manufacturer, d.Product, d.Class, cl)
}

// scanJSON runs a mamori binary's scan in the guest and returns its
// devices by bus path. scan exits non-zero when it finds violations, so
// only its JSON on stdout counts.
func (v *vm) scanJSON(bin, config string) map[string]scanDevice {
	v.t.Helper()
	out := v.Run(fmt.Sprintf("%s scan --config %s --sysfs /sys --procfs /proc --format json 2>/tmp/scan.err || true", bin, config))
	var rep struct {
		Devices []scanDevice `json:"usb_devices"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		errs, _ := v.Exec(10*time.Second, "cat /tmp/scan.err")
		v.Fatalf("%s scan: %v\nstdout: %s\nstderr: %s", bin, err, out, errs)
	}
	m := map[string]scanDevice{}
	for _, d := range rep.Devices {
		m[d.Path] = d
	}
	return m
}

// TestScanBackends compares what the sysfs and the libusb USB backends
// see of the same devices: ids, serials, strings and interface classes.
// It needs a static mamori built with -tags libusb (scripts/build-libusb.sh)
// in MAMORI_E2E_LIBUSB_BIN.
func TestScanBackends(t *testing.T) {
	bin := os.Getenv("MAMORI_E2E_LIBUSB_BIN")
	if bin == "" {
		t.Skip("set MAMORI_E2E_LIBUSB_BIN to a static mamori built with -tags libusb (scripts/build-libusb.sh OUT)")
	}
	if !isStaticELF(bin) {
		t.Fatalf("MAMORI_E2E_LIBUSB_BIN=%s is not a static ELF", bin)
	}
	e := setup(t)
	requireMamori(t, e)
	initrd := e.Work + "/initramfs-libusb.cpio.gz"
	bb, err := findBusybox()
	if err != nil {
		t.Fatal(err)
	}
	spec := initramfsSpec{Kernel: e.Kernel, Busybox: bb, Mamori: e.Mamori, Modules: guestModules,
		ModuleArgs: map[string]string{"usb_storage": "delay_use=0"},
		Extra:      map[string]string{"bin/mamori-libusb": bin}}
	if err := buildInitramfs(initrd, spec); err != nil {
		t.Fatal(err)
	}
	v := bootVM(t, vmOptions{Kernel: e.Kernel.Vmlinuz, Initramfs: initrd})
	v.Run(fmt.Sprintf("mkdir -p /etc %s; echo '%s' > /etc/mamori.yaml; sed 's/backend: sysfs/backend: libusb/' /etc/mamori.yaml > /etc/mamori-libusb.yaml",
		guestStateDir, strings.ReplaceAll(guestConfig, "'", "")))

	img := v.newStickImage("scan")
	v.PlugStick("scan", img, "E2E-SCAN-1", true)
	v.PlugKeyboard("scankbd")
	v.PlugSerial("scanser")
	g := gadget{Name: "scan", VendorID: "1209", ProductID: "c0de", Serial: "SCAN-COMPOSITE",
		Manufacturer: "mamori e2e", Product: "Keyboard with storage", Keyboard: true, Storage: true}
	v.PlugGadget(g)
	v.usbPathBySerial("E2E-SCAN-1", 15*time.Second)
	v.usbPathBySerial(g.Serial, 15*time.Second)
	v.usbPathByIDs("0627", "0001", 15*time.Second)
	v.usbPathByIDs("0403", "6001", 15*time.Second)

	compareBackends(t, v)

	// A second round: the composite leaves; a serial-less storage gadget
	// with non-ASCII strings (UTF-16 in its descriptors) arrives.
	v.UnplugGadget(g)
	g2 := gadget{Name: "scan2", VendorID: "0951", ProductID: "1666", Manufacturer: "守り e2e",
		Product: "USB メモリ", Storage: true}
	v.PlugGadget(g2)
	v.usbPathByIDs("0951", "1666", 15*time.Second)
	compareBackends(t, v)
}

// compareBackends scans the guest with both USB backends and fails on any
// difference in ids, serials, strings or interface classes.
func compareBackends(t *testing.T, v *vm) {
	sys := v.scanJSON("/bin/mamori", "/etc/mamori.yaml")
	lib := v.scanJSON("/bin/mamori-libusb", "/etc/mamori-libusb.yaml")
	var paths []string
	for p := range sys {
		paths = append(paths, p)
	}
	for p := range lib {
		if _, ok := sys[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		a, okA := sys[p]
		b, okB := lib[p]
		switch {
		case !okA:
			v.Errorf("libusb sees %s (%s), sysfs does not", p, b.summary())
		case !okB:
			if !strings.HasPrefix(p, "usb") { // root hubs may be absent from libusb
				v.Errorf("sysfs sees %s (%s), libusb does not", p, a.summary())
			}
		case a.summary() != b.summary():
			v.Errorf("%s differs:\n  sysfs:  %s\n  libusb: %s", p, a.summary(), b.summary())
		default:
			t.Logf("%s same in both: %s", p, a.summary())
		}
	}
}
