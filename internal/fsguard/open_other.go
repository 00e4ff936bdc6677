//go:build !unix

package fsguard

import (
	"fmt"
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

// OpenFile opens path, refusing anything but a regular file: a symlink is
// refused by an Lstat before the open (there is no O_NOFOLLOW here, and
// creating symlinks needs privileges), and the opened file is checked
// again with Stat. The error wraps ErrNotRegular.
func OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open %s: is %s, %w", path, Describe(fi.Mode()), ErrNotRegular)
	}
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	if err := CheckRegular(f, path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
