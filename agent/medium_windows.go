package agent

import (
	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
)

// media returns the media in storage device d now, each judged
// (windowsMedia). On Windows a medium is each disk SetupAPI lists below d
// ("PhysicalDriveN"; size 0, an empty card-reader slot, left out when it
// was read and holds no volume), and its units are the drive letters on
// that disk (a volume's Backing), as media.WindowsVolumes probed them:
// the first sectors on the disk at the volume's extent, below BitLocker,
// so that an unlocked BitLocker To Go stick still shows its container. A
// disk without a drive letter has no unit and is not shown to be
// encrypted; a unit whose sectors could not be read is not either, nor a
// disk whose number or size could not be read, nor, while the last list
// of the disks was incomplete, a storage device that may have lost a
// disk from it (a medium "a disk not listed"). USB storage whose device
// could not be determined (a Path starting with usb.UnknownPathPrefix,
// approved by no ids) is judged the same way when an approval by class
// requires encryption: the backend's, from its disks; and the device of
// drives no USB device claims (placeVolumes: a drive whose bus type
// could not be read, or whose disk no listed USB device holds), from its
// disk when its number is known, else from its drive as a medium "a disk
// not listed".
func (c *sources) media(d *usb.Device, vols []media.Volume) []*MediumRecord {
	var unreadable func(string) (string, bool)
	incomplete := ""
	if b, ok := c.usb.(*setupapiBackend); ok {
		unreadable = b.s.UnreadableDisk
		incomplete, _ = b.s.DiskListIncomplete()
	}
	return windowsMedia(d.Path, d.BlockDevices, vols, unreadable, incomplete)
}
