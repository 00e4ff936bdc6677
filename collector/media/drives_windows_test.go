package media

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/internal/wintest"
)

func TestReadDrivesSystemDrive(t *testing.T) {
	drives, err := ReadDrives()
	if err != nil {
		t.Fatal(err)
	}
	sys := os.Getenv("SystemDrive") // "C:"
	if len(sys) != 2 || sys[1] != ':' {
		t.Skipf("SystemDrive is %q", sys)
	}
	for _, d := range drives {
		if d.Letter != strings.ToUpper(sys)[0] {
			continue
		}
		t.Logf("%c: type %s, volume %s, device %s, fs %q, label %q, bus %s (known %v), disk %d partition %d, errors %q",
			d.Letter, d.Type, d.VolumeName, d.DeviceName, d.FSName, d.Label, d.Bus, d.BusKnown, d.Disk, d.Partition, d.Errors)
		if d.Type != DriveFixed || !d.InfoOK || d.FSName == "" {
			t.Errorf("system drive %c: %+v", d.Letter, d)
		}
		return
	}
	t.Errorf("system drive %s not among %d drives", sys, len(drives))
}

// mapRemovable maps a new drive letter as a removable drive ("floppy")
// whose device is the image file (padded to 1 MiB) and whose root is an
// empty directory, and returns the letter.
func mapRemovable(t *testing.T, img []byte) byte {
	t.Helper()
	return wintest.MapImage(t, wintest.DriveRemovable, img)
}

