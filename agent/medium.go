package agent

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/policy"
)

// A medium is its own subject: a stick's disk, the card in each slot of a
// reader, each LUN. Under require_encryption every medium is judged when it
// appears, by one rule: it is shown to be encrypted, or it is a violation.
// Only a recognised encryption container (LUKS1/2, BitLocker with its
// protection on) passes; a plain file system, a medium without any
// signature, one that could not be read, and anything mounted straight
// from the USB block device all fail.

// encryptionSchemes are the containers that count as encrypted.
var encryptionSchemes = []string{
	media.EncryptionLUKS1, media.EncryptionLUKS2, media.EncryptionBitLocker, media.EncryptionBitLockerToGo,
}

// mediumFinding is a medium that is not shown to be encrypted, with its
// violation.
type mediumFinding struct {
	medium    *MediumRecord
	violation *Violation
}

// judgeMedia is the one judge of media, for scan and run alike: under an
// approval that requires encryption, every medium of d not shown to be
// encrypted is a media_unencrypted violation. vols are the mounted
// volumes on d.
func (c *sources) judgeMedia(pol *policy.USBPolicy, d *usb.Device, dec policy.USBDecision, vols []media.Volume) []mediumFinding {
	if !dec.RequiresEncryption(d) {
		return nil
	}
	var out []mediumFinding
	for _, m := range c.media(d, vols) {
		if !m.Encrypted {
			out = append(out, mediumFinding{m, pol.Unencrypted(d, dec.Entry, m)})
		}
	}
	return out
}

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
// kernel lists on their own.
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
	if info.FSType != "" {
		u.FSType = info.FSType
	}
	u.Encryption, u.ClearKey = info.Encryption, info.ClearKey
	u.Encrypted = slices.Contains(encryptionSchemes, info.Encryption) && !info.ClearKey && !u.MountedDirectly
	return u, false
}

// judgeMedium sets m's verdict, key and description.
func judgeMedium(m *MediumRecord) {
	m.Encrypted = len(m.Units) > 0
	var key, seen strings.Builder
	key.WriteString(m.Disk + "@" + strconv.FormatInt(m.Size, 10))
	for _, u := range m.Units {
		if !u.Encrypted {
			m.Encrypted = false
		}
		fmt.Fprintf(&key, "/%s:%s:%s", u.Name, u.FSType, u.Encryption)
		if u.Error != "" {
			key.WriteString(":unreadable")
		}
		if seen.Len() > 0 {
			seen.WriteString("; ")
		}
		seen.WriteString(u.Name + ": " + describeUnit(u))
	}
	if len(m.Units) == 0 {
		seen.WriteString(m.Disk + ": no partition the kernel lists")
	}
	m.Key, m.Seen = key.String(), seen.String()
}

func describeUnit(u MediumUnit) string {
	var s string
	switch {
	case u.Error != "":
		s = "could not be read (" + u.Error + ")"
	case u.Encryption != "" && u.ClearKey:
		s = u.Encryption + " with its protection suspended (clear key)"
	case u.Encryption != "" && u.MountedDirectly:
		s = u.Encryption + " signature, but its data is mounted without decryption (directly or through a mapping that is not dm-crypt) as " + u.FSType
	case u.Encryption != "":
		s = u.Encryption
	case u.FSType != "":
		s = "plain " + u.FSType
	default:
		s = "no recognised signature (random or wiped data, or a container such as VeraCrypt that cannot be told apart)"
	}
	if u.MountedDirectly && u.Encryption == "" {
		s += ", mounted"
	}
	return s
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

// mediumViolationKey is what an appearance records for a medium found
// unencrypted.
func mediumViolationKey(m *MediumRecord) string { return KindMediaUnencrypted + ":" + m.Key }
