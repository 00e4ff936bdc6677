package clockwatch

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWaitSeesClockSet sets the wall clock to what it reads (a set, not a
// change: the kernel cancels the timer all the same) and expects Wait to
// return. Needs root (CAP_SYS_TIME).
func TestWaitSeesClockSet(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to set the clock (CAP_SYS_TIME)")
	}
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	done := make(chan error, 1)
	go func() { _, err := w.Wait(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
		t.Fatal(err)
	}
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		t.Skipf("cannot set the clock here: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after the clock was set")
	}
	// Armed again: a second set is seen too.
	go func() { _, err := w.Wait(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &ts)
	_ = unix.ClockSettime(unix.CLOCK_REALTIME, &ts)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after the second set")
	}
}

// TestCloseStopsWait: Close makes a blocked Wait return an error.
func TestCloseStopsWait(t *testing.T) {
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := w.Wait(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	w.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Wait returned no error after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait still blocked after Close")
	}
}
