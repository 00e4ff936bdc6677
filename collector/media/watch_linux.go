package media

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/mamori-agent/mamori/internal/safe"
)

// MountWatcher tells when the mount table of the reader's mount namespace
// changes. The kernel sends no uevent for mounts; it marks
// /proc/<pid>/mountinfo with POLLPRI|POLLERR instead (proc(5)). The file
// is opened with unix.Open, not os.Open: a file from os.Open joins Go's
// netpoller, which waits for readability and never sees POLLPRI.
//
// Wait may be called from one goroutine at a time; Close may be called
// from any goroutine, also while Wait blocks.
type MountWatcher struct {
	path string
	fd   int // mountinfo
	wake int // eventfd: Close and context cancellation write to it

	mu      sync.Mutex
	closed  bool
	waiting chan struct{} // non-nil while Wait runs; closed when it returns
	once    sync.Once
}

// NewMountWatcher opens <procfs>/self/mountinfo for watching. Changes made
// before it returns are not reported: read the mounts after creating the
// watcher, then Wait.
func NewMountWatcher(procfs string) (*MountWatcher, error) {
	path := filepath.Join(procfs, "self", "mountinfo")
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", safe.String(path), dropPath(err))
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &MountWatcher{path: path, fd: fd, wake: wake}, nil
}

// Wait blocks until the mount table changes (a mount, an unmount, a
// remount or a change of propagation), ctx is done, or the watcher is
// closed. Several changes may be reported by one return: re-read the whole
// table after Wait returns nil. It returns ctx.Err() or ErrWatcherClosed
// when woken for those reasons. It sleeps in poll(2) without a timeout:
// no busy polling.
func (w *MountWatcher) Wait(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrWatcherClosed
	}
	if w.waiting != nil {
		w.mu.Unlock()
		return errors.New("mount watcher: Wait called concurrently")
	}
	done := make(chan struct{})
	w.waiting = done
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.waiting = nil
		close(done)
		w.mu.Unlock()
	}()

	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, w.signal)
	defer stop()

	fds := []unix.PollFd{
		{Fd: int32(w.fd), Events: unix.POLLPRI},
		{Fd: int32(w.wake), Events: unix.POLLIN},
	}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll %s: %w", safe.String(w.path), err)
		}
		if fds[1].Revents != 0 {
			w.drain()
			w.mu.Lock()
			closed := w.closed
			w.mu.Unlock()
			if closed {
				return ErrWatcherClosed
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			// A wake-up left over from an earlier Wait's context.
		}
		if r := fds[0].Revents; r&unix.POLLNVAL != 0 {
			return fmt.Errorf("poll %s: invalid file descriptor", safe.String(w.path))
		} else if r&(unix.POLLPRI|unix.POLLERR) != 0 {
			// poll itself records the event as seen (mounts_poll in
			// fs/proc_namespace.c), so the next Wait blocks until the
			// next change; no read or seek is needed to re-arm.
			return nil
		}
	}
}

func (w *MountWatcher) signal() {
	var one = [8]byte{1}
	// EAGAIN means the counter is already non-zero: the waiter wakes anyway.
	_, _ = unix.Write(w.wake, one[:])
}

func (w *MountWatcher) drain() {
	var buf [8]byte
	_, _ = unix.Read(w.wake, buf[:])
}

// Close stops the watcher: a blocked Wait returns ErrWatcherClosed, and
// Close returns once it has, then closes the file descriptors.
func (w *MountWatcher) Close() error {
	w.mu.Lock()
	w.closed = true
	waiting := w.waiting
	w.mu.Unlock()
	if waiting != nil {
		w.signal()
		<-waiting
	}
	var err error
	w.once.Do(func() {
		err = errors.Join(unix.Close(w.fd), unix.Close(w.wake))
	})
	return err
}
