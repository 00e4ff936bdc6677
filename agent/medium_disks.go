package agent

import (
	"slices"
	"strconv"
	"strings"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/internal/safe"
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

// diskProbe probes every partition of a Windows disk, "PhysicalDriveN",
// from the disk itself (media.ProbeWindowsDisk): its size in bytes, its
// units, or why it could not be opened.
type diskProbe func(name string) (size int64, units []media.DiskUnit, err error)

// windowsMedia is the media of the USB storage device path on Windows,
// each judged: each disk of disks ("PhysicalDriveN"), whose units are
// every partition of its layout, probed from the disk by probe (below
// BitLocker, whether Windows gave the partition a volume or not), as
// Linux judges every partition the kernel lists. A volume among vols on
// the disk (a volume's Backing: a drive letter, a folder mount point or
// none) names the partition at its offset; one that matches no partition
// is a unit of its own, as it was probed (windowsUnit). It fails closed:
//
//   - a partition that could not be probed is a unit that could not be
//     read, and so is a layout that could not be listed (see
//     media.ProbeWindowsDisk);
//   - a disk that could not be opened (probe's error; reading a disk
//     needs administrator rights), or could not be read (its number
//     unknown, or unreadable says why its size is), is a medium with a
//     unit that could not be read, whatever its volumes show, never an
//     empty slot; a disk of size 0 is left out as an empty slot, not
//     probed, only when it was read and no volume is on it;
//   - volumes of path on none of its disks are judged as a medium of
//     their own, "a disk not listed", which also holds a unit that could
//     not be read when listIncomplete says why the disks of the last
//     enumeration may not be all there are (a disk missing from it would
//     be on no device: its media unseen).
//
// probe is called at every judgement: a medium under require_encryption
// is probed again at every rescan, so that BitLocker suspended, turned
// off or decrypted in place is seen. A nil probe reads no disk (each is
// then a medium that could not be read). Pure but for probe, so that it
// is tested on every OS.
func windowsMedia(path string, disks []usb.BlockDevice, vols []media.Volume, probe diskProbe, unreadable func(name string) (string, bool), listIncomplete string) []*MediumRecord {
	var out []*MediumRecord
	used := make([]bool, len(vols))
	for _, disk := range disks {
		if disk.Partition {
			continue
		}
		m := &MediumRecord{Disk: disk.Name, Size: disk.Size}
		var on []media.Volume
		for i, v := range vols {
			if strings.EqualFold(v.Backing, disk.Name) {
				on = append(on, v)
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
			m.Units = volumeUnits(on)
			m.Units = append(m.Units, MediumUnit{Name: disk.Name, Size: disk.Size, Error: "the disk could not be read: " + why})
		case disk.Size == 0 && len(on) == 0:
			continue // an empty slot
		case probe == nil:
			m.Units = volumeUnits(on)
			m.Units = append(m.Units, MediumUnit{Name: disk.Name, Size: disk.Size, Error: "its partitions were not read"})
		default:
			size, units, err := probe(disk.Name)
			if err != nil {
				m.Units = volumeUnits(on)
				m.Units = append(m.Units, MediumUnit{Name: disk.Name, Size: disk.Size, Error: "its partitions could not be read: " + safe.String(err.Error())})
				break
			}
			if m.Size == 0 {
				m.Size = size
			}
			m.Units = partitionUnits(units, on)
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

// partitionUnits makes a unit of each partition a disk probe found, named
// "partition N" ("whole disk" for a disk probed as one unit) and, when a
// volume of on starts at its offset, by that volume too ("partition 1
// (drive E)"); its verdict is the probe's: encrypted only when it found
// an encryption container whose protection is on. A volume of on that
// starts at no partition's offset (or whose offset is unknown) is a unit
// of its own, as it was probed (windowsUnit): what the layout did not
// show is not left out.
func partitionUnits(units []media.DiskUnit, on []media.Volume) []MediumUnit {
	matched := make([]bool, len(on))
	out := make([]MediumUnit, 0, len(units)+len(on))
	for _, du := range units {
		name := "whole disk"
		if du.Number > 0 {
			name = "partition " + strconv.Itoa(du.Number)
		}
		for i, v := range on {
			if !matched[i] && v.OffsetKnown && v.Offset == du.Offset {
				matched[i] = true
				name += " (" + volumeName(v) + ")"
				break
			}
		}
		u := MediumUnit{Name: name, Size: du.Length}
		if du.Err != nil {
			u.Error = safe.String(du.Err.Error())
		} else {
			u.FSType, u.Encryption, u.ClearKey = du.Info.FSType, du.Info.Encryption, du.Info.ClearKey
			u.Encrypted = slices.Contains(encryptionSchemes, du.Info.Encryption) && !du.Info.ClearKey
		}
		out = append(out, u)
	}
	for i, v := range on {
		if !matched[i] {
			out = append(out, windowsUnit(v))
		}
	}
	return out
}

// volumeUnits makes a unit of each volume, as it was probed.
func volumeUnits(vols []media.Volume) []MediumUnit {
	var out []MediumUnit
	for _, v := range vols {
		out = append(out, windowsUnit(v))
	}
	return out
}

// volumeName names a Windows volume by where it is reached: "drive E"
// for a drive letter, "volume on C:\mnt\stick" for a folder mount point
// (escaped: whoever made the folder chose its name), "volume
// Volume{GUID}" for a volume mounted nowhere.
func volumeName(v media.Volume) string {
	mp := v.MountPoint
	if len(mp) <= 3 && len(mp) >= 2 && mp[0] >= 'A' && mp[0] <= 'Z' && mp[1] == ':' && (len(mp) == 2 || mp[2] == '\\') {
		return "drive " + mp[:1]
	}
	if g, ok := strings.CutPrefix(mp, `\\?\`); ok && strings.HasPrefix(g, "Volume{") {
		return "volume " + safe.String(strings.TrimSuffix(g, `\`))
	}
	return "volume on " + safe.String(strings.TrimSuffix(mp, `\`))
}

// windowsUnit is a volume as a medium unit, as media.WindowsVolumes
// probed it, named by where it is reached (volumeName: "drive E").
func windowsUnit(v media.Volume) MediumUnit {
	u := MediumUnit{Name: volumeName(v), Size: v.Size, FSType: v.FSType,
		Encryption: v.Encryption, ClearKey: v.ClearKey}
	u.Encrypted = v.Encrypted && slices.Contains(encryptionSchemes, v.Encryption) && !v.ClearKey
	if !u.Encrypted && v.Encryption == "" && v.FSType == "" && v.Error != "" {
		// Nothing recognised, and the volume says why.
		u.Error, _, _ = strings.Cut(v.Error, "\n")
	}
	return u
}
