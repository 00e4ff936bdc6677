package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
)

// A device whose USB device could not be determined ("unknown:") has no
// ids and no port the config takes: no entry is suggested for it (one
// with empty vendor_id and product_id made the suggestion fail to load),
// and a comment line says why, in the whole suggestion and in
// --entries-only alike.
func TestSuggestLeavesOutUnknownDevices(t *testing.T) {
	serial := "4C530001230719117094"
	devs := []usb.Device{
		{Path: `USB\VID_0781&PID_5567\4C530001230719117094`, VendorID: "0781", ProductID: "5567", Serial: &serial,
			Product: "Cruzer Blade", Class: usb.ClassMassStorage},
		{Path: usb.UnknownPathPrefix + `USBSTOR\Disk&Ven_SanDisk&Prod_Cruzer\4C53&0`, Class: usb.ClassMassStorage,
			Product: "SanDisk Cruzer USB Device (USB device not determined: its bus type could not be read)\nvendor_id: \"0781\""},
		{Path: usb.UnknownPathPrefix + `Volume{00000000-0000-0000-0000-00000000005a}`, Class: usb.ClassMassStorage,
			Product: "drive Z: (USB device not determined: the disk under this drive could not be determined)"},
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.Local)
	fill := strings.NewReplacer(`owner: ""`, "owner: x", `approved_by: ""`, "approved_by: y")

	out, err := Suggest(devs, "PC-1", now, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("suggestion:\n%s", out)
	cfg, err := config.Parse("s.yaml", []byte("version: 1\n"+fill.Replace(string(out))))
	if err != nil {
		t.Fatalf("the suggestion does not load: %v\n%s", err, out)
	}
	if len(cfg.Approved.USB) != 1 || cfg.Approved.USB[0].VendorID != "0781" {
		t.Errorf("entries %+v, want the Cruzer's only", cfg.Approved.USB)
	}
	checkNotes := func(what, out string) {
		t.Helper()
		for _, p := range []string{devs[1].Path, devs[2].Path} {
			n := strings.Count(out, "# not suggested: "+p+", ")
			if n != 1 {
				t.Errorf("%s: %d comment lines for %s, want 1:\n%s", what, n, p, out)
			}
		}
		if strings.Contains(out, `vendor_id: ""`) || strings.Contains(out, `port: "unknown:`) {
			t.Errorf("%s: an entry for an unknown device:\n%s", what, out)
		}
	}
	checkNotes("suggestion", string(out))

	entries, err := Suggest(devs, "PC-1", now, true)
	if err != nil {
		t.Fatal(err)
	}
	checkNotes("entries only", string(entries))
	merged := "version: 1\napproved:\n  usb:\n    - name: existing\n      classes: [hub]\n" + fill.Replace(string(entries))
	if cfg, err := config.Parse("merged.yaml", []byte(merged)); err != nil || len(cfg.Approved.USB) != 2 {
		t.Errorf("entries only do not merge under a list: %v\n%s", err, merged)
	}

	// Only unknown devices: nothing to suggest, but not "every attached
	// device is approved".
	entries, err = Suggest(devs[1:], "PC-1", now, true)
	if err != nil {
		t.Fatal(err)
	}
	checkNotes("entries only, unknown devices only", string(entries))
	if strings.Contains(string(entries), "every attached device is approved") {
		t.Errorf("unknown devices said approved:\n%s", entries)
	}
	merged = "version: 1\napproved:\n  usb:\n    - name: existing\n      classes: [hub]\n" + string(entries)
	if _, err := config.Parse("merged.yaml", []byte(merged)); err != nil {
		t.Errorf("notes alone do not merge under a list: %v\n%s", err, merged)
	}
	out, err = Suggest(devs[1:], "PC-1", now, false)
	if err != nil {
		t.Fatal(err)
	}
	checkNotes("suggestion, unknown devices only", string(out))
	if cfg, err := config.Parse("s.yaml", []byte("version: 1\n"+string(out))); err != nil || len(cfg.Approved.USB) != 0 {
		t.Errorf("the empty suggestion: %v\n%s", err, out)
	}
	if n, _ := Suggest(nil, "PC-1", now, true); string(n) != "# nothing to suggest: every attached device is approved\n" {
		t.Errorf("nothing at all: %q", n)
	}
}

// A Windows device without a serial has no port the config takes (its
// Path is an instance id, not a bus path): the suggestion approves it by
// vendor_id and product_id and says so, and loads as a config.
func TestSuggestWindowsDeviceWithoutSerial(t *testing.T) {
	devs := []usb.Device{{Path: `USB\VID_046D&PID_C077\5&2A0B5D3&0&2`, VendorID: "046d", ProductID: "c077",
		Product: "USB Optical Mouse", Class: "00", Interfaces: []usb.Interface{{Class: "03"}}}}
	out, err := Suggest(devs, "PC-1", time.Date(2026, 6, 1, 12, 0, 0, 0, time.Local), false)
	if err != nil {
		t.Fatal(err)
	}
	fill := strings.NewReplacer(`owner: ""`, "owner: x", `approved_by: ""`, "approved_by: y")
	cfg, err := config.Parse("s.yaml", []byte("version: 1\n"+fill.Replace(string(out))))
	if err != nil {
		t.Fatalf("the suggestion does not load: %v\n%s", err, out)
	}
	if len(cfg.Approved.USB) != 1 || cfg.Approved.USB[0].Port != "" || cfg.Approved.USB[0].ProductID != "c077" {
		t.Errorf("entries %+v", cfg.Approved.USB)
	}
	if !strings.Contains(string(out), "approves every device of this vendor_id and product_id") {
		t.Errorf("no word that it approves the model:\n%s", out)
	}
}
