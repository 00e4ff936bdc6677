//go:build !linux

package uevent

import "time"

// Conn is a uevent socket; on this platform there is none, and Listen
// always fails with ErrNotSupported.
type Conn struct{}

var _ Source = (*Conn)(nil)

// Listen returns ErrNotSupported: there are no kernel uevents here, the
// caller falls back to periodic rescans.
func Listen(opts ...Option) (*Conn, error) { return nil, ErrNotSupported }

// SocketPair returns ErrNotSupported on this platform.
func SocketPair() (c *Conn, peer int, err error) { return nil, -1, ErrNotSupported }

// Receive returns ErrNotSupported.
func (c *Conn) Receive() (Event, error) { return Event{}, ErrNotSupported }

// SetReadDeadline returns ErrNotSupported.
func (c *Conn) SetReadDeadline(t time.Time) error { return ErrNotSupported }

// ReadBuffer returns 0.
func (c *Conn) ReadBuffer() int { return 0 }

// Stats returns zero counters.
func (c *Conn) Stats() Stats { return Stats{} }

// Close does nothing.
func (c *Conn) Close() error { return nil }
