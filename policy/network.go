package policy

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mamori-agent/mamori/collector/network"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/wire"
)

// NetworkPolicy is approved.networks, approved.lan_devices and the
// network: section of one config, prepared for judging network state
// (the network issue's Policy section and ../shared/design/network.md).
// It is read-only once built: Judge may be called from several goroutines.
type NetworkPolicy struct {
	networks []*config.NetworkEntry
	ignore   []string
	watchLAN bool
	window   time.Duration
	texts    Texts
	lan      *config.LANIndex
	// pins maps every pinned gateway_mac to the first network pinning it:
	// a pinned gateway is a registered LAN device (network.md, Gateways).
	pins map[[6]byte]*config.NetworkEntry
}

// NewNetworkPolicy prepares approved.networks, approved.lan_devices and
// network: of cfg for judging. cfg must stay unchanged while the policy is
// used: verdicts point into its entries.
func NewNetworkPolicy(cfg *config.Config) *NetworkPolicy {
	p := &NetworkPolicy{
		ignore:   cfg.Network.IgnoreInterfaces,
		watchLAN: cfg.Network.WatchLAN,
		window:   cfg.Network.LANReportWindow,
		texts:    Texts{Language: cfg.Agent.Language, Contact: cfg.Agent.Contact},
		lan:      config.NewLANIndex(cfg.Approved.LANDevices),
		pins:     make(map[[6]byte]*config.NetworkEntry),
	}
	for i := range cfg.Approved.Networks {
		e := &cfg.Approved.Networks[i]
		p.networks = append(p.networks, e)
		if len(e.GatewayMAC) == 6 {
			if _, ok := p.pins[[6]byte(e.GatewayMAC)]; !ok {
				p.pins[[6]byte(e.GatewayMAC)] = e
			}
		}
	}
	return p
}

// NetworkVerdict is the judgement of one network Snapshot.
type NetworkVerdict struct {
	// Links is every link except loopback, by index.
	Links []LinkVerdict
	// Gateways is every nexthop of every default route, by interface
	// index, then family, metric and address.
	Gateways []GatewayVerdict
	// Neighbours are the LAN devices on approved networks (network.md,
	// Neighbours): one per MAC per interface, sorted by interface name,
	// then MAC. Empty when network.watch_lan is off.
	Neighbours []NeighbourVerdict
	// Findings are the violations, sorted by Key, no two with one Key.
	Findings []Finding
}

// LinkVerdict is the judgement of one link.
type LinkVerdict struct {
	Link network.Link
	// Master is the name of the bridge or bond the link is a port of
	// (Link.MasterIndex), "" when none or not in the snapshot.
	Master string
	// Addrs are all the addresses on the link, countable or not, in the
	// snapshot's order.
	Addrs []network.Addr
	// Ignored is set for a virtual link (no hardware device, not on USB)
	// whose name matches network.ignore_interfaces (network.md, When an
	// interface counts). An ignored link gives no findings; its other
	// fields are still filled, for people to read.
	Ignored bool
	// OnNetwork is set when the link holds a countable address
	// (network.Addr.Countable: not loopback, not link-local per RFC 4291
	// and RFC 3927) or carries a default route.
	OnNetwork bool
	// Approved is set when the link holds a countable address and every
	// countable address it holds is in an approved network (an entry's
	// CIDR and, when the entry has one, SSID).
	Approved bool
	// Networks are the approved networks the link is on, in config order.
	Networks []*config.NetworkEntry
	// Connected is Link.Connected: up for multi-homed and zone bridges.
	Connected bool
}

// GatewayVerdict is the judgement of one nexthop of a default route
// (network.md, Gateways).
type GatewayVerdict struct {
	Interface string // "" when the link is not in the snapshot
	// Index is the link the route leaves through.
	Index int
	IP    netip.Addr // invalid for an on-link default route
	// MAC is the gateway's MAC from the neighbour table; nil while the
	// kernel has none (INCOMPLETE, FAILED, absent): then there is no
	// verdict yet.
	MAC net.HardwareAddr
	// Pinned is the gateway_mac the gateway is held to, and Network the
	// approved network pinning it; nil and "" when none applies.
	Pinned  net.HardwareAddr
	Network string
	// Mismatch is set when MAC is known and is none of the MACs pinned
	// for the link's networks: a look-alike gateway.
	Mismatch bool
}

// NeighbourVerdict is one LAN device: the neighbour entries of one
// unicast MAC on one interface that is on an approved network.
type NeighbourVerdict struct {
	Interface string
	Index     int
	MAC       net.HardwareAddr
	// IP is the first IPv4 address seen, else the first global IPv6, else
	// the first link-local one; IPs are all of them, in the table's order.
	IP  netip.Addr
	IPs []netip.Addr
	// Registered is set when the MAC is in approved.lan_devices valid on
	// the day judged, or is a pinned gateway_mac; Entry names the entry
	// (the LAN device, or the network pinning the gateway).
	Registered bool
	Entry      string
	// LocallyAdministered is the U/L bit (0x02 of the first octet, IEEE
	// 802): a randomised or assigned MAC, not a maker's.
	LocallyAdministered bool
	// Network is the first approved network the interface is on.
	Network string
}

