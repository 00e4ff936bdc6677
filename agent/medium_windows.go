package agent

import (
	"slices"
	"strings"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
)

// media returns the media in storage device d now, each judged. On
// Windows a medium is each disk SetupAPI lists below d ("PhysicalDriveN";
// size 0, an empty card-reader slot, left out), and its units are the
// drive letters on that disk (a volume's Backing), as media.
// WindowsVolumes probed them: the first sectors on the disk at the
// volume's extent, below BitLocker, so that an unlocked BitLocker To Go
// stick still shows its container. A disk without a drive letter has no
// unit and is not shown to be encrypted; a unit whose sectors could not
// be read is not either.
func (c *sources) media(d *usb.Device, vols []media.Volume) []*MediumRecord {
	var out []*MediumRecord
	for _, disk := range d.BlockDevices {
		if disk.Partition || disk.Size == 0 {
			continue
		}
		m := &MediumRecord{Disk: disk.Name, Size: disk.Size}
		for _, v := range vols {
			if strings.EqualFold(v.Backing, disk.Name) {
				m.Units = append(m.Units, windowsUnit(v))
			}
		}
		judgeMedium(m)
		out = append(out, m)
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
