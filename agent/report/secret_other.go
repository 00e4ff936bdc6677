//go:build !unix

package report

import "io/fs"

// checkSecret does nothing here yet (ACLs are not inspected on Windows,
// as in internal/fsguard).
func checkSecret(string, fs.FileInfo) error { return nil }
