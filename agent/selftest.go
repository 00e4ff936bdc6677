package agent

import (
	"slices"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/collector/network"
	"github.com/mamori-agent/mamori/internal/safe"
)

// The self-test: as Run opens its event sources it notes how each one
// fared (sourceDevices, sourceMounts and sourceNetwork name them per OS:
// uevents, mount watch and rtnetlink on Linux; device notifications,
// removable volumes and IP change notifications on Windows), logs the
// result once the first scan is done, and keeps it for `mamori status`.
// A source that works tells of changes as they happen; one that does not
// fell back to the rescans (agent.rescan_interval), and the reason is
// given. A source that fails later (the uevent socket breaks) is noted
// again. Nothing here asks for an audit policy or a registry setting:
// each source either opens or it does not.

// noteSource records how the event source called name fares: state is
// one of localapi.SourceEvents, SourcePolling, SourceRescans, SourceOff;
// detail says why it fell back or is off. Called under the agent's lock,
// or before Run shares the agent.
func (a *Agent) noteSource(name, state, detail string) {
	s := localapi.SourceStatus{Name: name, State: state, Detail: safe.String(detail)}
	if i := slices.IndexFunc(a.sources, func(o localapi.SourceStatus) bool { return o.Name == name }); i >= 0 {
		a.sources[i] = s
		return
	}
	a.sources = append(a.sources, s)
}

// logSelfTest logs one line per event source: Info for those that
// work, Warn for those that fell back to rescans.
func (a *Agent) logSelfTest() {
	for _, s := range a.sources {
		args := []any{"source", s.Name, "state", s.State}
		if s.Detail != "" {
			args = append(args, "detail", s.Detail)
		}
		switch s.State {
		case localapi.SourceRescans:
			args = append(args, "rescan_interval", a.cfg.Agent.RescanInterval)
			a.log.Warn("self-test: event source fell back to rescans", args...)
		case localapi.SourceOff:
			a.log.Warn("self-test: event source off", args...)
		default:
			a.log.Info("self-test: event source works", args...)
		}
	}
}

// sourcesStatus returns the self-test for the status. Called under the
// agent's lock.
func (a *Agent) sourcesStatus() []localapi.SourceStatus {
	return slices.Clone(a.sources)
}

// eventSourcer is a network source that says how each of its own event
// sources fares (the Windows Monitor: which IP Helper notifications call
// back, and the rescans standing in for those that do not).
type eventSourcer interface {
	EventSources() []network.EventSource
}

// noteNetwork notes the network source m: each of its own sources when
// it reports them, else the OS's default (networkState).
func (a *Agent) noteNetwork(m NetworkSource) {
	es, ok := m.(eventSourcer)
	if !ok {
		a.noteSource(sourceNetwork, networkState, networkDetail)
		return
	}
	for _, e := range es.EventSources() {
		state := localapi.SourceEvents
		switch {
		case !e.Working:
			state = localapi.SourceRescans
		case e.Name == "rescan" || e.Name == "GetIpNetTable2":
			// Read on the monitor's own timer.
			state = localapi.SourcePolling
		}
		a.noteSource(sourceNetwork+" ("+e.Name+")", state, e.Detail)
	}
}
