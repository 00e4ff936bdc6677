package agent

import (
	"sync"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
)

// DefaultWarnInterval is how often at most a warning of one key (a
// violation kind and its device: a USB port, an interface, a MAC) is
// shown on the desktop.
const DefaultWarnInterval = time.Minute

// warnLimiter lets the first warning of a key through at once and holds
// back the ones that follow within interval: when the interval since the
// last one shown is over, the newest held back is shown, standing for
// all of them (Warning.Held, HeldSince). A flapping port or a Wi-Fi
// roaming between addresses thus puts one notification per interval on
// the desktop, and none is lost from the count (each violation is in the
// audit log anyway). A warning that reached no desktop gives its slot
// back (release): the next one of its key is let through at once.
type warnLimiter struct {
	interval time.Duration
	now      func() time.Time
	show     func(*localapi.Warning)

	mu     sync.Mutex
	keys   map[string]*limitState
	closed bool
}

// limitState is one key's: when a warning was last shown, and what is
// held back since.
type limitState struct {
	// shown is the id of the warning last let through, at last.
	shown  string
	last   time.Time
	held   int
	since  time.Time
	latest *localapi.Warning
	timer  *time.Timer
}

// maxLimitKeys bounds the keys remembered: beyond it, those idle for an
// interval are forgotten (they would be let through anyway).
const maxLimitKeys = 4096

func newWarnLimiter(interval time.Duration, now func() time.Time, show func(*localapi.Warning)) *warnLimiter {
	return &warnLimiter{interval: interval, now: now, show: show, keys: map[string]*limitState{}}
}

// offer shows w now, or holds it back. show runs on the caller's
// goroutine, or on a timer's.
func (l *warnLimiter) offer(w *localapi.Warning) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	now := l.now()
	st := l.keys[w.Key]
	if st == nil || (st.held == 0 && now.Sub(st.last) >= l.interval) {
		if len(l.keys) >= maxLimitKeys {
			l.sweep(now)
		}
		l.keys[w.Key] = &limitState{last: now, shown: w.ID}
		l.mu.Unlock()
		l.show(w)
		return
	}
	if st.held == 0 {
		st.since = w.Time
	}
	st.held++
	st.latest = w
	if st.timer == nil {
		key := w.Key
		st.timer = time.AfterFunc(max(0, st.last.Add(l.interval).Sub(now)), func() { l.flush(key) })
	}
	l.mu.Unlock()
}

// flush shows the newest warning held back for key.
func (l *warnLimiter) flush(key string) {
	l.mu.Lock()
	st := l.keys[key]
	if l.closed || st == nil || st.held == 0 {
		if st != nil {
			st.timer = nil
		}
		l.mu.Unlock()
		return
	}
	w := *st.latest
	since := st.since
	w.Held, w.HeldSince = st.held, &since
	st.held, st.latest, st.timer = 0, nil, nil
	st.last, st.shown = l.now(), w.ID
	l.mu.Unlock()
	l.show(&w)
}

// release gives back the slot of w, a warning let through that reached
// no desktop: when it is still the last one of its key let through, the
// next warning of its key is let through at once, and what is held back
// now is shown now.
func (l *warnLimiter) release(w *localapi.Warning) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.keys[w.Key]
	if l.closed || st == nil || st.shown != w.ID {
		return
	}
	if st.held == 0 {
		delete(l.keys, w.Key)
		return
	}
	st.last = time.Time{}
	if st.timer != nil && st.timer.Stop() {
		key := w.Key
		st.timer = time.AfterFunc(0, func() { l.flush(key) })
	}
}

// sweep forgets keys with nothing held back that were last shown an
// interval ago or more.
func (l *warnLimiter) sweep(now time.Time) {
	for k, st := range l.keys {
		if st.held == 0 && now.Sub(st.last) >= l.interval {
			delete(l.keys, k)
		}
	}
}

// close stops the timers; what is held back then is not shown (the
// violations are in the audit log).
func (l *warnLimiter) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, st := range l.keys {
		if st.timer != nil {
			st.timer.Stop()
		}
	}
}
