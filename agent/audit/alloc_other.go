//go:build !linux && !windows

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// allocate cannot reserve space on this platform: its error wraps
// errors.ErrUnsupported, and the log runs without a reserve (see the
// package doc). macOS's F_PREALLOCATE keeps no allocation past the end of
// a file once it is closed, and a reserve that a restart loses is not
// one.
func allocate(f *os.File, size int64) error {
	return fmt.Errorf("reserve %d bytes: %w on this platform", size, errors.ErrUnsupported)
}

// isNoSpace says whether err is the file system's "no space" (ENOSPC) or
// "quota exceeded" (EDQUOT).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
