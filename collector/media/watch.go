package media

import "errors"

// ErrWatchUnsupported is returned by NewMountWatcher where mount changes
// cannot be watched (every OS but Linux): re-read the mounts on a timer
// instead.
var ErrWatchUnsupported = errors.New("watching mounts is not supported on this system")

// ErrWatcherClosed is returned by MountWatcher.Wait once the watcher is
// closed.
var ErrWatcherClosed = errors.New("mount watcher closed")
