package uevent

import (
	"errors"
	"os"
)

// Source is a live stream of kernel uevents. *Conn implements it; tests of
// its consumers may use a fake.
//
// Receive blocks until the next event. Errors fall in two groups:
//
//   - per message, the stream goes on and Receive may be called again:
//     ErrOverrun (events were lost: do a full rescan), ErrTruncated and
//     ErrMalformed (one datagram was dropped; a rescan is the safe answer);
//   - terminal: ErrClosed after Close, or any other error (the socket
//     failed; fall back to periodic rescans).
//
// Close stops the source and wakes a blocked Receive, which then returns
// ErrClosed.
type Source interface {
	Receive() (Event, error)
	Close() error
}

var (
	// ErrOverrun is returned by Receive when the kernel reported that the
	// socket's receive buffer overflowed (ENOBUFS): uevents were lost, the
	// caller must rescan everything. The socket stays usable.
	ErrOverrun = errors.New("uevent socket overrun (ENOBUFS): events lost")

	// ErrTruncated is returned by Receive for a datagram larger than the
	// receive buffer; that datagram is dropped, the socket stays usable.
	ErrTruncated = errors.New("uevent datagram truncated")

	// ErrClosed is returned by Receive once Close has been called.
	ErrClosed = errors.New("uevent source closed")

	// ErrNotSupported is returned by Listen where there is no
	// NETLINK_KOBJECT_UEVENT (every OS but Linux).
	ErrNotSupported = errors.New("kernel uevents not supported on this platform")
)

// IsTerminal reports whether err, returned by Source.Receive, ends the
// stream (ErrClosed or a socket failure), as opposed to a per-message error
// or an expired read deadline, after which Receive may be called again.
func IsTerminal(err error) bool {
	if err == nil {
		return false
	}
	return !errors.Is(err, ErrOverrun) && !errors.Is(err, ErrTruncated) &&
		!errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUdevMessage) &&
		!errors.Is(err, os.ErrDeadlineExceeded)
}

// DefaultReadBuffer is the socket receive buffer Listen asks for: large
// enough to hold a burst of thousands of uevents (a USB hub with several
// disks, a docking station) while the agent is busy.
const DefaultReadBuffer = 8 << 20

// recvBufSize is the user-space buffer for one datagram; larger ones are
// reported as ErrTruncated.
const recvBufSize = 16 << 10

// Option configures Listen.
type Option func(*config)

type config struct {
	readBuffer int
}

// WithReadBuffer sets the socket receive buffer size in bytes (default
// DefaultReadBuffer). Listen uses SO_RCVBUFFORCE, which ignores
// net.core.rmem_max but needs CAP_NET_ADMIN, and falls back to SO_RCVBUF,
// which rmem_max caps. The kernel doubles the value for bookkeeping and
// enforces a small minimum.
func WithReadBuffer(bytes int) Option {
	return func(c *config) { c.readBuffer = bytes }
}

// Stats counts what a Conn received since it was opened.
type Stats struct {
	Events    uint64 // events returned by Receive
	Overruns  uint64 // ENOBUFS reports (each one lost an unknown number of events)
	Truncated uint64 // datagrams larger than the receive buffer
	Malformed uint64 // datagrams Parse rejected
	Foreign   uint64 // datagrams not sent by the kernel, dropped silently
	Udev      uint64 // libudev-format datagrams, dropped silently
}
