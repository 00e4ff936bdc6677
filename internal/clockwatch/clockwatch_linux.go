package clockwatch

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Watcher reports each setting of the wall clock.
type Watcher struct {
	f *os.File
}

// New arms the watcher.
func New() (*Watcher, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("clockwatch: timerfd_create: %w", err)
	}
	w := &Watcher{f: os.NewFile(uintptr(fd), "timerfd")}
	if err := w.arm(); err != nil {
		w.f.Close()
		return nil, err
	}
	return w, nil
}

// arm sets the timer to a time that never comes, cancelled on a set.
func (w *Watcher) arm() error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("clockwatch: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		spec := unix.ItimerSpec{Value: unix.Timespec{Sec: 1 << 62}}
		serr = unix.TimerfdSettime(int(fd), unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET, &spec, nil)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("clockwatch: timerfd_settime: %w", err)
	}
	return nil
}

// Wait blocks until the wall clock is set, then re-arms and returns the
// time it read right after (the new wall clock). It returns an error
// after Close.
func (w *Watcher) Wait() (time.Time, error) {
	buf := make([]byte, 8)
	for {
		_, err := w.f.Read(buf)
		switch {
		case errors.Is(err, unix.ECANCELED):
			now := time.Now()
			if err := w.arm(); err != nil {
				return now, err
			}
			return now, nil
		case err != nil:
			return time.Time{}, fmt.Errorf("clockwatch: %w", err)
		}
		// The timer expired (it cannot, set at 2^62 s): arm it again.
		if err := w.arm(); err != nil {
			return time.Time{}, err
		}
	}
}

// Close stops Wait.
func (w *Watcher) Close() error { return w.f.Close() }
