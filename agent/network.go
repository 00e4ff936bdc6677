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

	"github.com/mamori-agent/mamori/agent/localapi"
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
	index    int
	gw       netip.Addr
	dst      netip.Prefix
	table    uint32
	priority uint32
}

func routeKeyOf(r *network.Route) routeKey {
	return routeKey{r.Index, r.Gateway, r.Dst, r.Table, r.Priority}
}

// sameRoute reports whether a and b are nexthops of one route: the same
// family, destination, table and metric.
func sameRoute(a, b *network.Route) bool {
	return a.Family == b.Family && a.Dst == b.Dst && a.Table == b.Table && a.Priority == b.Priority
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
		s.routes[routeKeyOf(&r)] = r
	}
	for _, n := range snap.Neighbours {
		s.neigh[neighKey{n.Index, n.IP}] = n
	}
}

// apply applies one notification and reports whether it can change a
// verdict: a neighbour that only moves between states that carry the same
// MAC (REACHABLE, STALE, DELAY, ...) does not; nor does an address whose
// lifetimes alone changed. prev is the change before c in the same batch
// (nil for the first): the nexthops of one multipath route come as
// consecutive changes.
//
// The kernel removes IPv4 routes without telling (no RTM_DELROUTE) when
// their link goes administratively down and when its last IPv4 address
// goes (fib_disable_ip), and an RTM_NEWROUTE with NLM_F_REPLACE stands
// for the removal of the route it replaced: apply does the same to the
// table, or a default route the kernel no longer has would be judged
// until the next rescan (a route without an address: network_unapproved).
func (s *netState) apply(c, prev *network.Change) bool {
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
		if !c.Link.AdminUp {
			s.dropRoutes(c.Link.Index, 4)
		}
		return true
	case network.ChangeAddr:
		if c.Addr == nil {
			return false
		}
		k := addrKey{c.Addr.Index, c.Addr.Prefix}
		old, had := s.addrs[k]
		if c.Deleted {
			delete(s.addrs, k)
			if k.prefix.Addr().Is4() && !s.hasIPv4(k.index) {
				s.dropRoutes(k.index, 4)
			}
			return had
		}
		s.addrs[k] = *c.Addr
		return !had || old.Peer != c.Addr.Peer
	case network.ChangeRoute:
		if c.Route == nil {
			return false
		}
		k := routeKeyOf(c.Route)
		if c.Deleted {
			delete(s.routes, k)
			return true
		}
		if c.Replace && !sameReplace(prev, c) {
			// The route of this family, destination, table and metric it
			// replaced, every nexthop, on whatever link.
			for rk, r := range s.routes {
				if sameRoute(&r, c.Route) {
					delete(s.routes, rk)
				}
			}
		}
		s.routes[k] = *c.Route
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
		return !had || old.HasMAC() != n.HasMAC() || !slices.Equal(old.MAC, n.MAC)
	}
	return true
}

// sameReplace reports whether prev is an earlier nexthop of the same
// replacing route as c: a replacing route change read at the same moment,
// of the same family and metric.
func sameReplace(prev, c *network.Change) bool {
	return prev != nil && prev.Kind == network.ChangeRoute && prev.Replace && !prev.Deleted && prev.Route != nil &&
		prev.Time.Equal(c.Time) && sameRoute(prev.Route, c.Route)
}

// hasIPv4 reports whether link index holds an IPv4 address.
func (s *netState) hasIPv4(index int) bool {
	for k := range s.addrs {
		if k.index == index && k.prefix.Addr().Is4() {
			return true
		}
	}
	return false
}

