package agent

import (
	"log/slog"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/agent/report"
	"github.com/mamori-agent/mamori/wire"
)

// startReporter starts the hub reporter when report.url is set and adds
// it to the sinks: every audit record enters its durable queue. A token
// file that is missing, unsafe or not a token is refused before the agent
// starts (report.CheckFiles, through mamori run's ownership check). A
// reporter that cannot start for another reason (a damaged queue
// directory) is logged as an error; the agent goes on recording locally,
// and the hub sees it silent.
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
	catchUp(rep, a.cfg.Agent.StateDir, a.log)
	a.opts.Sinks = append(a.opts.Sinks[:len(a.opts.Sinks):len(a.opts.Sinks)], rep)
	a.trusted.hub = rep.HubNow
	a.loadTrustedClock()
	// The last good copy of the hub's lists is in force from the start,
	// whether the hub answers or not; the first pull asks for a newer one.
	a.startPolicy, a.startPolicyErr = rep.LoadPolicy()
	rep.Start()
	return rep
}

// catchUp hands rep, in order, the records of the audit log in dir after
// the newest its queue held (report.Reporter.QueuedSeq): those a crash
// between the log's append and the queue's kept from it. Called after the
// log is opened and before it takes a record. A reporter whose queue
// never held a record (reporting newly configured on a PC that has run
// before) gets the log from its first record: the hub is to have every
// record, the violations still open among them, and sees the chain from
// its start (at most audit.MaxReadBack bytes of it, the newest; older
// files IT archived are not sent). Records that cannot be read back are
// counted as dropped, which the hub is told.
func catchUp(rep *report.Reporter, dir string, log *slog.Logger) {
	after := rep.QueuedSeq()
	entries, err := audit.ReadAfter(dir, after)
	if err != nil {
		log.Error("hub reporting: cannot read back the audit records not yet queued", "after_seq", after, "err", err)
	}
	next := after + 1
	if after == 0 && len(entries) > 0 {
		// A new queue starts where the log's files start.
		next = entries[0].Seq
	}
	for _, e := range entries {
		if e.Seq > next {
			// Not read back (over the read-back limit, or not records).
			rep.Lost(int(e.Seq - next))
		}
		next = e.Seq + 1
		prev, obj, err := e.Fields()
		if err != nil {
			rep.Lost(1)
		} else {
			err = rep.HandleRaw(e.Seq, e.Hash, prev, obj) // counts its own failure
		}
		if err != nil {
			log.Error("hub reporting: an audit record not queued", "seq", e.Seq, "err", err)
		}
	}
	if len(entries) > 0 {
		log.Info("hub reporting: queued the audit records that had not reached the queue", "from_seq", entries[0].Seq, "records", len(entries))
	}
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
