package uevent

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// senderCheck says which senders a Conn trusts.
type senderCheck int

const (
	// kernelOnly accepts netlink datagrams whose sender port id is 0: the
	// kernel. Any user-space process may unicast to our port id (the udev
	// CVE-2009-1185 trap), so everything else is dropped.
	kernelOnly senderCheck = iota
	// unixPeer accepts what arrives on a connected AF_UNIX datagram socket:
	// only its peer can send there.
	unixPeer
)

// Conn is a uevent socket. Receive and Close may be called from different
// goroutines; concurrent Receive calls are serialised.
type Conn struct {
	f      *os.File
	rc     syscall.RawConn
	check  senderCheck
	rcvbuf int

	mu  sync.Mutex // guards buf
	buf []byte

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool

	events, overruns, truncated, malformed, foreign, udev atomic.Uint64
}

var _ Source = (*Conn)(nil)

// Listen opens a NETLINK_KOBJECT_UEVENT socket bound to the kernel's
// multicast group 1 (raw kernel uevents; no udev needed) with a large
// receive buffer (see WithReadBuffer). Receiving needs no privilege on
// current kernels; in some containers the socket cannot be opened, and the
// caller falls back to periodic rescans.
//
// The socket belongs to the network namespace of the calling thread: it gets
// every uevent not tied to a network namespace, and those of the network
// devices of its own namespace.
func Listen(opts ...Option) (*Conn, error) {
	cfg := config{readBuffer: DefaultReadBuffer}
	for _, o := range opts {
		o(&cfg)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("open NETLINK_KOBJECT_UEVENT socket: %w", err)
	}
	if cfg.readBuffer > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.readBuffer); err != nil {
			// Without CAP_NET_ADMIN: net.core.rmem_max caps this one.
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.readBuffer); err != nil {
				unix.Close(fd)
				return nil, fmt.Errorf("set uevent socket receive buffer to %d bytes: %w", cfg.readBuffer, err)
			}
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind uevent socket to group 1: %w", err)
	}
	return newConn(fd, kernelOnly, "netlink-uevent")
}

// SocketPair returns a Conn reading one end of a fresh AF_UNIX datagram
// socket pair, and the other end's file descriptor (the caller closes it).
// Each datagram written to peer goes through exactly the receive, sender,
// size and parse code of a netlink Conn, except that the sender need not be
// the kernel. It exists for tests, in this package and in its users, that
// feed synthesized uevents (see Event.MarshalBinary) to the code under test.
func SocketPair() (c *Conn, peer int, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, -1, fmt.Errorf("uevent socket pair: %w", err)
	}
	// The peer blocks on write like an ordinary socket would.
	if err := unix.SetNonblock(fds[1], false); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, -1, fmt.Errorf("uevent socket pair: %w", err)
	}
	c, err = newConn(fds[0], unixPeer, "uevent-socketpair")
	if err != nil {
		unix.Close(fds[1])
		return nil, -1, err
	}
	return c, fds[1], nil
}

// newConn wraps a non-blocking datagram socket. The *os.File registers it
// with the Go runtime's poller: a blocked Receive costs no CPU and Close
// wakes it.
func newConn(fd int, check senderCheck, name string) (*Conn, error) {
	rcvbuf, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("read %s receive buffer size: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Conn{f: f, rc: rc, check: check, rcvbuf: rcvbuf, buf: make([]byte, recvBufSize)}, nil
}

// Receive returns the next kernel uevent, with Received set to the time it
// was read. Datagrams from anyone but the kernel, and libudev-format ones,
// are dropped and counted (see Stats). See Source for the errors.
func (c *Conn) Receive() (Event, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		n, from, err := c.recv()
		now := time.Now()
		if err != nil {
			switch {
			case c.closed.Load():
				return Event{}, ErrClosed
			case errors.Is(err, unix.ENOBUFS):
				c.overruns.Add(1)
				return Event{}, fmt.Errorf("receive uevent: %w", ErrOverrun)
			case errors.Is(err, os.ErrDeadlineExceeded):
				return Event{}, fmt.Errorf("receive uevent: %w", err)
			}
			return Event{}, fmt.Errorf("receive uevent from %s: %w", c.f.Name(), err)
		}
		if !c.trusted(from) {
			c.foreign.Add(1)
			continue
		}
		if n > len(c.buf) {
			c.truncated.Add(1)
			return Event{}, fmt.Errorf("receive uevent: %w: %d-byte datagram, buffer holds %d", ErrTruncated, n, len(c.buf))
		}
		msg := c.buf[:n]
		if isUdev(msg) {
			c.udev.Add(1)
			continue
		}
		ev, err := Parse(msg)
		if err != nil {
			c.malformed.Add(1)
			return Event{}, fmt.Errorf("receive uevent: %w", err)
		}
		ev.Received = now
		c.events.Add(1)
		return ev, nil
	}
}

// recv reads one datagram, waiting in the runtime poller while there is
// none. With MSG_TRUNC, n is the datagram's real length even when it did not
// fit in buf (netlink, and AF_UNIX since Linux 3.4).
func (c *Conn) recv() (n int, from unix.Sockaddr, err error) {
	rerr := c.rc.Read(func(fd uintptr) bool {
		for {
			n, from, err = unix.Recvfrom(int(fd), c.buf, unix.MSG_TRUNC)
			if err != unix.EINTR {
				break
			}
		}
		return err != unix.EAGAIN
	})
	if rerr != nil {
		return 0, nil, rerr
	}
	return n, from, err
}

func (c *Conn) trusted(from unix.Sockaddr) bool {
	switch c.check {
	case kernelOnly:
		sa, ok := from.(*unix.SockaddrNetlink)
		return ok && sa.Pid == 0
	case unixPeer:
		switch from.(type) {
		case nil, *unix.SockaddrUnix:
			return true
		}
	}
	return false
}

// SetReadDeadline sets a deadline for Receive (zero: none); past it,
// Receive returns an error wrapping os.ErrDeadlineExceeded.
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.f.SetReadDeadline(t)
}

// ReadBuffer returns the socket's receive buffer size in bytes as the
// kernel reported it when the Conn was opened (twice what was asked for,
// capped by net.core.rmem_max unless SO_RCVBUFFORCE was allowed).
func (c *Conn) ReadBuffer() int { return c.rcvbuf }

// Stats returns the Conn's counters.
func (c *Conn) Stats() Stats {
	return Stats{
		Events:    c.events.Load(),
		Overruns:  c.overruns.Load(),
		Truncated: c.truncated.Load(),
		Malformed: c.malformed.Load(),
		Foreign:   c.foreign.Load(),
		Udev:      c.udev.Load(),
	}
}

// Close closes the socket and wakes a blocked Receive. Later calls return
// the first call's result.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.closeErr = c.f.Close()
	})
	return c.closeErr
}
