package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mamori-agent/mamori/collector/network"
	"github.com/mamori-agent/mamori/policy"
	"github.com/mamori-agent/mamori/wire"
)

// The network source. The kernel's rtnetlink notifications keep a table
// of links, addresses, default routes and neighbours (netState); every
// change that can alter a verdict judges the whole table again
// (policy.NetworkPolicy) and the differences to the open appearances are
// recorded. Rescans replace the table with a full dump, the same safety
// net as for USB. Every subject is an appearance in a.subjects:
//
//	link:<ifindex>              link_added … link_removed
//	up:<ifindex>                link_up … link_down (Link.Connected)
//	ssid:<ifindex>              ssid_changed, instance = the SSID
//	addr:<ifindex>:<prefix>     address_added … address_removed
//	routes                      route_changed, instance = the default routes
//	<kind>|<identity>           violation … violation_cleared (or its window)

// NetworkSource is what the agent needs of a network.Monitor: tests hand
// in one fed by a network namespace of their own.
type NetworkSource interface {
	Snapshot() (network.Snapshot, error)
	Receive() ([]network.Change, error)
	Close() error
}

// netState is the network table kept from notifications.
type netState struct {
	links  map[int]network.Link
	addrs  map[addrKey]network.Addr
	routes map[routeKey]network.Route
	neigh  map[neighKey]network.Neighbour
}

type addrKey struct {
	index  int
	prefix netip.Prefix
}

type routeKey struct {
	index int
	gw    netip.Addr
}

type neighKey struct {
	index int
	ip    netip.Addr
}

func newNetState() *netState {
	return &netState{links: map[int]network.Link{}, addrs: map[addrKey]network.Addr{},
		routes: map[routeKey]network.Route{}, neigh: map[neighKey]network.Neighbour{}}
}

// replace puts a full dump in place of the table.
func (s *netState) replace(snap *network.Snapshot) {
	*s = *newNetState()
	for _, l := range snap.Links {
		s.links[l.Index] = l
	}
	for _, a := range snap.Addrs {
		s.addrs[addrKey{a.Index, a.Prefix}] = a
	}
	for _, r := range snap.Routes {
		s.routes[routeKey{r.Index, r.Gateway}] = r
	}
	for _, n := range snap.Neighbours {
		s.neigh[neighKey{n.Index, n.IP}] = n
	}
}

// apply applies one notification and reports whether it can change a
// verdict: a neighbour that only moves between states that carry the same
// MAC (REACHABLE, STALE, DELAY, ...) does not; nor does an address whose
// lifetimes alone changed.
func (s *netState) apply(c *network.Change) bool {
	switch c.Kind {
	case network.ChangeLink:
		if c.Link == nil {
			return false
		}
		if c.Deleted {
			delete(s.links, c.Link.Index)
			for k := range s.addrs {
				if k.index == c.Link.Index {
					delete(s.addrs, k)
				}
			}
			for k := range s.neigh {
				if k.index == c.Link.Index {
					delete(s.neigh, k)
				}
			}
			for k := range s.routes {
				if k.index == c.Link.Index {
					delete(s.routes, k)
				}
			}
			return true
		}
		s.links[c.Link.Index] = *c.Link
		return true
	case network.ChangeAddr:
		if c.Addr == nil {
			return false
		}
		k := addrKey{c.Addr.Index, c.Addr.Prefix}
		old, had := s.addrs[k]
		if c.Deleted {
			delete(s.addrs, k)
			return had
		}
		s.addrs[k] = *c.Addr
		return !had || old.Peer != c.Addr.Peer
	case network.ChangeRoute:
		if c.Route == nil {
			return false
		}
		k := routeKey{c.Route.Index, c.Route.Gateway}
		if c.Deleted {
			delete(s.routes, k)
		} else {
			s.routes[k] = *c.Route
		}
		return true
	case network.ChangeNeighbour:
		if c.Neighbour == nil {
			return false
		}
		k := neighKey{c.Neighbour.Index, c.Neighbour.IP}
		old, had := s.neigh[k]
		if c.Deleted {
			delete(s.neigh, k)
			return had && old.HasMAC()
		}
		s.neigh[k] = *c.Neighbour
		n := c.Neighbour
		return had != true || old.HasMAC() != n.HasMAC() || !slices.Equal(old.MAC, n.MAC)
	}
	return true
}

