//go:build !linux && !windows

package media

import "context"

// MountWatcher tells when the mount table changes. It is only implemented
// on Linux; elsewhere NewMountWatcher returns ErrWatchUnsupported.
type MountWatcher struct{}

// NewMountWatcher returns ErrWatchUnsupported on this system.
func NewMountWatcher(procfs string) (*MountWatcher, error) {
	return nil, ErrWatchUnsupported
}

// Wait returns ErrWatchUnsupported.
func (w *MountWatcher) Wait(ctx context.Context) error { return ErrWatchUnsupported }

// Close does nothing.
func (w *MountWatcher) Close() error { return nil }
