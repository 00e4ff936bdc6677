package audit

// syncDir does nothing on Windows, where directories cannot be opened for
// syncing; NTFS journals renames itself.
func syncDir(dir string) error { return nil }
