//go:build !windows

package fsguard

import (
	"log/slog"
	"os"
	"time"
)

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

// prepareExisting does nothing here: the state directory's parent
// (/var/lib) is root's, where no one else can make it first, and a state
// directory someone else owns or can write is refused by CheckDir, never
// taken back.
func prepareExisting(string, *slog.Logger, time.Time) error { return nil }
