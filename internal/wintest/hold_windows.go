package wintest

import (
	"sync"
	"testing"

	"golang.org/x/sys/windows"
)

// HoldFolder opens the folder p as a user keeping it from being moved or
// renamed would: without FILE_SHARE_DELETE (CreateFileW with
// FILE_FLAG_BACKUP_SEMANTICS). It returns the function that lets go,
// also called when the test ends.
func HoldFolder(t testing.TB, p string) (release func()) {
	t.Helper()
	name, err := windows.UTF16PtrFromString(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := windows.CreateFile(name, windows.GENERIC_READ, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		t.Fatalf("hold %s: %v", p, err)
	}
	var once sync.Once
	release = func() { once.Do(func() { windows.CloseHandle(h) }) }
	t.Cleanup(release)
	return release
}
