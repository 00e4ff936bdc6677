//go:build !windows

package config

// DefaultLocalSocket is agent.local_socket when the file leaves it out:
// the packages' units make /run/mamori (RuntimeDirectory=mamori); the
// agent makes it otherwise.
const DefaultLocalSocket = "/run/mamori/agent.sock"

// checkLocalSocket accepts an absolute path that fits a unix socket
// address (checkUnixSocketPath).
func checkLocalSocket(s string) error { return checkUnixSocketPath(s) }