// snapshot returns the table in a stable order.
func (s *netState) snapshot() *network.Snapshot {
	snap := &network.Snapshot{}
	for _, l := range s.links {
		snap.Links = append(snap.Links, l)
	}
	slices.SortFunc(snap.Links, func(a, b network.Link) int { return cmp.Compare(a.Index, b.Index) })
	for _, a := range s.addrs {
		snap.Addrs = append(snap.Addrs, a)
	}
	slices.SortFunc(snap.Addrs, func(a, b network.Addr) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	for _, r := range s.routes {
		snap.Routes = append(snap.Routes, r)
	}
	slices.SortFunc(snap.Routes, func(a, b network.Route) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), a.Gateway.Compare(b.Gateway))
	})
	snap.Neighbours = make([]network.Neighbour, 0, len(s.neigh))
	for _, n := range s.neigh {
		snap.Neighbours = append(snap.Neighbours, n)
	}
	slices.SortFunc(snap.Neighbours, func(a, b network.Neighbour) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), a.IP.Compare(b.IP))
	})
	return snap
}

// openNetwork opens the network source; nil (rescans only) when the
// platform has none or the socket cannot be opened.
func (a *Agent) openNetwork() NetworkSource {
	if a.opts.NoNetwork {
		return nil
	}
	if a.opts.Network != nil {
		return a.opts.Network
	}
	m, err := network.Open(network.Options{Sysfs: a.opts.NetSysfs})
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			a.log.Info("network source not supported on this system")
		} else {
			a.log.Warn("network source unavailable; network changes seen at rescans only", "err", err)
			a.metrics.collectErrors.WithLabelValues("network").Inc()
		}
		return nil
	}
	return m
}

// readNetwork handles notifications until ctx is done.
func (a *Agent) readNetwork(ctx context.Context, m NetworkSource) {
	for {
		changes, err := m.Receive()
		if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			a.locked(func() {
				a.metrics.collectErrors.WithLabelValues("network").Inc()
				a.warnOnce("network", "rtnetlink receive failed; taking a full dump", err)
				a.rescanNetwork("overrun")
			})
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		a.locked(func() {
			judge := false
			for i := range changes {
				c := &changes[i]
				if c.Kind == network.ChangeOverrun {
					a.rescanNetwork("overrun")
					judge = false
					continue
				}
				if c.Kind == network.ChangeWireless {
					judge = true
					continue
				}
				if a.net.apply(c) {
					judge = true
				}
			}
			if judge {
				a.judgeNetwork("netlink")
			}
		})
	}
}

// rescanNetwork replaces the table with a full dump and judges it.
func (a *Agent) rescanNetwork(trigger string) {
	if a.netMon == nil {
		return
	}
	snap, err := a.netMon.Snapshot()
	if err != nil {
		a.metrics.collectErrors.WithLabelValues("network").Inc()
		a.warnOnce("network", "network dump failed", err)
		return
	}
	delete(a.lastErr, "network")
	a.net.replace(&snap)
	a.judgeNetwork(trigger)
}

// usbForLink tells the network judge whether the USB device at a bus
// path is approved, and how to name it.
func (a *Agent) usbForLink(path string) (bool, string) {
	ap := a.present[path]
	if ap == nil {
		return false, path
	}
	return ap.decision.Approved && !ap.dev.IsRootHub(), policy.Describe(&ap.dev)
}

