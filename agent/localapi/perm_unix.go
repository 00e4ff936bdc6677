//go:build unix

package localapi

import (
	"errors"
	"syscall"
)

// isPermission reports whether a dial failed on the socket's (or its
// directory's) permissions.
func isPermission(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}
