//go:build !windows

package fsguard

import (
	"log/slog"
	"time"
)

// prepareState is MkdirState here: the state directory's parent
// (/var/lib) is root's, where no one else can make it first or hold it,
// and a state directory someone else owns or can write is refused by
// CheckDir, never taken back nor replaced.
func prepareState(path string, log *slog.Logger, _ time.Time) (StateDir, error) {
	if err := MkdirState(path, log); err != nil {
		return StateDir{Configured: path}, err
	}
	return StateDir{Configured: path, Path: path}, nil
}

// findState is path itself here: there are no alternate folders.
func findState(path string) (StateDir, error) {
	return StateDir{Configured: path, Path: path}, nil
}
