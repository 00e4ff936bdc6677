package agent

import (
	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
)

// media returns the media in storage device d now, each judged
// (windowsMedia). On Windows a medium is each disk SetupAPI lists below d
// ("PhysicalDriveN"; size 0, an empty card-reader slot, left out when it
// was read and holds no volume), and its units are every partition of
// its layout, probed now from the disk (media.ProbeWindowsDisk: below
// BitLocker, so that an unlocked BitLocker To Go stick still shows its
// container, and whether Windows gave the partition a drive letter, a
// folder or no volume at all), named by the volume at its offset. As
// media are judged at every rescan, a medium under require_encryption is
// read again each time: protection suspended or turned off in place is
// seen at the next. A partition whose sectors could not be read is not
// shown to be encrypted, nor a disk that could not be opened (reading a
// disk needs administrator rights: the service has them), nor one whose
// number or size could not be read, nor, while the last list of the
// disks was incomplete, a storage device that may have lost a disk from
// it (a medium "a disk not listed"). USB storage whose device could not
// be determined (a Path starting with usb.UnknownPathPrefix, approved by
// no ids) is judged the same way when an approval by class requires
// encryption: the backend's, from its disks; and the device of drives no
// USB device claims (placeVolumes: a drive whose bus type could not be
// read, or whose disk no listed USB device holds), from its disk when
// its number is known, else from its volumes as a medium "a disk not
// listed".
func (c *sources) media(d *usb.Device, vols []media.Volume) []*MediumRecord {
	var unreadable func(string) (string, bool)
	incomplete := ""
	if b, ok := c.usb.(*setupapiBackend); ok {
		unreadable = b.s.UnreadableDisk
		incomplete, _ = b.s.DiskListIncomplete()
	}
	probe := func(name string) (int64, []media.DiskUnit, error) {
		return media.ProbeWindowsDisk(name, media.ProbeOptions{CodePage: c.codePage})
	}
	return windowsMedia(d.Path, d.BlockDevices, vols, probe, unreadable, incomplete)
}
