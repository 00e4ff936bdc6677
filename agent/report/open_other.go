//go:build !unix

package report

import (
	"fmt"
	"os"

	"github.com/mamori-agent/mamori/internal/fsguard"
)

// openFile opens path, refusing anything but a regular file: a symlink is
// refused by an Lstat before the open (there is no O_NOFOLLOW here, and
// creating symlinks needs privileges).
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open %s: is %s, %w", path, fsguard.Describe(fi.Mode()), errNotRegular)
	}
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(f, path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