// Finding is one violation of the network rules.
type Finding struct {
	// Key identifies the condition across evaluations: the same Key in two
	// evaluations is the same appearance (network.md, Appearances; the
	// agent tracks presence in between). It is the kind and the subject:
	//
	//	network_unapproved|if=5|10.1.2.3/24       an address (|ssid=... on Wi-Fi)
	//	network_unapproved|if=5|route             a default route, no address
	//	network_unapproved|if=5|gw=10.20.0.1|<mac> a look-alike gateway
	//	network_usb_adapter|if=7|1-2              a USB adapter
	//	network_multi_homed|eth0,usb0             the interfaces, sorted
	//	network_zone_bridge|eth0,wlan0            the interfaces, sorted
	//	lan_device_unregistered|<mac>             per MAC, whatever interface
	Key string
	// Kind is the violation kind (Violation.Kind when Violation is set).
	Kind string
	// Window is set for lan_device_unregistered: the finding is recorded
	// once per window (network.lan_report_window); the agent does the
	// windowing.
	Window time.Duration
	// Violation is the record, texts from the kinds table.
	Violation *wire.Violation
	// Link is the main interface involved; nil for none.
	Link *network.Link
	// USB is the bus path for network_usb_adapter.
	USB string
}

// ARPHRD_LOOPBACK (include/uapi/linux/if_arp.h).
const arphrdLoopback = 772

// Neighbour flags that mark entries which are not devices: NTF_SELF and
// NTF_MASTER (a bridge's forwarding entries), NTF_PROXY (proxy entries)
// (include/uapi/linux/neighbour.h).
const notDeviceFlags = 0x02 | 0x04 | 0x08

// linkState is what Judge works out per link besides the LinkVerdict.
type linkState struct {
	countable  int            // countable addresses
	approved   int            // countable addresses in an approved network
	unapproved []network.Addr // countable addresses in none
	routes     []network.Route
}

// Judge judges s at time now (lan_devices validity days are local days
// of now). usb tells, for the bus path of a USB device a link hangs off,
// whether that USB device is approved and how to name it for people; nil
// means none is approved and the bus path names it.
//
// It reads nothing and sends nothing (network.md: judge what the kernel
// shows, never probe).
func (p *NetworkPolicy) Judge(s *network.Snapshot, now time.Time, usb func(busPath string) (approved bool, name string)) *NetworkVerdict {
	return p.JudgeKnown(s, now, usb, nil)
}

