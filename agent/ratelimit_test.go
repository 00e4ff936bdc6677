package agent

import (
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
)

// TestWarnLimiter: a flapping port shows once at once and once more,
// standing for the rest, when the interval is over; other keys are not
// held; a key quiet for an interval shows at once again.
func TestWarnLimiter(t *testing.T) {
	const interval = 300 * time.Millisecond
	var mu sync.Mutex
	var shown []localapi.Warning
	l := newWarnLimiter(interval, time.Now, func(w *localapi.Warning) {
		mu.Lock()
		shown = append(shown, *w)
		mu.Unlock()
	})
	defer l.close()
	get := func() []localapi.Warning {
		mu.Lock()
		defer mu.Unlock()
		return append([]localapi.Warning(nil), shown...)
	}
	base := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	w := func(id, key string, n int) *localapi.Warning {
		return &localapi.Warning{ID: id, Key: key, Time: base.Add(time.Duration(n) * time.Second)}
	}
	start := time.Now()
	l.offer(w("a1", "usb_storage_unapproved|1-2", 0))
	for i := 2; i <= 6; i++ {
		l.offer(w("a"+string(rune('0'+i)), "usb_storage_unapproved|1-2", i))
	}
	l.offer(w("b1", "network_unapproved|wlan0", 0))
	got := get()
	if len(got) != 2 || got[0].ID != "a1" || got[1].ID != "b1" || got[0].Held != 0 {
		t.Fatalf("shown at once: %+v", got)
	}
	waitFor(t, "the held-back summary", func() bool { return len(get()) == 3 })
	got = get()
	if d := time.Since(start); d < interval-50*time.Millisecond {
		t.Errorf("summary after %v, before the interval", d)
	}
	sum := got[2]
	if sum.ID != "a6" || sum.Held != 5 || sum.HeldSince == nil || !sum.HeldSince.Equal(base.Add(2*time.Second)) {
		t.Fatalf("summary %+v", sum)
	}
	// Within the interval after the summary: held again.
	l.offer(w("a7", "usb_storage_unapproved|1-2", 7))
	if len(get()) != 3 {
		t.Fatalf("shown within the interval after the summary")
	}
	waitFor(t, "second summary", func() bool { return len(get()) == 4 })
	if s := get()[3]; s.ID != "a7" || s.Held != 1 {
		t.Fatalf("second summary %+v", s)
	}
	// Quiet for an interval: at once again, alone.
	time.Sleep(interval + 50*time.Millisecond)
	l.offer(w("a8", "usb_storage_unapproved|1-2", 8))
	if got := get(); len(got) != 5 || got[4].ID != "a8" || got[4].Held != 0 {
		t.Fatalf("after a quiet interval: %+v", got)
	}
	// Closed: nothing more, held back or not.
	l.offer(w("a9", "usb_storage_unapproved|1-2", 9))
	l.close()
	time.Sleep(interval + 100*time.Millisecond)
	l.offer(w("c1", "other", 0))
	if n := len(get()); n != 5 {
		t.Fatalf("%d shown after close", n)
	}
}

func TestWarnLimiterSweep(t *testing.T) {
	now := time.Unix(0, 0)
	l := newWarnLimiter(time.Minute, func() time.Time { return now }, func(*localapi.Warning) {})
	defer l.close()
	for i := range maxLimitKeys + 10 {
		l.offer(&localapi.Warning{Key: string(rune(i + 0x4e00))})
		now = now.Add(time.Second)
	}
	l.mu.Lock()
	n := len(l.keys)
	l.mu.Unlock()
	if n > maxLimitKeys {
		t.Fatalf("%d keys kept", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
