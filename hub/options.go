package hub

import "time"

// Option configures New.
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock makes now the hub's clock: the time in its answers (hub_time,
// the Date header) and in what it stores. Tests set it to play a hub
// whose time differs from the PC's.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}