// JudgeKnown is Judge for a caller that has recorded some findings
// already: a lan_device_unregistered finding for a MAC that known reports
// (it is recorded, and its lan_report_window still runs) is left out of
// Findings. A LAN of thousands of unregistered devices is then judged at
// every change without building thousands of findings and texts that are
// recorded once per window.
func (p *NetworkPolicy) JudgeKnown(s *network.Snapshot, now time.Time, usb func(busPath string) (approved bool, name string), known func(mac [6]byte) bool) *NetworkVerdict {
	v := &NetworkVerdict{}
	links := make([]LinkVerdict, 0, len(s.Links))
	for i := range s.Links {
		l := &s.Links[i]
		if l.Kind == network.KindLoopback || l.Type == arphrdLoopback {
			continue
		}
		links = append(links, LinkVerdict{Link: *l, Connected: l.Connected()})
	}
	slices.SortStableFunc(links, func(a, b LinkVerdict) int { return cmp.Compare(a.Link.Index, b.Link.Index) })
	pos := make(map[int]int, len(links))
	for i := range links {
		if _, dup := pos[links[i].Link.Index]; !dup {
			pos[links[i].Link.Index] = i
		}
	}
	st := make([]linkState, len(links))
	for _, a := range s.Addrs {
		if i, ok := pos[a.Index]; ok {
			links[i].Addrs = append(links[i].Addrs, a)
		}
	}
	var unresolved []network.Route
	for _, r := range s.Routes {
		if i, ok := pos[r.Index]; ok {
			st[i].routes = append(st[i].routes, r)
		} else if r.Index == 0 && defaultLike(&r) {
			unresolved = append(unresolved, r)
		}
	}

	// A bridge or bond with a physical or USB port carries that port's
	// network: it is never ignored, whatever its name (a NIC enslaved to
	// a bridge named docker0 is judged).
	hwMaster := map[int]bool{}
	for i := range links {
		if l := &links[i].Link; l.MasterIndex != 0 && (l.Hardware || l.USB != "" || !l.Sysfs) {
			hwMaster[l.MasterIndex] = true
		}
	}
	// So is a link on such a lower device (a macvlan, ipvlan or VLAN on
	// a NIC: IFLA_LINK, followed down; a veth's names its peer).
	for i := range links {
		l := &links[i].Link
		for hops, x := 0, l; x.ParentIndex != 0 && x.InfoKind != "veth" && hops < 8; hops++ {
			j, ok := pos[x.ParentIndex]
			if !ok {
				break
			}
			x = &links[j].Link
			if x.Hardware || x.USB != "" || !x.Sysfs {
				hwMaster[l.Index] = true
				break
			}
		}
	}
	for i := range links {
		lv := &links[i]
		if lv.Link.MasterIndex != 0 {
			if m, ok := pos[lv.Link.MasterIndex]; ok {
				lv.Master = links[m].Link.Name
			}
		}
		lv.Ignored = !hwMaster[lv.Link.Index] && p.ignored(&lv.Link)
		for _, a := range lv.Addrs {
			if !a.Countable() {
				continue
			}
			st[i].countable++
			found := false
			for _, e := range p.networks {
				if !p.matches(e, &lv.Link, a) {
					continue
				}
				found = true
				if !slices.Contains(lv.Networks, e) {
					lv.Networks = append(lv.Networks, e)
				}
			}
			if found {
				st[i].approved++
			} else {
				st[i].unapproved = append(st[i].unapproved, a)
			}
		}
		lv.OnNetwork = st[i].countable > 0 || len(st[i].routes) > 0
		lv.Approved = st[i].countable > 0 && len(st[i].unapproved) == 0
	}
	v.Links = links

	var fs []Finding
	for i := range links {
		if links[i].Ignored {
			continue
		}
		fs = p.linkFindings(fs, &links[i], &st[i], usb)
	}
	// Gateways and their pins are those of the routes that stand for the
	// default: 0/0 of any table, and the 0/1 + 128/1 split (and ::/1 +
	// 8000::/1) that VPNs use to override it. Every route through a
	// gateway counts for being on a network (st.routes, above).
	defaults := *s
	defaults.Routes = nil
	for _, r := range s.Routes {
		if defaultLike(&r) {
			defaults.Routes = append(defaults.Routes, r)
		}
	}
	// A default-like route whose link the kernel did not name (through
	// a nexthop object): where it leaves cannot be judged, so it is not
	// taken for harmless.
	for _, r := range unresolved {
		dst := r.Dst.String()
		fs = append(fs, Finding{
			Key: wire.KindNetworkUnapproved + "|route=" + dst + "|table=" + strconv.FormatUint(uint64(r.Table), 10),
			Violation: p.texts.violationLang(wire.KindNetworkUnapproved, "?",
				same("interface", "?"),
				textValue{"detail", dst + " へのルートの出口インターフェースを読み取れません（nexthop オブジェクト）",
					"a route to " + dst + " leaves through an interface the kernel does not name (a nexthop object)"}),
		})
	}
	gws, gfs := p.gateways(links, pos, &defaults)
	v.Gateways = gws
	fs = append(fs, gfs...)
	fs = p.multiHomed(fs, links, st)
	fs = p.zoneBridge(fs, links)
	if p.watchLAN {
		var lfs []Finding
		v.Neighbours, lfs = p.neighbours(links, pos, s, now, known)
		fs = append(fs, lfs...)
	}
	slices.SortStableFunc(fs, func(a, b Finding) int { return strings.Compare(a.Key, b.Key) })
	v.Findings = slices.CompactFunc(fs, func(a, b Finding) bool { return a.Key == b.Key })
	for i := range v.Findings {
		if f := &v.Findings[i]; f.Kind == "" && f.Violation != nil {
			f.Kind = f.Violation.Kind
		}
	}
	return v
}

// ignored reports whether l is a virtual link whose whole name matches a
// pattern of network.ignore_interfaces (path.Match, case-sensitive). A
// physical or USB link is never ignored (network.md: renaming a tethered
// phone to docker0 must not hide it).
func (p *NetworkPolicy) ignored(l *network.Link) bool {
	if l.Hardware || l.USB != "" || !l.Sysfs {
		// Hardware, USB, or what sysfs did not confirm as virtual (a name
		// it does not answer for, sysfs mounted over): never ignored.
		return false
	}
	for _, pat := range p.ignore {
		if ok, err := path.Match(pat, l.Name); err == nil && ok {
			return true
		}
	}
	return false
}

// NetworkOf returns the first approved network that countable address a
// of link l is in, nil when none.
func (p *NetworkPolicy) NetworkOf(l *network.Link, a network.Addr) *config.NetworkEntry {
	for _, e := range p.networks {
		if p.matches(e, l, a) {
			return e
		}
	}
	return nil
}

// defaultLike reports whether r stands for a default route: a prefix of
// length 0 (in any table: a policy rule can select it) or 1 (half the
// address space, the split that overrides a default). A route without a
// destination (as tests build them) is a default.
func defaultLike(r *network.Route) bool {
	return !r.Dst.IsValid() || r.Dst.Bits() <= 1
}

