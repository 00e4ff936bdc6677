//go:build !windows

package svc

import (
	"errors"
	"fmt"
)

// queryStart is for the Windows service control manager only: waitStart
// does not call it elsewhere.
func queryStart(name string) (startStatus, error) {
	return startStatus{}, fmt.Errorf("service %s: no service control manager here: %w", name, errors.ErrUnsupported)
}

// win32Message is the system's message of a Win32 error code: none here.
func win32Message(uint32) string { return "" }