// dropRoutes removes the default routes of family leaving through link
// index.
func (s *netState) dropRoutes(index, family int) {
	for k, r := range s.routes {
		if k.index == index && r.Family == family {
			delete(s.routes, k)
		}
	}
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
		a.noteSource(sourceNetwork, localapi.SourceOff, "turned off")
		return nil
	}
	if a.opts.Network != nil {
		a.noteSource(sourceNetwork, localapi.SourceEvents, "")
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
		// Without a source the network is not looked at, not even at
		// the rescans.
		a.noteSource(sourceNetwork, localapi.SourceOff, err.Error())
		return nil
	}
	a.noteNetwork(m)
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
			var prev *network.Change
			for i := range changes {
				c := &changes[i]
				if i > 0 {
					prev = &changes[i-1]
				}
				if c.Kind == network.ChangeOverrun {
					a.rescanNetwork("overrun")
					judge = false
					// Changes lost in the overrun may still be on their
					// way through the kernel: one more dump a second on.
					time.AfterFunc(time.Second, func() { a.locked(func() { a.rescanNetwork("overrun") }) })
					continue
				}
				if c.Kind == network.ChangeWireless {
					judge = true
					continue
				}
				if a.net.apply(c, prev) {
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
	// Registrations are judged by the trusted time; the report windows
	// run on the PC's clock, as the records' times do.
	now := a.now()
	v := a.netPolicy.JudgeKnown(a.net.snapshot(), a.trustedNow(), a.usbForLink, func(mac [6]byte) bool {
		until, ok := a.lanWindows[mac]
		return ok && !now.After(until)
	})
	a.netVerdict = v
	seen := map[subjectKey]bool{}
	// open begins (or continues) an appearance; ended is set when it
	// replaced another instance of the same subject.
	open := func(id, instance string) (fresh, ended bool) {
		k := subjectKey{wire.SourceNetwork, id}
		seen[k] = true
		_, fresh, e := a.subjects.begin(wire.SourceNetwork, id, instance)
		return fresh, e != nil
	}
	links := make(map[int]*wire.Link, len(v.Links))
	for i := range v.Links {
		wl := v.Links[i].Wire()
		if n := len(wl.Addresses); n > wire.MaxLinkAddresses {
			wl.Addresses, wl.AddressesTotal = wl.Addresses[:wire.MaxLinkAddresses:wire.MaxLinkAddresses], n
		}
		links[wl.Index] = &wl
		a.lastLinks[wl.Index] = wl
	}
	for i := range v.Links {
		lv := &v.Links[i]
		idx := strconv.Itoa(lv.Link.Index)
		wl := *links[lv.Link.Index]
		// The link's appearance carries its name as its instance, so
		// that a link which leaves while the agent is not running is
		// named in the record of its end. A rename is the same link
		// (followed by index): its appearance goes on under the new
		// name.
		if ap := a.subjects.get(wire.SourceNetwork, "link:"+idx); ap != nil {
			seen[ap.key] = true
			ap.carried = false
			if ap.instance != wl.Name {
				old := ap.instance
				ap.instance = wl.Name
				if old != "" {
					a.emitNet(wire.TypeLinkRenamed, "link:"+idx, wl.Name, trigger, &wl, nil,
						fmt.Sprintf("link %s renamed %s", old, wl.Name))
				}
			}
		} else if fresh, _ := open("link:"+idx, wl.Name); fresh {
			a.emitNet(wire.TypeLinkAdded, "link:"+idx, wl.Name, trigger, &wl, nil,
				fmt.Sprintf("link %s (%s) added", wl.Name, wl.Kind))
		}
		if lv.Connected {
			if fresh, _ := open("up:"+idx, ""); fresh {
				a.emitNet(wire.TypeLinkUp, "up:"+idx, "", trigger, &wl, nil, "link "+wl.Name+" up")
			}
		}
		if lv.Link.Kind == network.KindWireless || lv.Link.SSID != "" {
			// A new Wi-Fi link that is on no network yet has nothing to
			// say; leaving one, joining one, changing one is recorded.
			if fresh, ended := open("ssid:"+idx, lv.Link.SSID); fresh && (ended || lv.Link.SSID != "") {
				msg := "link " + wl.Name + " left its Wi-Fi network"
				if lv.Link.SSID != "" {
					msg = fmt.Sprintf("link %s on Wi-Fi %q", wl.Name, lv.Link.SSID)
				}
				a.emitNet(wire.TypeSSIDChanged, "ssid:"+idx, lv.Link.SSID, trigger, &wl, nil, msg)
			}
		}
		for _, ad := range lv.Addrs {
			id := "addr:" + idx + ":" + ad.Prefix.String()
			if fresh, _ := open(id, ""); fresh {
				wa := &wire.Address{Interface: wl.Name, Index: lv.Link.Index, Prefix: ad.Prefix.String()}
				if ad.Peer.IsValid() {
					wa.Peer = ad.Peer.String()
				}
				a.emitNet(wire.TypeAddressAdded, id, "", trigger, linkSummary(&wl), wa, "address "+wa.Prefix+" added on "+wl.Name)
			}
		}
	}
	gws := make([]wire.Gateway, 0, len(v.Gateways))
	for i := range v.Gateways {
		gws = append(gws, v.Gateways[i].Wire())
	}
	if fresh, _ := open("routes", routesInstance(gws)); fresh {
		ev := &Event{Type: wire.TypeRouteChanged, Source: wire.SourceNetwork, Trigger: trigger,
			Subject: "routes", Instance: routesInstance(gws), Routes: gws, Message: "default routes: " + routesInstance(gws)}
		a.emit(ev)
	}
	// What is no longer there ends: what was on a link before the link
	// itself. A link carried over a restart that left meanwhile was not
	// judged in this run: its name is its appearance's instance.
	var gone []*appearance
	for _, ap := range a.subjects.of(wire.SourceNetwork) {
		if seen[ap.key] || isFinding(ap.key.id) {
			continue
		}
		gone = append(gone, ap)
		if idx, ok := strings.CutPrefix(ap.key.id, "link:"); ok && ap.instance != "" {
			if i, err := strconv.Atoi(idx); err == nil {
				if _, known := a.lastLinks[i]; !known {
					a.lastLinks[i] = wire.Link{Name: ap.instance, Index: i}
				}
			}
		}
	}
	for _, linkLast := range []bool{false, true} {
		for _, ap := range gone {
			if strings.HasPrefix(ap.key.id, "link:") == linkLast {
				a.subjects.end(ap.key.source, ap.key.id)
				a.endNet(ap.key.id, trigger)
			}
		}
	}
	a.recordFindings(v.Findings, links, now, trigger)
	// Links that left are forgotten once their findings are cleared (the
	// records of their end name them).
	for i := range a.lastLinks {
		if _, ok := links[i]; !ok {
			delete(a.lastLinks, i)
		}
	}
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
	// The link as last judged (its state now, if it is still there).
	wl := &wire.Link{Name: idx}
	if i, err := strconv.Atoi(idx); err == nil {
		wl.Index = i
		if l, ok := a.lastLinks[i]; ok {
			wl = &l
		}
	}
	name := wl.Name
	switch kind {
	case "link":
		a.emitNet(wire.TypeLinkRemoved, id, "", trigger, wl, nil, "link "+name+" removed")
	case "up":
		a.emitNet(wire.TypeLinkDown, id, "", trigger, wl, nil, "link "+name+" down")
	case "addr":
		wa := &wire.Address{Interface: name, Index: wl.Index, Prefix: detail}
		a.emitNet(wire.TypeAddressRemoved, id, "", trigger, linkSummary(wl), wa, "address "+detail+" removed from "+name)
	case "ssid":
		// The link is gone; its SSID appearance ends with it.
	}
}

// emitNet records one network event about a link.
func (a *Agent) emitNet(typ, subject, instance, trigger string, l *wire.Link, addr *wire.Address, msg string) {
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
func (a *Agent) recordFindings(findings []policy.Finding, links map[int]*wire.Link, now time.Time, trigger string) {
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
			a.noteLANWindow(f.Key, u)
		}
		if f.Link != nil {
			ev.Link = links[f.Link.Index]
		}
		ev.Path = f.USB
		if f.Window == 0 {
			// Kept for its violation_cleared; a windowed finding is not
			// cleared, its window runs out.
			a.findings[f.Key] = ev
		}
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
			a.emit(a.clearedEvent(src, ap.key.id, trigger))
		}
	}
}

