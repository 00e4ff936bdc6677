//go:build !linux

package network

import (
	"errors"
	"fmt"
	"runtime"
)

// Monitor watches the network state; on this OS there is nothing behind
// it and Open fails.
type Monitor struct{}

// Open returns an error wrapping errors.ErrUnsupported: the network
// monitor is implemented for Linux only.
func Open(opts Options) (*Monitor, error) {
	return nil, fmt.Errorf("network: monitor on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// Snapshot returns an error wrapping errors.ErrUnsupported.
func (m *Monitor) Snapshot() (Snapshot, error) {
	return Snapshot{}, fmt.Errorf("network: snapshot: %w", errors.ErrUnsupported)
}

// Receive returns an error wrapping errors.ErrUnsupported.
func (m *Monitor) Receive() ([]Change, error) {
	return nil, fmt.Errorf("network: receive: %w", errors.ErrUnsupported)
}

// Close does nothing.
func (m *Monitor) Close() error { return nil }
