package localapi

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Throttles of the server: what any group member can cause by connecting
// again and again (refusals, limits, notifiers coming and going, answers
// about warnings it was not given) is logged at most once per
// LogInterval per kind and peer (its uid; its SID on Windows), the next line counting the ones
// left out; and a reader's requests are paced (RequestRate).

// LogInterval is how often at most one kind of log line is written for
// one peer.
const LogInterval = time.Minute

// Status and watch requests of a peer other than root are paced (one
// bucket for both): RequestRate a second per peer on average,
// RequestBurst at once; a request over it is answered an error and the
// connection closed.
const (
	RequestRate  = 5
	RequestBurst = 10
)

// maxThrottleKeys bounds the keys a throttle remembers: beyond it, the
// idle ones are forgotten.
const maxThrottleKeys = 4096

// logKey is one kind of log line for one peer (Peer.key: its uid, on
// Windows its SID; "" before the peer is known).
type logKey struct {
	what string
	peer string
}

// logThrottle lets one line per key through per interval.
type logThrottle struct {
	interval time.Duration
	now      func() time.Time
	mu       sync.Mutex
	keys     map[logKey]*logState
}

type logState struct {
	last    time.Time
	dropped int
}

func newLogThrottle(interval time.Duration) *logThrottle {
	return &logThrottle{interval: interval, now: time.Now, keys: map[logKey]*logState{}}
}

// allow reports whether a line of key may be written now, and how many
// were left out since the last one written.
func (t *logThrottle) allow(what, peer string) (ok bool, dropped int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	k := logKey{what, peer}
	st := t.keys[k]
	if st != nil && now.Sub(st.last) < t.interval {
		st.dropped++
		return false, 0
	}
	if st == nil {
		if len(t.keys) >= maxThrottleKeys {
			for k, s := range t.keys {
				if now.Sub(s.last) >= t.interval {
					delete(t.keys, k)
				}
			}
		}
		if len(t.keys) >= maxThrottleKeys {
			return false, 0
		}
		st = &logState{}
		t.keys[k] = st
	}
	dropped, st.dropped, st.last = st.dropped, 0, now
	return true, dropped
}

// logThrottled writes msg at level for peer (Peer.key) unless a line
// of the kind what was written for peer within the interval; the line
// written after such lines were left out says how many ("left_out").
func (s *Server) logThrottled(level slog.Level, what, peer string, msg string, args ...any) {
	ok, dropped := s.logs.allow(what, peer)
	if !ok {
		return
	}
	if dropped > 0 {
		args = append(args, "left_out", dropped, "left_out_within", s.logs.interval)
	}
	s.log.Log(context.Background(), level, msg, args...)
}

// rateLimit is a token bucket per peer (Peer.key).
type rateLimit struct {
	rate, burst float64
	now         func() time.Time
	mu          sync.Mutex
	buckets     map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimit(rate, burst float64) *rateLimit {
	return &rateLimit{rate: rate, burst: burst, now: time.Now, buckets: map[string]*bucket{}}
}

// take takes a token for peer (Peer.key), and reports whether there
// was one.
func (r *rateLimit) take(peer string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	b := r.buckets[peer]
	if b == nil {
		if len(r.buckets) >= maxThrottleKeys {
			for u, b := range r.buckets {
				if b.tokens+now.Sub(b.last).Seconds()*r.rate >= r.burst {
					delete(r.buckets, u)
				}
			}
			if len(r.buckets) >= maxThrottleKeys {
				return false
			}
		}
		b = &bucket{tokens: r.burst, last: now}
		r.buckets[peer] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