// judgeNetwork judges the table and records what changed.
func (a *Agent) judgeNetwork(trigger string) {
	now := a.now()
	v := a.netPolicy.JudgeKnown(a.net.snapshot(), now, a.usbForLink, func(key string) bool {
		ap := a.subjects.get(wire.SourceLAN, key)
		return ap != nil && ap.recorded[wire.KindLANDeviceUnregistered] && !now.After(ap.until)
	})
	a.netVerdict = v
	seen := map[subjectKey]bool{}
	open := func(id, instance string) (*appearance, bool) {
		k := subjectKey{wire.SourceNetwork, id}
		seen[k] = true
		ap, fresh, ended := a.subjects.begin(wire.SourceNetwork, id, instance)
		_ = ended // a new instance is recorded by the fresh record
		return ap, fresh
	}
	for i := range v.Links {
		lv := &v.Links[i]
		idx := strconv.Itoa(lv.Link.Index)
		wl := lv.Wire()
		if _, fresh := open("link:"+idx, ""); fresh {
			a.emitNet(wire.TypeLinkAdded, "link:"+idx, "", trigger, &wl, nil,
				fmt.Sprintf("link %s (%s) added", wl.Name, wl.Kind))
		}
		if lv.Connected {
			if _, fresh := open("up:"+idx, ""); fresh {
				a.emitNet(wire.TypeLinkUp, "up:"+idx, "", trigger, &wl, nil, "link "+wl.Name+" up")
			}
		}
		if lv.Link.Kind == network.KindWireless || lv.Link.SSID != "" {
			if _, fresh := open("ssid:"+idx, lv.Link.SSID); fresh {
				msg := "link " + wl.Name + " left its Wi-Fi network"
				if lv.Link.SSID != "" {
					msg = fmt.Sprintf("link %s on Wi-Fi %q", wl.Name, lv.Link.SSID)
				}
				a.emitNet(wire.TypeSSIDChanged, "ssid:"+idx, lv.Link.SSID, trigger, &wl, nil, msg)
			}
		}
		for _, ad := range lv.Addrs {
			id := "addr:" + idx + ":" + ad.Prefix.String()
			if _, fresh := open(id, ""); fresh {
				wa := &wire.Address{Interface: wl.Name, Index: lv.Link.Index, Prefix: ad.Prefix.String()}
				if ad.Peer.IsValid() {
					wa.Peer = ad.Peer.String()
				}
				a.emitNet(wire.TypeAddressAdded, id, "", trigger, &wl, wa, "address "+wa.Prefix+" added on "+wl.Name)
			}
		}
	}
	gws := make([]wire.Gateway, 0, len(v.Gateways))
	for i := range v.Gateways {
		gws = append(gws, v.Gateways[i].Wire())
	}
	if _, fresh := open("routes", routesInstance(gws)); fresh {
		ev := &Event{Type: wire.TypeRouteChanged, Source: wire.SourceNetwork, Trigger: trigger,
			Subject: "routes", Instance: routesInstance(gws), Routes: gws, Message: "default routes: " + routesInstance(gws)}
		a.emit(ev)
	}
	// What is no longer there ends.
	for _, ap := range a.subjects.of(wire.SourceNetwork) {
		if seen[ap.key] || isFinding(ap.key.id) {
			continue
		}
		a.subjects.end(ap.key.source, ap.key.id)
		a.endNet(ap.key.id, trigger)
	}
	a.recordFindings(v.Findings, now, trigger)
	a.updateNetworkMetrics(v)
}

// routesInstance names a set of default routes: "eth0 via 10.20.0.1
// (00:11:22:33:44:55), ...", or "none".
func routesInstance(gws []wire.Gateway) string {
	if len(gws) == 0 {
		return "none"
	}
	parts := make([]string, len(gws))
	for i, g := range gws {
		s := g.Interface
		if g.IP != "" {
			s += " via " + g.IP
		}
		if g.MAC != nil {
			s += " (" + *g.MAC + ")"
		}
		parts[i] = s
	}
	return strings.Join(parts, ", ")
}

// isFinding tells a violation's condition from the other subjects.
func isFinding(id string) bool { return strings.Contains(id, "|") }

// endNet records the end of a network subject's appearance.
func (a *Agent) endNet(id, trigger string) {
	kind, rest, _ := strings.Cut(id, ":")
	idx, detail, _ := strings.Cut(rest, ":")
	name := idx
	if i, err := strconv.Atoi(idx); err == nil {
		if l, ok := a.net.links[i]; ok {
			name = l.Name
		} else if n, ok := a.linkNames[i]; ok {
			name = n
		}
	}
	wl := &wire.Link{Name: name}
	if i, err := strconv.Atoi(idx); err == nil {
		wl.Index = i
	}
	switch kind {
	case "link":
		a.emitNet(wire.TypeLinkRemoved, id, "", trigger, wl, nil, "link "+name+" removed")
	case "up":
		if l, ok := a.net.links[wl.Index]; ok {
			w := policy.LinkVerdict{Link: l}
			x := w.Wire()
			wl = &x
		}
		a.emitNet(wire.TypeLinkDown, id, "", trigger, wl, nil, "link "+name+" down")
	case "addr":
		wa := &wire.Address{Interface: name, Index: wl.Index, Prefix: detail}
		a.emitNet(wire.TypeAddressRemoved, id, "", trigger, wl, wa, "address "+detail+" removed from "+name)
	case "ssid":
		// The link is gone; its SSID appearance ends with it.
	}
}

