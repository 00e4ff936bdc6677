package media

import (
	"fmt"
	"github.com/mamori-agent/mamori/collector/usb"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/mamori-agent/mamori/internal/safe"
)

// Windows drives: what the Windows half of the collector (drives_windows.go)
// reads about each drive letter, and the pure rules, here, that turn a
// Drive into a Volume. Keeping the rules pure lets them be tested on every
// OS with drives shaped like real ones.

// DriveType is what GetDriveType says of a drive's root directory: one of
// the DRIVE_* values of winbase.h.
type DriveType uint32

// Drive types (winbase.h).
const (
	DriveUnknown   DriveType = 0 // DRIVE_UNKNOWN
	DriveNoRootDir DriveType = 1 // DRIVE_NO_ROOT_DIR: no volume mounted there
	DriveRemovable DriveType = 2 // DRIVE_REMOVABLE: floppies, most USB sticks, SD cards
	DriveFixed     DriveType = 3 // DRIVE_FIXED: hard disks, and USB disks and SSDs
	DriveRemote    DriveType = 4 // DRIVE_REMOTE: network drives
	DriveCDROM     DriveType = 5 // DRIVE_CDROM
	DriveRAMDisk   DriveType = 6 // DRIVE_RAMDISK
)

// String returns the drive type as a lower-case word ("removable",
// "fixed"), or "type(N)" for a value winbase.h does not define.
func (t DriveType) String() string {
	switch t {
	case DriveUnknown:
		return "unknown"
	case DriveNoRootDir:
		return "no-root-dir"
	case DriveRemovable:
		return "removable"
	case DriveFixed:
		return "fixed"
	case DriveRemote:
		return "remote"
	case DriveCDROM:
		return "cdrom"
	case DriveRAMDisk:
		return "ramdisk"
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BusType is STORAGE_BUS_TYPE (ntddstor.h): the bus a disk hangs off, as
// STORAGE_DEVICE_DESCRIPTOR.BusType reports it.
type BusType uint32

// Bus types (ntddstor.h).
const (
	BusUnknown    BusType = 0x00
	BusSCSI       BusType = 0x01
	BusATAPI      BusType = 0x02
	BusATA        BusType = 0x03
	Bus1394       BusType = 0x04
	BusSSA        BusType = 0x05
	BusFibre      BusType = 0x06
	BusUSB        BusType = 0x07 // BusTypeUsb: USB sticks, USB disks and SSDs, UAS included
	BusRAID       BusType = 0x08
	BusISCSI      BusType = 0x09
	BusSAS        BusType = 0x0A
	BusSATA       BusType = 0x0B
	BusSD         BusType = 0x0C
	BusMMC        BusType = 0x0D
	BusVirtual    BusType = 0x0E
	BusFileVirt   BusType = 0x0F // BusTypeFileBackedVirtual: a mounted VHD or ISO
	BusSpaces     BusType = 0x10
	BusNVMe       BusType = 0x11
	BusSCM        BusType = 0x12
	BusUFS        BusType = 0x13
	BusNVMeOF     BusType = 0x14
	busTypeMaxKey BusType = 0x15
)

var busNames = [busTypeMaxKey]string{
	"unknown", "scsi", "atapi", "ata", "1394", "ssa", "fibre", "usb", "raid", "iscsi",
	"sas", "sata", "sd", "mmc", "virtual", "file-backed-virtual", "spaces", "nvme", "scm", "ufs", "nvmeof",
}

// String returns the bus as a lower-case word ("usb", "nvme", "sd"), or
// "bus(N)" for a value ntddstor.h does not define.
func (b BusType) String() string {
	if b < busTypeMaxKey {
		return busNames[b]
	}
	return fmt.Sprintf("bus(%d)", uint32(b))
}

// Drive is one drive letter, or one volume without a drive letter, as
// Windows describes it. Strings read from the system (labels, names, the
// descriptor's vendor and product) are sanitised (internal/safe), but for
// MountPoints; a fact that could not be read has its zero value (or -1
// for numbers) and Errors says why.
type Drive struct {
	// Letter is the drive letter, upper case: 'E'; 0 for a volume that
	// has none (FindFirstVolumeW listed it: mounted on folders only, or
	// not mounted at all), which is then named by VolumeName.
	Letter byte
	// MountPoints are the folders a volume without a letter is mounted
	// on, as GetVolumePathNamesForVolumeNameW gives them (`C:\mnt\stick\`,
	// with the trailing backslash): real paths, not sanitised (whoever
	// made the folder chose its name); escape them before showing them.
	// Empty for a drive letter and for a volume mounted nowhere.
	MountPoints []string
	// Type is GetDriveType of "E:\" (of the volume GUID path for a
	// volume without a letter).
	Type DriveType
	// VolumeName is GetVolumeNameForVolumeMountPoint of "E:\":
	// `\\?\Volume{GUID}\`, "" when unknown (never for a volume without a
	// letter: FindFirstVolumeW named it).
	VolumeName string
	// DeviceName is QueryDosDevice of "E:" (of "Volume{GUID}" for a
	// volume without a letter): the volume's device,
	// `\Device\HarddiskVolume5`, "" when unknown.
	DeviceName string
	// Label and FSName are GetVolumeInformation's volume label and file
	// system name ("FAT32", "exFAT", "NTFS"); Serial is its volume serial
	// and FSFlags its FILE_* flags. InfoOK says GetVolumeInformation
	// answered: a locked BitLocker volume or an empty card reader does
	// not.
	Label   string
	FSName  string
	Serial  uint32
	FSFlags uint32
	InfoOK  bool
	// Bus, RemovableMedia, Vendor and Product are the disk's
	// STORAGE_DEVICE_DESCRIPTOR (IOCTL_STORAGE_QUERY_PROPERTY); BusKnown
	// says the IOCTL answered.
	Bus            BusType
	BusKnown       bool
	RemovableMedia bool
	Vendor         string
	Product        string
	// Disk and Partition are IOCTL_STORAGE_GET_DEVICE_NUMBER's
	// DeviceNumber (N of \\.\PhysicalDriveN) and PartitionNumber (0 for
	// a disk without partitions); Disk is -1 when unknown.
	Disk      int
	Partition int
	// Offset and Length are the volume's one extent on Disk
	// (IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS), in bytes; ExtentOK says the
	// volume lies in exactly one extent of a known disk.
	Offset   int64
	Length   int64
	ExtentOK bool
	// Size is the volume's length in bytes (IOCTL_DISK_GET_LENGTH_INFO,
	// else Length), 0 when unknown.
	Size int64
	// Errors are the facts that could not be read, one sentence each.
	Errors []string
}

// Root returns the drive's root directory, "E:\", or for a volume without
// a letter its volume GUID path with the trailing backslash
// (`\\?\Volume{GUID}\`), which GetDriveType and GetVolumeInformation
// take alike.
func (d *Drive) Root() string {
	if d.Letter == 0 {
		return d.VolumeName
	}
	return string(d.Letter) + `:\`
}

// devicePath returns the path that opens the volume device: `\\.\E:`, or
// the volume GUID path without its trailing backslash
// (`\\?\Volume{GUID}`: with it, CreateFile opens the root directory).
func (d *Drive) devicePath() string {
	if d.Letter == 0 {
		return strings.TrimSuffix(d.VolumeName, `\`)
	}
	return `\\.\` + string(d.Letter) + ":"
}

// mountPoint returns where the volume is reached: "E:\", else the first
// folder it is mounted on, else its volume GUID path with the trailing
// backslash (`\\?\Volume{GUID}\`: a volume mounted nowhere is still
// reached through it).
func (d *Drive) mountPoint() string {
	if d.Letter == 0 && len(d.MountPoints) > 0 {
		return d.MountPoints[0]
	}
	return d.Root()
}

// DiskName returns "PhysicalDriveN", the name the USB backend gives the
// disk (usb.BlockDevice.Name, usb.SetupAPI.OwnerOf), or "" when the disk
// number is unknown.
func (d *Drive) DiskName() string {
	if d.Disk < 0 {
		return ""
	}
	return fmt.Sprintf("PhysicalDrive%d", d.Disk)
}

// fileReadOnlyVolume is FILE_READ_ONLY_VOLUME (winnt.h) in FSFlags.
const fileReadOnlyVolume = 0x00080000

// WindowsOptions configure WindowsVolumes.
type WindowsOptions struct {
	// DiskToUSB maps a disk's name, "PhysicalDriveN", to the Path of the
	// USB device it belongs to: the USB backend's BlockDevices
	// (usb.SetupAPI). It plays the part blockToUSB plays for Volumes.
	DiskToUSB map[string]string
	// InternalDirs are folders whose drives are internal by definition:
	// the agent's state folder ("D:\mamori"; a path that names no drive
	// letter, such as a UNC path, names none). A fixed or optical drive
	// whose bus type cannot be read is kept as storage that may be USB
	// (keepDrive) unless it is one of these drives or the drive that
	// holds the Windows folder, which WindowsVolumes adds itself.
	InternalDirs []string
	// CodePage decodes FAT labels that the first sectors carry when
	// Windows gives none (see ProbeOptions); 0 reads them as UTF-8.
	CodePage int
	// Known, when set, returns the Volume already described for a drive
	// (its argument carries Device, MountPoint, MajorMinor, BlockName and
	// USBDevice as read now), so that a rescan does not probe a medium
	// again: a probe reads the device, and a dying device can stall it.
	// It is used only when all five fields agree.
	Known func(Volume) (Volume, bool)
}

// keepDrive says whether a drive is removable storage the agent must see,
// and the USB device it sits on ("" when not known). It keeps a drive:
//
//   - on a disk a USB device holds (DiskToUSB), whatever else it says;
//   - on the USB bus (a USB SSD that says DRIVE_FIXED);
//   - removable by its drive type or its descriptor (a floppy, an SD
//     card reader on another bus; an optical drive only by its type);
//   - failing closed, a fixed or optical drive whose bus type could not
//     be read (IOCTL_STORAGE_QUERY_PROPERTY failed, or the volume could
//     not be opened): it may be a USB SSD whose IOCTL failed, and nothing
//     read shows it is internal. Only the drives internal lists are left
//     out then, internal by definition: the drive that holds the Windows
//     folder (the machine runs from it) and the drive of the agent's
//     state folder (WindowsOptions.InternalDirs).
//
// A drive whose type GetDriveType cannot determine (DRIVE_UNKNOWN) is
// judged by these rules as a fixed drive is: what cannot be determined is
// not internal. Under Wine every volume GUID path is DRIVE_UNKNOWN.
//
// It leaves out network drives, drives with no volume, RAM disks,
// internal disks and internal optical drives (their bus read and not
// USB, their medium not removable), as on Linux, and a drive whose DOS
// device is a folder of another drive (QueryDosDevice gives
// `\??\E:\folder`: subst, DefineDosDevice without a raw target): that
// drive is judged by its own letter. A drive that points anywhere else
// through `\??\` is judged by the rules above.
func keepDrive(d *Drive, diskToUSB map[string]string, internal []byte) (usbPath string, keep bool) {
	switch d.Type {
	case DriveRemote, DriveNoRootDir:
		return "", false
	}
	if name := d.DiskName(); name != "" {
		if p, ok := diskToUSB[name]; ok && p != "" {
			// A disk the USB backend could only guess external (an
			// unknown: device: behind a hot-plug port, its place not
			// determined) does not make the drive internal by definition
			// external: eMMC system disks and virtual machines' disks
			// say they are hot-pluggable. A disk on the USB bus, or held
			// by a real USB device (Windows To Go), stays external.
			if strings.HasPrefix(p, usb.UnknownPathPrefix) && slices.Contains(internal, d.Letter) && !(d.BusKnown && d.Bus == BusUSB) {
				return "", false
			}
			return p, true
		}
	}
	if l, ok := substOf(d.DeviceName); ok && l != d.Letter {
		return "", false
	}
	if d.BusKnown && d.Bus == BusUSB {
		return "", true
	}
	if d.Type == DriveRemovable {
		return "", true
	}
	if d.BusKnown && d.RemovableMedia && d.Type != DriveCDROM {
		return "", true
	}
	if !d.BusKnown && (d.Type == DriveFixed || d.Type == DriveCDROM || d.Type == DriveUnknown) {
		return "", !slices.Contains(internal, d.Letter)
	}
	return "", false
}

// substOf returns the drive letter, upper case, a DOS device name points
// into when it is a folder of another drive: `\??\E:\folder` or
// `\??\E:`, as QueryDosDevice gives for a drive made by subst.
func substOf(deviceName string) (byte, bool) {
	rest, ok := strings.CutPrefix(deviceName, `\??\`)
	if !ok {
		return 0, false
	}
	return driveLetterAt(rest, false)
}

// letterOf returns the drive letter, upper case, that an absolute path
// starts with: `E:\dir`, `e:/dir`, `E:`, or the same behind `\\?\` or
// `\\.\` (`\\?\E:\dir`); false for anything else (a UNC path, a relative
// or drive-relative path, a volume GUID path).
func letterOf(path string) (byte, bool) {
	for _, p := range []string{`\\?\`, `\\.\`} {
		if r, ok := strings.CutPrefix(path, p); ok {
			path = r
			break
		}
	}
	return driveLetterAt(path, true)
}

// driveLetterAt returns the letter, upper case, of s when s is "X:" or
// starts with "X:\" (or "X:/" when slash is set).
func driveLetterAt(s string, slash bool) (byte, bool) {
	if len(s) < 2 || s[1] != ':' || len(s) > 2 && s[2] != '\\' && !(slash && s[2] == '/') {
		return 0, false
	}
	switch c := s[0]; {
	case c >= 'A' && c <= 'Z':
		return c, true
	case c >= 'a' && c <= 'z':
		return c - 'a' + 'A', true
	}
	return 0, false
}

// internalLetters returns the drive letters of dirs (letterOf), upper
// case, once each, in the order first met; paths without one give none.
func internalLetters(dirs ...string) []byte {
	var out []byte
	for _, d := range dirs {
		if l, ok := letterOf(d); ok && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// windowsFSType maps a file-system name GetVolumeInformation gives to the
// name Linux and blkid use (FS* constants): "FAT", "FAT12", "FAT16" and
// "FAT32" are "vfat", "exFAT" is "exfat", "NTFS" "ntfs", "CDFS"
// "iso9660", "UDF" "udf"; anything else is lower-cased ("refs") and
// sanitised by the caller.
func windowsFSType(name string) string {
	switch strings.ToUpper(name) {
	case "":
		return ""
	case "FAT", "FAT12", "FAT16", "FAT32":
		return FSVFAT
	case "EXFAT":
		return FSExFAT
	case "NTFS":
		return FSNTFS
	case "CDFS":
		return FSISO9660
	case "UDF":
		return FSUDF
	}
	return strings.ToLower(name)
}

// driveLetters returns the letters a GetLogicalDrives bit mask holds (bit
// 0 is A:), in order.
func driveLetters(mask uint32) []byte {
	var out []byte
	for i := range 26 {
		if mask&(1<<i) != 0 {
			out = append(out, byte('A'+i))
		}
	}
	return out
}

// probeSource says where a probe read a volume's first sectors.
type probeSource int

const (
	// probedDisk: the physical disk at the volume's extent, below any
	// BitLocker filter, as the medium holds the bytes.
	probedDisk probeSource = iota + 1
	// probedVolume: the volume device itself. On Windows an unlocked
	// BitLocker volume reads as its plain file system there, so a plain
	// result is not proof of a plain medium.
	probedVolume
)

// windowsVolume describes a kept drive as a Volume, from what Windows
// said (d) and what the probe of its first sectors found (info, src,
// perr; src 0 when it was not probed). The fields mean what they mean on
// Linux, with Windows' names in them:
//
//   - Device is the volume's GUID path without the trailing backslash
//     (`\\?\Volume{GUID}`), or `\\.\E:` when unknown; MountPoint is "E:\",
//     or for a volume without a letter the first folder it is mounted on
//     (`C:\mnt\stick\`), else its volume GUID path with the trailing
//     backslash (`\\?\Volume{GUID}\`: mounted nowhere);
//   - BlockName is the volume's device (`HarddiskVolume5`, the base of
//     DeviceName), or "E:" (`Volume{GUID}` without a letter); Backing is
//     the disk under it, "PhysicalDriveN", as a dm-crypt mapping's backing
//     device on Linux; MajorMinor is "disk:partition" ("2:1"), "" when the
//     disk is unknown; Offset is where the volume starts on Backing when
//     OffsetKnown (one disk extent), which matches it to its partition;
//   - FSType is what the first sectors hold when the probe recognised a
//     plain file system, else GetVolumeInformation's name mapped to the
//     Linux name (windowsFSType); a disagreement is told in Error;
//   - Label is Windows' label, else the one the first sectors carry;
//     UUID the probe's (blkid's notation), else the volume serial as
//     "XXXX-XXXX";
//   - Encrypted and Encryption come from the probe only, and only when
//     it read the disk (below BitLocker) or found a signature: a volume
//     read through its own device that looks plain is not shown to be
//     unencrypted, and Error says so. A BitLocker volume whose
//     protection is suspended (ClearKey) is not encrypted. Nothing read
//     is never "encrypted".
func windowsVolume(d *Drive, usbPath string, info Info, src probeSource, perr error) Volume {
	v := Volume{
		Device:     d.devicePath(),
		BlockName:  strings.TrimPrefix(d.devicePath(), `\\.\`),
		MountPoint: d.mountPoint(),
		USBDevice:  usbPath,
		Size:       d.Size,
		ReadOnly:   d.InfoOK && d.FSFlags&fileReadOnlyVolume != 0,
	}
	if n, ok := volumeGUIDPath(d.VolumeName); ok {
		v.Device = strings.TrimSuffix(n, `\`)
		if d.Letter == 0 {
			v.BlockName = strings.TrimPrefix(v.Device, `\\?\`)
		}
	}
	if d.ExtentOK && d.Disk >= 0 {
		v.Offset, v.OffsetKnown = d.Offset, true
	}
	if b := deviceBase(d.DeviceName); b != "" {
		v.BlockName = b
	}
	if disk := d.DiskName(); disk != "" {
		v.Backing = disk
		v.MajorMinor = fmt.Sprintf("%d:%d", d.Disk, d.Partition)
	}
	var errs []string
	errs = append(errs, d.Errors...)
	if !d.InfoOK {
		errs = append(errs, "GetVolumeInformation gave nothing (locked, empty or unreadable)")
	}
	apiFS := windowsFSType(d.FSName)
	v.FSType = apiFS
	if src != 0 && info.Kind == KindFileSystem {
		v.FSType = info.FSType
		if apiFS != "" && apiFS != info.FSType {
			errs = append(errs, fmt.Sprintf("Windows reports file system %s, the first sectors hold %s", d.FSName, info.FSType))
		}
	}
	v.Label = d.Label
	if v.Label == "" {
		v.Label = info.Label
	}
	v.UUID = info.UUID
	if v.UUID == "" && d.InfoOK && d.Serial != 0 {
		v.UUID = serial32(d.Serial)
	}
	if perr != nil {
		errs = append(errs, perr.Error())
	}
	v.ClearKey = info.ClearKey
	if src != 0 {
		v.Encryption = info.Encryption
	}
	v.Encrypted = v.Encryption != EncryptionNone
	if src == probedVolume && !v.Encrypted && !v.ClearKey && perr == nil {
		errs = append(errs, "first sectors read through the volume, not the disk: an unlocked BitLocker volume would read as plain")
	}
	if src == 0 && perr == nil {
		errs = append(errs, "first sectors not read")
	}
	if !d.BusKnown {
		errs = append(errs, "bus type unknown")
	}
	if usbPath == "" && d.BusKnown && d.Bus == BusUSB {
		errs = append(errs, "on the USB bus, but no USB device holds "+orUnknown(d.DiskName()))
	}
	if len(errs) > 0 {
		v.Error = strings.Join(errs, "\n")
	}
	return v
}

func orUnknown(s string) string {
	if s == "" {
		return "its disk (number unknown)"
	}
	return s
}

// volumeGUIDPath returns s when it is a volume GUID path,
// `\\?\Volume{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}\` (what
// GetVolumeNameForVolumeMountPoint gives), and false otherwise. Such a
// path needs no escaping; anything else is not trusted as one.
func volumeGUIDPath(s string) (string, bool) {
	const prefix, guidLen = `\\?\Volume{`, 36
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) != guidLen+2 || rest[guidLen:] != `}\` {
		return "", false
	}
	for i, c := range []byte(rest[:guidLen]) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if _, ok := unhexDigit(c); !ok {
				return "", false
			}
		}
	}
	return s, true
}

func unhexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// deviceBase returns the last element of an NT device name
// (`\Device\HarddiskVolume5` gives "HarddiskVolume5") when it is made of
// ASCII letters, digits, '_' and '-' only (at most 64), else "".
func deviceBase(name string) string {
	b := name[strings.LastIndexByte(name, '\\')+1:]
	if b == "" || len(b) > 64 {
		return ""
	}
	for _, c := range []byte(b) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return ""
		}
	}
	return b
}

// parseMultiSZ splits a REG_MULTI_SZ-style buffer of UTF-16 strings, each
// ended by a NUL and the list by an empty one, as
// GetVolumePathNamesForVolumeNameW writes it (n is the count of units it
// says it wrote, at most len(buf)). A list whose last string runs to the
// end of the buffer without its NUL keeps that string.
func parseMultiSZ(buf []uint16, n int) []string {
	buf = buf[:max(0, min(n, len(buf)))]
	var out []string
	for len(buf) > 0 {
		end := slices.Index(buf, 0)
		if end == 0 {
			break
		}
		if end < 0 {
			end = len(buf)
		}
		out = append(out, string(utf16.Decode(buf[:end])))
		buf = buf[min(end+1, len(buf)):]
	}
	return out
}

// listedVolume is one volume FindFirstVolumeW/FindNextVolumeW listed: its
// GUID path (`\\?\Volume{GUID}\`) and the paths it is mounted on
// (GetVolumePathNamesForVolumeNameW: drive roots "E:\" and folders), or
// why those could not be read.
type listedVolume struct {
	Name  string
	Paths []string
	Err   error
}

// volumesWithoutLetter returns the listed volumes that no drive letter
// reaches, with their folder mount points: those the letters, read one by
// one, do not already describe. A volume is reached by a letter when one
// of its paths is a drive root ("E:\") whose letter is in letters (the
// drives GetLogicalDrives gave), or when a letter's drive named it
// (lettered, the volume GUID paths the letters gave). A volume whose paths
// could not be read is kept, with none, unless a letter named it: it may
// be mounted nowhere. Names that are not volume GUID paths are dropped
// (bad lists them, escaped): nothing can be opened by them.
func volumesWithoutLetter(listed []listedVolume, letters []byte, lettered []string) (out []listedVolume, bad []string) {
	for _, lv := range listed {
		if _, ok := volumeGUIDPath(lv.Name); !ok {
			bad = append(bad, safe.String(lv.Name))
			continue
		}
		if slices.ContainsFunc(lettered, func(n string) bool { return strings.EqualFold(n, lv.Name) }) {
			continue
		}
		var folders []string
		reached := false
		for _, p := range lv.Paths {
			if l, ok := driveLetterAt(p, false); ok && len(p) <= 3 {
				if slices.Contains(letters, l) {
					reached = true
				}
				continue
			}
			folders = append(folders, p)
		}
		if reached {
			continue
		}
		out = append(out, listedVolume{Name: lv.Name, Paths: folders, Err: lv.Err})
	}
	return out, bad
}
