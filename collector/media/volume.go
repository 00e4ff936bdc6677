// Package media observes mounted file systems (from mountinfo) and tells
// which of them sit on USB block devices, their labels and whether the
// medium is encrypted.
package media

// Volume is one mounted file system, a line of /proc/self/mountinfo
// correlated with the block device beneath it.
type Volume struct {
	Device     string `json:"device"`      // mount source, "/dev/sda1"
	BlockName  string `json:"-"`           // kernel block name, "sda1"
	MajorMinor string `json:"-"`           // "8:1", field 3 of mountinfo
	MountPoint string `json:"mount_point"` // with fstab escapes (\040) undone
	FSType     string `json:"fs_type"`
	ReadOnly   bool   `json:"read_only"` // "ro" in the per-mount options
	Size       int64  `json:"size"`      // bytes of the block device, 0 when unknown
	Label      string `json:"label"`     // file-system label, sanitised
	// Encrypted reports whether the medium carries an encryption signature
	// (LUKS, BitLocker, BitLocker To Go) in its first sectors.
	Encrypted bool `json:"encrypted"`
	// Encryption names the scheme: "luks1", "luks2", "bitlocker",
	// "bitlocker-to-go", or "" for a plain medium.
	Encryption string `json:"encryption,omitempty"`
	// USBDevice is the bus path of the USB device the block device sits
	// on ("1-2"), or "" when it is not on USB.
	USBDevice string `json:"usb_device"`
}
