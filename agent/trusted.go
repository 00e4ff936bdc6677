package agent

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/mamori-agent/mamori/internal/atomicfile"
	"github.com/mamori-agent/mamori/internal/fsguard"
)

// Trusted time.
//
// Approvals (USB entries' and LAN devices' valid_from and valid_until)
// are judged by the trusted time, so that turning the PC's clock back
// does not revive an expired approval once the hub's time is known. The
// times in records stay the PC's clock (Options.Now).
//
// The trusted time is, in order:
//
//  1. The hub's time, once an answer of the hub in this run told it:
//     the hub's time at its last answer plus the time passed since on the
//     monotonic clock (report.Reporter.HubNow). Setting the PC's clock
//     does not move it; the next answer of the hub re-anchors it.
//  2. Before that, in a run with a hub configured, the time kept on disk
//     (hubClockFile) from an earlier run: at start, the PC's clock plus
//     the offset last measured (so a clock set back and kept back stays
//     corrected across restarts while the hub is unreachable), but never
//     earlier than the hub-corrected time last saved (so a clock set back
//     while the agent was down does not take the trusted time back
//     beyond what it already was). This start time is then anchored to
//     the monotonic clock: a clock_changed in this run does not move it.
//     Whether the clock was set while the agent was down cannot be told,
//     so the offset is applied as measured: a clock set right while the
//     agent was down gives a trusted time ahead by the old offset (an
//     approval may end early, never late) until the hub answers.
//  3. Otherwise (no hub configured, or none ever heard) the PC's clock.
//
// The offset and the hub-corrected time are saved when the hub's time is
// first known in a run, when the offset moves by a second or more, every
// 10 minutes at a rescan, and at a clean stop.

// hubClockFile keeps the hub-corrected time in the state directory.
const hubClockFile = "hub-clock.json"

// hubClockSaveEvery is how often the hub-corrected time is saved while
// the offset holds still.
const hubClockSaveEvery = 10 * time.Minute

// hubClockState is what hubClockFile holds.
type hubClockState struct {
	// Offset is the hub's clock minus the PC's, in ns, when saved.
	Offset time.Duration `json:"offset_ns"`
	// HubTime is the hub-corrected time when saved; PCTime the PC's.
	HubTime time.Time `json:"hub_time"`
	PCTime  time.Time `json:"pc_time"`
	BootID  string    `json:"boot_id,omitempty"`
}

// trustedClock is the agent's view of the hub's time.
type trustedClock struct {
	// hub is the reporter's HubNow; nil without a reporter.
	hub func() (time.Time, bool)
	// base is the trusted time at baseMono (a reading with the
	// monotonic clock), from hubClockFile at start; zero when none.
	base, baseMono time.Time
	// savedAt (monotonic) and savedOffset are of the last save.
	savedAt     time.Time
	savedOffset time.Duration
}

// trustedNow is the time approvals are judged by (see above).
func (a *Agent) trustedNow() time.Time {
	if a.trusted.hub != nil {
		if t, ok := a.trusted.hub(); ok {
			return t
		}
	}
	if !a.trusted.baseMono.IsZero() {
		return a.trusted.base.Add(time.Since(a.trusted.baseMono))
	}
	return a.now()
}

// loadTrustedClock reads hubClockFile at start. A file that does not
// read is logged and left to be replaced: the PC's clock is then used
// until the hub answers.
func (a *Agent) loadTrustedClock() {
	path := filepath.Join(a.cfg.Agent.StateDir, hubClockFile)
	data, err := fsguard.ReadFileNoFollow(path, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var st hubClockState
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err == nil && st.HubTime.IsZero() {
		err = errors.New("no hub_time")
	}
	if err != nil {
		a.log.Warn("the hub-corrected time kept on disk does not read; the PC's clock judges approvals until the hub answers", "file", path, "err", err)
		return
	}
	pc := a.now()
	t := pc.Add(st.Offset)
	if t.Before(st.HubTime) {
		t = st.HubTime
	}
	a.trusted.base, a.trusted.baseMono = t.Round(0), time.Now()
	a.log.Info("approvals are judged by the hub-corrected time kept on disk until the hub answers",
		"trusted", a.trusted.base.Format(time.RFC3339), "pc", pc.Format(time.RFC3339), "offset", st.Offset)
}

// saveTrustedClock saves the hub-corrected time once the hub's time is
// known in this run: at once the first time and when the offset moved by
// a second or more, otherwise every hubClockSaveEvery, or when force is
// set (a clean stop).
func (a *Agent) saveTrustedClock(force bool) {
	if a.trusted.hub == nil {
		return
	}
	hub, ok := a.trusted.hub()
	if !ok {
		return
	}
	pc := a.now()
	off := hub.Sub(pc)
	t := &a.trusted
	if !force && !t.savedAt.IsZero() && time.Since(t.savedAt) < hubClockSaveEvery && (off-t.savedOffset).Abs() < time.Second {
		return
	}
	data, _ := json.Marshal(hubClockState{Offset: off, HubTime: hub.Round(0).UTC(), PCTime: pc.Round(0).UTC(), BootID: a.bootID})
	path := filepath.Join(a.cfg.Agent.StateDir, hubClockFile)
	if err := atomicfile.WriteFile(path, data); err != nil {
		a.warnOnce("hubclock", "cannot keep the hub-corrected time on disk", err)
		return
	}
	delete(a.lastErr, "hubclock")
	t.savedAt, t.savedOffset = time.Now(), off
}
