package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/mamori-agent/mamori/internal/clockwatch"
	"github.com/mamori-agent/mamori/wire"
)

// clockJumpMin is the smallest jump of the wall clock against the
// monotonic one that is recorded as clock_changed when the clock was set
// (NTP slews smaller differences; a set by hand is seconds or more).
const clockJumpMin = time.Second

// clockBase is a reading of both clocks, to measure jumps against.
type clockBase struct {
	wall time.Time // wall clock only (monotonic reading stripped)
	mono time.Time // with its monotonic reading
}

func readClocks() clockBase {
	now := time.Now()
	return clockBase{wall: now.Round(0), mono: now}
}

// jump is how far the wall clock moved beyond the time that passed since
// b: positive when set forward, negative when turned back.
func (b clockBase) jump(now clockBase) time.Duration {
	return now.wall.Sub(b.wall) - now.mono.Sub(b.mono)
}

// watchClock records clock_changed each time the wall clock is set
// (timerfd, Linux) or, where that is not available, when a rescan finds
// the wall clock moved against the monotonic one.
func (a *Agent) watchClock(ctx context.Context) {
	w, err := clockwatch.New()
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			a.log.Warn("clock watch unavailable; clock changes seen at rescans", "err", err)
		}
		return
	}
	go func() {
		<-ctx.Done()
		w.Close()
	}()
	for {
		if _, err := w.Wait(); err != nil {
			return
		}
		// Attached devices are judged again: without the hub's time the
		// PC's clock is what approvals are judged by.
		a.locked(func() {
			if a.checkClock("clock") {
				a.rescan("clock")
			}
		})
	}
}

// checkClock records clock_changed when the wall clock moved by at least
// clockJumpMin against the monotonic clock since the last look, and
// reports whether it did.
func (a *Agent) checkClock(trigger string) bool {
	now := readClocks()
	if a.clock.mono.IsZero() {
		a.clock = now
		return false
	}
	j := a.clock.jump(now)
	a.clock = now
	if j.Abs() < clockJumpMin {
		return false
	}
	dir := "forward"
	if j < 0 {
		dir = "back"
	}
	secs := int(math.Round(j.Seconds()))
	a.log.Warn("the PC's clock was set", "jump", j.String())
	a.emit(&Event{Type: wire.TypeClockChanged, Source: wire.SourceAgent, Trigger: trigger, Count: secs,
		Message: fmt.Sprintf("the PC's clock was set %s by %s (now %s); approvals are judged by the hub's time once it is known",
			dir, j.Abs().Round(time.Millisecond), now.wall.Format(time.RFC3339))})
	return true
}
