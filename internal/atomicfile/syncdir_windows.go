package atomicfile

// SyncDir does nothing on Windows, where directories cannot be opened for
// syncing; NTFS journals renames itself.
func SyncDir(dir string) error { return nil }
