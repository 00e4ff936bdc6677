//go:build !windows

package usb

import (
	"errors"
	"fmt"
)

// hotplugSys is empty off Windows: there is nothing to register.
type hotplugSys struct{}

// register fails off Windows: there, uevents (Linux) or rescans tell of
// changes.
func (h *Hotplug) register() error {
	h.sys = hotplugSys{}
	return fmt.Errorf("device notifications: %w: Windows only", errors.ErrUnsupported)
}

func (h *Hotplug) unregister() error { return nil }
