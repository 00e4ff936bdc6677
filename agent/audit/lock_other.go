//go:build !linux && !windows

package audit

import "os"

// lockFile does nothing on this platform: only one agent must run per
// state directory.
func lockFile(f *os.File) error { return nil }