// emitNet records one network event about a link.
func (a *Agent) emitNet(typ, subject, instance, trigger string, l *wire.Link, addr *wire.Address, msg string) {
	if l != nil && l.Name != "" {
		a.linkNames[l.Index] = l.Name
	}
	ev := &Event{Type: typ, Source: wire.SourceNetwork, Trigger: trigger, Subject: subject, Instance: instance,
		Link: l, Address: addr, Message: msg}
	if l != nil {
		ev.Path = l.USB
	}
	a.emit(ev)
}

// recordFindings records each finding once per appearance of its
// condition, and the end of conditions that cleared. A windowed finding
// (an unregistered LAN device) is recorded once per window, whether or
// not it stayed in between.
func (a *Agent) recordFindings(findings []policy.Finding, now time.Time, trigger string) {
	present := map[subjectKey]bool{}
	for i := range findings {
		f := &findings[i]
		src := wire.SourceNetwork
		if k, ok := wire.KindOf(f.Kind); ok && k.Source == wire.SourceLAN {
			src = wire.SourceLAN
		}
		key := subjectKey{src, f.Key}
		present[key] = true
		ap := a.subjects.get(src, f.Key)
		if ap != nil && !ap.until.IsZero() && now.After(ap.until) {
			a.subjects.end(src, f.Key)
			ap = nil
		}
		if ap == nil {
			ap, _, _ = a.subjects.begin(src, f.Key, "")
		}
		ap.carried = false
		if ap.recorded[f.Kind] || f.Violation == nil {
			continue
		}
		ap.recorded[f.Kind] = true
		ev := &Event{Type: wire.TypeViolation, Source: src, Trigger: trigger, Subject: f.Key, Violation: f.Violation}
		if f.Window > 0 {
			u := now.Add(f.Window)
			ap.until = u
			ev.Until = &u
		}
		if f.Link != nil {
			lv := policy.LinkVerdict{Link: *f.Link}
			wl := lv.Wire()
			ev.Link = &wl
		}
		ev.Path = f.USB
		a.emit(ev)
	}
	for _, src := range []string{wire.SourceNetwork, wire.SourceLAN} {
		for _, ap := range a.subjects.of(src) {
			if !isFinding(ap.key.id) || present[ap.key] {
				continue
			}
			if !ap.until.IsZero() {
				// Windowed: the appearance lasts its window.
				if now.After(ap.until) {
					a.subjects.end(src, ap.key.id)
				}
				continue
			}
			a.subjects.end(src, ap.key.id)
			kind, _, _ := strings.Cut(ap.key.id, "|")
			a.emit(&Event{Type: wire.TypeViolationCleared, Source: src, Trigger: trigger, Subject: ap.key.id,
				Violation: &wire.Violation{Kind: kind, Device: findingDevice(ap.key.id)},
				Message:   "the condition of " + kind + " ended: " + ap.key.id})
		}
	}
}

// findingDevice is the subject part of a finding key, for the record of
// its end.
func findingDevice(id string) string {
	_, rest, _ := strings.Cut(id, "|")
	return rest
}

func (a *Agent) updateNetworkMetrics(v *policy.NetworkVerdict) {
	a.metrics.netIfaces.Reset()
	for i := range v.Links {
		lv := &v.Links[i]
		approved := "none"
		if lv.OnNetwork {
			approved = strconv.FormatBool(lv.Approved)
		}
		a.metrics.netIfaces.WithLabelValues(string(lv.Link.Kind), approved).Inc()
	}
	reg, unreg := 0, 0
	for i := range v.Neighbours {
		if v.Neighbours[i].Registered {
			reg++
		} else {
			unreg++
		}
	}
	a.metrics.lanNeighbours.WithLabelValues("true").Set(float64(reg))
	a.metrics.lanNeighbours.WithLabelValues("false").Set(float64(unreg))
}
