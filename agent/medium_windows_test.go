package agent

import (
	"strings"
	"testing"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/internal/wintest"
)

// Media on Windows are judged from every partition of each disk, read
// from the disk itself (media.ProbeWindowsDisk) at each judgement; the
// drive letters only name them. Runs on Windows and under Wine, where
// PhysicalDrive0 (the disk of C: and Z:) opens but cannot be read
// ("Invalid function"): its medium is a unit that could not be read, the
// volumes on it judged beside it; a disk that does not exist cannot be
// opened, and its medium is not encrypted whatever its volume says.
func TestWindowsMediaReadsTheDisk(t *testing.T) {
	d := &usb.Device{Path: `USB\VID_0781&PID_5567\4C530001`, BlockDevices: []usb.BlockDevice{
		{Name: "PhysicalDrive0", Size: 16 << 30, Removable: true},
		{Name: "PhysicalDrive9999", Size: 8 << 30, Removable: true},
	}}
	locked := media.Volume{Device: `\\?\Volume{00000000-0000-0000-0000-000000000001}`, MountPoint: `E:\`, Backing: "PhysicalDrive9999",
		Size: 8 << 30, Encryption: media.EncryptionBitLockerToGo, Encrypted: true, Offset: 1 << 20, OffsetKnown: true}
	ms := (&sources{}).media(d, []media.Volume{locked})
	if len(ms) != 2 {
		t.Fatalf("%d media, want 2: %+v", len(ms), ms)
	}
	for _, m := range ms {
		t.Logf("%s: encrypted %v: %s", m.Disk, m.Encrypted, m.Seen)
		if m.Encrypted && m.Disk == "PhysicalDrive9999" {
			t.Errorf("a disk that cannot be opened is encrypted: %+v", m)
		}
	}
	if m := ms[1]; !strings.Contains(m.Seen, "drive E: bitlocker-to-go") ||
		!strings.Contains(m.Seen, "PhysicalDrive9999: could not be read (its partitions could not be read: probe disk PhysicalDrive9999: open: ") {
		t.Errorf("a disk that cannot be opened: %s", m.Seen)
	}
	if wintest.IsWine() {
		if m := ms[0]; m.Encrypted || m.Seen != "whole disk: could not be read (probe disk PhysicalDrive0 whole disk: read first sector: Invalid function.)" {
			t.Errorf("Wine's PhysicalDrive0: %+v", m)
		}
	}
}
