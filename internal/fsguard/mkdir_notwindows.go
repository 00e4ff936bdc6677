//go:build !windows

package fsguard

import "os"

// mkdirPrivate creates path with mode 0700, its missing parents 0755.
func mkdirPrivate(path string) error {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return err
	}
	return os.Chmod(path, 0o700)
}

// adoptDir does nothing here: a directory others can write is refused by
// CheckDir, never changed.
func adoptDir(path string) error { return nil }
