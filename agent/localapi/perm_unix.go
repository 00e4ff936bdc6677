//go:build unix

package localapi

import (
	"errors"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// isPermission reports whether a dial failed on the socket's (or its
// directory's) permissions.
func isPermission(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// SocketGroup returns the name of the group of the socket at path (its
// gid when the user database does not know it), "" when it cannot be
// told: the group whose members may connect.
func SocketGroup(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	gid := strconv.FormatUint(uint64(st.Gid), 10)
	if g, err := user.LookupGroupId(gid); err == nil {
		return g.Name
	}
	return gid
}