// clearedEvent is the record of the end of a violation's condition: it
// carries the violation it clears, as recorded in this run. A condition
// carried over a restart is named by its kind, the table's severity and
// article, and the interface of its key ("network_unapproved|if=3|...")
// or the subject part of the key (the interfaces of a multi-homed PC, a
// LAN device's MAC).
func (a *Agent) clearedEvent(src, key, trigger string) *Event {
	ev := &Event{Type: wire.TypeViolationCleared, Source: src, Trigger: trigger, Subject: key}
	if rec := a.findings[key]; rec != nil {
		delete(a.findings, key)
		ev.Violation, ev.Link, ev.Path = rec.Violation, rec.Link, rec.Path
		if rec.Link != nil {
			if l, ok := a.lastLinks[rec.Link.Index]; ok {
				ev.Link = &l // as it is now
			}
		}
	} else {
		kind, rest, _ := strings.Cut(key, "|")
		v := &wire.Violation{Kind: kind, Device: rest}
		if k, ok := wire.KindOf(kind); ok {
			v.Severity, v.Article = k.Severity, k.Article
		}
		if idx, ok := strings.CutPrefix(rest, "if="); ok {
			idx, _, _ = strings.Cut(idx, "|")
			if i, err := strconv.Atoi(idx); err == nil {
				if l, ok := a.lastLinks[i]; ok {
					v.Device = l.Name
				}
			}
		}
		ev.Violation = v
	}
	ev.Message = "the condition of " + ev.Violation.Kind + " on " + ev.Violation.Device + " ended"
	return ev
}

func (a *Agent) updateNetworkMetrics(v *policy.NetworkVerdict) {
	a.metrics.netIfaces.Reset()
	for i := range v.Links {
		lv := &v.Links[i]
		approved := "none"
		switch {
		case lv.Ignored:
			approved = "ignored"
		case lv.OnNetwork:
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

// noteLANWindow remembers until when the LAN device of a
// lan_device_unregistered key ("lan_device_unregistered|<mac>") is
// recorded, so that judging a large LAN does not build its finding again
// within the window (policy.NetworkPolicy.JudgeKnown).
func (a *Agent) noteLANWindow(key string, until time.Time) {
	_, mac, _ := strings.Cut(key, "|")
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return
	}
	a.lanWindows[[6]byte(hw)] = until
	if len(a.lanWindows) > 2*len(a.net.neigh)+1024 {
		now := a.now()
		for m, u := range a.lanWindows {
			if now.After(u) {
				delete(a.lanWindows, m)
			}
		}
	}
}

// linkSummary is l without its addresses, for the records of an address:
// the address is in the record, and thousands of addresses put on a link
// must not make every one of their records as large as the link.
func linkSummary(l *wire.Link) *wire.Link {
	c := *l
	c.Addresses, c.AddressesTotal = nil, 0
	return &c
}
