package agent

import (
	"testing"
	"time"

	"github.com/mamori-agent/mamori/wire"
)

// TestClockChanged: a wall clock that moved against the monotonic one
// since the last look is recorded once as clock_changed with the jump; a
// look without a jump records nothing.
func TestClockChanged(t *testing.T) {
	e := newEnv(t, testConfig, kbd)
	r := e.start(Options{})
	a := r.agent
	a.mu.Lock()
	// As if the clock had been turned back by an hour since the last look.
	a.clock.wall = a.clock.wall.Add(time.Hour)
	a.checkClock("rescan")
	a.checkClock("rescan")
	a.mu.Unlock()
	r.stop(t)
	var got []record
	for _, rec := range e.records() {
		if rec.Type == wire.TypeClockChanged {
			got = append(got, rec)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d clock_changed records, want 1", len(got))
	}
	if got[0].Count > -3599 || got[0].Count < -3601 {
		t.Errorf("clock_changed count %d, want about -3600", got[0].Count)
	}
}