func volumeAt(vols []Volume, letter byte) *Volume {
	for i := range vols {
		if vols[i].MountPoint == string(letter)+`:\` {
			return &vols[i]
		}
	}
	return nil
}

// TestWineRemovableFATImage maps a FAT image made by mkfs.vfat -n "MY
// STICK" (testdata/images) as a removable drive and reads it as the agent
// would: the watcher sees the letter come, the drive type is removable,
// the volume is kept, and the label, file system and serial come from
// its first sectors, read through \\.\X:.
func TestWineRemovableFATImage(t *testing.T) {
	needWine(t)
	img := fuzzSeeds(t)["fat12.img"]
	want, err := Probe(bytes.NewReader(img), 0)
	if err != nil || want.Label != "MY STICK" {
		t.Fatalf("fixture: %+v %v", want, err)
	}
	w, err := NewMountWatcher("")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	l := mapRemovable(t, img)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Wait(ctx); err != nil {
		t.Errorf("the watcher did not see drive %c: come: %v", l, err)
	}

	drives, err := ReadDrives()
	if err != nil {
		t.Fatal(err)
	}
	var d *Drive
	for i := range drives {
		if drives[i].Letter == l {
			d = &drives[i]
		}
	}
	if d == nil {
		t.Fatalf("drive %c: not listed", l)
	}
	t.Logf("Wine's drive %c: type %s, volume %s, device %s, GetVolumeInformation ok %v fs %q label %q serial %08x, bus %s (known %v), disk %d partition %d, extent %v, errors %q",
		l, d.Type, d.VolumeName, d.DeviceName, d.InfoOK, d.FSName, d.Label, d.Serial, d.Bus, d.BusKnown, d.Disk, d.Partition, d.ExtentOK, d.Errors)
	if d.Type != DriveRemovable {
		t.Errorf("drive type %s, want removable", d.Type)
	}

	vols, err := WindowsVolumes(WindowsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := volumeAt(vols, l)
	if v == nil {
		t.Fatalf("drive %c: not among the volumes %+v", l, vols)
	}
	t.Logf("volume: %+v", *v)
	if v.Label != "MY STICK" || v.FSType != FSVFAT || v.UUID != want.UUID || v.Encrypted || v.USBDevice != "" ||
		!strings.HasPrefix(v.Device, `\\?\Volume{`) || strings.HasSuffix(v.Device, `\`) {
		t.Errorf("volume %+v, want label MY STICK, vfat, UUID %s, not encrypted", *v, want.UUID)
	}
	if sys := os.Getenv("SystemDrive"); sys != "" && volumeAt(vols, sys[0]) != nil {
		t.Errorf("the system drive %s is among the removable volumes", sys)
	}

	info, err := ProbeDevice(`\\.\`+string(l)+":", ProbeOptions{})
	if err != nil || info.Label != "MY STICK" || info.FSType != FSVFAT {
		t.Errorf("ProbeDevice: %+v, %v", info, err)
	}

	// A known volume is not probed again.
	marker := *v
	marker.Label = "FROM KNOWN"
	vols, err = WindowsVolumes(WindowsOptions{Known: func(now Volume) (Volume, bool) {
		if now.MountPoint == v.MountPoint {
			return marker, true
		}
		return Volume{}, false
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := volumeAt(vols, l); got == nil || got.Label != "FROM KNOWN" {
		t.Errorf("Known not used: %+v", got)
	}
}

// TestWineRemovableBitLockerToGo maps a BitLocker To Go medium made on
// Windows (cryptsetup's test image, testdata/bitlk) as a removable drive:
// the probe reads its header through \\.\X: and counts it as encrypted.
func TestWineRemovableBitLockerToGo(t *testing.T) {
	needWine(t)
	l := mapRemovable(t, compactBitLocker(t, "bitlk-togo-aes-xts-128"))
	vols, err := WindowsVolumes(WindowsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := volumeAt(vols, l)
	if v == nil {
		t.Fatalf("drive %c: not among the volumes", l)
	}
	t.Logf("volume: %+v", *v)
	if !v.Encrypted || v.Encryption != EncryptionBitLockerToGo {
		t.Errorf("BitLocker To Go medium: %+v", *v)
	}
}

// TestWineBlankMedium maps a removable drive whose medium is all zeros:
// nothing recognised, not encrypted, and the volume is still reported.
func TestWineBlankMedium(t *testing.T) {
	needWine(t)
	l := mapRemovable(t, nil)
	vols, err := WindowsVolumes(WindowsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := volumeAt(vols, l)
	if v == nil || v.Encrypted || v.Encryption != "" || v.Label != "" {
		t.Fatalf("zeroed medium: %+v", v)
	}
	t.Logf("volume: %+v", *v)
}

// TestWineDirectoryDriveLabel maps a removable drive to a directory only:
// Wine then gives the label and serial of .windows-label and
// .windows-serial in its root (and "NTFS"), which come through
// GetVolumeInformation; there is no device to read.
func TestWineDirectoryDriveLabel(t *testing.T) {
	needWine(t)
	dir := wintest.TempDir(t)
	if err := os.WriteFile(filepath.Join(dir, ".windows-label"), []byte("DIRLABEL\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".windows-serial"), []byte("1234abcd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := wintest.MapDrive(t, wintest.DriveRemovable, wintest.UnixPath(t, dir), "")
	vols, err := WindowsVolumes(WindowsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := volumeAt(vols, l)
	if v == nil {
		t.Fatalf("drive %c: not among the volumes", l)
	}
	t.Logf("volume: %+v", *v)
	if v.Label != "DIRLABEL" || v.UUID != "1234-ABCD" || v.FSType != FSNTFS || v.Encrypted {
		t.Errorf("directory drive: %+v", *v)
	}
}

// TestWineFixedDriveBusUnknown maps the FAT image as a fixed drive. Wine
// answers no storage IOCTL for it, so its bus type is unknown: failing
// closed, it is kept (it may be a USB SSD whose IOCTL failed), with no
// USB device and the unknown bus in its Error, unless it is the drive of
// one of InternalDirs (the agent's state folder). Once a USB device is
// said to hold its disk, it is kept as that device's (Wine gives its
// drives disk numbers).
func TestWineFixedDriveBusUnknown(t *testing.T) {
	needWine(t)
	l := wintest.MapImage(t, wintest.DriveFixed, fuzzSeeds(t)["fat12.img"])
	vols, err := WindowsVolumes(WindowsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := volumeAt(vols, l)
	if v == nil {
		t.Fatalf("fixed drive %c, bus unknown: left out of %+v", l, vols)
	}
	t.Logf("volume: %+v", *v)
	if v.USBDevice != "" || v.Label != "MY STICK" || v.FSType != FSVFAT || !strings.Contains(v.Error, "bus type unknown") {
		t.Errorf("fixed drive, bus unknown: %+v; want label MY STICK, vfat, no USB device, the bus type unknown in Error", *v)
	}
	vols, err = WindowsVolumes(WindowsOptions{InternalDirs: []string{string(l) + `:\mamori`}})
	if err != nil {
		t.Fatal(err)
	}
	if v := volumeAt(vols, l); v != nil {
		t.Errorf("the state folder's drive %c kept: %+v", l, *v)
	}
	drives, _ := ReadDrives()
	found := false
	for _, d := range drives {
		if d.Letter == l && d.DiskName() != "" {
			found = true
			vols, _ := WindowsVolumes(WindowsOptions{DiskToUSB: map[string]string{d.DiskName(): `USB\VID_0781&PID_5567\X`}})
			if v := volumeAt(vols, l); v == nil || v.USBDevice != `USB\VID_0781&PID_5567\X` {
				t.Errorf("fixed drive on %s held by a USB device: %+v", d.DiskName(), v)
			}
		}
	}
	if !found {
		t.Errorf("drive %c: has no disk number", l)
	}
}

// TestDrivesKeptFailClosed: on this machine (Windows or Wine), every
// fixed or optical drive whose bus type could not be read is among the
// volumes, but for the drive of the Windows folder; the Windows folder's
// drive is never kept for an unknown bus. Under Wine, Z: (the host's /)
// is such a drive and C: answers the IOCTL (bus scsi) and is left out.
func TestDrivesKeptFailClosed(t *testing.T) {
	internal, err := internalDrives(nil)
	if err != nil {
		t.Fatal(err)
	}
	root := os.Getenv("SystemRoot")
	if len(internal) != 1 || len(root) < 2 || internal[0] != strings.ToUpper(root)[0] {
		t.Errorf("internal drives %q, want the drive of SystemRoot %q", internal, root)
	}
	drives, err := ReadDrives()
	if err != nil {
		t.Fatal(err)
	}
	vols, err := WindowsVolumes(WindowsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unknown := 0
	for _, d := range drives {
		if d.Type != DriveFixed && d.Type != DriveCDROM || d.BusKnown {
			continue
		}
		if _, ok := substOf(d.DeviceName); ok {
			continue
		}
		kept := volumeAt(vols, d.Letter) != nil
		t.Logf("%c: %s, bus unknown (%q): kept %v", d.Letter, d.Type, d.Errors, kept)
		switch {
		case d.Letter == internal[0] && kept:
			t.Errorf("the Windows folder's drive %c: kept for its unknown bus", d.Letter)
		case d.Letter != internal[0] && !kept:
			t.Errorf("drive %c: %s, bus unknown, left out", d.Letter, d.Type)
		}
		unknown++
	}
	if wintest.IsWine() {
		if z := volumeAt(vols, 'Z'); z == nil || z.USBDevice != "" || !strings.Contains(z.Error, "bus type unknown") {
			t.Errorf("Wine's Z: (fixed, no storage IOCTL): %+v, want it kept, bus type unknown", z)
		}
		if c := volumeAt(vols, 'C'); c != nil {
			t.Errorf("Wine's C: (bus scsi): kept: %+v", *c)
		}
	}
	t.Logf("%d drives of unknown bus", unknown)
}

func TestMountWatcherClose(t *testing.T) {
	w, err := NewMountWatcher("")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Wait(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrWatcherClosed) {
			t.Errorf("Wait after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after Close")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w2, _ := NewMountWatcher("")
	defer w2.Close()
	if err := w2.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context: %v", err)
	}
}

// TestProbeWindowsDisk: names are checked before anything is opened;
// under Wine, PhysicalDrive0 (Wine's disk for C:) opens but answers no
// layout, so it is one unit.
func TestProbeWindowsDisk(t *testing.T) {
	for _, bad := range []string{"", "PhysicalDrive", "PhysicalDrive1/../x", `\\.\PhysicalDrive0`, "PhysicalDrive99999", "C:"} {
		if _, _, err := ProbeWindowsDisk(bad, ProbeOptions{}); err == nil || !strings.Contains(err.Error(), "not a disk name") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	size, units, err := ProbeWindowsDisk("PhysicalDrive0", ProbeOptions{})
	t.Logf("PhysicalDrive0: size %d, units %+v, err %v", size, units, err)
	if err != nil {
		if wintest.IsWine() {
			t.Errorf("Wine's PhysicalDrive0: %v", err)
		}
		return // on Windows, reading a disk needs administrator rights
	}
	if len(units) == 0 {
		t.Error("no units")
	}
	if wintest.IsWine() && (len(units) != 1 || units[0].Number != 0) {
		t.Errorf("Wine: want the whole disk as one unit: %+v", units)
	}
}

// TestWineVolumesWithoutLetter: FindFirstVolumeW lists every volume, and
// a volume no letter reaches is read by its volume GUID path. Measured
// under Wine 8.0: FindFirstVolumeW lists C:, Z: and each mapped drive,
// each with its letter (GetVolumePathNamesForVolumeNameW), so
// WindowsVolumes reads each drive once, by its letter. Wine cannot take a
// letter away (SetVolumeMountPoint is not implemented, and
// DeleteVolumeMountPoint fails), so the mapped drive's letter is hidden
// from the enumeration (windowsVolumes) to read its volume as one
// without: it is kept (GetDriveType of a GUID path is DRIVE_UNKNOWN under
// Wine, its bus unknown: failing closed), named and reached by its GUID
// path, its label and file system from GetVolumeInformation of that
// path; Wine cannot read its sectors through it (the probe fails:
// "Invalid function"), which Error says.
func TestWineVolumesWithoutLetter(t *testing.T) {
	needWine(t)
	l := mapRemovable(t, fuzzSeeds(t)["fat12.img"])
	listed, err := listVolumes()
	if err != nil {
		t.Fatal(err)
	}
	var guid string
	for _, lv := range listed {
		t.Logf("volume %s: paths %q, err %v", lv.Name, lv.Paths, lv.Err)
		if slices.Contains(lv.Paths, string(l)+`:\`) {
			guid = lv.Name
		}
	}
	if guid == "" {
		t.Fatalf("the mapped drive %c: is not among the volumes FindFirstVolumeW lists", l)
	}
	mask, _ := windows.GetLogicalDrives()
	if rest, bad := volumesWithoutLetter(listed, driveLetters(mask), nil); len(rest) != 0 || len(bad) != 0 {
		t.Errorf("under Wine every volume has a letter: %+v %q", rest, bad)
	}
	vols, err := WindowsVolumes(WindowsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if v.Device == strings.TrimSuffix(guid, `\`) && v.MountPoint != string(l)+`:\` {
			t.Errorf("the mapped drive's volume read again by its GUID path: %+v", v)
		}
	}

	vols, err = windowsVolumes(WindowsOptions{DiskToUSB: map[string]string{"PhysicalDrive1": `USB\VID_0781&PID_5567\X`}}, 1<<(l-'A'))
	if err != nil {
		t.Fatal(err)
	}
	var v *Volume
	for i := range vols {
		if vols[i].MountPoint == string(l)+`:\` {
			t.Errorf("the hidden letter %c: is listed: %+v", l, vols[i])
		}
		if vols[i].MountPoint == guid {
			v = &vols[i]
		}
	}
	if v == nil {
		t.Fatalf("the volume %s, its letter hidden: not among %+v", guid, vols)
	}
	t.Logf("volume without a letter: %+v", *v)
	if v.Device != strings.TrimSuffix(guid, `\`) || v.Label != "MY STICK" || v.FSType != FSVFAT || v.Encrypted || v.Backing == "" ||
		!strings.Contains(v.Error, "Invalid function") {
		t.Errorf("volume without a letter: %+v; want it named by %s, label MY STICK, vfat, on a disk, the failed read in Error", *v, guid)
	}
	if v.Backing == "PhysicalDrive1" && v.USBDevice != `USB\VID_0781&PID_5567\X` {
		t.Errorf("on PhysicalDrive1, which a USB device holds: USB device %q", v.USBDevice)
	}
}
