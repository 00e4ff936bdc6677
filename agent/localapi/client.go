package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ErrNotSocket is wrapped by Dial's error when the path is there but is
// not a socket (a file, a directory): not where an agent serves. (On
// Windows: a path that is not a named pipe's.)
var ErrNotSocket = errors.New("not a socket")

// Client is one connection to the agent's local API.
type Client struct {
	conn  net.Conn
	sc    *bufio.Scanner
	mu    sync.Mutex // serialises writes
	path  string
	Hello Message
}

// Dial connects to the agent's socket at path and reads its hello. It
// fails with an error wrapping ErrRefused when the agent refuses this
// user (or the socket's permissions do: fs.ErrPermission is wrapped
// too), and with the dial error (ENOENT, ECONNREFUSED: no agent there)
// otherwise. On Windows path is a named pipe, \\.\pipe\NAME, and Dial
// also refuses a pipe that SYSTEM or the administrators did not make
// (dial_windows.go): not the agent's.
func Dial(ctx context.Context, path string) (*Client, error) {
	conn, err := dialConn(ctx, path)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, path: path, sc: bufio.NewScanner(conn)}
	c.sc.Buffer(make([]byte, 0, 4096), MaxAnswerLine)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	conn.SetReadDeadline(time.Now().Add(RequestTimeout))
	m, err := c.read()
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, err
	}
	if m.Type == TypeError {
		conn.Close()
		return nil, fmt.Errorf("%s: %s (%w)", path, m.Error, ErrRefused)
	}
	if m.Type != TypeHello {
		conn.Close()
		return nil, fmt.Errorf("%s: the agent said %q where a hello was due", path, m.Type)
	}
	if m.Protocol != ProtocolVersion {
		conn.Close()
		return nil, fmt.Errorf("%s: the agent speaks protocol %d, this mamori %d: run the same version of both", path, m.Protocol, ProtocolVersion)
	}
	c.Hello = *m
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// read reads one message.
func (c *Client) read() (*Message, error) {
	if !c.sc.Scan() {
		err := c.sc.Err()
		if err == nil {
			err = io.EOF
		}
		return nil, fmt.Errorf("read from %s: %w", c.path, err)
	}
	var m Message
	if err := json.Unmarshal(c.sc.Bytes(), &m); err != nil {
		return nil, fmt.Errorf("read from %s: not a JSON message: %w", c.path, err)
	}
	return &m, nil
}

// send writes one message.
func (c *Client) send(m *Message) error {
	b, err := encode(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	if _, err := c.conn.Write(b); err != nil {
		return fmt.Errorf("write to %s: %w", c.path, err)
	}
	return nil
}

// Status asks for the agent's status. The connection is closed after it.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	defer c.conn.Close()
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Now()) })
	defer stop()
	if err := c.send(&Message{Type: TypeStatus, Protocol: ProtocolVersion}); err != nil {
		return nil, err
	}
	m, err := c.read()
	if err != nil {
		return nil, err
	}
	switch {
	case m.Type == TypeError:
		return nil, fmt.Errorf("%s: %s", c.path, m.Error)
	case m.Type != TypeStatus || m.Status == nil:
		return nil, fmt.Errorf("%s: the agent answered %q to status", c.path, m.Type)
	}
	return m.Status, nil
}

// Watch asks for the warnings and calls show with each as it comes, on
// this goroutine, then tells the agent whether it was shown (show's
// error). It returns when ctx is done (nil), or the connection fails or
// the agent goes (the error). idle bounds the time without a message
// (the agent pings every DefaultPingInterval); zero means three times
// DefaultPingInterval. The connection is closed when it returns.
func (c *Client) Watch(ctx context.Context, idle time.Duration, show func(*Warning) error) error {
	defer c.conn.Close()
	if idle <= 0 {
		idle = 3 * DefaultPingInterval
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Now()) })
	defer stop()
	if err := c.send(&Message{Type: TypeWatch, Protocol: ProtocolVersion}); err != nil {
		return err
	}
	for {
		c.conn.SetReadDeadline(time.Now().Add(idle))
		m, err := c.read()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("%s: nothing from the agent for %s", c.path, idle)
			}
			return err
		}
		switch m.Type {
		case TypeWarning:
			if m.Warning == nil {
				continue
			}
			ack := &Message{Type: TypeShown, ID: m.Warning.ID}
			if err := show(m.Warning); err != nil {
				ack.Error = err.Error()
			}
			if err := c.send(ack); err != nil {
				return err
			}
		case TypeError:
			return fmt.Errorf("%s: %s", c.path, m.Error)
		default:
			// ping, and types of later versions: nothing to do.
		}
	}
}
