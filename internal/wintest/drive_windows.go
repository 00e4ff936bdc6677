package wintest

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Drive types as GetDriveTypeW returns them (winbase.h), which Wine's
// mount manager takes for the drives it defines.
const (
	DriveNoRootDir = 1 // DRIVE_NO_ROOT_DIR: defining it removes the letter
	DriveRemovable = 2 // DRIVE_REMOVABLE: "floppy" in HKLM\Software\Wine\Drives
	DriveFixed     = 3 // DRIVE_FIXED
)

// Drives under Wine: Wine's mount manager (\\.\MountPointManager, the
// service winecfg talks to) defines drive letters on Unix paths through a
// Wine extension, IOCTL_MOUNTMGR_DEFINE_UNIX_DRIVE. It writes the
// dosdevices links and HKLM\Software\Wine\Drives exactly as winecfg does,
// so the drives tests define are what a Wine user's mapped drives are.
const (
	// ioctlMountmgrDefineUnixDrive is CTL_CODE('m', 32, METHOD_BUFFERED,
	// FILE_READ_ACCESS|FILE_WRITE_ACCESS) (Wine's include/ddk/mountmgr.h).
	ioctlMountmgrDefineUnixDrive = 0x6D<<16 | 3<<14 | 32<<2
	// mountmgrUnixDriveSize is sizeof(struct mountmgr_unix_drive) in
	// Wine 8.0: 0 size, 4 type, 8 fs_type, 12 serial (ULONG), 16
	// unix_dev (ULONGLONG), 24 letter (WCHAR), 26 mount_point_offset,
	// 28 device_offset, 30 label_offset (USHORT); the strings follow.
	mountmgrUnixDriveSize = 32
)

// DefineDrive defines (or, with DriveNoRootDir, removes) the drive letter
// on the Unix directory mount ("" for none) and the Unix device or image
// file device ("" for none) through Wine's mount manager. It fails on
// Windows, which has no such IOCTL.
func DefineDrive(letter byte, typ uint32, mount, device string) error {
	req := make([]byte, mountmgrUnixDriveSize)
	str := func(s string) uint16 {
		if s == "" {
			return 0
		}
		off := len(req)
		req = append(append(req, s...), 0)
		return uint16(off)
	}
	mp, dev := str(mount), str(device)
	binary.LittleEndian.PutUint32(req[0:], uint32(len(req)))
	binary.LittleEndian.PutUint32(req[4:], typ)
	binary.LittleEndian.PutUint16(req[24:], uint16(letter|0x20)) // lower case
	binary.LittleEndian.PutUint16(req[26:], mp)
	binary.LittleEndian.PutUint16(req[28:], dev)
	name, _ := windows.UTF16PtrFromString(`\\.\MountPointManager`)
	h, err := windows.CreateFile(name, windows.GENERIC_READ|windows.GENERIC_WRITE, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	var n uint32
	return windows.DeviceIoControl(h, ioctlMountmgrDefineUnixDrive, &req[0], uint32(len(req)), nil, 0, &n, nil)
}

// UnixPath returns the Unix path of a Windows path under Wine (kernel32's
// wine_get_unix_file_name), copied out of the process heap through
// lstrlenA and RtlMoveMemory so that no uintptr becomes a Go pointer.
func UnixPath(t testing.TB, p string) string {
	t.Helper()
	proc := kernel32.NewProc("wine_get_unix_file_name")
	if err := proc.Find(); err != nil {
		t.Fatalf("wine_get_unix_file_name: %v", err)
	}
	w, err := windows.UTF16PtrFromString(p)
	if err != nil {
		t.Fatal(err)
	}
	r, _, e := proc.Call(uintptr(unsafe.Pointer(w)))
	if r == 0 {
		t.Fatalf("wine_get_unix_file_name(%s): %v", p, e)
	}
	n, _, _ := procLstrlenA.Call(r)
	if n == 0 || n > 4096 {
		t.Fatalf("wine_get_unix_file_name(%s): length %d", p, n)
	}
	buf := make([]byte, n)
	procRtlMoveMemory.Call(uintptr(unsafe.Pointer(&buf[0])), r, n)
	if heap, _, _ := kernel32.NewProc("GetProcessHeap").Call(); heap != 0 {
		kernel32.NewProc("HeapFree").Call(heap, 0, r)
	}
	return string(buf)
}

// usedLetters holds the letters this test process has defined drives
// on. Wine's mount manager names a volume without a device id by its
// letter (Volume{00000000-…-0000000000XX}, XX the letter), so a letter
// defined again soon after it was removed can reach the earlier drive's
// volume through that GUID path (seen once in CI: the GUID path of a FAT
// image's letter answered NTFS without a label, as the device-less drive
// an earlier test had defined there). Fresh letters keep each test's
// volume its own.
var (
	usedLettersMu sync.Mutex
	usedLetters   = map[byte]bool{}
)

// FreeLetter returns a drive letter no drive uses, from Y: down to D:,
// one this process has not defined before while there is one.
func FreeLetter(t testing.TB) byte {
	t.Helper()
	mask, err := windows.GetLogicalDrives()
	if err != nil {
		t.Fatal(err)
	}
	usedLettersMu.Lock()
	defer usedLettersMu.Unlock()
	for _, fresh := range []bool{true, false} {
		for l := byte('Y'); l >= 'D'; l-- {
			if mask&(1<<(l-'A')) == 0 && (!fresh || !usedLetters[l]) {
				usedLetters[l] = true
				return l
			}
		}
	}
	t.Fatal("no free drive letter")
	return 0
}

// MapDrive defines a free letter (FreeLetter) of the drive type typ on
// the Unix directory mount and the Unix device or image device ("" for
// none) and removes it when the test ends, unless UnmapDrive did.
func MapDrive(t testing.TB, typ uint32, mount, device string) byte {
	t.Helper()
	l := FreeLetter(t)
	if err := DefineDrive(l, typ, mount, device); err != nil {
		t.Fatalf("define drive %c: (%s, %s): %v", l, mount, device, err)
	}
	t.Cleanup(func() {
		if m, _ := windows.GetLogicalDrives(); m&(1<<(l-'A')) != 0 {
			if err := DefineDrive(l, DriveNoRootDir, "", ""); err != nil {
				t.Errorf("remove drive %c: %v", l, err)
			}
		}
	})
	return l
}

// UnmapDrive removes the drive letter now.
func UnmapDrive(t testing.TB, letter byte) {
	t.Helper()
	if err := DefineDrive(letter, DriveNoRootDir, "", ""); err != nil {
		t.Fatalf("remove drive %c: %v", letter, err)
	}
}

// MapImage writes img, padded with zeros to 1 MiB, as medium.img in a
// new folder of the test (TempDir) beside an empty root folder, and maps
// a free letter of the drive type typ on them (MapDrive): the medium is
// read through the image, the files through the root.
func MapImage(t testing.TB, typ uint32, img []byte) byte {
	t.Helper()
	dir := TempDir(t)
	p := filepath.Join(dir, "medium.img")
	if err := os.WriteFile(p, append(img, make([]byte, max(0, 1<<20-len(img)))...), 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return MapDrive(t, typ, UnixPath(t, root), UnixPath(t, p))
}
