// Package atomicfile replaces small state files so that a crash leaves
// either the old or the new content, never a torn one, and so that someone
// who can write the directory cannot turn the write against the process
// doing it (a root agent writing a state directory a user could write).
//
// WriteFile never opens an existing name: it creates a new file under a
// random name with O_EXCL in the destination's directory (a planted
// symlink or file at any name is not used), syncs it, renames it over the
// destination (a symlink there is replaced, not followed) and syncs the
// directory. On Unix the work is done by github.com/google/renameio/v2.
package atomicfile

import (
	"fmt"
	"path/filepath"
)

// Perm is the permission WriteFile gives the files it writes, regardless of
// the umask and of what the replaced file had.
const Perm = 0o600

// WriteFile replaces path with data, a file of mode Perm owned by the
// caller: write a new temporary file under a random name in path's
// directory, sync it, rename it over path, sync the directory.
func WriteFile(path string, data []byte) error {
	if err := writeFile(path, data); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}
