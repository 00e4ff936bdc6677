//go:build unix

package fsguard

import (
	"errors"
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
