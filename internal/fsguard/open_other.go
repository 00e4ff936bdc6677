//go:build !unix

package fsguard

import (
	"os"
)

// openNonblock opens path read-only. There are no FIFOs in the file
// system here; with noFollow, a symlink at path is refused by an Lstat
// before the open (racy, but symlinks need privileges on Windows).
func openNonblock(path string, noFollow bool) (*os.File, error) {
	if noFollow {
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return nil, &os.PathError{Op: "open", Path: path, Err: errSymlink}
		}
	}
	return os.Open(path)
}