// matches reports whether a countable address a of link l is in approved
// network e: every field e sets matches, the CIDR holding the local
// address (never a point-to-point peer's) and the SSID being the link's.
func (p *NetworkPolicy) matches(e *config.NetworkEntry, l *network.Link, a network.Addr) bool {
	if !e.CIDR.IsValid() && e.SSID == "" {
		return false
	}
	if e.CIDR.IsValid() && !e.MatchesAddr(a.Prefix.Addr()) {
		return false
	}
	return e.SSID == "" || e.SSID == l.SSID
}

// linkFindings appends the findings of one link on its own:
// network_unapproved for each address in no approved network and for a
// default route without an address, network_usb_adapter for a USB adapter
// that came up.
func (p *NetworkPolicy) linkFindings(fs []Finding, lv *LinkVerdict, st *linkState, usb func(string) (bool, string)) []Finding {
	l := &lv.Link
	idx := strconv.Itoa(l.Index)
	var ssidJA, ssidEN, ssidKey string
	isJA := " は"
	if l.SSID != "" {
		ssid := safe.String(l.SSID)
		ssidJA = "（Wi-Fi ネットワーク「" + ssid + "」）"
		ssidEN = " on Wi-Fi network \"" + ssid + "\""
		ssidKey = "|ssid=" + ssid
		isJA = "は"
	}
	for _, a := range st.unapproved {
		pfx := a.Prefix.String()
		fs = append(fs, Finding{
			Key:  wire.KindNetworkUnapproved + "|if=" + idx + "|" + pfx + ssidKey,
			Link: l,
			Violation: p.texts.violationLang(wire.KindNetworkUnapproved, l.Name,
				same("interface", l.Name),
				textValue{"detail", "アドレス " + pfx + ssidJA + isJA + "許可されたネットワークのものではありません",
					"address " + pfx + ssidEN + " is in no approved network"}),
		})
	}
	// A default route with no countable address at all; one with only
	// unapproved addresses is reported by them already.
	if len(st.routes) > 0 && st.countable == 0 {
		via := "on-link"
		if g := st.routes[0].Gateway; g.IsValid() {
			via = g.String()
		}
		dst := "0.0.0.0/0"
		if d := st.routes[0].Dst; d.IsValid() {
			dst = d.String()
		}
		fs = append(fs, Finding{
			Key:  wire.KindNetworkUnapproved + "|if=" + idx + "|route",
			Link: l,
			Violation: p.texts.violationLang(wire.KindNetworkUnapproved, l.Name,
				same("interface", l.Name),
				textValue{"detail", dst + " へのルート（ゲートウェイ " + via + "）があり、許可されたネットワークのアドレスがありません" + ssidJA,
					"a route to " + dst + " (gateway " + via + ") and no address in an approved network" + ssidEN}),
		})
	}
	if l.USB != "" && (lv.Connected || st.countable > 0) {
		ok, name := false, ""
		if usb != nil {
			ok, name = usb(l.USB)
		}
		if !ok {
			if name == "" {
				name = l.USB
			}
			fs = append(fs, Finding{
				Key:  wire.KindNetworkUSBAdapter + "|if=" + idx + "|" + l.USB,
				Link: l,
				USB:  l.USB,
				Violation: p.texts.violationLang(wire.KindNetworkUSBAdapter, l.Name,
					same("device", name), same("port", l.USB), same("interface", l.Name)),
			})
		}
	}
	return fs
}

