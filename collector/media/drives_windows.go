package media

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/internal/safe"
)

// Storage IOCTLs (winioctl.h).
const (
	ioctlStorageQueryProperty       = 0x002D1400 // STORAGE_PROPERTY_QUERY in, STORAGE_DEVICE_DESCRIPTOR out
	ioctlStorageGetDeviceNumber     = 0x002D1080 // STORAGE_DEVICE_NUMBER out
	ioctlVolumeGetVolumeDiskExtents = 0x00560000 // VOLUME_DISK_EXTENTS out
	ioctlDiskGetDriveGeometry       = 0x00070000 // DISK_GEOMETRY out
	ioctlDiskGetLengthInfo          = 0x0007405C // GET_LENGTH_INFORMATION out; needs read access
	ioctlDiskGetDriveLayoutEx       = 0x00070050 // DRIVE_LAYOUT_INFORMATION_EX out
)

// ReadDrives describes every drive letter GetLogicalDrives reports, in
// letter order. Network drives are named with their type only: asking a
// network drive more can hang on a server that is gone. A failing
// GetLogicalDrives gives no list and an error; facts about one drive that
// could not be read are in its Errors.
func ReadDrives() ([]Drive, error) {
	mask, err := windows.GetLogicalDrives()
	if err != nil {
		return nil, fmt.Errorf("GetLogicalDrives: %w", err)
	}
	var out []Drive
	for _, l := range driveLetters(mask) {
		d := readDrive(l)
		if d.Type != DriveRemote && d.Type != DriveNoRootDir {
			readVolumeInformation(&d)
		}
		out = append(out, d)
	}
	return out, nil
}

// readDrive reads what Windows says about drive letter l without reading
// the medium or asking its file system: the drive type, the volume's
// names and the storage IOCTLs.
func readDrive(l byte) Drive {
	d := Drive{Letter: l, Disk: -1}
	root, _ := windows.UTF16PtrFromString(d.Root())
	d.Type = DriveType(windows.GetDriveType(root))
	switch d.Type {
	case DriveRemote, DriveNoRootDir:
		return d
	}
	name := make([]uint16, 64)
	if err := windows.GetVolumeNameForVolumeMountPoint(root, &name[0], uint32(len(name))); err == nil {
		if n, ok := volumeGUIDPath(windows.UTF16ToString(name)); ok {
			d.VolumeName = n
		} else {
			d.Errors = append(d.Errors, fmt.Sprintf("GetVolumeNameForVolumeMountPoint: %q is not a volume GUID path", safe.String(windows.UTF16ToString(name))))
		}
	} else {
		d.Errors = append(d.Errors, fmt.Sprintf("GetVolumeNameForVolumeMountPoint: %v", err))
	}
	readDeviceName(&d, string(l)+":")
	readDriveIOCTLs(&d)
	return d
}

