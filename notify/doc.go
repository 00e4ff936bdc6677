// Package notify shows mamori's warnings to the person at the PC as
// desktop notifications. It runs in the per-user notifier, `mamori
// notify`, started with the desktop session: a root service cannot talk
// to a user's desktop, so the notifier connects to the agent's local API
// (package agent/localapi), receives each warning as it happens and hands
// it to the desktop's notification service, org.freedesktop.Notifications
// on the session D-Bus (the Desktop Notifications Specification 1.2),
// through github.com/godbus/dbus/v5.
//
// Files: compose.go (a warning as a notification: summary, body,
// urgency), desktop_unix.go (the D-Bus client), run.go (the notifier's
// loop: connect, show, acknowledge, reconnect), once.go (one warning
// given on standard input: the notifier the agent starts itself in a
// session that has none).
//
// On Windows there is no desktop service yet (a toast is to come):
// OpenDesktop returns errors.ErrUnsupported.
package notify
