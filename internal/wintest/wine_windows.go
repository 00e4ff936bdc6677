package wintest

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	ntdll    = windows.NewLazySystemDLL("ntdll.dll")
	kernel32 = windows.NewLazySystemDLL("kernel32.dll")
	// lstrlenA and RtlMoveMemory copy the C string wine_get_version
	// returns into Go memory without turning a uintptr into a pointer.
	procLstrlenA      = kernel32.NewProc("lstrlenA")
	procRtlMoveMemory = kernel32.NewProc("RtlMoveMemory")
)

// wine is what ntdll.dll says about Wine, looked up once: Wine's ntdll
// exports wine_get_version (const char *(void)), Microsoft's does not.
var wine = sync.OnceValues(func() (bool, string) {
	proc := ntdll.NewProc("wine_get_version")
	if proc.Find() != nil {
		return false, ""
	}
	p, _, _ := proc.Call()
	if p == 0 {
		return true, ""
	}
	n, _, _ := procLstrlenA.Call(p)
	if n == 0 || n > 64 {
		return true, ""
	}
	buf := make([]byte, n)
	procRtlMoveMemory.Call(uintptr(unsafe.Pointer(&buf[0])), p, n)
	return true, string(buf)
})

func isWine() bool {
	ok, _ := wine()
	return ok
}

func wineVersion() string {
	_, v := wine()
	return v
}
