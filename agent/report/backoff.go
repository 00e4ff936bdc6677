package report

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff paces the sender's retries: exponential with full jitter (each
// wait is uniform in [0, min(Max, Base·2^attempt))), reset by a send that
// goes through, never shorter than the hub's Retry-After.
type Backoff struct {
	// Base bounds the first wait (default 1 s: the first retry comes
	// within a second).
	Base time.Duration
	// Max caps the waits (default 30 s).
	Max time.Duration
	// Slow is the wait after the hub refused the agent's token or the
	// URL is wrong (401, 403, 404): a mistake people must fix (default
	// 5 min). The events stay queued.
	Slow time.Duration
	// MaxRetryAfter caps the hub's Retry-After (default 10 min).
	MaxRetryAfter time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = time.Second
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Slow <= 0 {
		b.Slow = 5 * time.Minute
	}
	if b.MaxRetryAfter <= 0 {
		b.MaxRetryAfter = 10 * time.Minute
	}
	return b
}

// delay returns the wait before retry number attempt (from 0).
func (b Backoff) delay(attempt int) time.Duration {
	ceil := b.Max
	if attempt < 40 {
		ceil = min(b.Base<<attempt, b.Max)
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

// Next returns the wait before retry number attempt (from 0) of a
// request that failed: the jittered delay, Slow instead when the hub
// refused the token or the URL (unauthorized), and never shorter than the
// hub's Retry-After (capped at MaxRetryAfter). Zero fields take the
// defaults. The sender waits this; the hub's storm tests simulate agents
// with it.
func (b Backoff) Next(attempt int, retryAfter time.Duration, unauthorized bool) time.Duration {
	b = b.withDefaults()
	d := b.delay(attempt)
	if unauthorized {
		d = b.Slow
	}
	if retryAfter > 0 {
		d = max(d, min(retryAfter, b.MaxRetryAfter))
	}
	return d
}

// RetryAfter reads a Retry-After header (seconds or an HTTP date) as a
// wait from now; 0 when absent or unreadable.
func RetryAfter(h string, now time.Time) time.Duration { return retryAfter(h, now) }

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 when
// absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.ParseUint(h, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
