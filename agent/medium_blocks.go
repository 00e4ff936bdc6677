//go:build !windows

package agent

import (
	"slices"
	"strings"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/internal/safe"
)

// Media as Linux shows them: the disks and partitions sysfs lists below
// the USB device, each probed read-only under the device root.

// media returns the media in storage device d now, each judged. Disks
// without a medium (size 0: an empty card-reader slot) are left out. vols
// are the mounted volumes known on the device, to see direct mounts.
func (c *sources) media(d *usb.Device, vols []media.Volume) []*MediumRecord {
	var out []*MediumRecord
	judge := func(disk usb.BlockDevice, parts []usb.BlockDevice) {
		m := &MediumRecord{Disk: disk.Name, Size: disk.Size}
		for _, p := range parts {
			u, skip := c.unit(p, vols)
			if !skip {
				m.Units = append(m.Units, u)
			}
		}
		judgeMedium(m)
		out = append(out, m)
	}
	for _, disk := range d.BlockDevices {
		if disk.Partition || disk.Size == 0 {
			continue
		}
		var parts []usb.BlockDevice
		for _, b := range d.BlockDevices {
			if b.Partition && diskOf(b, d.BlockDevices) == disk.Name {
				parts = append(parts, b)
			}
		}
		if len(parts) == 0 {
			parts = []usb.BlockDevice{disk}
		}
		judge(disk, parts)
	}
	// A partition whose disk was not listed (seen only in partial reads
	// and some recordings) is judged as a medium of its own.
	for _, b := range d.BlockDevices {
		if b.Partition && diskOf(b, d.BlockDevices) == "" {
			judge(b, []usb.BlockDevice{b})
		}
	}
	return out
}

// unit probes one partition (or a whole disk without partitions). skip is
// set for an extended-partition container, whose logical partitions the
// kernel lists on their own, and for a GPT disk's Microsoft Reserved
// partition as Windows leaves it, not mounted (media.ReservedUnused: no
// signature, its first bytes zero, at most 128 MiB; the rule the Windows
// disk probe applies), which holds no data a user stores.
func (c *sources) unit(b usb.BlockDevice, vols []media.Volume) (u MediumUnit, skip bool) {
	u = MediumUnit{Name: b.Name, Size: b.Size}
	for _, v := range vols {
		// Mounted straight from the unit, or through a mapping over it
		// that is not dm-crypt (dm-linear, LVM): its data is readable
		// without a key whatever signature its first sector carries.
		if (v.BlockName == b.Name && v.Backing == "") || (v.Backing == b.Name && !v.Encrypted) {
			u.MountedDirectly = true
			if u.FSType == "" {
				u.FSType = v.FSType
			}
		}
	}
	info, err := media.ProbeBlock(c.roots.Dev, b.Name)
	if err != nil {
		u.Error = safe.String(err.Error())
		return u, false
	}
	if b.Partition && info.FSType == "" && info.Encryption == "" && info.PartitionTable != "" {
		return u, true
	}
	if b.Partition && info.Kind == media.KindUnknown && !u.MountedDirectly {
		if ok, _ := media.ReservedUnused(c.roots.Sysfs, c.roots.Dev, b.Name); ok {
			return u, true
		}
	}
	if info.FSType != "" {
		u.FSType = info.FSType
	}
	u.Encryption, u.ClearKey = info.Encryption, info.ClearKey
	u.Encrypted = slices.Contains(encryptionSchemes, info.Encryption) && !info.ClearKey && !u.MountedDirectly
	return u, false
}

// diskOf returns the disk a partition belongs to: the longest disk name in
// all that prefixes it followed by the partition number ("sdb1", "mmcblk0p1").
func diskOf(p usb.BlockDevice, all []usb.BlockDevice) string {
	best := ""
	for _, d := range all {
		if d.Partition || len(d.Name) <= len(best) {
			continue
		}
		rest, ok := strings.CutPrefix(p.Name, d.Name)
		rest = strings.TrimPrefix(rest, "p")
		if ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			best = d.Name
		}
	}
	return best
}
