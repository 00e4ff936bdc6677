//go:build !unix

package config

// openFlags are added to O_RDONLY when a file is opened; none here (the
// file's type is checked after the open).
const openFlags = 0
