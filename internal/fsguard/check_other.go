//go:build !unix && !windows

package fsguard

// CheckDir does nothing on this platform yet: it returns nil. (On Windows
// the equivalent is an inspection of the directory's ACL and owner, not
// done yet.)
func CheckDir(path string) error { return nil }

// CheckFile does nothing on this platform yet: it returns nil.
func CheckFile(path string) error { return nil }
