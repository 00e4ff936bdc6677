package agent

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/mamori-agent/mamori/wire"
)

// An appearance is one stay of one subject: a USB device from plug to
// unplug, a volume from mount to unmount, a network link from its
// RTM_NEWLINK to its RTM_DELLINK, an address from added to removed, a
// violation's condition from found to cleared, an unregistered LAN device
// for one lan_report_window. Every source keeps its appearances here, keyed
// by source and identity, so that two rules hold the same way for all of
// them:
//
//   - a violation is recorded once per appearance (marked in Recorded);
//   - a restart of the agent within one boot is not a new appearance: the
//     appearances open at the end of the previous run are rebuilt from the
//     audit log (replay.go) and carried; a subject found again with the same
//     instance continues its appearance.

// subjectKey identifies a subject.
type subjectKey struct{ source, id string }

// appearance is one open appearance.
type appearance struct {
	key subjectKey
	// instance tells this appearance from the next of the same subject:
	// "busnum:devnum" of a USB device, the ifindex of a link.
	instance string
	// recorded holds the violation keys recorded in this appearance.
	recorded map[string]bool
	// until ends a windowed appearance (a LAN device); zero when none.
	until time.Time
	// carried is set while a carried-over appearance has not been seen
	// again since the start.
	carried bool
}

// appearances is the set of open appearances of every source.
type appearances struct {
	open map[subjectKey]*appearance
}

func newAppearances() *appearances { return &appearances{open: map[subjectKey]*appearance{}} }

// get returns the open appearance of key, nil when none.
func (s *appearances) get(source, id string) *appearance {
	return s.open[subjectKey{source, id}]
}

// begin returns the appearance of subject (source, id) with instance,
// opening it when none is open. fresh is true for a new appearance (to be
// recorded); a carried one with the same instance is continued, not
// fresh. An open one with another instance is ended and returned as
// ended, so the caller records its end first.
func (s *appearances) begin(source, id, instance string) (ap *appearance, fresh bool, ended *appearance) {
	k := subjectKey{source, id}
	if o := s.open[k]; o != nil {
		if o.instance == instance {
			o.carried = false
			return o, false, nil
		}
		delete(s.open, k)
		ended = o
	}
	ap = &appearance{key: k, instance: instance, recorded: map[string]bool{}}
	s.open[k] = ap
	return ap, true, ended
}

// end closes the appearance of (source, id) and returns it, nil when none
// was open.
func (s *appearances) end(source, id string) *appearance {
	k := subjectKey{source, id}
	ap := s.open[k]
	delete(s.open, k)
	return ap
}

// of returns the open appearances of source, sorted by id.
func (s *appearances) of(source string) []*appearance {
	var out []*appearance
	for k, ap := range s.open {
		if k.source == source {
			out = append(out, ap)
		}
	}
	slices.SortFunc(out, func(a, b *appearance) int { return cmp.Compare(a.key.id, b.key.id) })
	return out
}

// carriedOf returns the carried appearances of source not seen since the
// start: their subjects left while the agent was not running.
func (s *appearances) carriedOf(source string) []*appearance {
	var out []*appearance
	for _, ap := range s.of(source) {
		if ap.carried {
			out = append(out, ap)
		}
	}
	return out
}

// restore carries the subjects open at the end of the previous run.
func (s *appearances) restore(subjects []wire.OpenSubject) {
	for _, o := range subjects {
		ap := &appearance{key: subjectKey{o.Source, o.ID}, instance: o.Instance, recorded: map[string]bool{}, carried: true}
		for _, r := range o.Recorded {
			ap.recorded[r] = true
		}
		if o.Until != nil {
			ap.until = *o.Until
		}
		s.open[ap.key] = ap
	}
}

// openViolations counts the violations recorded in appearances still open,
// by kind (mamori_violations_open): USB devices still attached, media
// within them, network conditions not cleared, LAN devices within their
// window.
func (a *Agent) openViolations() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := map[string]int{}
	now := a.now()
	for _, ap := range a.subjects.open {
		if !ap.until.IsZero() && now.After(ap.until) {
			continue
		}
		for k := range ap.recorded {
			kind, _, _ := strings.Cut(k, ":") // media_unencrypted:<medium key>
			n[kind]++
		}
	}
	return n
}
