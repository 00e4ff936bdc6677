package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestDriveLetters(t *testing.T) {
	for _, c := range []struct {
		mask uint32
		want string
	}{
		{0, ""},
		{1, "A"},
		{1<<2 | 1<<25, "CZ"},
		{0xFFFFFFFF, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}, // bits above Z are ignored
		{0b10000000100000000000000100, "CRZ"},      // what Wine 8.0 gave with R: mapped
	} {
		if got := string(driveLetters(c.mask)); got != c.want {
			t.Errorf("driveLetters(%#x) = %q, want %q", c.mask, got, c.want)
		}
	}
}

func TestDriveAndBusNames(t *testing.T) {
	if DriveRemovable.String() != "removable" || DriveFixed.String() != "fixed" || DriveType(99).String() != "type(99)" {
		t.Errorf("drive type names: %s %s %s", DriveRemovable, DriveFixed, DriveType(99))
	}
	want := map[BusType]string{BusUSB: "usb", BusNVMe: "nvme", BusSD: "sd", BusFileVirt: "file-backed-virtual", BusNVMeOF: "nvmeof", 0x15: "bus(21)", 0xFFFFFFFF: "bus(4294967295)"}
	for b, w := range want {
		if b.String() != w {
			t.Errorf("BusType(%d) = %q, want %q", uint32(b), b.String(), w)
		}
	}
	if BusUSB != 7 {
		t.Error("BusTypeUsb is 7 in ntddstor.h")
	}
}

