package localapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// testPath returns a fresh pipe path named after name: \\.\pipe\mamori-test-NAME-RANDOM.
func testPath(t *testing.T, name string) string {
	var b [6]byte
	rand.Read(b[:])
	return pipePrefix + "mamori-test-" + name + "-" + hex.EncodeToString(b[:])
}

// rawDial connects to path without the protocol's client (the pipe's
// owner checked all the same), closed when the test ends.
func rawDial(t *testing.T, path string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialConn(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawListen listens on path without the server (no group), closed when
// the test ends.
func rawListen(t *testing.T, path string) net.Listener {
	t.Helper()
	acc, err := newAccess("")
	if err != nil {
		t.Fatal(err)
	}
	ln, _, err := listen(Options{Path: path}, acc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// selfUID is what the server tells of this process as Peer.UID: its
// session id.
func selfUID(t *testing.T) int {
	t.Helper()
	var id uint32
	if err := windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &id); err != nil {
		t.Fatal(err)
	}
	return int(id)
}

// served returns nil while a pipe is at path, an error wrapping
// fs.ErrNotExist (ERROR_FILE_NOT_FOUND) once none is.
func served(path string) error {
	p16, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	h, err := windows.CreateFile(p16, pipeReaderAccess, 0, nil, windows.OPEN_EXISTING, 0, 0)
	if err == nil {
		windows.CloseHandle(h)
		return errors.New(path + " is there")
	}
	if errors.Is(err, windows.ERROR_PIPE_BUSY) {
		return errors.New(path + " is there, busy")
	}
	return err
}
