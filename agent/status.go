package agent

import (
	"cmp"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/policy"
	"github.com/mamori-agent/mamori/wire"
)

// status is what the running agent sees and does now, for `mamori
// status` (the local API's "status"). It is read under the agent's lock
// from what the agent keeps anyway: no collector is asked, nothing is
// judged again.
func (d *desktop) status() (*localapi.Status, error) {
	a := d.a
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil, errors.New("the agent is stopping")
	}
	cfg := a.cfg
	st := &localapi.Status{Time: a.now(), USB: []localapi.USBStatus{}, Volumes: []localapi.VolumeStatus{},
		Interfaces: []localapi.LinkStatus{}, Gateways: []localapi.GatewayStatus{}, Violations: []localapi.OpenViolation{}}
	st.Agent = localapi.AgentStatus{Version: Version, PID: os.Getpid(), Started: d.started, AssetID: cfg.Agent.AssetID,
		Language: cfg.Agent.Language, Contact: cfg.Agent.Contact, StateDir: cfg.Agent.StateDir,
		ConfigFiles: cfg.Files, ConfigDigest: cfg.Digest, ApprovedUSB: a.policy.Entries(),
		ApprovedNetworks: len(cfg.Approved.Networks), LANDevices: len(cfg.Approved.LANDevices)}
	if a.hub != nil {
		st.Agent.PolicyVersion = a.hub.Bundle.Version
	}
	a.statusUSB(st)
	a.statusNetwork(st)
	a.statusViolations(st, cfg)
	if a.audit != nil {
		st.Audit.LastSeq = a.audit.Last().Seq
	}
	st.Audit.Pending = len(a.pending.events)
	st.Sources = a.sourcesStatus()
	a.mu.Unlock()
	if d.rep != nil {
		st.Report = &localapi.ReportStatus{URL: cfg.Report.URL, Queue: d.rep.Queue().Len(), Dropped: d.rep.Queue().Dropped()}
		if t, ok := a.lastReport(); ok {
			st.Report.LastSuccess = &t
		}
	}
	return st, nil
}

// statusUSB lists the USB devices attached and the volumes mounted from
// them.
func (a *Agent) statusUSB(st *localapi.Status) {
	for _, path := range sortedKeys(a.present) {
		ap := a.present[path]
		dev := &ap.dev
		rec := ap.decision.Record(dev)
		st.USB = append(st.USB, localapi.USBStatus{Path: dev.Path, VendorID: dev.VendorID, ProductID: dev.ProductID,
			Serial: dev.Serial, Name: policy.Describe(dev), Storage: dev.IsStorage(), Verdict: rec.Status, Entry: rec.Entry})
	}
	for _, v := range a.volumes {
		st.Volumes = append(st.Volumes, localapi.VolumeStatus{Device: v.Device, MountPoint: v.MountPoint, FSType: v.FSType,
			Label: v.Label, Encrypted: v.Encrypted, USBDevice: v.USBDevice})
	}
	slices.SortFunc(st.Volumes, func(x, y localapi.VolumeStatus) int {
		return cmp.Or(cmp.Compare(x.MountPoint, y.MountPoint), cmp.Compare(x.Device, y.Device))
	})
}

// statusNetwork lists the links, gateways and LAN devices as last judged.
func (a *Agent) statusNetwork(st *localapi.Status) {
	v := a.netVerdict
	if v == nil {
		return
	}
	for i := range v.Links {
		lv := &v.Links[i]
		wl := lv.Wire()
		ls := localapi.LinkStatus{Name: wl.Name, Index: wl.Index, Kind: wl.Kind, SSID: wl.SSID, USB: wl.USB,
			Up: lv.Connected, Addresses: wl.Addresses, Verdict: localapi.VerdictNone}
		if wl.MAC != nil {
			ls.MAC = *wl.MAC
		}
		switch {
		case lv.Ignored:
			ls.Verdict = localapi.VerdictIgnored
		case lv.OnNetwork && lv.Approved:
			ls.Verdict = localapi.VerdictApproved
		case lv.OnNetwork:
			ls.Verdict = localapi.VerdictUnapproved
		}
		for _, n := range lv.Networks {
			ls.Networks = append(ls.Networks, n.Name)
		}
		st.Interfaces = append(st.Interfaces, ls)
	}
	for i := range v.Gateways {
		g := &v.Gateways[i]
		wg := g.Wire()
		gs := localapi.GatewayStatus{Interface: wg.Interface, IP: wg.IP, Network: g.Network, LookAlike: g.Mismatch}
		if wg.MAC != nil {
			gs.MAC = *wg.MAC
		}
		if len(g.Pinned) > 0 {
			gs.Pinned = config.FormatMAC(g.Pinned)
		}
		st.Gateways = append(st.Gateways, gs)
	}
	for i := range v.Neighbours {
		n := &v.Neighbours[i]
		if n.Registered {
			st.LAN.Registered++
			continue
		}
		st.LAN.Unregistered++
		if len(st.LAN.UnregisteredDevices) < localapi.MaxLANListed {
			ns := localapi.NeighbourStatus{Interface: n.Interface, MAC: config.FormatMAC(n.MAC)}
			if n.IP.IsValid() {
				ns.IP = n.IP.String()
			}
			st.LAN.UnregisteredDevices = append(st.LAN.UnregisteredDevices, ns)
		}
	}
}

