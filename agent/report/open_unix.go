//go:build unix

package report

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openFile opens path with O_NOFOLLOW (a symlink planted in the queue
// directory is refused, not followed), O_NONBLOCK (a FIFO does not hang
// the open) and O_CLOEXEC, checks with fstat that it is a regular file and
// clears O_NONBLOCK again, as agent/audit does.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, perm)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) {
			return nil, fmt.Errorf("open %s: is a symlink, %w", path, errNotRegular)
		}
		if errors.Is(err, unix.ENXIO) {
			return nil, fmt.Errorf("open %s: is a FIFO, %w", path, errNotRegular)
		}
		return nil, err
	}
	if err := checkRegular(f, path); err != nil {
		f.Close()
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) { err = unix.SetNonblock(int(fd), false) })
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: clear O_NONBLOCK: %w", path, err)
	}
	return f, nil
}
