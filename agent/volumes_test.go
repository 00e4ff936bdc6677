package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/policy"
	"github.com/mamori-agent/mamori/wire"
)

// Volumes no USB device claims (Windows keeps drives whose bus type could
// not be read, and removable drives on no disk a listed USB device holds)
// get devices of their own, judged as USB storage whose device is
// unknown: unapproved storage under approvals by ids, and, under an
// approval by class that requires encryption, their media judged, one
// that cannot be read never all clear.
func TestPlaceVolumes(t *testing.T) {
	const stick = `USB\VID_0781&PID_5567\4C530001`
	vols := []media.Volume{
		{Device: `\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6961}`, MountPoint: `E:\`, Backing: "PhysicalDrive2", USBDevice: stick, FSType: "vfat"},
		{Device: `\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6962}`, MountPoint: `F:\`, Backing: "PhysicalDrive5", FSType: "vfat", Error: "bus type unknown",
			Offset: 1 << 20, OffsetKnown: true},
		{Device: `\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6963}`, MountPoint: `G:\`, Backing: "PhysicalDrive5",
			Encryption: media.EncryptionBitLocker, Encrypted: true, Error: "bus type unknown", Offset: 8 << 30, OffsetKnown: true},
		{Device: `\\?\Volume{00000000-0000-0000-0000-00000000005a}`, MountPoint: `Z:\`, FSType: "ntfs", Error: "open \\\\.\\Z:: Access denied.\nbus type unknown"},
		{Device: `\\.\Y:`, MountPoint: `Y:\`, Error: "open \\\\.\\Y:: Access denied.\nGetVolumeInformation gave nothing (locked, empty or unreadable)"},
		{Device: `\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6964}`, MountPoint: `H:\`, Backing: "PhysicalDrive6",
			Encryption: media.EncryptionBitLockerToGo, Encrypted: true, Error: "bus type unknown", Offset: 1 << 20, OffsetKnown: true},
		// Volumes without a drive letter: one mounted on a folder, one
		// mounted nowhere whose disk is not known.
		{Device: `\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6965}`, MountPoint: `C:\mnt\stick\`, Backing: "PhysicalDrive7", FSType: "vfat",
			Error: "bus type unknown", Offset: 1 << 20, OffsetKnown: true},
		{Device: `\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6966}`, MountPoint: `\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6966}\`, FSType: "vfat",
			Error: "bus type unknown"},
	}
	probe := &probeDisks{units: map[string][]media.DiskUnit{
		"PhysicalDrive5": {{Number: 1, Offset: 1 << 20, Length: 8<<30 - 1<<20, Info: infoFAT},
			{Number: 2, Offset: 8 << 30, Length: 8 << 30, Info: media.Info{Kind: media.KindCrypto, FSType: media.FSBitLocker, Encryption: media.EncryptionBitLocker}}},
		"PhysicalDrive6": {{Number: 1, Offset: 1 << 20, Length: 8 << 30, Info: infoToGo}},
		"PhysicalDrive7": {{Number: 1, Offset: 1 << 20, Length: 8 << 30, Info: infoFAT}},
	}}
	devs := placeVolumes(vols)
	want := map[string][]string{ // device: its drives
		"unknown:PhysicalDrive5":                               {`F:\`, `G:\`},
		"unknown:PhysicalDrive6":                               {`H:\`},
		"unknown:PhysicalDrive7":                               {`C:\mnt\stick\`},
		"unknown:Volume{00000000-0000-0000-0000-00000000005a}": {`Z:\`},
		"unknown:Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6966}": {`\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6966}\`},
		"unknown:Y:": {`Y:\`},
	}
	if len(devs) != len(want) {
		t.Fatalf("%d devices %+v, want %d", len(devs), devs, len(want))
	}
	if vols[0].USBDevice != stick {
		t.Errorf("a volume its USB device claims moved to %q", vols[0].USBDevice)
	}
	for i := 1; i < len(devs); i++ {
		if devs[i-1].Path >= devs[i].Path {
			t.Errorf("not sorted by path: %s before %s", devs[i-1].Path, devs[i].Path)
		}
	}
	cfg := func(entries string) *policy.USBPolicy {
		c, err := config.Parse("t.yaml", []byte("version: 1\nagent:\n  asset_id: PC-TEST\napproved:\n  usb:\n"+entries))
		if err != nil {
			t.Fatal(err)
		}
		return policy.NewUSBPolicy(c)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.Local)
	byIDs := cfg("    - name: SanDisk sticks\n      vendor_id: \"0781\"\n")
	byClass := cfg("    - name: Encrypted storage\n      classes: [mass-storage]\n      require_encryption: true\n")
	for i := range devs {
		d := &devs[i]
		drives, ok := want[d.Path]
		if !ok {
			t.Errorf("unexpected device %+v", *d)
			continue
		}
		var own []media.Volume
		for _, v := range vols {
			if v.USBDevice == d.Path {
				own = append(own, v)
			}
		}
		if len(own) != len(drives) {
			t.Errorf("%s: volumes %+v, want %v", d.Path, own, drives)
		}
		if !d.IsStorage() || d.IsRootHub() || d.VendorID != "" || d.ProductID != "" || d.Serial != nil ||
			!strings.Contains(d.Product, "USB device not determined") || !strings.Contains(d.Product, productName(drives[0])) {
			t.Errorf("%s: %+v, want storage with no ids and why in Product", d.Path, *d)
		}
		if disk, ok := strings.CutPrefix(d.Path, "unknown:PhysicalDrive"); ok && (len(d.BlockDevices) != 1 || d.BlockDevices[0].Name != "PhysicalDrive"+disk) {
			t.Errorf("%s: block devices %+v, want its disk", d.Path, d.BlockDevices)
		}
		if dec := byIDs.Decide(d, now); dec.Approved || dec.Violation == nil || dec.Violation.Kind != wire.KindUSBStorageUnapproved {
			t.Errorf("%s under approvals by ids: %+v, want usb_storage_unapproved", d.Path, dec)
		}
		dec := byClass.Decide(d, now)
		if !dec.Approved || !dec.RequiresEncryption(d) {
			t.Errorf("%s under a class approval that requires encryption: %+v", d.Path, dec)
			continue
		}
		ms := windowsMedia(d.Path, d.BlockDevices, own, probe.probe, nil, "")
		encrypted := len(ms) > 0
		var seen []string
		for _, m := range ms {
			encrypted = encrypted && m.Encrypted
			seen = append(seen, m.Disk+": "+m.Seen)
		}
		t.Logf("%s: %s", d.Path, strings.Join(seen, " | "))
		switch d.Path {
		case "unknown:PhysicalDrive6":
			if !encrypted || len(ms) != 1 || ms[0].Disk != "PhysicalDrive6" {
				t.Errorf("%s: a BitLocker To Go drive: %v, want its one medium encrypted", d.Path, seen)
			}
		case "unknown:PhysicalDrive5":
			if encrypted || len(ms) != 1 || ms[0].Seen != "partition 1 (drive F): plain vfat; partition 2 (drive G): bitlocker" {
				t.Errorf("%s: a plain and a BitLocker drive on one disk: %v, want one medium, not encrypted", d.Path, seen)
			}
		case "unknown:PhysicalDrive7":
			if encrypted || len(ms) != 1 || ms[0].Seen != `partition 1 (volume on C:\\mnt\\stick): plain vfat` {
				t.Errorf("%s: a plain volume on a folder: %v, want not encrypted", d.Path, seen)
			}
		case "unknown:Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6966}":
			if encrypted || len(ms) != 1 || ms[0].Seen != "volume Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6966}: plain vfat" {
				t.Errorf("%s: a plain volume mounted nowhere: %v, want not encrypted", d.Path, seen)
			}
		case "unknown:Y:":
			if encrypted || len(ms) != 1 || !strings.Contains(ms[0].Seen, "drive Y: could not be read") {
				t.Errorf("%s: a drive that could not be read: %v, want not encrypted", d.Path, seen)
			}
		default:
			if encrypted || len(ms) != 1 || !strings.Contains(ms[0].Seen, "drive Z: plain ntfs") {
				t.Errorf("%s: %v, want a plain medium", d.Path, seen)
			}
		}
	}
	if d := devs[0]; d.Path != "unknown:PhysicalDrive5" || d.Product != "drive F: on PhysicalDrive5 (USB device not determined: no USB device listed holds this disk)" {
		t.Errorf("%s: product %q", d.Path, d.Product)
	}
	// Every volume is claimed now: no more devices.
	if devs := placeVolumes(vols); len(devs) != 0 {
		t.Errorf("placed again: %+v, want none", devs)
	}
	if devs := placeVolumes([]media.Volume{{Device: "/dev/sdb1", MountPoint: "/media/x", USBDevice: "1-2"}}); len(devs) != 0 {
		t.Errorf("a volume on a USB device got a device: %+v", devs)
	}
}

// productName is how placeVolumes names a volume in its device's
// Product: "drive E:" for a letter, else as volumeName does.
func productName(mountPoint string) string {
	n := volumeName(media.Volume{MountPoint: mountPoint})
	if strings.HasPrefix(n, "drive ") {
		return n + ": "
	}
	return n + " "
}
