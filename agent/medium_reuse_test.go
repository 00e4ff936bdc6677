package agent

import (
	"testing"

	"github.com/mamori-agent/mamori/collector/media"
)

func TestReuseProbe(t *testing.T) {
	seen := media.Volume{Device: `\\?\Volume{1234}`, BlockName: "HarddiskVolume5", MajorMinor: "2:1",
		Backing: "PhysicalDrive2", MountPoint: `E:\`, USBDevice: `USB\VID_0781&PID_5567\X`,
		UUID: "ABCD-1234", FSType: "vfat", Label: "STICK", Size: 1 << 30}
	probed := seen
	p := probedDrive{vol: probed, seen: seen}
	if !reuseProbe(p, true, seen) {
		t.Fatal("the same plain medium is probed again")
	}
	// A container is probed again every time: BitLocker suspended,
	// turned off or decrypted in place changes nothing Windows shows.
	for name, change := range map[string]func(v *media.Volume){
		"BitLocker To Go":       func(v *media.Volume) { v.Encrypted, v.Encryption = true, media.EncryptionBitLockerToGo },
		"LUKS":                  func(v *media.Volume) { v.Encrypted, v.Encryption = true, media.EncryptionLUKS2 },
		"suspended":             func(v *media.Volume) { v.ClearKey, v.FSType = true, media.FSBitLocker },
		"BitLocker, no verdict": func(v *media.Volume) { v.FSType = media.FSBitLocker },
		"LUKS, no verdict":      func(v *media.Volume) { v.FSType = media.FSLUKS },
	} {
		c := p
		change(&c.vol)
		if reuseProbe(c, true, seen) {
			t.Errorf("%s: the earlier probe was reused", name)
		}
	}
	if reuseProbe(p, false, seen) {
		t.Error("reused with no earlier probe")
	}
	failed := p
	failed.vol.Error = "probe: access denied"
	if reuseProbe(failed, true, seen) {
		t.Error("reused a failed probe")
	}
	for name, change := range map[string]func(v *media.Volume){
		"serial (card swapped)":     func(v *media.Volume) { v.UUID = "0000-0001" },
		"serial gone (locked)":      func(v *media.Volume) { v.UUID = "" },
		"file system (reformatted)": func(v *media.Volume) { v.FSType = "exfat" },
		"label":                     func(v *media.Volume) { v.Label = "OTHER" },
		"size":                      func(v *media.Volume) { v.Size = 2 << 30 },
		"read-only":                 func(v *media.Volume) { v.ReadOnly = true },
		"volume":                    func(v *media.Volume) { v.Device = `\\?\Volume{5678}` },
		"block name":                func(v *media.Volume) { v.BlockName = "HarddiskVolume6" },
		"disk and partition":        func(v *media.Volume) { v.MajorMinor = "3:1" },
		"backing disk":              func(v *media.Volume) { v.Backing = "PhysicalDrive3" },
		"USB device":                func(v *media.Volume) { v.USBDevice = `USB\VID_0781&PID_5567\Y` },
		"letter":                    func(v *media.Volume) { v.MountPoint = `F:\` },
	} {
		now := seen
		change(&now)
		if reuseProbe(p, true, now) {
			t.Errorf("%s changed: the earlier probe was reused", name)
		}
	}
}
