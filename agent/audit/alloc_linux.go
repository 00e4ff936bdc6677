package audit

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// allocate makes sure the first size bytes of f have disk blocks, without
// changing f's size: fallocate(2) with FALLOC_FL_KEEP_SIZE over [0, size).
// Blocks already there are kept, so it needs new space only for what is
// missing; writes into the range then need none. The error wraps
// errors.ErrUnsupported when the file system cannot preallocate
// (EOPNOTSUPP, ENOSYS), and ENOSPC or EDQUOT when the space is not there
// (isNoSpace); after a failure part of the range may be allocated.
//
// The error does not name the file (a spare renamed into place keeps the
// name it was opened with): callers do. A truncate (even to the same size) frees blocks past the end on ext4,
// XFS and tmpfs: callers allocate again after one.
func allocate(f *os.File, size int64) error {
	if size <= 0 {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("fallocate: %w", err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, 0, size)
			if ferr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return fmt.Errorf("fallocate: %w", err)
	}
	switch {
	case ferr == nil:
		return nil
	case errors.Is(ferr, unix.EOPNOTSUPP), errors.Is(ferr, unix.ENOSYS):
		return fmt.Errorf("fallocate (KEEP_SIZE): %w: %w", errors.ErrUnsupported, ferr)
	}
	return fmt.Errorf("fallocate %d bytes (KEEP_SIZE): %w", size, ferr)
}

// isNoSpace says whether err is the file system's "no space" (ENOSPC) or
// "quota exceeded" (EDQUOT).
func isNoSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}
