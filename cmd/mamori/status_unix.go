//go:build unix

package main

import (
	"errors"
	"syscall"
)

// isConnRefused reports whether a dial found a socket nobody serves.
func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
