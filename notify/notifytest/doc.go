// Package notifytest gives tests a private session bus (a real
// dbus-daemon of their own) and a notification service on it that
// records every notification it receives, with the credentials of the
// process that sent it. It is for tests only; it needs dbus-daemon
// (Debian's dbus-daemon package) and skips the test without it.
//
// The package builds on every system; its helpers exist on unix only.
package notifytest
