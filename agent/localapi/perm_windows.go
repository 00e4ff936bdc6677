package localapi

import (
	"errors"
	"io/fs"
)

// isPermission reports whether a dial failed on permissions.
func isPermission(err error) bool { return errors.Is(err, fs.ErrPermission) }
