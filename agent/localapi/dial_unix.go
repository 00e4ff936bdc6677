//go:build unix

package localapi

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"

	"github.com/mamori-agent/mamori/internal/fsguard"
)

// dialConn connects to the unix socket at path: a path that is not a socket
// is ErrNotSocket; the socket's permissions, ErrRefused.
func dialConn(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if fi, serr := os.Stat(path); serr == nil && fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("connect to %s: %w: it is %s (%w)", path, ErrNotSocket, fsguard.Describe(fi.Mode()), err)
		}
		if isPermission(err) {
			group := "the socket's group"
			if g := SocketGroup(path); g != "" {
				group = "the socket's group " + g
			}
			return nil, fmt.Errorf("connect to %s: %w (%w: not root and not in %s)", path, err, ErrRefused, group)
		}
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	return conn, nil
}