// gateways judges every nexthop of every default route against the
// gateway_mac pins of the networks its link is on (network.md, Gateways).
func (p *NetworkPolicy) gateways(links []LinkVerdict, pos map[int]int, s *network.Snapshot) ([]GatewayVerdict, []Finding) {
	if len(s.Routes) == 0 {
		return nil, nil
	}
	// The gateways' MACs, by a scan of the neighbour table against the
	// few gateways (no map: a table of 10,000 entries goes by fast).
	type gwMAC struct {
		index int
		ip    netip.Addr
		mac   net.HardwareAddr
	}
	var want []gwMAC
	for _, r := range s.Routes {
		k := gwMAC{index: r.Index, ip: r.Gateway.WithZone("")}
		if r.Gateway.IsValid() && !slices.ContainsFunc(want, func(w gwMAC) bool { return w.index == k.index && w.ip == k.ip }) {
			want = append(want, k)
		}
	}
	for i := range s.Neighbours {
		n := &s.Neighbours[i]
		for j := range want {
			w := &want[j]
			if w.index == n.Index && w.mac == nil && n.IP.WithZone("") == w.ip && n.HasMAC() {
				w.mac = n.MAC
			}
		}
	}
	macOf := func(index int, ip netip.Addr) net.HardwareAddr {
		ip = ip.WithZone("")
		for _, w := range want {
			if w.index == index && w.ip == ip {
				return w.mac
			}
		}
		return nil
	}
	routes := slices.Clone(s.Routes)
	slices.SortStableFunc(routes, func(a, b network.Route) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Family, b.Family),
			cmp.Compare(a.Priority, b.Priority), a.Gateway.Compare(b.Gateway))
	})
	var gws []GatewayVerdict
	var fs []Finding
	for _, r := range routes {
		g := GatewayVerdict{Index: r.Index, IP: r.Gateway}
		i, known := pos[r.Index]
		if known {
			g.Interface = links[i].Link.Name
		} else if j := slices.IndexFunc(s.Links, func(l network.Link) bool { return l.Index == r.Index }); j >= 0 {
			g.Interface = s.Links[j].Name // loopback
		}
		if r.Gateway.IsValid() {
			g.MAC = macOf(r.Index, r.Gateway)
		}
		var pins []*config.NetworkEntry
		if known && !links[i].Ignored {
			pins = pinsFor(links[i].Networks, r.Family)
		}
		if len(pins) > 0 {
			g.Pinned, g.Network = pins[0].GatewayMAC, pins[0].Name
		}
		if g.MAC != nil && len(pins) > 0 {
			g.Mismatch = true
			for _, e := range pins {
				if bytes.Equal(e.GatewayMAC, g.MAC) {
					g.Mismatch, g.Pinned, g.Network = false, e.GatewayMAC, e.Name
					break
				}
			}
		}
		if g.Mismatch {
			fs = append(fs, p.lookAlike(&links[i].Link, &g, pins))
		}
		gws = append(gws, g)
	}
	return gws, fs
}

// pinsFor returns the networks among nets that pin a gateway MAC for a
// default route of family (4 or 6): those whose CIDR is of that family,
// or, when none is, every pinning network (an SSID-only network; a rogue
// IPv6 router advertisement on an IPv4 LAN is a look-alike gateway too).
func pinsFor(nets []*config.NetworkEntry, family int) []*config.NetworkEntry {
	var all, fam []*config.NetworkEntry
	for _, e := range nets {
		if len(e.GatewayMAC) == 0 {
			continue
		}
		all = append(all, e)
		if e.CIDR.IsValid() && (e.CIDR.Addr().Is4() == (family == 4)) {
			fam = append(fam, e)
		}
	}
	if len(fam) > 0 {
		return fam
	}
	return all
}

// lookAlike is the network_unapproved finding of a gateway whose MAC is
// not the pinned one.
func (p *NetworkPolicy) lookAlike(l *network.Link, g *GatewayVerdict, pins []*config.NetworkEntry) Finding {
	seen := config.FormatMAC(g.MAC)
	var ja, en []string
	for _, e := range pins {
		ja = append(ja, "「"+e.Name+"」の "+config.FormatMAC(e.GatewayMAC))
		en = append(en, config.FormatMAC(e.GatewayMAC)+" pinned for "+e.Name)
	}
	ip := g.IP.String()
	return Finding{
		Key:  wire.KindNetworkUnapproved + "|if=" + strconv.Itoa(l.Index) + "|gw=" + g.IP.WithZone("").String() + "|" + seen,
		Link: l,
		Violation: p.texts.violationLang(wire.KindNetworkUnapproved, l.Name,
			same("interface", l.Name),
			textValue{"detail",
				"ゲートウェイ " + ip + " の MAC アドレス " + seen + " は登録されたもの（" + strings.Join(ja, "、") + "）と異なります（なりすましのゲートウェイ）",
				"the gateway " + ip + " has MAC " + seen + ", not the " + strings.Join(en, " or ") + " (a look-alike gateway)"}),
	}
}

// multiHomed appends network_multi_homed: a connected link on an approved
// network while another connected, evaluated link is on a network that is
// not approved; and a bridge or bond on an approved network that enslaves
// two or more connected physical or USB ports (network.md, Bridges and
// bonds).
func (p *NetworkPolicy) multiHomed(fs []Finding, links []LinkVerdict, st []linkState) []Finding {
	var on, off []int
	for i := range links {
		lv := &links[i]
		if lv.Ignored || !lv.Connected {
			continue
		}
		if len(lv.Networks) > 0 {
			on = append(on, i)
		}
		if len(st[i].unapproved) > 0 || (len(st[i].routes) > 0 && st[i].approved == 0) {
			off = append(off, i)
		}
	}
	if len(on) > 0 && len(off) > 0 && !(len(on) == 1 && len(off) == 1 && on[0] == off[0]) {
		var others []int
		for _, i := range off {
			if !slices.Contains(on, i) {
				others = append(others, i)
			}
		}
		if len(others) == 0 {
			others = off
		}
		var nets []string
		for _, i := range on {
			for _, e := range links[i].Networks {
				nets = append(nets, e.Name)
			}
		}
		fs = append(fs, p.multiHomedFinding(links, append(slices.Clone(on), off...), others, nets))
	}

	for m := range links {
		master := &links[m]
		if !master.Link.AdminUp || !isBridgeMaster(&master.Link) {
			continue
		}
		approved := len(master.Networks) > 0
		var ports, hw []int
		for i := range links {
			if links[i].Link.MasterIndex != master.Link.Index || i == m {
				continue
			}
			ports = append(ports, i)
			approved = approved || len(links[i].Networks) > 0
			if links[i].Connected && (links[i].Link.Hardware || links[i].Link.USB != "") {
				hw = append(hw, i)
			}
		}
		if !approved || len(hw) < 2 {
			continue
		}
		var nets []string
		for _, i := range append([]int{m}, ports...) {
			for _, e := range links[i].Networks {
				nets = append(nets, e.Name)
			}
		}
		fs = append(fs, p.multiHomedFinding(links, append([]int{m}, ports...), hw, nets))
	}
	return fs
}

