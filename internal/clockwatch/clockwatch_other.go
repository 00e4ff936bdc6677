//go:build !linux

package clockwatch

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Watcher reports each setting of the wall clock; not built on this OS.
type Watcher struct{}

// New returns an error wrapping errors.ErrUnsupported.
func New() (*Watcher, error) {
	return nil, fmt.Errorf("clockwatch on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// Wait returns an error wrapping errors.ErrUnsupported.
func (w *Watcher) Wait() (time.Time, error) {
	return time.Time{}, fmt.Errorf("clockwatch: %w", errors.ErrUnsupported)
}

// Close does nothing.
func (w *Watcher) Close() error { return nil }
