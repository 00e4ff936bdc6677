//go:build unix

package audit

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// replaceAt replaces the file name inside the open directory dir with
// data: a temporary file created with O_EXCL|O_NOFOLLOW by openat, synced,
// renamed over name by renameat, and the directory synced. Nothing goes
// through a path, so a directory swapped in at the state path (or a
// symlink planted in it) is never written to. dirPath is for errors.
func replaceAt(dir *os.File, dirPath, name string, data []byte) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := "." + name + "." + hex.EncodeToString(rnd[:])
	dfd := int(dir.Fd())
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s/%s: %w", dirPath, tmp, err)
	}
	f := os.NewFile(uintptr(fd), dirPath+"/"+tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, name)
	}
	if err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("replace %s/%s: %w", dirPath, name, err)
	}
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dirPath, err)
	}
	return nil
}