// isBridgeMaster reports whether l joins its ports into one segment: a
// bridge, bond or team (not a VRF, whose ports stay apart).
func isBridgeMaster(l *network.Link) bool {
	switch l.InfoKind {
	case "bridge", "bond", "team":
		return true
	case "":
		return l.Kind == network.KindBridge
	}
	return false
}

// multiHomedFinding builds network_multi_homed naming the links involved,
// others the ones to disconnect, nets the approved networks.
func (p *NetworkPolicy) multiHomedFinding(links []LinkVerdict, involved, others []int, nets []string) Finding {
	names := linkNames(links, involved)
	otherNames := linkNames(links, others)
	nets = sortedUnique(nets)
	main := &links[others[0]].Link
	for _, i := range others {
		if links[i].Link.Name == otherNames[0] {
			main = &links[i].Link
			break
		}
	}
	v := p.texts.violationLang(wire.KindNetworkMultiHomed, strings.Join(names, ","),
		textValue{"network", strings.Join(nets, "、"), strings.Join(nets, ", ")},
		textValue{"others", strings.Join(otherNames, "、"), strings.Join(otherNames, ", ")},
		textValue{"interfaces", strings.Join(names, "、"), strings.Join(names, ", ")})
	v.Interfaces, v.Networks = names, nets
	// The condition is the connection through the others: its key names
	// them by index, so an approved link coming or going, or a rename,
	// is not a new appearance of it.
	return Finding{Key: wire.KindNetworkMultiHomed + "|" + linkIndexes(links, others), Link: main, Violation: v}
}

