//go:build !windows

package usb

import (
	"errors"
	"fmt"
)

// register fails off Windows: there, uevents (Linux) or rescans tell of
// changes.
func (h *Hotplug) register() error {
	return fmt.Errorf("device notifications: %w: Windows only", errors.ErrUnsupported)
}

func (h *Hotplug) unregister() error { return nil }