// statusViolations lists the violations whose appearance is open.
func (a *Agent) statusViolations(st *localapi.Status, cfg *config.Config) {
	for _, ov := range a.openViolationEvents(cfg) {
		st.Violations = append(st.Violations, openViolation(ov.ev, cfg.Agent.Language, ov.since))
	}
}

// openEvent is an open violation as an event (what warningOf takes),
// with when it was recorded in this run (nil: not known, carried over).
type openEvent struct {
	ev    *Event
	since *time.Time
}

// openViolationEvents returns the violations whose appearance is open:
// those of the USB devices attached (their approval, their media), the
// network conditions not cleared and the LAN devices within their
// window. A violation carried over from the previous run that this run
// has not recorded itself is named by its kind and subject, with the
// kind's texts. Called under the agent's lock.
func (a *Agent) openViolationEvents(cfg *config.Config) []openEvent {
	var out []openEvent
	now := a.now()
	for _, path := range sortedKeys(a.present) {
		ap := a.present[path]
		for _, key := range sortedKeys(ap.recorded) {
			kind, _, _ := strings.Cut(key, ":") // media_unencrypted:<medium>
			ev := &Event{Type: TypeViolation, Source: wire.SourceUSB, Time: now, Path: path, VendorID: ap.dev.VendorID,
				ProductID: ap.dev.ProductID, Serial: ap.dev.Serial, Device: wireDevice(&ap.dev)}
			if v := ap.decision.Violation; v != nil && v.Kind == kind {
				ev.Violation = v
			} else {
				ev.Violation = kindViolation(kind, path, cfg)
			}
			out = append(out, openEvent{ev: ev})
		}
	}
	for _, src := range []string{wire.SourceNetwork, wire.SourceLAN} {
		for _, ap := range a.subjects.of(src) {
			if !isFinding(ap.key.id) || (!ap.until.IsZero() && now.After(ap.until)) {
				continue
			}
			if rec := a.findings[ap.key.id]; rec != nil && rec.Violation != nil {
				t := rec.Time
				out = append(out, openEvent{ev: rec, since: &t})
				continue
			}
			kind, rest, _ := strings.Cut(ap.key.id, "|")
			if !ap.recorded[kind] {
				continue
			}
			dev := rest
			if strings.HasPrefix(rest, "if=") {
				// The interface by its name when the link is known.
				idx, _, _ := strings.Cut(strings.TrimPrefix(rest, "if="), "|")
				if i, err := strconv.Atoi(idx); err == nil {
					if l, ok := a.lastLinks[i]; ok {
						dev = l.Name
					}
				}
			}
			ev := &Event{Type: TypeViolation, Source: src, Time: now, Subject: ap.key.id, Violation: kindViolation(kind, dev, cfg)}
			out = append(out, openEvent{ev: ev})
		}
	}
	return out
}

// kindViolation is a violation named only by its kind and device: the
// kind's severity, article, title and remedy (with the contact), no
// message.
func kindViolation(kind, device string, cfg *config.Config) *wire.Violation {
	v := &wire.Violation{Kind: kind, Device: device}
	if k, ok := wire.KindOf(kind); ok {
		v.Severity, v.Article = k.Severity, k.Article
		vals := map[string]string{"contact": cfg.Agent.Contact, "interface": device, "others": device}
		v.RemedyJA, v.RemedyEN = wire.Expand(k.RemedyJA, vals), wire.Expand(k.RemedyEN, vals)
	}
	return v
}

// openViolation is a status line about violation event ev.
func openViolation(ev *Event, lang string, since *time.Time) localapi.OpenViolation {
	w := warningOf(ev, lang)
	return localapi.OpenViolation{Kind: w.Kind, Severity: w.Severity, Article: w.Article, Device: w.Device, Since: since, Texts: w.Texts}
}

// lastReport returns when the hub last accepted a batch or heartbeat
// (mamori_report_last_success_timestamp_seconds), false when it has not
// in this run.
func (a *Agent) lastReport() (time.Time, bool) {
	mfs, err := a.metrics.Registry.Gather()
	if err != nil {
		return time.Time{}, false
	}
	for _, mf := range mfs {
		if mf.GetName() != "mamori_report_last_success_timestamp_seconds" || len(mf.GetMetric()) == 0 {
			continue
		}
		v := mf.GetMetric()[0].GetGauge().GetValue()
		if v <= 0 {
			return time.Time{}, false
		}
		return time.Unix(0, int64(v*1e9)), true
	}
	return time.Time{}, false
}
