package localapi

import (
	"errors"
	"io/fs"
)

// isPermission reports whether a dial failed on permissions.
func isPermission(err error) bool { return errors.Is(err, fs.ErrPermission) }

// SocketGroup tells nothing on Windows ("").
func SocketGroup(path string) string { return "" }
