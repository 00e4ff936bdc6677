package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/policy"
	"github.com/mamori-agent/mamori/wire"
)

// windowsMedia fails closed: a disk that could not be read is never an
// empty slot, and a volume on it is judged.
func TestWindowsMediaFailsClosed(t *testing.T) {
	const path = `USB\VID_0781&PID_5567\4C530001`
	plain := media.Volume{MountPoint: `E:\`, Backing: "PhysicalDrive2", USBDevice: path, FSType: "vfat"}
	locked := media.Volume{MountPoint: `E:\`, Backing: "PhysicalDrive2", USBDevice: path,
		Encryption: media.EncryptionBitLockerToGo, Encrypted: true}
	unreadable := func(name string) (string, bool) {
		if name == "PhysicalDrive2" {
			return "open for reading: Access is denied.", true
		}
		return "", false
	}
	for _, c := range []struct {
		name       string
		disks      []usb.BlockDevice
		vols       []media.Volume
		unreadable func(string) (string, bool)
		want       int // media; -1: none expected
		seen       string
		incomplete string // why the disk list was incomplete
	}{
		{"empty slot", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, nil, nil, -1, "", ""},
		{"size unread, plain volume on it", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, []media.Volume{plain}, nil, 1, "drive E: plain vfat", ""},
		{"size unread, BitLocker volume on it", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, []media.Volume{locked}, unreadable, 1,
			"PhysicalDrive2: could not be read (the disk could not be read: open for reading: Access is denied.)", ""},
		{"unreadable, no volume", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, nil, unreadable, 1, "could not be read", ""},
		{"number unread", []usb.BlockDevice{{Name: `USBSTOR\DISK&VEN_X\1`}}, nil, nil, 1, "its disk number could not be read", ""},
		{"volume on no listed disk", []usb.BlockDevice{{Name: `USBSTOR\DISK&VEN_X\1`}}, []media.Volume{plain}, nil, 2, "drive E: plain vfat", ""},
		// The disk list was incomplete: a stick with no disk listed, or
		// only a readable BitLocker one, is still not shown to be
		// encrypted (its disk may be the one missing).
		{"disk list incomplete, no disk", nil, nil, nil, 1, "disks not listed: could not be read (the disks could not all be listed: SetupDiEnumDeviceInfo: boom)", "SetupDiEnumDeviceInfo: boom"},
		{"disk list incomplete, an encrypted disk", []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 16 << 30}}, []media.Volume{locked}, nil, 2, "disks could not all be listed", "boom"},
	} {
		ms := windowsMedia(path, c.disks, c.vols, c.unreadable, c.incomplete)
		if c.want < 0 {
			if len(ms) != 0 {
				t.Errorf("%s: %+v, want no medium", c.name, ms)
			}
			continue
		}
		if len(ms) != c.want {
			t.Errorf("%s: %d media %+v, want %d", c.name, len(ms), ms, c.want)
			continue
		}
		// The medium that says c.seen is not shown to be encrypted; any
		// other is, only when it is the readable BitLocker disk.
		var seen []string
		found := false
		for _, m := range ms {
			if strings.Contains(m.Seen, c.seen) {
				found = true
				if m.Encrypted {
					t.Errorf("%s: %s shown to be encrypted: %+v", c.name, m.Disk, m)
				}
			} else if m.Encrypted && !(c.incomplete != "" && m.Disk == "PhysicalDrive2") {
				t.Errorf("%s: %s shown to be encrypted: %+v", c.name, m.Disk, m)
			}
			seen = append(seen, m.Seen)
		}
		if !found {
			t.Errorf("%s: seen %q, want %q in it", c.name, strings.Join(seen, " | "), c.seen)
		}
	}
	// A readable disk with a BitLocker To Go volume passes; another
	// device's volume is not this one's.
	other := plain
	other.USBDevice, other.Backing = `USB\VID_1\2`, "PhysicalDrive9"
	ms := windowsMedia(path, []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 16 << 30}}, []media.Volume{locked, other}, unreadable, "")
	if len(ms) != 1 || ms[0].Encrypted { // PhysicalDrive2 is unreadable here
		t.Errorf("unreadable disk with BitLocker: %+v", ms)
	}
	ms = windowsMedia(path, []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 16 << 30}}, []media.Volume{locked, other}, nil, "")
	if len(ms) != 1 || !ms[0].Encrypted {
		t.Errorf("BitLocker To Go stick: %+v", ms)
	}
	for name, want := range map[string]bool{"PhysicalDrive0": true, "PhysicalDrive12": true, "PhysicalDrive": false,
		"PhysicalDrive-1": false, "PhysicalDrive2x": false, `USBSTOR\DISK`: false, "sda": false} {
		if windowsDiskName(name) != want {
			t.Errorf("windowsDiskName(%q) = %v", name, !want)
		}
	}
}

// TestUnknownUSBStorageJudged: a disk the Windows USB backend cannot
// place below a USB device is a Device of its own (usb.UnknownPathPrefix,
// class mass storage, the disk, no ids): no approval by vendor, product
// or serial holds it, so it is unapproved storage; where storage is
// approved by class on condition of encryption, its plain medium is a
// violation. Never an internal disk, fine.
func TestUnknownUSBStorageJudged(t *testing.T) {
	d := &usb.Device{Path: usb.UnknownPathPrefix + `USBSTOR\Disk&Ven_SanDisk&Prod_Cruzer\4C53&0`, Class: usb.ClassMassStorage,
		Product:    "SanDisk Cruzer USB Device (USB device not determined: its bus type could not be read)",
		Interfaces: []usb.Interface{}, BlockDevices: []usb.BlockDevice{{Name: "PhysicalDrive3", Size: 16 << 30, Removable: true}}}
	if d.IsRootHub() || !d.IsStorage() {
		t.Fatalf("root hub %v, storage %v", d.IsRootHub(), d.IsStorage())
	}
	cfg := func(entries string) *policy.USBPolicy {
		c, err := config.Parse("t.yaml", []byte("version: 1\nagent:\n  asset_id: PC-TEST\napproved:\n  usb:\n"+entries))
		if err != nil {
			t.Fatal(err)
		}
		return policy.NewUSBPolicy(c)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.Local)
	byIDs := cfg(`    - name: SanDisk sticks
      vendor_id: "0781"
    - name: Any device with no serial
      vendor_id: "0000"
      product_id: "0000"
`)
	dec := byIDs.Decide(d, now)
	if dec.Approved || dec.Violation == nil || dec.Violation.Kind != wire.KindUSBStorageUnapproved {
		t.Errorf("approved by ids only: %+v, want usb_storage_unapproved", dec)
	}

	byClass := cfg(`    - name: Encrypted storage
      classes: [mass-storage]
      require_encryption: true
`)
	dec = byClass.Decide(d, now)
	if !dec.Approved || !dec.RequiresEncryption(d) {
		t.Fatalf("storage approved by class on condition of encryption: %+v", dec)
	}
	plain := media.Volume{MountPoint: `E:\`, Backing: "PhysicalDrive3", USBDevice: d.Path, FSType: "vfat"}
	ms := windowsMedia(d.Path, d.BlockDevices, []media.Volume{plain}, nil, "")
	if len(ms) != 1 || ms[0].Encrypted || !strings.Contains(ms[0].Seen, "drive E: plain vfat") {
		t.Errorf("plain medium of unknown USB storage: %+v", ms)
	}
}
