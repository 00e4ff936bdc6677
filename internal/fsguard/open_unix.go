//go:build unix

package fsguard

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openNonblock opens path read-only with O_NONBLOCK, so that opening a
// FIFO without a writer returns at once instead of waiting for one, and
// O_CLOEXEC (os.OpenFile adds it); with O_NOFOLLOW when noFollow. The
// caller checks the type with fstat before reading: O_NONBLOCK has no
// effect on regular files, so it is left set.
func openNonblock(path string, noFollow bool) (*os.File, error) {
	flag := os.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC
	if noFollow {
		flag |= unix.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		if noFollow && isSymlinkErr(err) {
			if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
				return nil, &os.PathError{Op: "open", Path: path, Err: errSymlink}
			}
		}
		return nil, err
	}
	return f, nil
}

// isSymlinkErr reports whether err is what open(2) returns for a final
// symlink with O_NOFOLLOW: ELOOP (EMLINK on FreeBSD).
func isSymlinkErr(err error) bool {
	return errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK)
}

// OpenFile opens path for the agent's own state files with O_NOFOLLOW (a
// symlink planted in a state directory is refused, not followed),
// O_NONBLOCK (a FIFO does not hang the open) and O_CLOEXEC, checks with
// fstat that it opened a regular file, and then clears O_NONBLOCK again.
// os.ErrNotExist and os.ErrPermission pass through; anything not a
// regular file gives an error wrapping ErrNotRegular.
func OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, perm)
	if err != nil {
		if isSymlinkErr(err) {
			return nil, fmt.Errorf("open %s: is a symlink, %w", path, ErrNotRegular)
		}
		if errors.Is(err, unix.ENXIO) { // a FIFO without a reader, opened for writing
			return nil, fmt.Errorf("open %s: is a FIFO, %w", path, ErrNotRegular)
		}
		return nil, err
	}
	if err := CheckRegular(f, path); err != nil {
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
