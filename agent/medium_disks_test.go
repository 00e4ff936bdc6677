package agent

import (
	"strings"
	"testing"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
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
	}{
		{"empty slot", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, nil, nil, -1, ""},
		{"size unread, plain volume on it", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, []media.Volume{plain}, nil, 1, "drive E: plain vfat"},
		{"size unread, BitLocker volume on it", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, []media.Volume{locked}, unreadable, 1,
			"PhysicalDrive2: could not be read (the disk could not be read: open for reading: Access is denied.)"},
		{"unreadable, no volume", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, nil, unreadable, 1, "could not be read"},
		{"number unread", []usb.BlockDevice{{Name: `USBSTOR\DISK&VEN_X\1`}}, nil, nil, 1, "its disk number could not be read"},
		{"volume on no listed disk", []usb.BlockDevice{{Name: `USBSTOR\DISK&VEN_X\1`}}, []media.Volume{plain}, nil, 2, "drive E: plain vfat"},
	} {
		ms := windowsMedia(path, c.disks, c.vols, c.unreadable)
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
		var seen []string
		for _, m := range ms {
			if m.Encrypted {
				t.Errorf("%s: %s shown to be encrypted: %+v", c.name, m.Disk, m)
			}
			seen = append(seen, m.Seen)
		}
		if all := strings.Join(seen, " | "); !strings.Contains(all, c.seen) {
			t.Errorf("%s: seen %q, want %q in it", c.name, all, c.seen)
		}
	}
	// A readable disk with a BitLocker To Go volume passes; another
	// device's volume is not this one's.
	other := plain
	other.USBDevice, other.Backing = `USB\VID_1\2`, "PhysicalDrive9"
	ms := windowsMedia(path, []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 16 << 30}}, []media.Volume{locked, other}, unreadable)
	if len(ms) != 1 || ms[0].Encrypted { // PhysicalDrive2 is unreadable here
		t.Errorf("unreadable disk with BitLocker: %+v", ms)
	}
	ms = windowsMedia(path, []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 16 << 30}}, []media.Volume{locked, other}, nil)
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