// linkIndexes names links by their sorted ifindexes: "if=3,if=7".
func linkIndexes(links []LinkVerdict, idx []int) string {
	n := make([]int, len(idx))
	for j, i := range idx {
		n[j] = links[i].Link.Index
	}
	slices.Sort(n)
	n = slices.Compact(n)
	parts := make([]string, len(n))
	for j, x := range n {
		parts[j] = "if=" + strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}

// zoneBridge appends network_zone_bridge: connected links on approved
// networks of two or more different non-empty zones (network.md, Zones).
func (p *NetworkPolicy) zoneBridge(fs []Finding, links []LinkVerdict) []Finding {
	var involved []int
	var nets, zones []string
	for i := range links {
		lv := &links[i]
		if lv.Ignored || !lv.Connected {
			continue
		}
		in := false
		for _, e := range lv.Networks {
			if e.Zone == "" {
				continue
			}
			in = true
			nets = append(nets, e.Name)
			zones = append(zones, e.Zone)
		}
		if in {
			involved = append(involved, i)
		}
	}
	zones = sortedUnique(zones)
	if len(zones) < 2 {
		return fs
	}
	names := linkNames(links, involved)
	nets = sortedUnique(nets)
	main := &links[involved[0]].Link
	for _, i := range involved {
		if links[i].Link.Name == names[0] {
			main = &links[i].Link
			break
		}
	}
	v := p.texts.violationLang(wire.KindNetworkZoneBridge, strings.Join(names, ","),
		textValue{"networks", strings.Join(nets, "と"), strings.Join(nets, " and ")},
		textValue{"zones", strings.Join(zones, "・"), strings.Join(zones, " and ")},
		textValue{"interfaces", strings.Join(names, "、"), strings.Join(names, ", ")})
	v.Interfaces, v.Networks = names, nets
	// The condition is the zones joined: a link of one zone more or less
	// is the same bridge.
	return append(fs, Finding{Key: wire.KindNetworkZoneBridge + "|" + strings.Join(zones, ","), Link: main, Violation: v})
}

// linkNames returns the names of links[idx], sorted, each once.
func linkNames(links []LinkVerdict, idx []int) []string {
	names := make([]string, 0, len(idx))
	for _, i := range idx {
		names = append(names, links[i].Link.Name)
	}
	return sortedUnique(names)
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// neighbours lists the LAN devices on approved networks and appends
// lan_device_unregistered for those registered nowhere (network.md,
// Neighbours). Entries are grouped by MAC in one map per link, keyed by
// the MAC as an integer; the groups are sorted as integer pairs, and the
// rows, their MACs and their addresses made in one allocation each: a
// table of 10,000 entries is judged within the 5 ms the network issue
// allows, with no allocation per entry.
func (p *NetworkPolicy) neighbours(links []LinkVerdict, pos map[int]int, s *network.Snapshot, now time.Time, known func([6]byte) bool) ([]NeighbourVerdict, []Finding) {
	// sortKey orders a group: its link's rank by name, then MAC.
	type sortKey struct {
		mac  uint64
		rank int32
		g    int32
	}
	byMAC := make(map[int]map[uint64]int32)       // per link (position in links)
	group := make([]int32, len(s.Neighbours))     // each entry's group, -1 for none
	keys := make([]sortKey, 0, len(s.Neighbours)) // per group
	first := make([]int32, 0, len(s.Neighbours))  // each group's first entry
	counts := make([]int32, 0, len(s.Neighbours)) // each group's entries
	lastIndex, lastLink := 0, -1                  // the last link looked up
	var groups map[uint64]int32                   // lastLink's
	for i := range s.Neighbours {
		n := &s.Neighbours[i]
		group[i] = -1
		if n.Index != lastIndex || lastLink < 0 {
			lastIndex, lastLink = n.Index, -1
			if li, ok := pos[n.Index]; ok && !links[li].Ignored && len(links[li].Networks) > 0 {
				lastLink = li
				if groups = byMAC[li]; groups == nil {
					groups = make(map[uint64]int32, len(s.Neighbours)-i)
					byMAC[li] = groups
				}
			}
		}
		if lastLink < 0 || !n.HasMAC() || n.Flags&notDeviceFlags != 0 || !n.IP.IsValid() {
			continue
		}
		m := mac48(n.MAC)
		g, ok := groups[m]
		if !ok {
			g = int32(len(first))
			groups[m] = g
			first = append(first, int32(i))
			keys = append(keys, sortKey{mac: m, rank: int32(lastLink), g: g})
			counts = append(counts, 0)
		}
		counts[g]++
		group[i] = g
	}
	if len(first) == 0 {
		return nil, nil
	}
	// Rank the links holding groups by name (then index), and sort.
	var held []int
	for li := range byMAC {
		held = append(held, li)
	}
	slices.SortFunc(held, func(a, b int) int {
		return cmp.Or(strings.Compare(links[a].Link.Name, links[b].Link.Name), cmp.Compare(links[a].Link.Index, links[b].Link.Index))
	})
	rankOf := make([]int32, len(links)) // position in links -> rank
	for r, li := range held {
		rankOf[li] = int32(r)
	}
	linkOf := make([]int32, len(held)) // rank -> position in links
	for r, li := range held {
		linkOf[r] = int32(li)
	}
	for i := range keys {
		keys[i].rank = rankOf[keys[i].rank]
	}
	if len(held) <= 1<<16 {
		// Sort plain integers, the rank above the MAC's 48 bits, and
		// find each group again in its link's map.
		packed := make([]uint64, len(keys))
		for i, k := range keys {
			packed[i] = uint64(k.rank)<<48 | k.mac
		}
		slices.Sort(packed)
		for i, v := range packed {
			r, m := int32(v>>48), v&(1<<48-1)
			keys[i] = sortKey{mac: m, rank: r, g: byMAC[int(linkOf[r])][m]}
		}
	} else {
		slices.SortFunc(keys, func(a, b sortKey) int { return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.mac, b.mac)) })
	}
	rank := make([]int32, len(first)) // group -> row
	rows := make([]NeighbourVerdict, len(first))
	macs := make([]byte, 6*len(first))
	ips := make([]netip.Addr, 0, len(s.Neighbours))
	off := 0
	for r, k := range keys {
		g := k.g
		rank[g] = int32(r)
		n := &s.Neighbours[first[g]]
		l := &links[linkOf[k.rank]]
		mac := net.HardwareAddr(macs[6*r : 6*r+6 : 6*r+6])
		copy(mac, n.MAC)
		rows[r] = NeighbourVerdict{Interface: l.Link.Name, Index: n.Index, MAC: mac,
			IPs: ips[off:off:min(off+int(counts[g]), cap(ips))], Network: l.Networks[0].Name}
		off += int(counts[g])
	}
	for i, g := range group {
		if g >= 0 {
			r := &rows[rank[g]]
			r.IPs = append(r.IPs, s.Neighbours[i].IP)
		}
	}
	var unreg []int32 // rows of the MACs to report, the first row of each
	var reported map[uint64]bool
	for i := range rows {
		r := &rows[i]
		r.IP = pickIP(r.IPs)
		r.LocallyAdministered = network.IsLocallyAdministered(r.MAC)
		if dev, ok := p.lan.Lookup(r.MAC, now); ok {
			r.Registered, r.Entry = true, dev.Name
		} else if e, ok := p.pins[[6]byte(r.MAC)]; ok {
			r.Registered, r.Entry = true, e.Name
		}
		if r.Registered || (known != nil && known([6]byte(r.MAC))) {
			// Registered, or recorded already in its window: no finding.
			continue
		}
		if reported == nil {
			reported = make(map[uint64]bool)
		}
		if reported[mac48(r.MAC)] {
			continue
		}
		reported[mac48(r.MAC)] = true
		unreg = append(unreg, int32(i))
	}
	if len(unreg) == 0 {
		return rows, nil
	}
	// One allocation for all the violations and one for their Networks.
	fs := make([]Finding, len(unreg))
	vs := make([]wire.Violation, len(unreg))
	nets := make([]string, len(unreg))
	for j, i := range unreg {
		p.unregistered(&fs[j], &vs[j], nets[j:j+1:j+1], &links[linkOf[keys[i].rank]].Link, &rows[i])
	}
	return rows, fs
}