// readUnletteredVolume reads what Windows says about a volume without a
// drive letter, named by its GUID path (`\\?\Volume{GUID}\`, checked by
// the caller) and mounted on folders (none when mounted nowhere), as
// readDrive does for a letter: GetDriveType of the GUID path, QueryDosDevice
// of "Volume{GUID}" (MSDN, "Displaying Volume Paths") and the storage
// IOCTLs on `\\?\Volume{GUID}`.
func readUnletteredVolume(name string, folders []string) Drive {
	d := Drive{VolumeName: name, MountPoints: folders, Disk: -1}
	root, _ := windows.UTF16PtrFromString(name)
	d.Type = DriveType(windows.GetDriveType(root))
	switch d.Type {
	case DriveRemote, DriveNoRootDir:
		return d
	}
	readDeviceName(&d, strings.TrimSuffix(strings.TrimPrefix(name, `\\?\`), `\`))
	readDriveIOCTLs(&d)
	return d
}

// readDeviceName sets d.DeviceName from QueryDosDevice of dos ("E:",
// "Volume{GUID}").
func readDeviceName(d *Drive, dos string) {
	p, _ := windows.UTF16PtrFromString(dos)
	target := make([]uint16, windows.MAX_PATH)
	if n, err := windows.QueryDosDevice(p, &target[0], uint32(len(target))); err == nil && n > 0 {
		// The first of a multi-string. NT device names are printable
		// ASCII; anything else is escaped.
		if n := windows.UTF16ToString(target); printableASCII(n) {
			d.DeviceName = n
		} else {
			d.DeviceName = safe.String(n)
		}
	} else if err != nil {
		d.Errors = append(d.Errors, fmt.Sprintf("QueryDosDevice: %v", err))
	}
}

// listVolumes lists every volume the volume mount manager knows
// (FindFirstVolumeW, FindNextVolumeW, FindVolumeClose) with the paths it
// is mounted on (GetVolumePathNamesForVolumeNameW: drive roots and
// folders): drive letters are only some of them. An error ends the list
// (what was listed before it is returned with it); a volume whose paths
// could not be read carries why.
func listVolumes() ([]listedVolume, error) {
	buf := make([]uint16, windows.MAX_PATH)
	h, err := windows.FindFirstVolume(&buf[0], uint32(len(buf)))
	if err != nil {
		return nil, fmt.Errorf("FindFirstVolume: %w", err)
	}
	defer windows.FindVolumeClose(h)
	var out []listedVolume
	for len(out) < maxVolumes {
		name := windows.UTF16ToString(buf)
		lv := listedVolume{Name: name}
		lv.Paths, lv.Err = volumePathNames(name)
		out = append(out, lv)
		if err := windows.FindNextVolume(h, &buf[0], uint32(len(buf))); err != nil {
			if errors.Is(err, windows.ERROR_NO_MORE_FILES) {
				return out, nil
			}
			return out, fmt.Errorf("FindNextVolume: %w", err)
		}
	}
	return out, fmt.Errorf("FindNextVolume: more than %d volumes", maxVolumes)
}

// maxVolumes bounds the volumes listVolumes lists.
const maxVolumes = 4096

// volumePathNames returns the drive roots and folders volume name (a
// volume GUID path with its trailing backslash) is mounted on
// (GetVolumePathNamesForVolumeNameW), growing the buffer as it asks
// (ERROR_MORE_DATA), up to 64 Ki characters.
func volumePathNames(name string) ([]string, error) {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, fmt.Errorf("GetVolumePathNamesForVolumeName %s: %w", safe.String(name), err)
	}
	size := uint32(windows.MAX_PATH + 1)
	for {
		buf := make([]uint16, size)
		var n uint32
		err := windows.GetVolumePathNamesForVolumeName(p, &buf[0], size, &n)
		if err == nil {
			return parseMultiSZ(buf, int(n)), nil
		}
		if !errors.Is(err, windows.ERROR_MORE_DATA) || n <= size || n > 1<<16 {
			return nil, fmt.Errorf("GetVolumePathNamesForVolumeName %s: %w", safe.String(name), err)
		}
		size = n
	}
}

// readVolumeInformation fills a drive's label, file system, serial and
// flags from GetVolumeInformation.
func readVolumeInformation(d *Drive) {
	root, _ := windows.UTF16PtrFromString(d.Root())
	label := make([]uint16, windows.MAX_PATH+1)
	fsName := make([]uint16, windows.MAX_PATH+1)
	var maxLen uint32
	if err := windows.GetVolumeInformation(root, &label[0], uint32(len(label)), &d.Serial, &maxLen, &d.FSFlags, &fsName[0], uint32(len(fsName))); err == nil {
		d.InfoOK = true
		d.Label = utf16Label(cutUTF16(label))
		d.FSName = safe.String(windows.UTF16ToString(fsName))
	} else {
		d.Errors = append(d.Errors, fmt.Sprintf("GetVolumeInformation: %v", err))
	}
}

// readDriveIOCTLs asks the volume device (`\\.\E:`, `\\?\Volume{GUID}`), opened with no access
// rights (enough for these IOCTLs, and possible while another process has
// it open exclusively), for its bus, disk number and extent; the length
// needs read access and is asked on a second handle.
func readDriveIOCTLs(d *Drive) {
	fail := func(what string, err error) { d.Errors = append(d.Errors, fmt.Sprintf("%s: %v", what, err)) }
	path := d.devicePath()
	p, _ := windows.UTF16PtrFromString(path)
	share := uint32(windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE)
	h, err := windows.CreateFile(p, 0, share, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		fail("open "+path, err)
		return
	}
	defer windows.CloseHandle(h)
	query := [12]byte{} // STORAGE_PROPERTY_QUERY{StorageDeviceProperty, PropertyStandardQuery}
	if b, err := ioctl(h, ioctlStorageQueryProperty, query[:], 1024); err == nil {
		desc, perr := parseStorageDescriptor(b)
		if perr != nil {
			fail("IOCTL_STORAGE_QUERY_PROPERTY", perr)
		}
		if len(b) >= storageDescriptorMin {
			d.Bus, d.BusKnown, d.RemovableMedia = desc.Bus, true, desc.RemovableMedia
			d.Vendor, d.Product = desc.Vendor, desc.Product
		}
	} else {
		fail("IOCTL_STORAGE_QUERY_PROPERTY", err)
	}
	if b, err := ioctl(h, ioctlStorageGetDeviceNumber, nil, 12); err == nil {
		if n, err := parseDeviceNumber(b); err == nil && n.DeviceType == fileDeviceDisk {
			d.Disk, d.Partition = n.Number, n.Partition
		} else if err != nil {
			fail("IOCTL_STORAGE_GET_DEVICE_NUMBER", err)
		}
	} else {
		fail("IOCTL_STORAGE_GET_DEVICE_NUMBER", err)
	}
	if b, err := ioctl(h, ioctlVolumeGetVolumeDiskExtents, nil, 8+24*maxExtents); err == nil {
		ext, err := parseDiskExtents(b)
		switch {
		case err != nil:
			fail("IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS", err)
		case len(ext) == 1 && (d.Disk < 0 || ext[0].Disk == d.Disk):
			d.Disk, d.Offset, d.Length, d.ExtentOK = ext[0].Disk, ext[0].Offset, ext[0].Length, true
			d.Size = ext[0].Length
		default:
			d.Errors = append(d.Errors, fmt.Sprintf("the volume has %d disk extents, not one", len(ext)))
		}
	} else {
		fail("IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS", err)
	}
	if rh, err := windows.CreateFile(p, windows.GENERIC_READ, share, nil, windows.OPEN_EXISTING, 0, 0); err == nil {
		if b, err := ioctl(rh, ioctlDiskGetLengthInfo, nil, 8); err == nil {
			if n, err := parseLength(b); err == nil && n > 0 {
				d.Size = n
			}
		}
		windows.CloseHandle(rh)
	}
}

// ioctl sends code to h with in and returns what the driver wrote, at
// most outLen bytes.
func ioctl(h windows.Handle, code uint32, in []byte, outLen int) ([]byte, error) {
	out := make([]byte, outLen)
	var inp *byte
	if len(in) > 0 {
		inp = &in[0]
	}
	var n uint32
	if err := windows.DeviceIoControl(h, code, inp, uint32(len(in)), &out[0], uint32(len(out)), &n, nil); err != nil {
		return nil, err
	}
	return out[:min(int(n), len(out))], nil
}

// WindowsVolumes describes the removable and USB volumes: those with a
// drive letter (GetLogicalDrives) and those without one, mounted on
// folders only or nowhere (FindFirstVolumeW, GetVolumePathNamesForVolumeNameW),
// which are as much a part of their disk (see keepDrive for which are
// kept: a fixed or optical drive whose bus type cannot be read is kept
// too, unless it holds the Windows folder or one of opts.InternalDirs),
// and probes each one's first sectors read-only for its format, label and
// encryption (windowsVolume says how the two sources are combined). The
// probe reads the physical disk at the volume's extent when Windows names
// one, below BitLocker; it reads the volume device itself otherwise (Wine,
// a volume spanning disks). Drives that are not kept are asked nothing
// beyond their type and storage IOCTLs (a network drive only its type). A
// drive that cannot be read gives a Volume with Error set; it never hides
// the others. A failing GetLogicalDrives gives no volumes and its error; a
// failing volume list (FindFirstVolumeW, FindNextVolumeW) gives the
// volumes found and its error, and so does a failing
// GetSystemWindowsDirectory (its drive then not counted as internal).
func WindowsVolumes(opts WindowsOptions) ([]Volume, error) {
	return windowsVolumes(opts, 0)
}

// windowsVolumes is WindowsVolumes with the letters of hide (a
// GetLogicalDrives mask) taken as absent, so that a test under Wine,
// which cannot take a volume's letter away (DeleteVolumeMountPoint and
// SetVolumeMountPoint fail there), can read a volume as one without a
// letter.
func windowsVolumes(opts WindowsOptions, hide uint32) ([]Volume, error) {
	mask, err := windows.GetLogicalDrives()
	if err != nil {
		return nil, fmt.Errorf("GetLogicalDrives: %w", err)
	}
	mask &^= hide
	internal, serr := internalDrives(opts.InternalDirs)
	errs := []error{serr}
	var vols []Volume
	var lettered []string
	add := func(d *Drive) {
		usbPath, keep := keepDrive(d, opts.DiskToUSB, internal)
		if !keep {
			return
		}
		readVolumeInformation(d)
		if opts.Known != nil {
			now := windowsVolume(d, usbPath, Info{}, 0, nil)
			if v, ok := opts.Known(now); ok && v.Device == now.Device && v.MountPoint == now.MountPoint &&
				v.MajorMinor == now.MajorMinor && v.BlockName == now.BlockName && v.USBDevice == now.USBDevice &&
				v.Size == now.Size {
				vols = append(vols, v)
				return
			}
		}
		info, src, perr := probeDrive(d, ProbeOptions{CodePage: opts.CodePage})
		vols = append(vols, windowsVolume(d, usbPath, info, src, perr))
	}
	letters := driveLetters(mask)
	for _, l := range letters {
		d := readDrive(l)
		if d.VolumeName != "" {
			lettered = append(lettered, d.VolumeName)
		}
		add(&d)
	}
	listed, lerr := listVolumes()
	if lerr != nil {
		errs = append(errs, fmt.Errorf("volumes without a drive letter: %w", lerr))
	}
	rest, bad := volumesWithoutLetter(listed, letters, lettered)
	if len(bad) > 0 {
		errs = append(errs, fmt.Errorf("volumes without a drive letter: FindFirstVolume/FindNextVolume gave names that are not volume GUID paths: %s", strings.Join(bad, ", ")))
	}
	for _, lv := range rest {
		d := readUnletteredVolume(lv.Name, lv.Paths)
		if lv.Err != nil {
			d.Errors = append(d.Errors, lv.Err.Error())
		}
		add(&d)
	}
	return vols, errors.Join(errs...)
}

// internalDrives returns the letters of the drives that are internal by
// definition: the one holding the Windows folder, as
// GetSystemWindowsDirectory gives it (the system's own answer, not
// %SystemRoot%, which whoever starts a process can set), and those of
// dirs. The error says why the Windows folder's drive is not among them.
func internalDrives(dirs []string) ([]byte, error) {
	win, err := windows.GetSystemWindowsDirectory()
	if err != nil {
		return internalLetters(dirs...), fmt.Errorf("GetSystemWindowsDirectory: %w", err)
	}
	if _, ok := letterOf(win); !ok {
		err = fmt.Errorf("GetSystemWindowsDirectory: %q names no drive letter", safe.String(win))
	}
	return internalLetters(append([]string{win}, dirs...)...), err
}

// probeDrive probes a drive's first sectors: on its physical disk at its
// extent when known, else through the volume device.
func probeDrive(d *Drive, opts ProbeOptions) (Info, probeSource, error) {
	if d.ExtentOK {
		disk := `\\.\` + d.DiskName()
		info, err := probeWindowsDevice(disk, d.Offset, d.Length, opts)
		if err == nil {
			return info, probedDisk, nil
		}
		// Reading the disk needs administrator rights; the volume may
		// still be readable.
		vinfo, src, verr := probeVolumeDevice(d, opts)
		return vinfo, src, errors.Join(err, verr)
	}
	return probeVolumeDevice(d, opts)
}

func probeVolumeDevice(d *Drive, opts ProbeOptions) (Info, probeSource, error) {
	info, err := probeWindowsDevice(d.devicePath(), 0, d.Size, opts)
	if err != nil {
		return info, 0, err
	}
	return info, probedVolume, nil
}

// ProbeDevice opens a Windows device read-only (`\\.\PhysicalDrive2`,
// `\\.\E:`, `\\?\Volume{GUID}` without a trailing backslash) and probes
// its first sectors (see Probe): the Windows counterpart of ProbeBlock.
// Reads are made whole sectors, as raw devices require. Reading a
// physical drive needs administrator rights.
func ProbeDevice(path string, opts ProbeOptions) (Info, error) {
	return probeWindowsDevice(path, 0, 0, opts)
}

// probeWindowsDevice probes length bytes of the device at path from offset
// (the whole device when length is 0: its length is asked for).
func probeWindowsDevice(path string, offset, length int64, opts ProbeOptions) (Info, error) {
	shown := safe.String(path)
	if strings.ContainsRune(path, 0) || !strings.HasPrefix(path, `\\`) {
		return Info{}, fmt.Errorf("probe %s: not a device path", shown)
	}
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return Info{}, fmt.Errorf("probe %s: %w", shown, err)
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		return Info{}, fmt.Errorf("probe %s: open: %w", shown, err)
	}
	defer windows.CloseHandle(h)
	sector := 512
	if b, err := ioctl(h, ioctlDiskGetDriveGeometry, nil, 24); err == nil {
		if s, err := parseSectorSize(b); err == nil {
			sector = s
		}
	}
	if length == 0 {
		if b, err := ioctl(h, ioctlDiskGetLengthInfo, nil, 8); err == nil {
			length, _ = parseLength(b)
		}
	}
	if offset%int64(sector) != 0 {
		return Info{}, fmt.Errorf("probe %s: offset %d is not a multiple of the %d-byte sector", shown, offset, sector)
	}
	r, err := newSectorReader(handleReader{h}, offset, length, sector)
	if err != nil {
		return Info{}, fmt.Errorf("probe %s: %w", shown, err)
	}
	info, err := ProbeWith(r, length, opts)
	if err != nil {
		return info, fmt.Errorf("probe %s: %w", shown, err)
	}
	return info, nil
}

// handleReader reads a synchronous handle at an offset (ReadFile with the
// offset in an OVERLAPPED, which a synchronous handle takes as the
// position to read from).
type handleReader struct{ h windows.Handle }

func (r handleReader) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > 1<<30 {
		p = p[:1<<30]
	}
	ov := windows.Overlapped{Offset: uint32(off), OffsetHigh: uint32(off >> 32)}
	var n uint32
	err := windows.ReadFile(r.h, p, &n, &ov)
	if errors.Is(err, windows.ERROR_HANDLE_EOF) {
		return int(n), io.EOF
	}
	if err != nil {
		return int(n), err
	}
	if int(n) < len(p) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// printableASCII reports whether s is made of the characters 0x20-0x7E
// only.
func printableASCII(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// ProbeWindowsDisk probes each partition of a disk, "PhysicalDriveN" (a
// usb.BlockDevice's Name on Windows), read-only from the disk itself,
// below BitLocker, whether Windows gave it a volume or not: the
// partitions come from IOCTL_DISK_GET_DRIVE_LAYOUT_EX (see probeDiskUnits
// for what is made of a layout that is missing or does not parse). size
// is the disk's length in bytes (IOCTL_DISK_GET_LENGTH_INFO; 0 when
// unknown). Reading a physical drive needs administrator rights; err is
// set when the disk cannot be opened at all, and a unit's Err when it
// could not be probed.
func ProbeWindowsDisk(name string, opts ProbeOptions) (size int64, units []DiskUnit, err error) {
	rest, ok := strings.CutPrefix(name, "PhysicalDrive")
	if !ok || rest == "" || len(rest) > 4 || strings.Trim(rest, "0123456789") != "" {
		return 0, nil, fmt.Errorf("probe disk: %q is not a disk name (PhysicalDriveN)", safe.String(name))
	}
	path := `\\.\` + name
	p, _ := windows.UTF16PtrFromString(path)
	h, err := windows.CreateFile(p, windows.GENERIC_READ, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("probe disk %s: open: %w", name, err)
	}
	defer windows.CloseHandle(h)
	sector := 512
	if b, err := ioctl(h, ioctlDiskGetDriveGeometry, nil, 24); err == nil {
		if s, err := parseSectorSize(b); err == nil {
			sector = s
		}
	}
	if b, err := ioctl(h, ioctlDiskGetLengthInfo, nil, 8); err == nil {
		size, _ = parseLength(b)
	}
	layout, lerr := ioctl(h, ioctlDiskGetDriveLayoutEx, nil, driveLayoutHead+partitionInfoLen*maxPartitions)
	if lerr != nil {
		lerr = fmt.Errorf("IOCTL_DISK_GET_DRIVE_LAYOUT_EX: %w", lerr)
	}
	return size, probeDiskUnits(name, handleReader{h}, size, sector, layout, lerr, opts), nil
}
