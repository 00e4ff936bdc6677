package media

import (
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// Drives under Wine: Wine's mount manager (\\.\MountPointManager, the
// service winecfg talks to) defines drive letters on Unix paths through a
// Wine extension, IOCTL_MOUNTMGR_DEFINE_UNIX_DRIVE. It writes the
// dosdevices links and HKLM\Software\Wine\Drives (a removable drive is
// "floppy" there) exactly as winecfg does, so the drives the tests define
// are what a Wine user's mapped drives are.

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

// needWine skips a test that defines drives through Wine's mount manager
// on real Windows, where defining drive letters would change the machine.
func needWine(t *testing.T) {
	t.Helper()
	if !wintest.IsWine() {
		t.Skip("defines drive letters through Wine's mount manager: runs under Wine only (scripts/wine/test.sh)")
	}
}

// unixPath returns the Unix path of a Windows path under Wine
// (kernel32's wine_get_unix_file_name).
func unixPath(t *testing.T, p string) string {
	t.Helper()
	proc := windows.NewLazySystemDLL("kernel32.dll").NewProc("wine_get_unix_file_name")
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
	// The result is a C string on the process heap; copy it through
	// lstrlenA and RtlMoveMemory so no uintptr becomes a Go pointer.
	k32 := windows.NewLazySystemDLL("kernel32.dll")
	n, _, _ := k32.NewProc("lstrlenA").Call(r)
	if n == 0 || n > 4096 {
		t.Fatalf("wine_get_unix_file_name(%s): length %d", p, n)
	}
	buf := make([]byte, n)
	k32.NewProc("RtlMoveMemory").Call(uintptr(unsafe.Pointer(&buf[0])), r, n)
	if heap, _, _ := k32.NewProc("GetProcessHeap").Call(); heap != 0 {
		k32.NewProc("HeapFree").Call(heap, 0, r)
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

// freeLetter returns a drive letter no drive uses, from the end of the
// alphabet (Wine's Z: excepted), one this process has not defined before
// while there is one.
func freeLetter(t *testing.T) byte {
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

// defineWineDrive maps a drive letter to a Unix directory (mount, "" for
// none) and a Unix device or image file (device, "" for none) with the
// given drive type, and removes it when the test ends.
func defineWineDrive(t *testing.T, letter byte, typ DriveType, mount, device string) {
	t.Helper()
	if err := mountmgrDefine(letter, typ, mount, device); err != nil {
		t.Fatalf("define drive %c: (%s, %s): %v", letter, mount, device, err)
	}
	t.Cleanup(func() {
		if err := mountmgrDefine(letter, DriveNoRootDir, "", ""); err != nil {
			t.Errorf("remove drive %c: %v", letter, err)
		}
	})
}

func mountmgrDefine(letter byte, typ DriveType, mount, device string) error {
	req := make([]byte, mountmgrUnixDriveSize)
	str := func(s string) uint16 {
		if s == "" {
			return 0
		}
		off := len(req)
		req = append(req, s...)
		req = append(req, 0)
		return uint16(off)
	}
	mp, dev := str(mount), str(device)
	binary.LittleEndian.PutUint32(req[0:], uint32(len(req)))
	binary.LittleEndian.PutUint32(req[4:], uint32(typ))
	binary.LittleEndian.PutUint16(req[24:], uint16(strings.ToLower(string(letter))[0]))
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
