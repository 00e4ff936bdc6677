//go:build unix

package notify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/godbus/dbus/v5"
)

// The notification service on the session bus.
const (
	busName    = "org.freedesktop.Notifications"
	objectPath = dbus.ObjectPath("/org/freedesktop/Notifications")
	iface      = "org.freedesktop.Notifications"
)

// Desktop is a connection to the desktop's notification service.
type Desktop struct {
	conn    *dbus.Conn
	address string
	caps    []string
	// stop ends the connection's context.
	stop context.CancelFunc
}

// SessionBusAddress returns the session bus of this process's session:
// DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus when it is a
// socket. Unlike the D-Bus library's default it never autolaunches a bus.
func SessionBusAddress() (string, error) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a, nil
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		p := filepath.Join(dir, "bus")
		if fi, err := os.Stat(p); err == nil && fi.Mode().Type() == fs.ModeSocket {
			return "unix:path=" + EscapeBusPath(p), nil
		}
	}
	return "", errors.New("no session bus: neither DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR/bus")
}

// OpenDesktop connects to the session bus at address ("" for
// SessionBusAddress) and asks the notification service for its
// capabilities. It fails when no service answers.
func OpenDesktop(ctx context.Context, address string) (*Desktop, error) {
	if address == "" {
		a, err := SessionBusAddress()
		if err != nil {
			return nil, err
		}
		address = a
	}
	conn, stop, err := connect(ctx, address)
	if err != nil {
		return nil, fmt.Errorf("session bus %s: %w", address, err)
	}
	d := &Desktop{conn: conn, address: address, stop: stop}
	call := conn.Object(busName, objectPath).CallWithContext(ctx, iface+".GetCapabilities", 0)
	if err := call.Store(&d.caps); err != nil {
		d.Close()
		return nil, fmt.Errorf("notification service on %s: %w", address, err)
	}
	return d, nil
}

// connect connects to the bus at address and says hello, within ctx: a
// bus that accepts and never answers fails when ctx is done. The
// connection outlives ctx (the context given to the library closes it
// only when the connect did not finish in time).
func connect(ctx context.Context, address string) (*dbus.Conn, context.CancelFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithCancel(context.Background())
	type result struct {
		conn *dbus.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := dbus.Connect(address, dbus.WithContext(cctx))
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			cancel()
			return nil, nil, r.err
		}
		// cctx lives as long as the connection: Close ends it.
		return r.conn, cancel, nil
	case <-ctx.Done():
		// Closes the connection under way (the library watches cctx):
		// the goroutine ends when the library notices.
		cancel()
		go func() {
			if r := <-done; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, nil, fmt.Errorf("no answer within the time given: %w", ctx.Err())
	}
}

// Markup reports whether the service takes body markup.
func (d *Desktop) Markup() bool { return slices.Contains(d.caps, "body-markup") }

// Capabilities returns what the service said it can do.
func (d *Desktop) Capabilities() []string { return slices.Clone(d.caps) }

// Show sends n and returns the id the service gave it. Its strings are
// CleanText'd without a bound first (Compose bounded them): a control
// character, a bidirectional override or invalid UTF-8 in them, from
// whoever made n, is shown as U+FFFD; a NUL does not make the call fail.
func (d *Desktop) Show(ctx context.Context, n Notification) (uint32, error) {
	n.AppName, n.Icon, n.Summary, n.Body, n.Category = CleanText(n.AppName, 0), CleanText(n.Icon, 0),
		CleanText(n.Summary, 0), CleanText(n.Body, 0), CleanText(n.Category, 0)
	hints := map[string]dbus.Variant{
		"urgency":       dbus.MakeVariant(n.Urgency),
		"desktop-entry": dbus.MakeVariant(DesktopEntry),
	}
	if n.Category != "" {
		hints["category"] = dbus.MakeVariant(n.Category)
	}
	call := d.conn.Object(busName, objectPath).CallWithContext(ctx, iface+".Notify", 0,
		n.AppName, n.ReplacesID, n.Icon, n.Summary, n.Body, []string{}, hints, n.Timeout)
	var id uint32
	if err := call.Store(&id); err != nil {
		return 0, fmt.Errorf("notify on %s: %w", d.address, err)
	}
	return id, nil
}

// Close closes the bus connection.
func (d *Desktop) Close() error {
	err := d.conn.Close()
	d.stop()
	return err
}

// EscapeBusPath escapes a path for a D-Bus address ("unix:path=..."):
// every byte but [-0-9A-Za-z_/.\*] as %XX.
func EscapeBusPath(p string) string {
	const ok = "-_/.\\*"
	var b []byte
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c < 0x80 && containsByte(ok, c) {
			b = append(b, c)
		} else {
			b = append(b, '%', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		}
	}
	return string(b)
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}
