package agent

import (
	"fmt"
	"strings"

	"github.com/mamori-agent/mamori/agent/report"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/wire"
)

// The hub's approved lists in force.
//
// The reporter pulls the lists from the hub (report.Reporter: at start,
// when an answer of the hub names a version not fetched yet, and every
// heartbeat interval), checks them with the agent's own parser, keeps the
// last good version in the state directory and hands it over
// (policyArrived). The agent merges it with the config file's lists
// (config.MergeApproved: the hub's entries first; a local entry with the
// name of one of the hub's is replaced by it) and puts the result in
// force the way a SIGHUP reload does: new policies, one policy_changed
// record, and every attached device, medium and network judged again. A
// SIGHUP reload merges the new file with the hub's lists in force.
//
// At start the copy on disk is in force before the first record, whether
// the hub answers or not; a copy that is damaged or was changed is
// refused (config_reload_failed) and the agent runs with the config
// file's lists alone until the hub answers.

// policyRequest is a version of the hub's lists to put in force, or why
// one was refused.
type policyRequest struct {
	pol *report.HubPolicy
	err error
}

// policyArrived is the reporter's OnPolicy: the newest version waits for
// the Run loop (an older one still waiting is replaced).
func (a *Agent) policyArrived(p *report.HubPolicy, err error) {
	req := policyRequest{p, err}
	select {
	case a.policyCh <- req:
	default:
		select {
		case <-a.policyCh:
		default:
		}
		select {
		case a.policyCh <- req:
		default:
		}
	}
}

// hubClockMoved is the reporter's OnClock: the hub's time became known or
// moved, and approvals are judged again by it.
func (a *Agent) hubClockMoved() {
	select {
	case a.clockCh <- struct{}{}:
	default:
	}
}

// merged returns local merged with the hub's lists in force, and the
// local entries the hub's replaced.
func (a *Agent) merged(local *config.Config) (*config.Config, []string) {
	if a.hub == nil {
		return local, nil
	}
	m := config.MergeApproved(&local.Approved, a.hub.Lists)
	cfg := *local
	cfg.Approved = m.Lists
	return &cfg, m.Replaced
}

// startHubPolicy puts the copy of the hub's lists read at start in force,
// before agent_started is recorded.
func (a *Agent) startHubPolicy() {
	if a.startPolicy == nil {
		return
	}
	a.hub = a.startPolicy
	cfg, _ := a.merged(a.local)
	a.putInForce(cfg)
	a.metrics.policyVersion.Set(float64(a.hub.Bundle.Version))
}

// recordStartPolicy records, after agent_started, the copy of the hub's
// lists put in force at start, or why it was refused.
func (a *Agent) recordStartPolicy() {
	if err := a.startPolicyErr; err != nil {
		a.log.Error("the copy of the hub's approved lists is refused; the config file's lists alone are in force until the hub answers", "err", err)
		a.emit(&Event{Type: TypeConfigReloadFailed, Source: wire.SourceAgent, Trigger: "start",
			Message: safe.String("the copy of the hub's approved lists is refused, the config file's lists alone are in force until the hub answers: " + err.Error())})
	}
	if a.startPolicy != nil {
		_, replaced := a.merged(a.local)
		a.emitPolicyChanged(0, replaced, "start")
	}
	a.startPolicy, a.startPolicyErr = nil, nil
}

// applyPolicy puts a new version of the hub's lists in force, merged with
// the config file's, and judges everything again; or records why the
// version was refused (the one in force stays).
func (a *Agent) applyPolicy(p policyRequest) {
	if p.err != nil {
		a.emit(&Event{Type: TypeConfigReloadFailed, Source: wire.SourceAgent, Trigger: "policy",
			Message: safe.String("the hub's approved lists are refused, the lists in force stay: " + p.err.Error())})
		return
	}
	var prev int64
	if a.hub != nil {
		prev = a.hub.Bundle.Version
	}
	a.hub = p.pol
	cfg, replaced := a.merged(a.local)
	a.putInForce(cfg)
	a.metrics.policyVersion.Set(float64(a.hub.Bundle.Version))
	a.emitPolicyChanged(prev, replaced, "policy")
	a.rejudge("policy")
}

// emitPolicyChanged records policy_changed for the hub's lists in force.
func (a *Agent) emitPolicyChanged(prev int64, replaced []string, trigger string) {
	b := &a.hub.Bundle
	l := a.hub.Lists
	rec := &wire.PolicyRecord{Version: b.Version, Previous: prev, Digest: b.Digest, Changed: b.Changed,
		ChangedBy: b.ChangedBy, USBEntries: len(l.USB), Networks: len(l.Networks), LANDevices: len(l.LANDevices),
		Replaced: replaced, FromDisk: a.hub.FromDisk}
	from := "pulled from the hub"
	if a.hub.FromDisk {
		from = "from the copy kept on disk"
	}
	msg := fmt.Sprintf("the hub's approved lists v%d in force (%s; %d USB entries, %d networks, %d LAN devices from the hub; %d approved USB entries in all)%s",
		b.Version, from, len(l.USB), len(l.Networks), len(l.LANDevices), a.policy.Entries(), replacedText(replaced))
	a.log.Info("the hub's approved lists in force", "version", b.Version, "from_disk", a.hub.FromDisk, "replaced", len(replaced))
	a.emit(&Event{Type: wire.TypePolicyChanged, Source: wire.SourceAgent, Trigger: trigger, Agent: a.agentRecord(),
		Policy: rec, Message: safe.String(msg)})
}

// replacedText names the local entries the hub's replaced, for a record's
// message ("" when none).
func replacedText(replaced []string) string {
	if len(replaced) == 0 {
		return ""
	}
	const most = 10
	s := "; the hub's entries replace the local " + strings.Join(replaced[:min(most, len(replaced))], ", ")
	if len(replaced) > most {
		s += fmt.Sprintf(" and %d more", len(replaced)-most)
	}
	return s
}
