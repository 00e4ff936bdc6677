package localapi

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// listen creates the named pipe opts.Path (\\.\pipe\NAME) and returns a
// listener of its instances. The pipe (CreateNamedPipeW):
//
//   - its first instance is made with FILE_FLAG_FIRST_PIPE_INSTANCE: when
//     the name is taken already (another agent, or a program that took
//     it first to pose as the agent) listen fails instead of joining it
//     (and, for Wine, which ignores the flag, when the new instance is
//     not the only one: GetNamedPipeHandleState);
//   - PIPE_REJECT_REMOTE_CLIENTS, and a DACL that denies NETWORK logons:
//     only processes on this PC connect;
//   - the DACL (protected, pipeSDDL): SYSTEM and Administrators full
//     access, the members of acc's group pipeReaderAccess (read and
//     write data; no FILE_CREATE_PIPE_INSTANCE), nobody else anything;
//   - owner SYSTEM when the agent runs as SYSTEM, else Administrators (an
//     elevated administrator's run): what Dial checks. Windows refuses
//     that owner to anyone else (ERROR_INVALID_OWNER).
//
// One instance always waits for the next client: the next is created as
// soon as one connects, before it is handed over, so the name never
// lapses while the listener is open. Every instance is checked to have
// the owner set. remove does nothing: the pipe goes with its last
// handle.
func listen(opts Options, acc access) (net.Listener, func(), error) {
	if err := checkPipePath(opts.Path); err != nil {
		return nil, nil, err
	}
	owner := "BA"
	if acc.self.IsWellKnown(windows.WinLocalSystemSid) {
		owner = "SY"
	}
	group := ""
	if acc.group != nil {
		group = acc.group.String()
	}
	sddl := pipeSDDL(owner, group)
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return nil, nil, fmt.Errorf("security descriptor %s: %w", sddl, err)
	}
	path, err := windows.UTF16PtrFromString(opts.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("pipe name: %w", err)
	}
	closing, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("CreateEvent: %w", err)
	}
	l := &pipeListener{path: opts.Path, path16: path, closing: closing,
		sa: &windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd}}
	h, err := l.create(true)
	if err != nil {
		windows.CloseHandle(closing)
		return nil, nil, err
	}
	l.next = h
	return l, func() {}, nil
}

// pipeListener listens on a named pipe: next is the instance waiting for
// a client. Accept is called by one goroutine at a time (acceptMu);
// Close sets closing, which ends a pending one, and waits for it
// (waiting).
type pipeListener struct {
	path   string
	path16 *uint16
	sa     *windows.SecurityAttributes
	// closing is a manual-reset event Close sets (and closes once no
	// Accept can use it).
	closing windows.Handle

	acceptMu sync.Mutex

	mu     sync.Mutex
	closed bool
	next   windows.Handle // 0: none
	// waiting counts the accepts under way (added to under mu while not
	// closed).
	waiting sync.WaitGroup
}

// create creates an instance of the pipe (the first with
// FILE_FLAG_FIRST_PIPE_INSTANCE) and checks its owner is SYSTEM or the
// administrators: an instance of a pipe someone else made has that
// someone's security descriptor, whatever this one asked for.
func (l *pipeListener) create(first bool) (windows.Handle, error) {
	flags := uint32(windows.PIPE_ACCESS_DUPLEX | windows.FILE_FLAG_OVERLAPPED)
	if first {
		flags |= windows.FILE_FLAG_FIRST_PIPE_INSTANCE
	}
	mode := uint32(windows.PIPE_TYPE_BYTE | windows.PIPE_READMODE_BYTE | windows.PIPE_WAIT | windows.PIPE_REJECT_REMOTE_CLIENTS)
	h, err := windows.CreateNamedPipe(l.path16, flags, mode, windows.PIPE_UNLIMITED_INSTANCES, pipeOutBuffer, pipeInBuffer, 0, l.sa)
	switch {
	case err == nil:
	case first && (errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_PIPE_BUSY)):
		return 0, fmt.Errorf("CreateNamedPipe %s: %w: the pipe exists already: another agent serves it (a second mamori run?), or another program took the name first", l.path, err)
	case errors.Is(err, windows.ERROR_INVALID_OWNER):
		return 0, fmt.Errorf("CreateNamedPipe %s: %w: the local API needs the agent to run as SYSTEM (the service) or as an elevated administrator: clients trust only a pipe one of them owns", l.path, err)
	default:
		return 0, fmt.Errorf("CreateNamedPipe %s: %w", l.path, err)
	}
	if first {
		// Wine 8.0 ignores FILE_FLAG_FIRST_PIPE_INSTANCE: count the
		// instances too. Nobody but SYSTEM and the administrators can add
		// one to this pipe once it is made (its DACL), so more than this
		// one means the name was taken before.
		var n uint32
		if err := windows.GetNamedPipeHandleState(h, nil, &n, nil, nil, nil, 0); err != nil {
			windows.CloseHandle(h)
			return 0, fmt.Errorf("pipe %s: GetNamedPipeHandleState: %w", l.path, err)
		}
		if n != 1 {
			windows.CloseHandle(h)
			return 0, fmt.Errorf("pipe %s: the pipe exists already (%d instances): another agent serves it (a second mamori run?), or another program took the name first", l.path, n)
		}
	}
	owner, err := pipeOwner(h)
	if err != nil {
		windows.CloseHandle(h)
		return 0, fmt.Errorf("pipe %s: %w", l.path, err)
	}
	if !trustedOwner(owner) {
		windows.CloseHandle(h)
		return 0, fmt.Errorf("pipe %s is owned by %s, not SYSTEM or the administrators: another program made it; not served", l.path, sidName(owner))
	}
	return h, nil
}