func TestWindowsFSType(t *testing.T) {
	for in, want := range map[string]string{
		"FAT": "vfat", "FAT12": "vfat", "FAT16": "vfat", "FAT32": "vfat", "fat32": "vfat",
		"exFAT": "exfat", "NTFS": "ntfs", "CDFS": "iso9660", "UDF": "udf", "ReFS": "refs", "": "",
	} {
		if got := windowsFSType(in); got != want {
			t.Errorf("windowsFSType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeepDrive(t *testing.T) {
	usb := map[string]string{"PhysicalDrive2": `USB\VID_0781&PID_5567\4C530001230719117094`, "PhysicalDrive9": "unknown:PhysicalDrive9"}
	for _, c := range []struct {
		name    string
		d       Drive
		path    string
		keep    bool
		comment string
	}{
		{"stick", Drive{Letter: 'E', Type: DriveRemovable, Disk: 2, Bus: BusUSB, BusKnown: true}, usb["PhysicalDrive2"], true, "a USB stick its USB device holds"},
		{"usb ssd", Drive{Letter: 'F', Type: DriveFixed, Disk: 3, Bus: BusUSB, BusKnown: true}, "", true, "DRIVE_FIXED, but on the USB bus"},
		{"usb ssd owned", Drive{Letter: 'F', Type: DriveFixed, Disk: 2, Bus: BusUSB, BusKnown: true}, usb["PhysicalDrive2"], true, ""},
		{"owned, bus unknown", Drive{Letter: 'G', Type: DriveFixed, Disk: 2}, usb["PhysicalDrive2"], true, "the USB backend says so even when the IOCTL did not answer"},
		{"internal nvme", Drive{Letter: 'C', Type: DriveFixed, Disk: 0, Bus: BusNVMe, BusKnown: true}, "", false, ""},
		// Failing closed: a fixed or optical drive whose bus could not be
		// read may be USB, unless it is internal by definition.
		{"fixed, bus unknown", Drive{Letter: 'D', Type: DriveFixed, Disk: -1}, "", true, "nothing shows it is internal: a USB SSD whose IOCTL failed"},
		{"fixed, bus unknown, disk known", Drive{Letter: 'D', Type: DriveFixed, Disk: 6}, "", true, "its disk on no USB device listed"},
		{"Wine's Z:", Drive{Letter: 'Z', Type: DriveFixed, Disk: -1, DeviceName: `\Device\HarddiskVolume2`, Errors: []string{`open \\.\Z:: Access denied.`}}, "", true, "maps the host's /"},
		{"system drive, bus unknown", Drive{Letter: 'C', Type: DriveFixed, Disk: -1}, "", false, "the Windows folder's drive is internal"},
		{"state drive, bus unknown", Drive{Letter: 'S', Type: DriveFixed, Disk: 1}, "", false, "the state folder's drive is internal"},
		{"system disk guessed external", Drive{Letter: 'C', Type: DriveFixed, Disk: 9, Bus: BusSD, BusKnown: true}, "", false, "an eMMC system disk the tree calls hot-pluggable is still the Windows folder's drive"},
		{"data disk guessed external", Drive{Letter: 'D', Type: DriveFixed, Disk: 9, Bus: BusSD, BusKnown: true}, "unknown:PhysicalDrive9", true, "an SD card is external storage"},
		{"system drive held by a USB device", Drive{Letter: 'C', Type: DriveFixed, Disk: 2}, usb["PhysicalDrive2"], true, "Windows To Go: what the USB backend says wins"},
		{"system drive on the USB bus", Drive{Letter: 'C', Type: DriveFixed, Disk: 3, Bus: BusUSB, BusKnown: true}, "", true, "internal only stands in for a bus that could not be read"},
		{"optical, bus unknown", Drive{Letter: 'L', Type: DriveCDROM, Disk: -1}, "", true, "a USB optical drive whose IOCTL failed"},
		{"ram disk, bus unknown", Drive{Letter: 'M', Type: DriveRAMDisk, Disk: -1}, "", false, "memory, not a medium"},
		{"subst of a fixed drive", Drive{Letter: 'X', Type: DriveFixed, Disk: -1, DeviceName: `\??\C:\work`}, "", false, "a folder of C:, judged as C:"},
		{"subst of a stick", Drive{Letter: 'X', Type: DriveRemovable, Disk: -1, DeviceName: `\??\E:\`}, "", false, "a folder of E:, judged as E:"},
		{"alias of a drive", Drive{Letter: 'X', Type: DriveFixed, Disk: -1, DeviceName: `\??\e:`}, "", false, ""},
		{"link elsewhere", Drive{Letter: 'X', Type: DriveFixed, Disk: -1, DeviceName: `\??\UNC\srv\share`}, "", true, "not a folder of a drive letter"},
		{"link to a volume", Drive{Letter: 'X', Type: DriveFixed, Disk: -1, DeviceName: `\??\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6963}\`}, "", true, "a volume without a letter"},
		{"link to itself", Drive{Letter: 'X', Type: DriveFixed, Disk: -1, DeviceName: `\??\X:\`}, "", true, "no other letter judges it"},
		{"drive-relative link", Drive{Letter: 'X', Type: DriveFixed, Disk: -1, DeviceName: `\??\C:work`}, "", true, ""},
		{"floppy (Wine)", Drive{Letter: 'R', Type: DriveRemovable, Disk: -1}, "", true, "removable by type, bus unknown"},
		{"sd card on sd bus", Drive{Letter: 'H', Type: DriveRemovable, Disk: 4, Bus: BusSD, BusKnown: true}, "", true, ""},
		{"removable media, fixed type", Drive{Letter: 'I', Type: DriveFixed, Disk: 5, Bus: BusSATA, BusKnown: true, RemovableMedia: true}, "", true, "a hot-plug bay"},
		{"internal optical", Drive{Letter: 'J', Type: DriveCDROM, Disk: -1, Bus: BusSATA, BusKnown: true, RemovableMedia: true}, "", false, ""},
		{"usb optical", Drive{Letter: 'K', Type: DriveCDROM, Disk: -1, Bus: BusUSB, BusKnown: true, RemovableMedia: true}, "", true, ""},
		{"network", Drive{Letter: 'Z', Type: DriveRemote, Disk: 2}, "", false, "never a network drive, whatever else is set"},
		{"no root", Drive{Letter: 'Y', Type: DriveNoRootDir, Bus: BusUSB, BusKnown: true}, "", false, ""},
		// DRIVE_UNKNOWN is judged as a fixed drive: by its bus.
		{"type unknown, bus unknown", Drive{Letter: 'P', Type: DriveUnknown, Disk: -1}, "", true, "what cannot be determined is not internal"},
		{"type unknown, system drive", Drive{Letter: 'C', Type: DriveUnknown, Disk: -1}, "", false, ""},
		{"type unknown, internal bus", Drive{Letter: 'P', Type: DriveUnknown, Disk: 0, Bus: BusNVMe, BusKnown: true}, "", false, ""},
		{"type unknown, usb bus", Drive{Letter: 'P', Type: DriveUnknown, Disk: 3, Bus: BusUSB, BusKnown: true}, "", true, ""},
		// Volumes without a letter (FindFirstVolumeW): a partition Windows
		// gives no letter is as much its disk's as a lettered one.
		{"no letter, usb disk", Drive{Type: DriveRemovable, Disk: 2, VolumeName: `\\?\Volume{1}\`}, usb["PhysicalDrive2"], true, "the hidden partition of a stick"},
		{"no letter, usb bus", Drive{Type: DriveFixed, Disk: 3, Bus: BusUSB, BusKnown: true}, "", true, ""},
		{"no letter, bus unknown", Drive{Type: DriveFixed, Disk: -1}, "", true, "no letter is internal by definition"},
		{"no letter, type and bus unknown (Wine)", Drive{Type: DriveUnknown, Disk: -1}, "", true, ""},
		{"no letter, EFI partition on nvme", Drive{Type: DriveFixed, Disk: 0, Bus: BusNVMe, BusKnown: true}, "", false, "internal"},
	} {
		p, keep := keepDrive(&c.d, usb, []byte("CS"))
		if p != c.path || keep != c.keep {
			t.Errorf("%s: keepDrive = %q, %v; want %q, %v (%s)", c.name, p, keep, c.path, c.keep, c.comment)
		}
	}
}

func TestDriveLetterOf(t *testing.T) {
	for in, want := range map[string]byte{
		`C:\windows`: 'C', `c:\Windows`: 'C', `D:\mamori\state`: 'D', "E:": 'E', `z:/tmp`: 'Z',
		`\\?\D:\mamori`: 'D', `\\.\e:`: 'E',
		"": 0, "C": 0, "C:x": 0, `\\srv\share\x`: 0, `\\?\UNC\srv\share`: 0, `\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6963}\`: 0,
		"1:\\x": 0, `\\?\\\?\C:\`: 0, "relative\\dir": 0, "/tmp": 0, "\xc3:\\": 0,
	} {
		l, ok := letterOf(in)
		if l != want || ok != (want != 0) {
			t.Errorf("letterOf(%q) = %q, %v; want %q", in, l, ok, want)
		}
	}
	for in, want := range map[string]byte{
		`\??\C:\work`: 'C', `\??\d:`: 'D', `\??\E:\`: 'E',
		`\Device\HarddiskVolume2`: 0, `\??\UNC\srv\share`: 0, `\??\C:/x`: 0, `\??\\\?\C:\`: 0, `C:\work`: 0, "": 0,
	} {
		l, ok := substOf(in)
		if l != want || ok != (want != 0) {
			t.Errorf("substOf(%q) = %q, %v; want %q", in, l, ok, want)
		}
	}
	if got := string(internalLetters(`C:\Windows`, `c:\ProgramData\mamori`, `\\srv\x`, `D:\m`, "")); got != "CD" {
		t.Errorf("internalLetters = %q, want CD", got)
	}
}

// seedInfo probes one of the fixture images.
func seedInfo(t *testing.T, name string) Info {
	t.Helper()
	img, ok := fuzzSeeds(t)[name]
	if !ok {
		t.Fatalf("no seed %s", name)
	}
	info, err := Probe(bytes.NewReader(img), 0)
	if err != nil {
		t.Fatalf("probe %s: %v", name, err)
	}
	return info
}

func TestWindowsVolume(t *testing.T) {
	fat := seedInfo(t, "fat12.img")
	togo := seedInfo(t, "bitlk-togo-aes-xts-128")
	bitlk := seedInfo(t, "bitlk-aes-xts-128")
	clear := seedInfo(t, "bitlk-clearkey-aes-cbc-128")
	if fat.Label != "MY STICK" || togo.Encryption != EncryptionBitLockerToGo || bitlk.Encryption != EncryptionBitLocker || !clear.ClearKey {
		t.Fatalf("fixtures: %+v %+v %+v %+v", fat, togo, bitlk, clear)
	}
	stick := Drive{
		Letter: 'E', Type: DriveRemovable, VolumeName: `\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6963}\`,
		DeviceName: `\Device\HarddiskVolume7`, Label: "MY STICK", FSName: "FAT", Serial: 0x12345678, InfoOK: true,
		Bus: BusUSB, BusKnown: true, Disk: 2, Partition: 1, Offset: 1 << 20, Length: 1 << 30, ExtentOK: true, Size: 1 << 30,
	}
	const usbPath = `USB\VID_0781&PID_5567\4C530001230719117094`
	v := windowsVolume(&stick, usbPath, fat, probedDisk, nil)
	want := Volume{
		Device: `\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6963}`, BlockName: "HarddiskVolume7", MajorMinor: "2:1",
		MountPoint: `E:\`, FSType: "vfat", Size: 1 << 30, Label: "MY STICK", UUID: fat.UUID, Backing: "PhysicalDrive2",
		USBDevice: usbPath, Offset: 1 << 20, OffsetKnown: true,
	}
	if v != want {
		t.Errorf("plain stick:\n got %+v\nwant %+v", v, want)
	}

	// A BitLocker To Go stick, unlocked: Windows shows the FAT32 inside,
	// the disk holds the BitLocker header.
	unlocked := stick
	unlocked.FSName = "FAT32"
	v = windowsVolume(&unlocked, usbPath, togo, probedDisk, nil)
	if !v.Encrypted || v.Encryption != EncryptionBitLockerToGo || v.FSType != "vfat" || v.Error != "" || v.Backing != "PhysicalDrive2" {
		t.Errorf("unlocked BitLocker To Go: %+v", v)
	}
	// Locked: GetVolumeInformation fails.
	locked := stick
	locked.InfoOK, locked.Label, locked.FSName, locked.Serial = false, "", "", 0
	locked.Errors = []string{"GetVolumeInformation: This drive is locked by BitLocker Drive Encryption."}
	v = windowsVolume(&locked, usbPath, bitlk, probedDisk, nil)
	if !v.Encrypted || v.Encryption != EncryptionBitLocker || v.FSType != "" || !strings.Contains(v.Error, "locked by BitLocker") {
		t.Errorf("locked BitLocker: %+v", v)
	}
	// Suspended protection: the key is in the clear.
	v = windowsVolume(&stick, usbPath, clear, probedDisk, nil)
	if v.Encrypted || !v.ClearKey || v.Encryption != "" {
		t.Errorf("clear key: %+v", v)
	}
	// Read through the volume and plain: not shown to be plain.
	v = windowsVolume(&stick, usbPath, fat, probedVolume, nil)
	if v.Encrypted || !strings.Contains(v.Error, "an unlocked BitLocker volume would read as plain") {
		t.Errorf("volume read: %+v", v)
	}
	// Read through the volume and BitLocker (Wine maps the image as is).
	v = windowsVolume(&stick, usbPath, togo, probedVolume, nil)
	if !v.Encrypted || strings.Contains(v.Error, "would read as plain") {
		t.Errorf("volume read, BitLocker: %+v", v)
	}
	// Unreadable: never encrypted, the reason kept.
	v = windowsVolume(&locked, usbPath, Info{}, 0, errors.New(`probe \\.\PhysicalDrive2: open: Access is denied.`))
	if v.Encrypted || !strings.Contains(v.Error, "Access is denied") {
		t.Errorf("unreadable: %+v", v)
	}
	// What Wine 8.0 gives for a FAT image mapped as a floppy: no disk
	// extents, no bus, "NTFS" and no label from GetVolumeInformation.
	wine := Drive{Letter: 'R', Type: DriveRemovable, VolumeName: `\\?\Volume{00000000-0000-0000-0000-000000000052}\`,
		DeviceName: `\Device\Harddisk1\Partition1`, FSName: "NTFS", Serial: 0x43000000, InfoOK: true, Disk: 1, Partition: 1}
	v = windowsVolume(&wine, "", fat, probedVolume, nil)
	if v.FSType != "vfat" || v.Label != "MY STICK" || v.UUID != fat.UUID || v.USBDevice != "" || v.Device != `\\?\Volume{00000000-0000-0000-0000-000000000052}` ||
		!strings.Contains(v.Error, "Windows reports file system NTFS, the first sectors hold vfat") || !strings.Contains(v.Error, "bus type unknown") {
		t.Errorf("wine floppy: %+v", v)
	}
	// Nothing known but the letter.
	bare := Drive{Letter: 'Q', Type: DriveRemovable, Disk: -1}
	v = windowsVolume(&bare, "", Info{}, 0, nil)
	if v.Device != `\\.\Q:` || v.BlockName != "Q:" || v.MountPoint != `Q:\` || v.Backing != "" || v.MajorMinor != "" || v.Encrypted {
		t.Errorf("bare: %+v", v)
	}
	// A partition without a drive letter (GPT_BASIC_DATA_ATTRIBUTE_NO_DRIVE_LETTER),
	// listed by FindFirstVolumeW: named by its volume GUID path, mounted
	// nowhere; the same mounted on a folder shows the folder.
	hidden := stick
	hidden.Letter, hidden.VolumeName, hidden.Partition, hidden.Offset = 0, `\\?\Volume{5d1c8e2a-0b1e-4c7e-9a31-2f0d4c8b9e01}\`, 2, 1<<30+1<<20
	hidden.DeviceName = `\Device\HarddiskVolume8`
	v = windowsVolume(&hidden, usbPath, fat, probedDisk, nil)
	if v.Device != `\\?\Volume{5d1c8e2a-0b1e-4c7e-9a31-2f0d4c8b9e01}` || v.MountPoint != `\\?\Volume{5d1c8e2a-0b1e-4c7e-9a31-2f0d4c8b9e01}\` ||
		v.BlockName != "HarddiskVolume8" || v.MajorMinor != "2:2" || v.Backing != "PhysicalDrive2" || !v.OffsetKnown || v.Offset != 1<<30+1<<20 ||
		v.FSType != "vfat" || v.Encrypted {
		t.Errorf("volume without a letter: %+v", v)
	}
	hidden.MountPoints = []string{`C:\mnt\stick\`, `D:\x\`}
	hidden.DeviceName = ""
	hidden.ExtentOK = false
	v = windowsVolume(&hidden, usbPath, fat, probedVolume, nil)
	if v.MountPoint != `C:\mnt\stick\` || v.BlockName != "Volume{5d1c8e2a-0b1e-4c7e-9a31-2f0d4c8b9e01}" || v.OffsetKnown {
		t.Errorf("volume on a folder: %+v", v)
	}
	if d := (&hidden); d.Root() != hidden.VolumeName || d.devicePath() != v.Device {
		t.Errorf("volume on a folder: root %q, device %q", d.Root(), d.devicePath())
	}
	// A USB SSD whose USB device the backend did not list.
	ssd := stick
	v = windowsVolume(&ssd, "", fat, probedDisk, nil)
	if !strings.Contains(v.Error, "no USB device holds PhysicalDrive2") {
		t.Errorf("orphan USB disk: %+v", v)
	}
	// A read-only volume.
	ro := stick
	ro.FSFlags = fileReadOnlyVolume
	if v := windowsVolume(&ro, usbPath, fat, probedDisk, nil); !v.ReadOnly {
		t.Errorf("read-only: %+v", v)
	}
	// No probe UUID: the volume serial in FAT notation.
	if v := windowsVolume(&stick, usbPath, Info{}, 0, nil); v.UUID != "1234-5678" {
		t.Errorf("serial: %q", v.UUID)
	}
}

// usbStickDescriptor is a STORAGE_DEVICE_DESCRIPTOR as a USB stick's
// driver fills it: strings after the fixed part, space-padded as SCSI
// INQUIRY data is.
func usbStickDescriptor() []byte {
	b := make([]byte, 36)
	binary.LittleEndian.PutUint32(b[0:], 36)
	b[8] = 0  // DIRECT_ACCESS_DEVICE
	b[10] = 1 // RemovableMedia
	b[11] = 0 // CommandQueueing
	add := func(at int, s string) {
		binary.LittleEndian.PutUint32(b[at:], uint32(len(b)))
		b = append(b, s...)
		b = append(b, 0)
	}
	add(12, "SanDisk ")
	add(16, "Ultra           ")
	add(20, "1.00")
	add(24, "4C530001230719117094")
	binary.LittleEndian.PutUint32(b[28:], uint32(BusUSB))
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[0:], uint32(len(b)))
	return b
}

func TestParseStorageDescriptor(t *testing.T) {
	d, err := parseStorageDescriptor(usbStickDescriptor())
	if err != nil || d.Bus != BusUSB || !d.RemovableMedia || d.Vendor != "SanDisk" || d.Product != "Ultra" || d.Serial != "4C530001230719117094" {
		t.Errorf("usb stick: %+v, %v", d, err)
	}
	// Wine 8.0's answer for C: (40 bytes, SCSI, no strings).
	wine := []byte("\x28\x00\x00\x00\x28\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	d, err = parseStorageDescriptor(wine)
	if err != nil || d.Bus != BusSCSI || d.RemovableMedia || d.Vendor != "" {
		t.Errorf("wine C: %+v, %v", d, err)
	}
	// Hostile: strings with escapes, offsets outside, a lying Size.
	b := usbStickDescriptor()
	copy(b[bytes.Index(b, []byte("SanDisk")):], "San\x1b[2J")
	d, err = parseStorageDescriptor(b)
	if err != nil || strings.ContainsRune(d.Vendor, 0x1b) {
		t.Errorf("escape in vendor: %q, %v", d.Vendor, err)
	}
	b = usbStickDescriptor()
	binary.LittleEndian.PutUint32(b[16:], 5000)
	if d, err := parseStorageDescriptor(b); !errors.Is(err, ErrIOCTLData) || d.Bus != BusUSB || d.Vendor != "SanDisk" {
		t.Errorf("offset outside: %+v, %v", d, err)
	}
	b = usbStickDescriptor()
	binary.LittleEndian.PutUint32(b[4:], 40) // Size cuts the strings off
	if _, err := parseStorageDescriptor(b); !errors.Is(err, ErrIOCTLData) {
		t.Errorf("size cuts strings: %v", err)
	}
	for _, short := range [][]byte{nil, make([]byte, 35), append(make([]byte, 4), make([]byte, 40)...)} {
		if _, err := parseStorageDescriptor(short); !errors.Is(err, ErrIOCTLData) {
			t.Errorf("short %d bytes: %v", len(short), err)
		}
	}
}

func TestParseDeviceNumberExtentsGeometry(t *testing.T) {
	// Wine 8.0 for a floppy-mapped drive: FILE_DEVICE_DISK, disk 1,
	// partition 1.
	n, err := parseDeviceNumber([]byte{7, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0})
	if err != nil || n.DeviceType != fileDeviceDisk || n.Number != 1 || n.Partition != 1 {
		t.Errorf("device number: %+v %v", n, err)
	}
	n, err = parseDeviceNumber([]byte{7, 0, 0, 0, 3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	if err != nil || n.Partition != 0 {
		t.Errorf("not partitionable: %+v %v", n, err)
	}
	for _, bad := range [][]byte{{7, 0, 0, 0}, {7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}} {
		if _, err := parseDeviceNumber(bad); !errors.Is(err, ErrIOCTLData) {
			t.Errorf("%x: %v", bad, err)
		}
	}

	ext := make([]byte, 8+24)
	ext[0] = 1
	binary.LittleEndian.PutUint32(ext[8:], 2)
	binary.LittleEndian.PutUint64(ext[16:], 1<<20)
	binary.LittleEndian.PutUint64(ext[24:], 31<<30)
	got, err := parseDiskExtents(ext)
	if err != nil || len(got) != 1 || got[0] != (diskExtent{2, 1 << 20, 31 << 30}) {
		t.Errorf("extents: %+v %v", got, err)
	}
	ext[0] = 2 // claims two, holds one
	if _, err := parseDiskExtents(ext); !errors.Is(err, ErrIOCTLData) {
		t.Errorf("short extents: %v", err)
	}
	ext[0] = 1
	binary.LittleEndian.PutUint64(ext[24:], 1<<63) // negative length
	if _, err := parseDiskExtents(ext); !errors.Is(err, ErrIOCTLData) {
		t.Errorf("negative length: %v", err)
	}
	binary.LittleEndian.PutUint32(ext, 1<<31)
	if _, err := parseDiskExtents(ext); !errors.Is(err, ErrIOCTLData) {
		t.Errorf("huge count: %v", err)
	}

	geo := make([]byte, 24)
	for _, c := range []struct {
		bps  uint32
		want int
	}{{512, 512}, {4096, 4096}, {0, 0}, {520, 0}, {1 << 20, 0}} {
		binary.LittleEndian.PutUint32(geo[20:], c.bps)
		s, err := parseSectorSize(geo)
		if s != c.want || (c.want == 0) != (err != nil) {
			t.Errorf("sector %d: %d, %v", c.bps, s, err)
		}
	}
	if l, err := parseLength([]byte{0, 0, 0, 0x40, 0, 0, 0, 0}); err != nil || l != 1<<30 {
		t.Errorf("length: %d %v", l, err)
	}
	if _, err := parseLength([]byte{0, 0, 0, 0, 0, 0, 0, 0x80}); !errors.Is(err, ErrIOCTLData) {
		t.Errorf("negative length: %v", err)
	}
}

// alignedOnly is a device that, like a raw Windows disk, refuses reads
// that do not start and end on a sector boundary.
type alignedOnly struct {
	data   []byte
	sector int64
	reads  int
}

func (a *alignedOnly) ReadAt(p []byte, off int64) (int, error) {
	a.reads++
	if off%a.sector != 0 || int64(len(p))%a.sector != 0 {
		return 0, fmt.Errorf("unaligned read of %d at %d", len(p), off)
	}
	if off >= int64(len(a.data)) {
		return 0, io.EOF
	}
	n := copy(p, a.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func TestSectorReaderProbes(t *testing.T) {
	seeds := fuzzSeeds(t)
	for _, name := range []string{"fat12.img", "exfat.img", "ntfs.img", "bitlk-togo-aes-xts-128", "bitlk-aes-xts-128"} {
		img := seeds[name]
		want, werr := Probe(bytes.NewReader(img), int64(len(img)))
		for _, sector := range []int{512, 4096} {
			// The medium is a partition 1 MiB into the disk.
			disk := make([]byte, 1<<20+len(img)+sector)
			copy(disk[1<<20:], img)
			dev := &alignedOnly{data: disk, sector: int64(sector)}
			r, err := newSectorReader(dev, 1<<20, int64(len(img)), sector)
			if err != nil {
				t.Fatal(err)
			}
			got, gerr := Probe(r, int64(len(img)))
			if got != want || (gerr == nil) != (werr == nil) {
				t.Errorf("%s, %d-byte sectors: %+v, %v; want %+v, %v", name, sector, got, gerr, want, werr)
			}
		}
	}
	if _, err := newSectorReader(&alignedOnly{}, 100, 0, 512); err == nil {
		t.Error("unaligned window accepted")
	}
	if _, err := newSectorReader(&alignedOnly{}, 0, 0, 1000); err == nil {
		t.Error("sector size 1000 accepted")
	}
}

// FuzzSectorReader reads the same bytes through a sectorReader over an
// aligned-only device as straight from memory, for any window, offset
// and length.
func FuzzSectorReader(f *testing.F) {
	f.Add(uint16(0), uint16(0), uint16(10), uint16(512), false)
	f.Add(uint16(3), uint16(511), uint16(2), uint16(4096), true)
	f.Add(uint16(1), uint16(8000), uint16(3000), uint16(512), true)
	data := make([]byte, 64<<10)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	f.Fuzz(func(t *testing.T, baseSectors, off, n, sizeHint uint16, sized bool) {
		sector := int64(512)
		if sizeHint&1 != 0 {
			sector = 4096
		}
		base := int64(baseSectors%8) * sector
		size := int64(0)
		if sized {
			size = int64(len(data)) - base - int64(sizeHint)%1000
		}
		r, err := newSectorReader(&alignedOnly{data: data, sector: sector}, base, size, int(sector))
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, n)
		got, err := r.ReadAt(p, int64(off))
		end := int64(len(data)) - base
		if size > 0 {
			end = size
		}
		want := max(0, min(int64(n), end-int64(off)))
		if int64(got) != want {
			t.Fatalf("base %d size %d: ReadAt(%d bytes at %d) = %d, want %d (err %v)", base, size, n, off, got, want, err)
		}
		if (int64(got) < int64(n)) != (err != nil) {
			t.Fatalf("short read %d of %d with error %v", got, n, err)
		}
		if !bytes.Equal(p[:got], data[base+int64(off):base+int64(off)+int64(got)]) {
			t.Fatalf("bytes differ at %d", off)
		}
	})
}

func FuzzParseStorageDescriptor(f *testing.F) {
	f.Add(usbStickDescriptor())
	f.Add([]byte("\x28\x00\x00\x00\x28\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseStorageDescriptor(b)
		if len(b) < storageDescriptorMin && err == nil {
			t.Fatal("short descriptor accepted")
		}
		for _, s := range []string{d.Vendor, d.Product, d.Serial} {
			if strings.ContainsAny(s, "\x00\x1b\n") {
				t.Fatalf("unsafe string %q", s)
			}
		}
	})
}

func FuzzParseDiskExtents(f *testing.F) {
	ext := make([]byte, 8+24)
	ext[0] = 1
	binary.LittleEndian.PutUint64(ext[24:], 1<<30)
	f.Add(ext)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseDiskExtents(b)
		if err != nil {
			return
		}
		for _, e := range got {
			if e.Offset < 0 || e.Length <= 0 || e.Disk < 0 || e.Offset+e.Length < 0 {
				t.Fatalf("accepted %+v", e)
			}
		}
		if _, err := parseDeviceNumber(b); err == nil && len(b) < 12 {
			t.Fatal("short device number accepted")
		}
	})
}

func TestVolumeGUIDPathAndDeviceBase(t *testing.T) {
	for s, ok := range map[string]bool{
		`\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6963}\`:  true,
		`\\?\Volume{00000000-0000-0000-0000-000000000052}\`:  true,
		`\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6963}`:   false,
		`\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e696g}\`:  false,
		`\\?\Volume{0c1f0e6a_1c2b-11ef-9a3e-806e6f6e6963}\`:  false,
		`\\.\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6963}\`:  false,
		`\\?\Volume{0c1f0e6a-1c2b-11ef-9a3e-806e6f6e6963}\x`: false,
		"": false,
	} {
		if _, got := volumeGUIDPath(s); got != ok {
			t.Errorf("volumeGUIDPath(%q) = %v", s, got)
		}
	}
	for in, want := range map[string]string{
		`\Device\HarddiskVolume5`: "HarddiskVolume5", `\Device\Harddisk1`: "Harddisk1", `\Device\Floppy0`: "Floppy0",
		`\Device\`: "", `\Device\a b`: "", "plain": "plain", `\Device\` + strings.Repeat("x", 65): "", `\Device\x` + "\x1b": "",
	} {
		if got := deviceBase(in); got != want {
			t.Errorf("deviceBase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseMultiSZ(t *testing.T) {
	u := func(s string) []uint16 {
		var out []uint16
		for _, r := range s {
			out = append(out, uint16(r))
		}
		return out
	}
	full := u("E:\\\x00C:\\mnt\\stick\\\x00\x00")
	for _, c := range []struct {
		name string
		buf  []uint16
		n    int
		want []string
	}{
		{"letter and folder", full, len(full), []string{`E:\`, `C:\mnt\stick\`}},
		{"mounted nowhere", u("\x00"), 1, nil},
		{"nothing written", full, 0, nil},
		{"count past the buffer", full, 1 << 20, []string{`E:\`, `C:\mnt\stick\`}},
		{"negative count", full, -1, nil},
		{"no final NUL", u(`E:\`), 3, []string{`E:\`}},
		{"cut short", full, 5, []string{`E:\`, "C"}},
		{"non-ASCII folder", u("C:\\データ\\\x00\x00"), 8, []string{`C:\データ\`}},
	} {
		if got := parseMultiSZ(c.buf, c.n); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestVolumesWithoutLetter: of the volumes FindFirstVolumeW lists, those
// a drive letter already reaches are left to the letter; the others (a
// partition Windows gives no letter, one mounted on a folder, one whose
// paths could not be read) are read by their GUID path.
func TestVolumesWithoutLetter(t *testing.T) {
	const (
		sys    = `\\?\Volume{00000000-0000-0000-0000-000000000001}\`
		stick  = `\\?\Volume{00000000-0000-0000-0000-000000000002}\`
		hidden = `\\?\Volume{00000000-0000-0000-0000-000000000003}\`
		folder = `\\?\Volume{00000000-0000-0000-0000-000000000004}\`
		both   = `\\?\Volume{00000000-0000-0000-0000-000000000005}\`
		failed = `\\?\Volume{00000000-0000-0000-0000-000000000006}\`
		gone   = `\\?\Volume{00000000-0000-0000-0000-000000000007}\`
		named  = `\\?\Volume{00000000-0000-0000-0000-00000000000A}\`
	)
	boom := errors.New("GetVolumePathNamesForVolumeName: boom")
	listed := []listedVolume{
		{Name: sys, Paths: []string{`C:\`}},
		{Name: stick, Paths: []string{`E:\`, `C:\mnt\also\`}},
		{Name: hidden},
		{Name: folder, Paths: []string{`C:\mnt\stick\`}},
		{Name: both, Paths: []string{`C:\mnt\x\`, `F:\`}},
		{Name: failed, Err: boom},
		{Name: gone, Paths: []string{`G:\`}}, // G: not among the letters: it went between the two looks
		{Name: `\\?\Volume{00000000-0000-0000-0000-00000000000a}\`},
		{Name: `\\?\GLOBALROOT\Device\X\`},
		{Name: "Volume{\x1b[31m}"},
	}
	out, bad := volumesWithoutLetter(listed, []byte("CEF"), []string{named})
	want := []listedVolume{
		{Name: hidden},
		{Name: folder, Paths: []string{`C:\mnt\stick\`}},
		{Name: failed, Err: boom},
		{Name: gone},
	}
	if len(out) != len(want) {
		t.Fatalf("%+v, want %+v", out, want)
	}
	for i := range want {
		if out[i].Name != want[i].Name || !slices.Equal(out[i].Paths, want[i].Paths) || out[i].Err != want[i].Err {
			t.Errorf("%d: %+v, want %+v", i, out[i], want[i])
		}
	}
	if len(bad) != 2 || strings.ContainsRune(strings.Join(bad, ""), 0x1b) {
		t.Errorf("bad names %q, want two, escaped", bad)
	}
}
