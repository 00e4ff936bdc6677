// Package media observes mounted file systems (from mountinfo) and tells
// which of them sit on USB block devices, their labels and whether the
// medium is encrypted.
package media

// Volume is one mounted file system, a line of /proc/self/mountinfo
// correlated with the block device beneath it.
type Volume struct {
	Device     string `json:"device"` // mount source, "/dev/sda1"
	BlockName  string `json:"-"`      // kernel block name, "sda1"
	MajorMinor string `json:"-"`      // "8:1", field 3 of mountinfo
	// MountPoint has the fstab escapes (\040) undone; it is the real path,
	// not sanitised (a label can become a mount point): escape it before
	// showing it.
	MountPoint string `json:"mount_point"`
	FSType     string `json:"fs_type"`
	ReadOnly   bool   `json:"read_only"`      // "ro" in the per-mount options
	Size       int64  `json:"size"`           // bytes of the block device, 0 when unknown
	Label      string `json:"label"`          // file-system label, sanitised
	UUID       string `json:"uuid,omitempty"` // file-system serial or UUID, as blkid shows it
	// Encrypted reports whether the medium counts as encrypted: it carries
	// an encryption signature (LUKS, BitLocker, BitLocker To Go) in its
	// first sectors and is not mounted around it, or it is mounted through
	// a dm-crypt mapping. Signatures are claims: see Probe.
	Encrypted bool `json:"encrypted"`
	// Encryption names the scheme: "luks1", "luks2", "bitlocker",
	// "bitlocker-to-go", "dm-crypt" (a dm-crypt mapping over a medium
	// without a known header), or "" for a plain medium.
	Encryption string `json:"encryption,omitempty"`
	// ClearKey is set for a BitLocker medium whose protection is suspended
	// (its key is stored in the clear): not counted as encrypted.
	ClearKey bool `json:"clear_key,omitempty"`
	// Backing is the USB block device under a stacked one ("sdb1" under
	// "dm-0" for a mounted LUKS volume), "" when the mount is on the USB
	// block device itself.
	Backing string `json:"backing,omitempty"`
	// Offset is where the volume starts on its disk (Backing), in bytes,
	// when OffsetKnown: Windows, where the volume lies in one extent
	// (IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS). It matches the volume to the
	// partition of the disk's layout it is.
	Offset      int64 `json:"-"`
	OffsetKnown bool  `json:"-"`
	// Error tells why a fact is missing or was not trusted (an unreadable
	// device, an encryption signature on a medium mounted directly).
	Error string `json:"error,omitempty"`
	// USBDevice is the bus path of the USB device the block device sits
	// on ("1-2"), or "" when it is not on USB.
	USBDevice string `json:"usb_device"`
}
