package agent

import (
	"slices"
	"strconv"
	"strings"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
)

// windowsDiskName reports whether name is a disk named by its number
// ("PhysicalDrive2"), as SetupAPI names a disk whose number it read; a
// disk whose number could not be read is named by its instance id, and
// no volume can be matched to it.
func windowsDiskName(name string) bool {
	n, ok := strings.CutPrefix(name, "PhysicalDrive")
	if !ok || n == "" {
		return false
	}
	_, err := strconv.ParseUint(n, 10, 32)
	return err == nil
}

// windowsMedia is the media of the USB storage device path on Windows,
// each judged: each disk of disks ("PhysicalDriveN"), with the drive
// letters on it among vols (a volume's Backing) as its units. It fails
// closed: a disk that could not be read (its number unknown, or
// unreadable says why its size is) is a medium with a unit that could
// not be read, never an empty slot, whatever its volumes show; a disk of
// size 0 is left out as an empty slot only when it was read and no
// volume is on it; and volumes of path on none of its disks are judged
// as a medium of their own, "a disk not listed", which also holds a unit
// that could not be read when listIncomplete says why the disks of the
// last enumeration may not be all there are (a disk missing from it
// would be on no device: its media unseen). Pure, so that it is tested
// on every OS.
func windowsMedia(path string, disks []usb.BlockDevice, vols []media.Volume, unreadable func(name string) (string, bool), listIncomplete string) []*MediumRecord {
	var out []*MediumRecord
	used := make([]bool, len(vols))
	for _, disk := range disks {
		if disk.Partition {
			continue
		}
		m := &MediumRecord{Disk: disk.Name, Size: disk.Size}
		for i, v := range vols {
			if strings.EqualFold(v.Backing, disk.Name) {
				m.Units = append(m.Units, windowsUnit(v))
				used[i] = true
			}
		}
		why, bad := "", false
		if !windowsDiskName(disk.Name) {
			why, bad = "its disk number could not be read", true
		} else if unreadable != nil {
			why, bad = unreadable(disk.Name)
		}
		switch {
		case bad:
			m.Units = append(m.Units, MediumUnit{Name: disk.Name, Size: disk.Size, Error: "the disk could not be read: " + why})
		case disk.Size == 0 && len(m.Units) == 0:
			continue // an empty slot
		}
		judgeMedium(m)
		out = append(out, m)
	}
	var rest *MediumRecord
	for i, v := range vols {
		if used[i] || path == "" || v.USBDevice != path {
			continue
		}
		if rest == nil {
			rest = &MediumRecord{Disk: "a disk not listed"}
		}
		rest.Units = append(rest.Units, windowsUnit(v))
	}
	if listIncomplete != "" {
		if rest == nil {
			rest = &MediumRecord{Disk: "a disk not listed"}
		}
		rest.Units = append(rest.Units, MediumUnit{Name: "disks not listed", Error: "the disks could not all be listed: " + listIncomplete})
	}
	if rest != nil {
		judgeMedium(rest)
		out = append(out, rest)
	}
	return out
}

// windowsUnit is a drive letter's volume as a medium unit, named by the
// letter ("drive E").
func windowsUnit(v media.Volume) MediumUnit {
	u := MediumUnit{Name: "drive " + strings.TrimSuffix(strings.TrimSuffix(v.MountPoint, `\`), ":"), Size: v.Size, FSType: v.FSType,
		Encryption: v.Encryption, ClearKey: v.ClearKey}
	u.Encrypted = v.Encrypted && slices.Contains(encryptionSchemes, v.Encryption) && !v.ClearKey
	if !u.Encrypted && v.Encryption == "" && v.FSType == "" && v.Error != "" {
		// Nothing recognised, and the volume says why.
		u.Error, _, _ = strings.Cut(v.Error, "\n")
	}
	return u
}
