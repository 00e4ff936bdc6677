package localapi

import (
	"errors"
	"net"
	"os"
)

// listen is not done on Windows yet (a named pipe is to come).
func listen(path string, mode os.FileMode, gid int) (*net.UnixListener, func(), error) {
	return nil, nil, errors.ErrUnsupported
}

// peerOf tells nothing on Windows.
func peerOf(c *net.UnixConn) (Peer, error) {
	return Peer{}, errors.ErrUnsupported
}
