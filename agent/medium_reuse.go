package agent

import "github.com/mamori-agent/mamori/collector/media"

// probedDrive is an earlier probe of a Windows drive: its result, and the
// drive as seen just before that probe (media.WindowsVolumes' view of it
// without one: its volume, disk and partition, USB device, size, and the
// label, file system and serial GetVolumeInformation read).
type probedDrive struct {
	vol  media.Volume
	seen media.Volume
}

// reuseProbe says whether the earlier probe p may stand for the drive seen
// now (before any probe): only when it did not fail, found no encryption
// container, and the drive is the same medium. Volume GUID, letter, disk
// and partition, block name and USB device stay the same when the card
// in a reader is swapped or a stick is reformatted in place; the volume
// serial (UUID), file system, label, size and read-only flag do not, so
// those are compared too and a change means the drive is probed again.
// BitLocker suspended, turned off or decrypted in place changes none of
// them (Windows shows the file system inside, the same before and
// after), so a probe that found a container (BitLocker or LUKS, its
// protection on or suspended, or its metadata unreadable) is never
// reused: such a volume is probed again at every read of the volumes
// (the first sectors and the FVE metadata, at most media.MaxProbeRead
// bytes). Pure, so that it is tested on every OS.
func reuseProbe(p probedDrive, ok bool, now media.Volume) bool {
	if !ok || p.vol.Error != "" {
		return false
	}
	if p.vol.Encryption != "" || p.vol.Encrypted || p.vol.ClearKey || p.vol.FSType == media.FSBitLocker || p.vol.FSType == media.FSLUKS {
		return false
	}
	s := p.seen
	return s.Device == now.Device && s.MountPoint == now.MountPoint &&
		s.BlockName == now.BlockName && s.MajorMinor == now.MajorMinor &&
		s.Backing == now.Backing && s.USBDevice == now.USBDevice &&
		s.UUID == now.UUID && s.FSType == now.FSType && s.Label == now.Label &&
		s.Size == now.Size && s.ReadOnly == now.ReadOnly
}
