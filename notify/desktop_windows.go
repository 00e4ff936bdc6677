package notify

import (
	"context"
	"errors"
)

// Desktop is not done on Windows yet (a toast is to come).
type Desktop struct{}

// SessionBusAddress: there is no session bus on Windows.
func SessionBusAddress() (string, error) { return "", errors.ErrUnsupported }

// OpenDesktop returns errors.ErrUnsupported on Windows.
func OpenDesktop(ctx context.Context, address string) (*Desktop, error) {
	return nil, errors.ErrUnsupported
}

// Markup reports false.
func (d *Desktop) Markup() bool { return false }

// Capabilities returns nil.
func (d *Desktop) Capabilities() []string { return nil }

// Show returns errors.ErrUnsupported.
func (d *Desktop) Show(ctx context.Context, n Notification) (uint32, error) {
	return 0, errors.ErrUnsupported
}

// Close does nothing.
func (d *Desktop) Close() error { return nil }