// mac48 returns a 6-byte MAC as an integer.
func mac48(m net.HardwareAddr) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

// pickIP returns the first IPv4 address of ips, else the first global
// IPv6, else the first (link-local) one.
func pickIP(ips []netip.Addr) netip.Addr {
	var v6 netip.Addr
	for _, ip := range ips {
		if ip.Is4() || ip.Is4In6() {
			return ip
		}
		if !v6.IsValid() && !ip.IsLinkLocalUnicast() {
			v6 = ip
		}
	}
	if v6.IsValid() {
		return v6
	}
	return ips[0]
}

// unregistered makes f the lan_device_unregistered finding of row r on
// link l, with violation v and v.Networks net (one element).
func (p *NetworkPolicy) unregistered(f *Finding, v *wire.Violation, net []string, l *network.Link, r *NeighbourVerdict) {
	const prefix = wire.KindLANDeviceUnregistered + "|"
	key := prefix + config.FormatMAC(r.MAC)
	mac := key[len(prefix):]
	ip := r.IP.String()
	var localJA, localEN string
	if r.LocallyAdministered {
		localJA = "。この MAC アドレスはローカル管理（ランダム化されている可能性あり）です"
		localEN = "; its MAC is locally administered (possibly randomised)"
	}
	p.texts.fillLang(v, wire.KindLANDeviceUnregistered, mac, []textValue{
		same("mac", mac), same("ip", ip), same("network", r.Network), same("interface", r.Interface),
		{"local_ja", localJA, localJA}, {"local_en", localEN, localEN}})
	v.IP, v.Interface, v.LocallyAdministered = ip, r.Interface, r.LocallyAdministered
	net[0] = r.Network
	v.Networks = net
	*f = Finding{Key: key, Window: p.window, Link: l, Violation: v}
}

// Wire returns the link as records show it (wire.Link): MACs lower-case
// and colon-separated, nil when none; Approved set only for a link on a
// network; Network the first approved network's name.
func (v *LinkVerdict) Wire() wire.Link {
	l := &v.Link
	w := wire.Link{Name: l.Name, Index: l.Index, Kind: string(l.Kind), AdminUp: l.AdminUp,
		OperState: l.OperState, Carrier: l.Carrier, USB: l.USB, SSID: l.SSID, Master: v.Master,
		Ignored: v.Ignored}
	if len(l.MAC) > 0 {
		m := config.FormatMAC(l.MAC)
		w.MAC = &m
	}
	for _, a := range v.Addrs {
		w.Addresses = append(w.Addresses, a.Prefix.String())
	}
	if v.OnNetwork {
		ok := v.Approved
		w.Approved = &ok
	}
	if len(v.Networks) > 0 {
		w.Network = v.Networks[0].Name
	}
	return w
}

// Wire returns the gateway as records show it (wire.Gateway).
func (g *GatewayVerdict) Wire() wire.Gateway {
	w := wire.Gateway{Interface: g.Interface}
	if g.IP.IsValid() {
		w.IP = g.IP.String()
	}
	if len(g.MAC) > 0 {
		m := config.FormatMAC(g.MAC)
		w.MAC = &m
	}
	return w
}

// Wire returns the LAN device as records show it (wire.Neighbour).
func (n *NeighbourVerdict) Wire() wire.Neighbour {
	w := wire.Neighbour{Interface: n.Interface, MAC: config.FormatMAC(n.MAC), IP: n.IP.String(),
		Registered: n.Registered, LocallyAdministered: n.LocallyAdministered, Name: n.Entry}
	w.IPs = make([]string, len(n.IPs))
	for i, ip := range n.IPs {
		w.IPs[i] = ip.String()
	}
	return w
}

// String describes the finding for logs and test failures.
func (f Finding) String() string {
	if f.Violation == nil {
		return f.Key
	}
	return fmt.Sprintf("%s: %s", f.Key, f.Violation.MessageEN)
}
