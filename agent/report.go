package agent

import (
	"github.com/mamori-agent/mamori/agent/report"
	"github.com/mamori-agent/mamori/wire"
)

// startReporter starts the hub reporter when report.url is set and adds
// it to the sinks: every audit record enters its durable queue. A
// reporter that cannot start (a token file others can read, a damaged
// queue directory) is logged as an error; the agent goes on recording
// locally, and the hub sees it silent.
func (a *Agent) startReporter() *report.Reporter {
	rc := a.cfg.Report
	if rc.URL == "" {
		return nil
	}
	rep, err := report.New(report.Options{
		Config: rc, StateDir: a.cfg.Agent.StateDir,
		AssetID: a.cfg.Agent.AssetID, BootID: a.bootID, Version: Version,
		Inventory: a.inventorySummary, Registerer: a.metrics.Registry, Logger: a.log,
		Now: a.now, OnPolicy: a.policyArrived, OnClock: a.hubClockMoved,
	})
	if err != nil {
		a.log.Error("hub reporting not started; events are recorded locally only", "url", rc.URL, "err", err)
		return nil
	}
	a.opts.Sinks = append(a.opts.Sinks[:len(a.opts.Sinks):len(a.opts.Sinks)], rep)
	a.trusted.hub = rep.HubNow
	a.loadTrustedClock()
	// The last good copy of the hub's lists is in force from the start,
	// whether the hub answers or not; the first pull asks for a newer one.
	a.startPolicy, a.startPolicyErr = rep.LoadPolicy()
	rep.Start()
	return rep
}

// inventorySummary counts what the agent sees now, for the heartbeat.
func (a *Agent) inventorySummary() wire.Inventory {
	open := 0
	for _, n := range a.openViolations() {
		open += n
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	inv := wire.Inventory{USBDevices: len(a.present), Volumes: len(a.volumes), Interfaces: len(a.lastLinks),
		LANDevices: len(a.lanWindows), OpenViolations: open}
	return inv
}
