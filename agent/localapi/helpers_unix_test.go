//go:build unix

package localapi

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// sockDir returns a directory for a socket that only this user can
// change and everyone can traverse (t.TempDir's parent is private).
func sockDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mamori-localapi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testPath returns a fresh socket path named after name.
func testPath(t *testing.T, name string) string {
	return filepath.Join(sockDir(t), name+".sock")
}

// rawDial connects to path without the protocol's client, closed when
// the test ends.
func rawDial(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawListen listens on path without the server, closed when the test
// ends.
func rawListen(t *testing.T, path string) net.Listener {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// selfUID is what the server tells of this process as Peer.UID.
func selfUID(t *testing.T) int { return os.Geteuid() }

// served returns nil while something is at path, an error wrapping
// fs.ErrNotExist once nothing is.
func served(path string) error {
	if _, err := os.Lstat(path); err != nil {
		return err
	}
	return errors.New(path + " is there")
}