// Accept waits for a client on the waiting instance (ConnectNamedPipe,
// overlapped, on an event) and returns its connection, after creating
// the instance that waits for the next one. A client that connected and
// went before it was accepted (ERROR_NO_DATA) is passed over. After
// Close it returns net.ErrClosed.
func (l *pipeListener) Accept() (net.Conn, error) {
	l.acceptMu.Lock()
	defer l.acceptMu.Unlock()
	for {
		c, err := l.accept()
		if errors.Is(err, windows.ERROR_NO_DATA) {
			continue
		}
		return c, err
	}
}

// accept is one wait of Accept.
func (l *pipeListener) accept() (net.Conn, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, net.ErrClosed
	}
	if l.next == 0 {
		// The last attempt to make one failed.
		h, err := l.create(false)
		if err != nil {
			l.mu.Unlock()
			return nil, err
		}
		l.next = h
	}
	h := l.next
	l.waiting.Add(1)
	defer l.waiting.Done()
	l.mu.Unlock()

	err := connectPipe(h, l.closing)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.next = 0
		windows.CloseHandle(h)
		return nil, net.ErrClosed
	}
	// The next instance before this one is handed over or closed, so the
	// name never lapses.
	next, nerr := l.create(false)
	l.next = next // 0 on error: the next Accept tries again
	if err != nil {
		windows.CloseHandle(h)
		if nerr == nil && errors.Is(err, windows.ERROR_NO_DATA) {
			return nil, err
		}
		return nil, fmt.Errorf("ConnectNamedPipe %s: %w", l.path, errors.Join(err, nerr))
	}
	c, err := newPipeConn(h, l.path)
	if err != nil {
		return nil, errors.Join(err, nerr)
	}
	return c, nil
}

// connectPipe waits for a client to connect to h (ConnectNamedPipe with
// an OVERLAPPED whose event it waits on), or for closing to be set: then
// the connect is cancelled (CancelIoEx) and waited for, which ends the
// kernel's use of the OVERLAPPED, and the error is net.ErrClosed. A
// client that connected between the instance's creation and the call is
// ERROR_PIPE_CONNECTED: success.
func connectPipe(h, closing windows.Handle) error {
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return fmt.Errorf("CreateEvent: %w", err)
	}
	defer windows.CloseHandle(ev)
	ov := &windows.Overlapped{HEvent: ev}
	switch err := windows.ConnectNamedPipe(h, ov); {
	case err == nil, errors.Is(err, windows.ERROR_PIPE_CONNECTED):
		return nil
	case !errors.Is(err, windows.ERROR_IO_PENDING):
		return err
	}
	var n uint32
	which, err := windows.WaitForMultipleObjects([]windows.Handle{ev, closing}, false, windows.INFINITE)
	if err != nil || which != windows.WAIT_OBJECT_0 {
		// Closing (or the wait failed): cancel, and wait for the end of
		// the connect, whether cancelled or connected meanwhile.
		windows.CancelIoEx(h, ov)
		windows.GetOverlappedResult(h, ov, &n, true)
		switch {
		case err != nil:
			return fmt.Errorf("WaitForMultipleObjects: %w", err)
		case which == windows.WAIT_OBJECT_0+1:
			return net.ErrClosed
		}
		return fmt.Errorf("WaitForMultipleObjects: %#x", which)
	}
	return windows.GetOverlappedResult(h, ov, &n, false)
}

// Close stops listening: a pending Accept is cancelled and waited for,
// the waiting instance closed. Connections already accepted stay.
func (l *pipeListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	windows.SetEvent(l.closing)
	l.mu.Unlock()
	// Wait for the Accept under way, which closes the instance it waited
	// on; then nothing uses next or closing.
	l.waiting.Wait()
	l.mu.Lock()
	if l.next != 0 {
		windows.CloseHandle(l.next)
		l.next = 0
	}
	l.mu.Unlock()
	windows.CloseHandle(l.closing)
	return nil
}

// Addr returns the pipe's path.
func (l *pipeListener) Addr() net.Addr { return pipeAddr(l.path) }
