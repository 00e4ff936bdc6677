package localapi

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// The local API on Windows is a named pipe (Win32 "Named Pipes",
// learn.microsoft.com/windows/win32/ipc/named-pipes), \\.\pipe\NAME,
// default \\.\pipe\mamori. Byte mode, the protocol's lines as on the
// unix socket. Each end's handle is overlapped and handed to
// os.NewFile, which (Go 1.25 and later) puts it on the runtime's I/O
// completion port: reads and writes do not hold an OS thread, and the
// deadlines the server and the client set work as on a socket.

// pipeReaderAccess is what a reader is granted on the pipe and what the
// client asks for: read, and write data (its requests and answers).
// Not FILE_APPEND_DATA, which on a pipe is FILE_CREATE_PIPE_INSTANCE: a
// reader that had it could create an instance of the agent's pipe and
// answer other clients in its place. Nor WRITE_DAC or WRITE_OWNER.
// (pipeReaderMask, in the DACL, is the same number.)
const pipeReaderAccess = windows.FILE_GENERIC_READ | windows.FILE_WRITE_DATA

// Pipe buffer sizes, in bytes: the server's answers (a status of many
// devices) and the clients' requests (MaxRequestLine). Advisory: a
// write beyond them waits for the reader, bounded by WriteTimeout.
const (
	pipeOutBuffer = 64 << 10
	pipeInBuffer  = 8 << 10
)

// pipeAddr is a pipe's path as a net.Addr.
type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// pipeConn is one end of a connected pipe instance: an *os.File over the
// overlapped handle (Read, Write, Close, the deadlines) and the handle
// for the pipe functions (GetNamedPipeClientProcessId,
// ImpersonateNamedPipeClient). The handle is the file's: closed with it.
type pipeConn struct {
	*os.File
	h    windows.Handle
	addr pipeAddr
}

func (c *pipeConn) LocalAddr() net.Addr  { return c.addr }
func (c *pipeConn) RemoteAddr() net.Addr { return c.addr }

// newPipeConn wraps h, an overlapped pipe handle, which it owns from
// then on (closed on error too). It fails when Go did not take the
// handle as overlapped: without deadlines a client that never writes
// would hold a server goroutine for ever.
func newPipeConn(h windows.Handle, path string) (*pipeConn, error) {
	f := os.NewFile(uintptr(h), path)
	if f == nil {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("%s: os.NewFile took no handle", path)
	}
	if err := f.SetDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: the pipe handle takes no deadlines (not on the I/O completion port): %w", path, err)
	}
	return &pipeConn{File: f, h: h, addr: pipeAddr(path)}, nil
}

// pipeOwner returns the owner SID of the pipe h is an end of, as its
// security descriptor says (GetSecurityInfo, SE_KERNEL_OBJECT,
// OWNER_SECURITY_INFORMATION; the handle needs READ_CONTROL). Every
// instance of a pipe has the security descriptor its first instance was
// created with.
func pipeOwner(h windows.Handle) (*windows.SID, error) {
	sd, err := windows.GetSecurityInfo(h, windows.SE_KERNEL_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return nil, fmt.Errorf("GetSecurityInfo(owner): %w", err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return nil, fmt.Errorf("the pipe's security descriptor: %w", err)
	}
	if owner == nil || !owner.IsValid() {
		return nil, errors.New("the pipe has no owner")
	}
	return owner.Copy()
}

// trustedOwner reports whether a pipe owned by sid can be the agent's:
// SYSTEM (the service) or BUILTIN\Administrators (an elevated
// administrator's run, and what Windows makes the owner for them). A
// user who is not an administrator cannot make either the owner of an
// object.
func trustedOwner(sid *windows.SID) bool {
	return sid.IsWellKnown(windows.WinLocalSystemSid) || sid.IsWellKnown(windows.WinBuiltinAdministratorsSid)
}

// sidName is "DOMAIN\name (S-1-...)" for messages, the SID alone when
// it names no account.
func sidName(sid *windows.SID) string {
	if acct, dom, _, err := sid.LookupAccount(""); err == nil && acct != "" {
		if dom != "" {
			acct = dom + `\` + acct
		}
		return acct + " (" + sid.String() + ")"
	}
	return sid.String()
}
