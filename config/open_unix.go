//go:build unix

package config

import "syscall"

// openFlags are added to O_RDONLY when a file is opened: O_NONBLOCK, so
// that opening a named pipe returns at once.
const openFlags = syscall.O_NONBLOCK
