package agent

import (
	"strings"
	"testing"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
)

// Media on Windows are judged from the drive letters on each disk, as
// media.WindowsVolumes found them (SetupAPI lists disks, not
// partitions). Runs on Windows and under Wine.
func TestWindowsMediaFromVolumes(t *testing.T) {
	d := &usb.Device{Path: `USB\VID_0781&PID_5567\4C530001`, BlockDevices: []usb.BlockDevice{
		{Name: "PhysicalDrive2", Size: 16 << 30, Removable: true},
		{Name: "PhysicalDrive3", Size: 0, Removable: true}, // an empty slot
		{Name: "PhysicalDrive4", Size: 8 << 30, Removable: true},
	}}
	vols := []media.Volume{
		{Device: `\\?\Volume{1}`, BlockName: "HarddiskVolume7", MountPoint: `E:\`, Backing: "PhysicalDrive2", Size: 16 << 30,
			FSType: "", Encryption: media.EncryptionBitLockerToGo, Encrypted: true},
		{Device: `\\?\Volume{2}`, BlockName: "HarddiskVolume8", MountPoint: `F:\`, Backing: "physicaldrive4", Size: 4 << 30, FSType: "vfat"},
		{Device: `\\?\Volume{3}`, BlockName: "HarddiskVolume9", MountPoint: `G:\`, Backing: "PhysicalDrive4", Size: 4 << 30,
			Encryption: media.EncryptionBitLocker, Encrypted: true},
		{Device: `\\?\Volume{4}`, BlockName: "HarddiskVolume1", MountPoint: `C:\`, Backing: "PhysicalDrive0", FSType: "ntfs"},
	}
	ms := (&sources{}).media(d, vols)
	if len(ms) != 2 {
		t.Fatalf("%d media, want 2 (the empty slot left out): %+v", len(ms), ms)
	}
	if m := ms[0]; m.Disk != "PhysicalDrive2" || !m.Encrypted || len(m.Units) != 1 || m.Units[0].Name != "drive E" ||
		!strings.Contains(m.Seen, "drive E: bitlocker-to-go") {
		t.Errorf("BitLocker To Go stick: %+v", m)
	}
	// A plain FAT partition beside a BitLocker one: not shown to be
	// encrypted, both units named.
	if m := ms[1]; m.Encrypted || len(m.Units) != 2 || !strings.Contains(m.Seen, "drive F: plain vfat") || !strings.Contains(m.Seen, "drive G: bitlocker") {
		t.Errorf("mixed disk: %+v", m)
	}

	// Suspended protection, an unreadable volume, a disk without letters.
	d.BlockDevices = d.BlockDevices[:1]
	for _, c := range []struct {
		name string
		vols []media.Volume
		seen string
	}{
		{"clear key", []media.Volume{{MountPoint: `E:\`, Backing: "PhysicalDrive2", Encryption: media.EncryptionBitLockerToGo, ClearKey: true}}, "protection suspended"},
		{"unreadable", []media.Volume{{MountPoint: `E:\`, Backing: "PhysicalDrive2", Error: "probe: Access is denied.\nbus type unknown"}}, "could not be read (probe: Access is denied.)"},
		{"no drive letter", nil, "PhysicalDrive2: no partition"},
	} {
		ms := (&sources{}).media(d, c.vols)
		if len(ms) != 1 || ms[0].Encrypted || !strings.Contains(ms[0].Seen, c.seen) {
			t.Errorf("%s: %+v, want not encrypted, seen %q", c.name, ms, c.seen)
		}
	}
}
