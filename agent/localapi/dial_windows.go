package localapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/windows"
)

// pipeBusyRetry is how long Dial waits before trying again a pipe whose
// instances are all taken (ERROR_PIPE_BUSY: the server is between two).
const pipeBusyRetry = 20 * time.Millisecond

// dialConn connects to the agent's named pipe at path (CreateFileW,
// read and write data only, overlapped) and checks it is the agent's:
// its owner must be SYSTEM or the administrators (pipeOwner), which a
// user who is not an administrator cannot make. Only then is anything
// read from it. The client lets the server identify it and no more
// (SECURITY_SQOS_PRESENT|SECURITY_IDENTIFICATION): a pipe server that
// is not the agent cannot act as the user who connected.
//
// Errors: a path that is not \\.\pipe\NAME wraps ErrNotSocket; a pipe
// this user may not open (its DACL) wraps ErrRefused and
// fs.ErrPermission; no such pipe wraps fs.ErrNotExist (no agent
// serving); ctx ending while every instance is busy, ctx's error.
func dialConn(ctx context.Context, path string) (net.Conn, error) {
	if err := checkPipePath(path); err != nil {
		return nil, fmt.Errorf("connect to %s: %w: %v", path, ErrNotSocket, err)
	}
	p16, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	var h windows.Handle
	for {
		h, err = windows.CreateFile(p16, pipeReaderAccess, 0, nil, windows.OPEN_EXISTING,
			windows.FILE_FLAG_OVERLAPPED|windows.SECURITY_SQOS_PRESENT|windows.SECURITY_IDENTIFICATION, 0)
		if err == nil {
			break
		}
		switch {
		case errors.Is(err, windows.ERROR_PIPE_BUSY):
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("connect to %s: every instance busy: %w", path, ctx.Err())
			case <-time.After(pipeBusyRetry):
				continue
			}
		case errors.Is(err, windows.ERROR_ACCESS_DENIED):
			return nil, fmt.Errorf("connect to %s: %w (%w: not SYSTEM, not an administrator and not in the agent's group, agent.local_group)", path, err, ErrRefused)
		}
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	owner, err := pipeOwner(h)
	if err != nil {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	if !trustedOwner(owner) {
		var pid uint32
		windows.GetNamedPipeServerProcessId(h, &pid)
		windows.CloseHandle(h)
		return nil, fmt.Errorf("connect to %s: the pipe is owned by %s, not SYSTEM or the administrators: not the agent's (its server is process %d); not trusted", path, sidName(owner), pid)
	}
	c, err := newPipeConn(h, path)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	return c, nil
}
