package policy

import (
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/collector/network"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/wire"
)

const testContact = "情報政策課 (内線 1234)"

// testNow is a day inside every registration but the expired one.
var testNow = time.Date(2026, 5, 1, 10, 0, 0, 0, time.Local)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

const (
	gwMAC    = "00:11:22:33:44:55" // the pinned gateway of 庁内LAN
	rogueMAC = "66:77:88:99:aa:bb"
	printer  = "00:1b:a9:00:00:01" // registered
	expired  = "00:1b:a9:00:00:02" // registered until 2026-03-31
	today    = "00:1b:a9:00:00:03" // registered until testNow's day
	stranger = "00:1b:a9:00:00:99"
)

func testConfig() *config.Config {
	cfg := config.Default()
	cfg.Agent.Contact = testContact
	cfg.Approved.Networks = []config.NetworkEntry{
		{Name: "庁内LAN", CIDR: netip.MustParsePrefix("10.20.0.0/16"), GatewayMAC: mustMAC(gwMAC), Zone: "lgwan"},
		{Name: "庁内Wi-Fi", SSID: "city-staff", Zone: "lgwan"},
		{Name: "インターネット接続系", CIDR: netip.MustParsePrefix("10.30.0.0/16"), Zone: "internet"},
		{Name: "会議室", CIDR: netip.MustParsePrefix("10.40.0.0/16")},
		{Name: "来客", CIDR: netip.MustParsePrefix("10.50.0.0/16")},
	}
	until := config.Date{Year: 2026, Month: time.March, Day: 31}
	todayDate := config.DateOf(testNow)
	cfg.Approved.LANDevices = []config.LANDevice{
		{Name: "複合機 3F", MAC: mustMAC(printer)},
		{Name: "旧端末", MAC: mustMAC(expired), ValidUntil: &until},
		{Name: "本日まで", MAC: mustMAC(today), ValidUntil: &todayDate},
	}
	cfg.Network.IgnoreInterfaces = []string{"docker*", "virbr*"}
	cfg.Network.LANReportWindow = 24 * time.Hour
	return cfg
}

// Links of the tests; the index is fixed per name so that Keys read well.
func lo() network.Link {
	return network.Link{Index: 1, Name: "lo", Kind: network.KindLoopback, Type: arphrdLoopback, AdminUp: true, Carrier: true, OperState: "unknown"}
}

func eth(index int, name string) network.Link {
	return network.Link{Index: index, Name: name, Kind: network.KindEthernet, Type: 1,
		MAC: mustMAC("52:54:00:00:00:0" + string(rune('0'+index))), AdminUp: true, Carrier: true, OperState: "up",
		Hardware: true, Driver: "e1000e"}
}

func wlan(ssid string) network.Link {
	l := eth(4, "wlan0")
	l.Kind, l.SSID, l.Driver = network.KindWireless, ssid, "iwlwifi"
	return l
}

func usbLink(name, bus string) network.Link {
	l := eth(5, name)
	l.Kind, l.USB, l.Driver, l.OperState, l.Carrier = network.KindUSB, bus, "rndis_host", "unknown", false
	return l
}

func addr(index int, p string) network.Addr {
	return network.Addr{Index: index, Prefix: netip.MustParsePrefix(p)}
}

func route(index int, gw string) network.Route {
	r := network.Route{Index: index, Family: 4}
	if gw != "" {
		r.Gateway = netip.MustParseAddr(gw)
		if r.Gateway.Is6() {
			r.Family = 6
		}
	}
	return r
}

func neigh(index int, ip, mac string) network.Neighbour {
	n := network.Neighbour{Index: index, IP: netip.MustParseAddr(ip), State: network.NUDReachable}
	if mac != "" {
		n.MAC = mustMAC(mac)
	}
	return n
}

// onLAN is eth0 on the city LAN with its pinned gateway known.
func onLAN() network.Snapshot {
	return network.Snapshot{
		Links:      []network.Link{lo(), eth(2, "eth0")},
		Addrs:      []network.Addr{addr(1, "127.0.0.1/8"), addr(1, "::1/128"), addr(2, "10.20.3.4/16"), addr(2, "fe80::5054:ff:fe00:2/64")},
		Routes:     []network.Route{route(2, "10.20.0.1")},
		Neighbours: []network.Neighbour{neigh(2, "10.20.0.1", gwMAC)},
	}
}

// plus returns s with more links, addresses, routes and neighbours.
func plus(s network.Snapshot, more network.Snapshot) network.Snapshot {
	s.Links = append(slices.Clone(s.Links), more.Links...)
	s.Addrs = append(slices.Clone(s.Addrs), more.Addrs...)
	s.Routes = append(slices.Clone(s.Routes), more.Routes...)
	s.Neighbours = append(slices.Clone(s.Neighbours), more.Neighbours...)
	return s
}

func keys(v *NetworkVerdict) []string {
	out := []string{}
	for _, f := range v.Findings {
		out = append(out, f.Key)
	}
	return out
}

func findKind(t *testing.T, v *NetworkVerdict, kind string) *Finding {
	t.Helper()
	for i := range v.Findings {
		if v.Findings[i].Violation.Kind == kind {
			return &v.Findings[i]
		}
	}
	t.Fatalf("no %s finding in %v", kind, v.Findings)
	return nil
}

func linkOf(t *testing.T, v *NetworkVerdict, name string) *LinkVerdict {
	t.Helper()
	for i := range v.Links {
		if v.Links[i].Link.Name == name {
			return &v.Links[i]
		}
	}
	t.Fatalf("no link %s in the verdict", name)
	return nil
}

func neighbourOf(t *testing.T, v *NetworkVerdict, mac string) *NeighbourVerdict {
	t.Helper()
	for i := range v.Neighbours {
		if v.Neighbours[i].MAC.String() == mac {
			return &v.Neighbours[i]
		}
	}
	t.Fatalf("no neighbour %s in %+v", mac, v.Neighbours)
	return nil
}

func TestJudgeNetwork(t *testing.T) {
	pixel := func(bus string) (bool, string) { return false, "Google Pixel 8 (18d1:4ee3, serial 3A1B)" }
	tests := []struct {
		name  string
		cfg   func(*config.Config)
		snap  network.Snapshot
		usb   func(string) (bool, string)
		want  []string // the finding keys, sorted
		check func(t *testing.T, v *NetworkVerdict)
	}{
		{
			name: "approved LAN with its pinned gateway",
			snap: onLAN(),
			want: []string{},
			check: func(t *testing.T, v *NetworkVerdict) {
				if len(v.Links) != 1 || v.Links[0].Link.Name != "eth0" {
					t.Fatalf("links %+v: loopback must be skipped", v.Links)
				}
				l := v.Links[0]
				if !l.OnNetwork || !l.Approved || !l.Connected || len(l.Networks) != 1 || l.Networks[0].Name != "庁内LAN" || len(l.Addrs) != 2 {
					t.Errorf("eth0 verdict %+v", l)
				}
				g := v.Gateways
				if len(g) != 1 || g[0].Interface != "eth0" || g[0].MAC.String() != gwMAC || g[0].Pinned.String() != gwMAC || g[0].Network != "庁内LAN" || g[0].Mismatch {
					t.Errorf("gateways %+v", g)
				}
				// The pinned gateway is a registered LAN device.
				n := neighbourOf(t, v, gwMAC)
				if !n.Registered || n.Entry != "庁内LAN" || n.Network != "庁内LAN" || n.IP.String() != "10.20.0.1" {
					t.Errorf("gateway neighbour %+v", n)
				}
			},
		},
		{
			name: "look-alike gateway with another MAC",
			snap: func() network.Snapshot {
				s := onLAN()
				s.Neighbours = []network.Neighbour{neigh(2, "10.20.0.1", rogueMAC)}
				s.Neighbours[0].State = network.NUDStale
				return s
			}(),
			want: []string{"lan_device_unregistered|" + rogueMAC, "network_unapproved|if=2|gw=10.20.0.1|" + rogueMAC},
			check: func(t *testing.T, v *NetworkVerdict) {
				g := v.Gateways[0]
				if !g.Mismatch || g.MAC.String() != rogueMAC || g.Pinned.String() != gwMAC {
					t.Errorf("gateway %+v", g)
				}
				f := findKind(t, v, wire.KindNetworkUnapproved)
				for _, s := range []string{f.Violation.MessageEN, f.Violation.MessageJA} {
					for _, want := range []string{"10.20.0.1", rogueMAC, gwMAC, "庁内LAN", "eth0"} {
						if !strings.Contains(s, want) {
							t.Errorf("message %q does not name %s", s, want)
						}
					}
				}
				if f.Link == nil || f.Link.Name != "eth0" || f.Violation.Device != "eth0" {
					t.Errorf("finding link %+v device %q", f.Link, f.Violation.Device)
				}
			},
		},
		{
			name: "gateway MAC unknown: no verdict yet",
			snap: func() network.Snapshot {
				s := onLAN()
				inc := neigh(2, "10.20.0.1", "")
				inc.State = network.NUDIncomplete
				failed := neigh(2, "10.20.0.254", rogueMAC) // FAILED keeps an old MAC: not one
				failed.State = network.NUDFailed
				s.Neighbours = []network.Neighbour{inc, failed}
				s.Routes = append(s.Routes, route(2, "10.20.0.254")) // multipath
				return s
			}(),
			want: []string{},
			check: func(t *testing.T, v *NetworkVerdict) {
				if len(v.Gateways) != 2 {
					t.Fatalf("gateways %+v", v.Gateways)
				}
				for _, g := range v.Gateways {
					if g.MAC != nil || g.Mismatch || g.Pinned.String() != gwMAC {
						t.Errorf("gateway %+v", g)
					}
					if w := g.Wire(); w.MAC != nil || w.Interface != "eth0" {
						t.Errorf("wire gateway %+v", w)
					}
				}
				if len(v.Neighbours) != 0 {
					t.Errorf("neighbours without a MAC listed: %+v", v.Neighbours)
				}
			},
		},
		{
			name: "one nexthop of a multipath route is a look-alike",
			snap: func() network.Snapshot {
				s := onLAN()
				s.Routes = append(s.Routes, route(2, "10.20.0.254"))
				s.Neighbours = append(s.Neighbours, neigh(2, "10.20.0.254", rogueMAC))
				return s
			}(),
			want: []string{"lan_device_unregistered|" + rogueMAC, "network_unapproved|if=2|gw=10.20.0.254|" + rogueMAC},
		},
		{
			name: "IPv6 default route via a rogue router on the pinned LAN",
			snap: plus(onLAN(), network.Snapshot{
				Addrs:      []network.Addr{addr(2, "2001:db8:bad::5/64")},
				Routes:     []network.Route{route(2, "fe80::bad")},
				Neighbours: []network.Neighbour{neigh(2, "fe80::bad", rogueMAC)},
			}),
			want: []string{
				"lan_device_unregistered|" + rogueMAC,
				"network_unapproved|if=2|2001:db8:bad::5/64",
				"network_unapproved|if=2|gw=fe80::bad|" + rogueMAC,
			},
			check: func(t *testing.T, v *NetworkVerdict) {
				n := neighbourOf(t, v, rogueMAC)
				if n.IP.String() != "fe80::bad" {
					t.Errorf("a link-local-only neighbour's ip %s", n.IP)
				}
				if l := linkOf(t, v, "eth0"); l.Approved || len(l.Networks) != 1 {
					t.Errorf("eth0 holds an unapproved address: %+v", l)
				}
			},
		},
		{
			name: "second unapproved network joined while on the LAN",
			snap: plus(onLAN(), network.Snapshot{
				Links:  []network.Link{wlan("home")},
				Addrs:  []network.Addr{addr(4, "192.168.1.5/24")},
				Routes: []network.Route{route(4, "192.168.1.1")},
			}),
			want: []string{"network_multi_homed|if=4", "network_unapproved|if=4|192.168.1.5/24|ssid=home"},
			check: func(t *testing.T, v *NetworkVerdict) {
				f := findKind(t, v, wire.KindNetworkMultiHomed)
				if !reflect.DeepEqual(f.Violation.Interfaces, []string{"eth0", "wlan0"}) || !reflect.DeepEqual(f.Violation.Networks, []string{"庁内LAN"}) {
					t.Errorf("multi-homed %+v", f.Violation)
				}
				if f.Link.Name != "wlan0" || f.Violation.Device != "eth0,wlan0" {
					t.Errorf("multi-homed link %s device %s", f.Link.Name, f.Violation.Device)
				}
				if want := "Disconnect wlan0 now"; !strings.HasPrefix(f.Violation.RemedyEN, want) {
					t.Errorf("remedy %q", f.Violation.RemedyEN)
				}
				w := linkOf(t, v, "wlan0").Wire()
				if w.Approved == nil || *w.Approved || w.Network != "" || w.SSID != "home" {
					t.Errorf("wlan0 wire %+v", w)
				}
			},
		},
		{
			name: "a default route with no countable address is an unapproved network",
			snap: plus(onLAN(), network.Snapshot{
				Links:  []network.Link{eth(3, "eth1")},
				Addrs:  []network.Addr{addr(3, "fe80::3/64")},
				Routes: []network.Route{route(3, "fe80::1")},
			}),
			want: []string{"network_multi_homed|if=3", "network_unapproved|if=3|route"},
			check: func(t *testing.T, v *NetworkVerdict) {
				if l := linkOf(t, v, "eth1"); !l.OnNetwork || l.Approved {
					t.Errorf("eth1 %+v", l)
				}
			},
		},
		{
			name: "two approved networks of different zones",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{eth(3, "eth1")},
				Addrs: []network.Addr{addr(3, "10.30.1.2/16")},
			}),
			want: []string{"network_zone_bridge|internet,lgwan"},
			check: func(t *testing.T, v *NetworkVerdict) {
				f := findKind(t, v, wire.KindNetworkZoneBridge)
				if !reflect.DeepEqual(f.Violation.Interfaces, []string{"eth0", "eth1"}) ||
					!reflect.DeepEqual(f.Violation.Networks, []string{"インターネット接続系", "庁内LAN"}) {
					t.Errorf("zone bridge %+v", f.Violation)
				}
				for _, want := range []string{"internet", "lgwan", "庁内LAN", "インターネット接続系"} {
					if !strings.Contains(f.Violation.MessageEN, want) || !strings.Contains(f.Violation.MessageJA, want) {
						t.Errorf("zone bridge message does not name %s: %q", want, f.Violation.MessageEN)
					}
				}
				if f.Violation.Severity != wire.SeverityCritical {
					t.Errorf("severity %s", f.Violation.Severity)
				}
			},
		},
		{
			name: "the city Wi-Fi and the LAN are one zone",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{wlan("city-staff")},
				Addrs: []network.Addr{addr(4, "172.16.8.9/22")},
			}),
			want: []string{},
		},
		{
			name: "zone-less networks never form a zone bridge",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{eth(3, "eth1"), eth(6, "eth2")},
				Addrs: []network.Addr{addr(3, "10.40.1.2/16"), addr(6, "10.50.1.2/16")},
			}),
			want: []string{},
		},
		{
			name: "interface down holding an address",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{func() network.Link {
					l := eth(3, "eth1")
					l.Carrier, l.OperState = false, "down" // admin up, no cable
					return l
				}(), func() network.Link {
					l := eth(6, "eth2")
					l.AdminUp, l.Carrier, l.OperState = false, false, "down"
					return l
				}()},
				Addrs: []network.Addr{addr(3, "192.168.5.5/24"), addr(6, "10.30.0.9/16")},
			}),
			want: []string{"network_unapproved|if=3|192.168.5.5/24"},
			check: func(t *testing.T, v *NetworkVerdict) {
				if l := linkOf(t, v, "eth1"); l.Connected || !l.OnNetwork {
					t.Errorf("eth1 %+v", l)
				}
			},
		},
		{
			name: "operstate unknown tunnel counts as connected; judged by its local address",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{{Index: 6, Name: "wg0", Kind: network.KindTunnel, Type: 65534, InfoKind: "wireguard",
					AdminUp: true, OperState: "unknown"}},
				Addrs: []network.Addr{{Index: 6, Prefix: netip.MustParsePrefix("172.16.0.2/32"), Peer: netip.MustParseAddr("10.20.0.9")}},
			}),
			want: []string{"network_multi_homed|if=6", "network_unapproved|if=6|172.16.0.2/32"},
			check: func(t *testing.T, v *NetworkVerdict) {
				if !linkOf(t, v, "wg0").Connected {
					t.Error("wg0 not connected")
				}
			},
		},
		{
			name: "point-to-point with a local address in the LAN and a peer outside",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{{Index: 6, Name: "ppp0", Kind: network.KindTunnel, Type: 512, AdminUp: true, Carrier: true, OperState: "unknown"}},
				Addrs: []network.Addr{{Index: 6, Prefix: netip.MustParsePrefix("10.20.9.9/32"), Peer: netip.MustParseAddr("203.0.113.1")}},
			}),
			want: []string{},
		},
		{
			name: "link-local and loopback addresses never count",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{eth(3, "eth1"), {Index: 8, Name: "lo2", Kind: network.KindVirtual, InfoKind: "dummy", AdminUp: true, OperState: "unknown"}},
				Addrs: []network.Addr{addr(3, "169.254.3.3/16"), addr(3, "fe80::3/64"), addr(8, "127.0.0.2/8"), addr(8, "::1/128"),
					addr(8, "ff02::1/128"), addr(8, "0.0.0.0/0")},
			}),
			want: []string{},
			check: func(t *testing.T, v *NetworkVerdict) {
				for _, n := range []string{"eth1", "lo2"} {
					l := linkOf(t, v, n)
					if l.OnNetwork || l.Approved || l.Wire().Approved != nil {
						t.Errorf("%s %+v", n, l)
					}
				}
			},
		},
		{
			name: "ignored virtual docker0",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{{Index: 5, Name: "docker0", Kind: network.KindBridge, Sysfs: true, InfoKind: "bridge", AdminUp: true, Carrier: true, OperState: "up",
					MAC: mustMAC("02:42:ac:11:00:01")}},
				Addrs:  []network.Addr{addr(5, "172.17.0.1/16")},
				Routes: []network.Route{route(5, "172.17.0.254")},
			}),
			want: []string{},
			check: func(t *testing.T, v *NetworkVerdict) {
				l := linkOf(t, v, "docker0")
				if !l.Ignored || !l.Wire().Ignored {
					t.Errorf("docker0 %+v", l)
				}
			},
		},
		{
			name: "a NIC enslaved to a bridge named docker0: the bridge is judged",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{
					{Index: 5, Name: "docker0", Kind: network.KindBridge, InfoKind: "bridge", AdminUp: true, Carrier: true, OperState: "up",
						MAC: mustMAC("02:42:ac:11:00:01")},
					{Index: 6, Name: "eth1", Kind: network.KindEthernet, Hardware: true, MasterIndex: 5, AdminUp: true, Carrier: true, OperState: "up",
						MAC: mustMAC("52:54:00:aa:bb:cc")},
				},
				Addrs: []network.Addr{addr(5, "192.168.1.7/24")},
			}),
			want: []string{"network_multi_homed|if=5", "network_unapproved|if=5|192.168.1.7/24"},
			check: func(t *testing.T, v *NetworkVerdict) {
				if linkOf(t, v, "docker0").Ignored {
					t.Error("docker0 with a physical port is ignored")
				}
			},
		},
		{
			name: "a virtual-looking docker0 that sysfs does not confirm is judged (fail closed)",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{{Index: 5, Name: "docker0", Kind: network.KindVirtual, AdminUp: true, OperState: "unknown"}},
				Addrs: []network.Addr{addr(5, "192.168.42.10/24")},
			}),
			want: []string{"network_multi_homed|if=5", "network_unapproved|if=5|192.168.42.10/24"},
		},
		{
			name: "a macvlan named docker7 on a NIC is judged: a zone bridge",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{
					eth(3, "eth1"),
					{Index: 7, Name: "docker7", Kind: network.KindVirtual, InfoKind: "macvlan", ParentIndex: 3, Sysfs: true, AdminUp: true, Carrier: true, OperState: "up"},
				},
				Addrs: []network.Addr{addr(7, "10.30.0.5/16")},
			}),
			want: []string{"network_zone_bridge|internet,lgwan"},
		},
		{
			name: "the 0/1 + 128/1 split through a link without an approved address",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{eth(3, "eth1")},
				Addrs: []network.Addr{addr(3, "fe80::1/64")},
				Routes: []network.Route{
					{Index: 3, Family: 4, Gateway: netip.MustParseAddr("192.168.1.1"), Dst: netip.MustParsePrefix("0.0.0.0/1"), Table: 254},
					{Index: 3, Family: 4, Gateway: netip.MustParseAddr("192.168.1.1"), Dst: netip.MustParsePrefix("128.0.0.0/1"), Table: 254},
				},
			}),
			want: []string{"network_multi_homed|if=3", "network_unapproved|if=3|route"},
		},
		{
			name: "the on-link 0/1 + 128/1 split",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{eth(3, "eth1")},
				Routes: []network.Route{
					{Index: 3, Family: 4, Dst: netip.MustParsePrefix("0.0.0.0/1"), Table: 254},
					{Index: 3, Family: 4, Dst: netip.MustParsePrefix("128.0.0.0/1"), Table: 254},
				},
			}),
			want: []string{"network_multi_homed|if=3", "network_unapproved|if=3|route"},
		},
		{
			name: "a default-like route through a nexthop object the kernel names no link for",
			snap: plus(onLAN(), network.Snapshot{
				Routes: []network.Route{{Family: 4, Dst: netip.MustParsePrefix("0.0.0.0/1"), Table: 254}},
			}),
			want: []string{"network_unapproved|route=0.0.0.0/1|table=254"},
		},
		{
			name: "a default route in another table (ip rule) through a link without an approved address",
			snap: plus(onLAN(), network.Snapshot{
				Links:  []network.Link{eth(3, "eth1")},
				Routes: []network.Route{{Index: 3, Family: 4, Gateway: netip.MustParseAddr("192.168.1.1"), Dst: netip.MustParsePrefix("0.0.0.0/0"), Table: 100}},
			}),
			want: []string{"network_multi_homed|if=3", "network_unapproved|if=3|route"},
		},
		{
			name: "a route to one subnet through a router on the LAN is no finding",
			snap: plus(onLAN(), network.Snapshot{
				Routes: []network.Route{{Index: 2, Family: 4, Gateway: netip.MustParseAddr("10.20.0.9"), Dst: netip.MustParsePrefix("172.31.0.0/16"), Table: 254}},
			}),
			want: []string{},
		},
		{
			name: "ignore patterns match the whole name, case-sensitive",
			snap: network.Snapshot{
				Links: []network.Link{
					{Index: 5, Name: "Docker0", Kind: network.KindVirtual, Sysfs: true, AdminUp: true, OperState: "unknown"},
					{Index: 6, Name: "xvirbr0", Kind: network.KindVirtual, Sysfs: true, AdminUp: true, OperState: "unknown"},
				},
				Addrs: []network.Addr{addr(5, "172.17.0.1/16"), addr(6, "192.168.122.1/24")},
			},
			want: []string{"network_unapproved|if=5|172.17.0.1/16", "network_unapproved|if=6|192.168.122.1/24"},
		},
		{
			name: "a tethered phone renamed docker0 is not ignored",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{usbLink("docker0", "1-2")},
				Addrs: []network.Addr{addr(5, "192.168.42.2/24")},
			}),
			usb:  pixel,
			want: []string{"network_multi_homed|if=5", "network_unapproved|if=5|192.168.42.2/24", "network_usb_adapter|if=5|1-2"},
			check: func(t *testing.T, v *NetworkVerdict) {
				f := findKind(t, v, wire.KindNetworkUSBAdapter)
				if f.USB != "1-2" || f.Violation.Device != "docker0" || !strings.Contains(f.Violation.MessageEN, "Google Pixel 8 (18d1:4ee3, serial 3A1B) at port 1-2 came up as interface docker0") {
					t.Errorf("usb adapter %+v", f.Violation)
				}
				if linkOf(t, v, "docker0").Ignored {
					t.Error("USB link ignored")
				}
			},
		},
		{
			name: "a USB adapter without an approval callback is named by its port",
			snap: network.Snapshot{Links: []network.Link{usbLink("usb0", "3-1.4")}},
			want: []string{"network_usb_adapter|if=5|3-1.4"},
			check: func(t *testing.T, v *NetworkVerdict) {
				f := findKind(t, v, wire.KindNetworkUSBAdapter)
				if !strings.Contains(f.Violation.MessageEN, "USB network adapter 3-1.4 at port 3-1.4") {
					t.Errorf("message %q", f.Violation.MessageEN)
				}
			},
		},
		{
			name: "a USB adapter down and without an address is not reported yet",
			snap: network.Snapshot{Links: []network.Link{func() network.Link { l := usbLink("usb0", "1-2"); l.AdminUp = false; return l }()}},
			want: []string{},
		},
		{
			name: "approved USB device silences usb_adapter",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{usbLink("usb0", "1-2")},
				Addrs: []network.Addr{addr(5, "10.20.7.7/16")},
			}),
			usb:  func(bus string) (bool, string) { return bus == "1-2", "USB LAN (0b95:1790)" },
			want: []string{},
		},
		{
			name: "bridge with two physical ports",
			snap: network.Snapshot{
				Links: []network.Link{
					{Index: 7, Name: "br0", Kind: network.KindBridge, InfoKind: "bridge", AdminUp: true, Carrier: true, OperState: "up"},
					func() network.Link { l := eth(2, "eth0"); l.MasterIndex = 7; return l }(),
					func() network.Link { l := usbLink("usb0", "1-2"); l.MasterIndex = 7; return l }(),
					{Index: 9, Name: "vnet0", Kind: network.KindVirtual, InfoKind: "tun", AdminUp: true, Carrier: true, OperState: "up", MasterIndex: 7},
				},
				Addrs: []network.Addr{addr(7, "10.20.3.4/16")},
			},
			usb:  func(string) (bool, string) { return true, "" },
			want: []string{"network_multi_homed|if=2,if=5"},
			check: func(t *testing.T, v *NetworkVerdict) {
				if w := linkOf(t, v, "eth0").Wire(); w.Master != "br0" {
					t.Errorf("eth0 wire %+v", w)
				}
			},
		},
		{
			name: "bridge with one physical port and a VM's tap",
			snap: network.Snapshot{
				Links: []network.Link{
					{Index: 7, Name: "br0", Kind: network.KindBridge, InfoKind: "bridge", AdminUp: true, Carrier: true, OperState: "up"},
					func() network.Link { l := eth(2, "eth0"); l.MasterIndex = 7; return l }(),
					{Index: 9, Name: "vnet0", Kind: network.KindVirtual, InfoKind: "tun", AdminUp: true, Carrier: true, OperState: "up", MasterIndex: 7},
				},
				Addrs: []network.Addr{addr(7, "10.20.3.4/16")},
			},
			want: []string{},
		},
		{
			name: "VRF ports stay apart",
			snap: network.Snapshot{
				Links: []network.Link{
					{Index: 7, Name: "vrf0", Kind: network.KindVirtual, InfoKind: "vrf", AdminUp: true, Carrier: true, OperState: "up"},
					func() network.Link { l := eth(2, "eth0"); l.MasterIndex = 7; return l }(),
					func() network.Link { l := eth(3, "eth1"); l.MasterIndex = 7; return l }(),
				},
				Addrs: []network.Addr{addr(2, "10.20.3.4/16"), addr(3, "10.20.9.4/16")},
			},
			want: []string{},
		},
		{
			name: "unregistered, registered and expired neighbours",
			snap: plus(onLAN(), network.Snapshot{Neighbours: []network.Neighbour{
				neigh(2, "10.20.5.5", stranger),
				neigh(2, "10.20.5.6", printer),
				neigh(2, "10.20.5.7", expired),
				neigh(2, "10.20.5.8", today),
				func() network.Neighbour { n := neigh(2, "10.20.0.99", gwMAC); n.State = network.NUDPermanent; return n }(),
			}}),
			want: []string{"lan_device_unregistered|" + expired, "lan_device_unregistered|" + stranger},
			check: func(t *testing.T, v *NetworkVerdict) {
				if n := neighbourOf(t, v, printer); !n.Registered || n.Entry != "複合機 3F" {
					t.Errorf("printer %+v", n)
				}
				if n := neighbourOf(t, v, today); !n.Registered {
					t.Errorf("valid_until is inclusive: %+v", n)
				}
				if n := neighbourOf(t, v, expired); n.Registered {
					t.Errorf("expired %+v", n)
				}
				// the gateway seen at two addresses: one row.
				if n := neighbourOf(t, v, gwMAC); !n.Registered || len(n.IPs) != 2 {
					t.Errorf("gateway %+v", n)
				}
				for _, f := range v.Findings {
					if f.Window != 24*time.Hour {
						t.Errorf("%s window %v", f.Key, f.Window)
					}
				}
				var got []string
				for _, n := range v.Neighbours {
					got = append(got, n.MAC.String())
				}
				if !slices.IsSorted(got) || len(got) != 5 {
					t.Errorf("neighbours %v", got)
				}
				f := findKind(t, v, wire.KindLANDeviceUnregistered)
				if f.Violation.Device != expired || f.Violation.IP != "10.20.5.7" || f.Violation.Interface != "eth0" ||
					f.Violation.LocallyAdministered || !reflect.DeepEqual(f.Violation.Networks, []string{"庁内LAN"}) {
					t.Errorf("violation %+v", f.Violation)
				}
				if strings.Contains(f.Violation.MessageEN, "locally") || strings.Contains(f.Violation.MessageJA, "ローカル") {
					t.Errorf("a maker's MAC said locally administered: %q", f.Violation.MessageEN)
				}
			},
		},
		{
			name: "locally administered MAC, seen over IPv6 and IPv4 on two interfaces",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{eth(3, "eth1")},
				Addrs: []network.Addr{addr(3, "10.40.1.2/16")},
				Neighbours: []network.Neighbour{
					neigh(2, "fe80::1234", "DA:A1:19:00:00:01"),
					neigh(2, "2001:db8::1234", "da:a1:19:00:00:01"),
					neigh(2, "10.20.8.8", "da:a1:19:00:00:01"),
					neigh(3, "10.40.8.8", "da:a1:19:00:00:01"),
				},
			}),
			want: []string{"lan_device_unregistered|da:a1:19:00:00:01"},
			check: func(t *testing.T, v *NetworkVerdict) {
				if len(v.Neighbours) != 3 {
					t.Fatalf("neighbours %+v", v.Neighbours)
				}
				n := v.Neighbours[1] // eth0 sorts before eth1; the gateway's MAC first
				if n.Interface != "eth0" || n.IP.String() != "10.20.8.8" || len(n.IPs) != 3 || !n.LocallyAdministered {
					t.Errorf("row %+v", n)
				}
				w := n.Wire()
				if w.MAC != "da:a1:19:00:00:01" || w.IP != "10.20.8.8" || !reflect.DeepEqual(w.IPs, []string{"fe80::1234", "2001:db8::1234", "10.20.8.8"}) {
					t.Errorf("wire %+v", w)
				}
				f := findKind(t, v, wire.KindLANDeviceUnregistered)
				if !f.Violation.LocallyAdministered || f.Violation.Interface != "eth0" ||
					!strings.Contains(f.Violation.MessageEN, "locally administered (possibly randomised)") ||
					!strings.Contains(f.Violation.MessageJA, "ローカル管理（ランダム化されている可能性あり）") {
					t.Errorf("violation %+v", f.Violation)
				}
			},
		},
		{
			name: "global IPv6 before link-local",
			snap: plus(onLAN(), network.Snapshot{Neighbours: []network.Neighbour{
				neigh(2, "fe80::77", stranger), neigh(2, "2001:db8::77", stranger),
			}}),
			want: []string{"lan_device_unregistered|" + stranger},
			check: func(t *testing.T, v *NetworkVerdict) {
				if n := neighbourOf(t, v, stranger); n.IP.String() != "2001:db8::77" {
					t.Errorf("ip %s", n.IP)
				}
			},
		},
		{
			name: "multicast, broadcast, zero-MAC, MAC-less and bridge forwarding entries are not devices",
			snap: plus(onLAN(), network.Snapshot{Neighbours: []network.Neighbour{
				func() network.Neighbour {
					n := neigh(2, "224.0.0.251", "01:00:5e:00:00:fb")
					n.State = network.NUDNoARP
					return n
				}(),
				func() network.Neighbour {
					n := neigh(2, "10.20.255.255", "ff:ff:ff:ff:ff:ff")
					n.State = network.NUDNoARP
					return n
				}(),
				neigh(2, "10.20.5.1", "00:00:00:00:00:00"),
				neigh(2, "10.20.5.2", ""),
				{Index: 2, MAC: mustMAC(stranger), State: network.NUDPermanent, Flags: 0x02},
				func() network.Neighbour { n := neigh(2, "10.20.5.3", stranger); n.Flags = 0x04; return n }(),
			}}),
			want: []string{},
			check: func(t *testing.T, v *NetworkVerdict) {
				if len(v.Neighbours) != 1 {
					t.Errorf("neighbours %+v", v.Neighbours)
				}
			},
		},
		{
			name: "neighbours on unapproved or ignored links are not LAN devices",
			snap: plus(onLAN(), network.Snapshot{
				Links: []network.Link{eth(3, "eth1"), {Index: 5, Name: "virbr0", Kind: network.KindBridge, Sysfs: true, InfoKind: "bridge", AdminUp: true, OperState: "up", Carrier: true}},
				Addrs: []network.Addr{addr(3, "192.168.9.9/24"), addr(5, "10.20.200.1/24")},
				Neighbours: []network.Neighbour{
					neigh(3, "192.168.9.1", stranger),
					neigh(5, "10.20.200.2", stranger),
				},
			}),
			want: []string{"network_multi_homed|if=3", "network_unapproved|if=3|192.168.9.9/24"},
			check: func(t *testing.T, v *NetworkVerdict) {
				if len(v.Neighbours) != 1 {
					t.Errorf("neighbours %+v", v.Neighbours)
				}
			},
		},
		{
			name: "watch_lan false: no LAN devices, gateways still judged",
			cfg:  func(c *config.Config) { c.Network.WatchLAN = false },
			snap: func() network.Snapshot {
				s := onLAN()
				s.Neighbours = []network.Neighbour{neigh(2, "10.20.0.1", rogueMAC), neigh(2, "10.20.5.5", stranger)}
				return s
			}(),
			want: []string{"network_unapproved|if=2|gw=10.20.0.1|" + rogueMAC},
			check: func(t *testing.T, v *NetworkVerdict) {
				if v.Neighbours != nil {
					t.Errorf("neighbours %+v", v.Neighbours)
				}
			},
		},
		{
			name: "SSID-only network approves a wireless link with that SSID",
			snap: network.Snapshot{
				Links:  []network.Link{wlan("city-staff")},
				Addrs:  []network.Addr{addr(4, "172.16.8.9/22")},
				Routes: []network.Route{route(4, "172.16.8.1")},
			},
			want: []string{},
			check: func(t *testing.T, v *NetworkVerdict) {
				w := v.Links[0].Wire()
				if w.Approved == nil || !*w.Approved || w.Network != "庁内Wi-Fi" || w.MAC == nil || *w.MAC != "52:54:00:00:00:04" ||
					!reflect.DeepEqual(w.Addresses, []string{"172.16.8.9/22"}) {
					t.Errorf("wire %+v", w)
				}
			},
		},
		{
			name: "SSID-only network does not approve another SSID",
			snap: network.Snapshot{
				Links: []network.Link{wlan("city-staff-free")},
				Addrs: []network.Addr{addr(4, "172.16.8.9/22")},
			},
			want: []string{"network_unapproved|if=4|172.16.8.9/22|ssid=city-staff-free"},
			check: func(t *testing.T, v *NetworkVerdict) {
				f := findKind(t, v, wire.KindNetworkUnapproved)
				wantEN := "Interface wlan0 is on a network that is not approved: address 172.16.8.9/22 on Wi-Fi network \"city-staff-free\" is in no approved network. Connecting to a network needs the city's prior permission (article 9)."
				wantJA := "インターフェース wlan0 が許可されていないネットワークに接続されています: アドレス 172.16.8.9/22（Wi-Fi ネットワーク「city-staff-free」）は許可されたネットワークのものではありません。ネットワークへの接続には甲の事前の許可が必要です（第9条）。"
				if f.Violation.MessageEN != wantEN || f.Violation.MessageJA != wantJA || f.Violation.Message != wantJA {
					t.Errorf("messages\n%q\n%q", f.Violation.MessageEN, f.Violation.MessageJA)
				}
				if want := "Disconnect wlan0 now. Get the city's permission (contact: " + testContact + ") before connecting this PC to a network."; f.Violation.RemedyEN != want {
					t.Errorf("remedy %q", f.Violation.RemedyEN)
				}
			},
		},
		{
			name: "an SSID that could fool a reader is escaped in the texts",
			snap: network.Snapshot{
				Links: []network.Link{wlan("free\nwifi\u202e")},
				Addrs: []network.Addr{addr(4, "172.16.8.9/22")},
			},
			want: []string{"network_unapproved|if=4|172.16.8.9/22|ssid=free\\x0awifi\\u{202e}"},
			check: func(t *testing.T, v *NetworkVerdict) {
				if m := v.Findings[0].Violation.MessageEN; strings.ContainsAny(m, "\n\u202e") {
					t.Errorf("message %q", m)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			p := NewNetworkPolicy(cfg)
			v := p.Judge(&tc.snap, testNow, tc.usb)
			if got := keys(v); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("findings\n got %q\nwant %q\n%v", got, tc.want, v.Findings)
			}
			for _, f := range v.Findings {
				checkTexts(t, f.Violation)
			}
			if tc.check != nil {
				tc.check(t, v)
			}
		})
	}
}

// checkTexts asserts that a violation's texts are complete in both
// languages: no template name left, the article and the contact named.
func checkTexts(t *testing.T, v *wire.Violation) {
	t.Helper()
	k, ok := wire.KindOf(v.Kind)
	if !ok {
		t.Fatalf("unknown kind %q", v.Kind)
	}
	if v.Severity != k.Severity || v.Article != k.Article || v.Device == "" {
		t.Errorf("%s: severity %q article %q device %q", v.Kind, v.Severity, v.Article, v.Device)
	}
	ja := strings.NewReplacer(", ", "条・第", "-", "条第").Replace("第" + k.Article + "条")
	if k.Article == "6-3" {
		ja = "第6条第3項"
	}
	for _, s := range []struct{ lang, text, article string }{
		{"ja message", v.MessageJA, ja}, {"en message", v.MessageEN, "article"},
		{"ja remedy", v.RemedyJA, testContact}, {"en remedy", v.RemedyEN, testContact},
	} {
		if !strings.Contains(s.text, s.article) {
			t.Errorf("%s %s %q lacks %q", v.Kind, s.lang, s.text, s.article)
		}
		for _, n := range k.Fields {
			if strings.Contains(s.text, "{"+n+"}") {
				t.Errorf("%s %s %q has {%s} left", v.Kind, s.lang, s.text, n)
			}
		}
	}
	for _, a := range strings.Split(k.Article, ", ") {
		if !strings.Contains(v.MessageEN, a) {
			t.Errorf("%s en message %q lacks article %s", v.Kind, v.MessageEN, a)
		}
	}
}

// Every kind is produced by some case of TestJudgeNetwork, so every
// kind's texts went through checkTexts there; this test holds one full
// text per kind in both languages.
func TestNetworkViolationTexts(t *testing.T) {
	p := NewNetworkPolicy(testConfig())
	s := plus(onLAN(), network.Snapshot{
		Links:      []network.Link{eth(3, "eth1"), usbLink("usb0", "1-2")},
		Addrs:      []network.Addr{addr(3, "10.30.1.2/16"), addr(5, "192.168.42.2/24")},
		Neighbours: []network.Neighbour{neigh(2, "10.20.5.5", "02:00:00:00:00:05")},
	})
	v := p.Judge(&s, testNow, nil)
	want := map[string][4]string{
		wire.KindNetworkUnapproved: {
			"インターフェース usb0 が許可されていないネットワークに接続されています: アドレス 192.168.42.2/24 は許可されたネットワークのものではありません。ネットワークへの接続には甲の事前の許可が必要です（第9条）。",
			"Interface usb0 is on a network that is not approved: address 192.168.42.2/24 is in no approved network. Connecting to a network needs the city's prior permission (article 9).",
			"直ちに usb0 の接続を切ってください。ネットワークに接続する前に甲（" + testContact + "）の許可を得てください。",
			"Disconnect usb0 now. Get the city's permission (contact: " + testContact + ") before connecting this PC to a network.",
		},
		wire.KindNetworkUSBAdapter: {
			"USB ネットワークアダプター 1-2（ポート 1-2）がインターフェース usb0 として接続されました。スマートフォンのテザリングや USB LAN アダプターは許可なくネットワークに接続します（第9条・第11条）。",
			"USB network adapter 1-2 at port 1-2 came up as interface usb0. Phone tethering or a USB network adapter connects the PC to a network without permission (articles 9 and 11).",
			"直ちに取り外してください。使用する場合は、事前に甲（" + testContact + "）の許可を得て、その USB 機器を承認リストに登録してもらってください。",
			"Unplug it now. To use it, get the city's prior permission (contact: " + testContact + ") and have the USB device added to the approved list.",
		},
		wire.KindNetworkMultiHomed: {
			"この PC は許可されたネットワーク インターネット接続系、庁内LAN に接続したまま、usb0 を通じて許可されていないネットワークにも接続しています。庁内ネットワークの外への橋渡しになります（第9条）。",
			"This PC is connected to インターネット接続系, 庁内LAN (approved) and at the same time on a network that is not approved through usb0: a bridge out of the city network (article 9).",
			"直ちに usb0 の接続を切ってください。甲（" + testContact + "）に報告してください。",
			"Disconnect usb0 now and tell the city (" + testContact + ").",
		},
		wire.KindNetworkZoneBridge: {
			"この PC は インターネット接続系と庁内LAN に同時に接続しています。系統 internet・lgwan は決して接続してはなりません（第9条、三層の対策）。",
			"This PC is on インターネット接続系 and 庁内LAN at once. The zones internet and lgwan must never be connected (article 9, the three-layer model).",
			"直ちにどちらか一方の接続を切り、すぐに甲（" + testContact + "）に報告してください。",
			"Disconnect one of them now and report it to the city (" + testContact + ") at once.",
		},
		wire.KindLANDeviceUnregistered: {
			"登録されていない機器 02:00:00:00:00:05（10.20.5.5）がネットワーク 庁内LAN のインターフェース eth0 上にいます。この MAC アドレスはローカル管理（ランダム化されている可能性あり）です（第9条）。",
			"An unregistered device 02:00:00:00:00:05 (10.20.5.5) is on network 庁内LAN at interface eth0; its MAC is locally administered (possibly randomised) (article 9).",
			"ご自分の機器であれば直ちにネットワークから外してください。心当たりがなければ甲（" + testContact + "）に知らせてください。",
			"If it is yours, disconnect it from the network now; if not, tell the city (" + testContact + ").",
		},
	}
	seen := map[string]bool{}
	for _, f := range v.Findings {
		w, ok := want[f.Violation.Kind]
		if !ok || seen[f.Violation.Kind] {
			continue
		}
		seen[f.Violation.Kind] = true
		got := [4]string{f.Violation.MessageJA, f.Violation.MessageEN, f.Violation.RemedyJA, f.Violation.RemedyEN}
		if got != w {
			t.Errorf("%s texts\n got %q\nwant %q", f.Violation.Kind, got, w)
		}
		if f.Violation.Message != f.Violation.MessageJA {
			t.Errorf("%s: language ja, message %q", f.Violation.Kind, f.Violation.Message)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("kinds seen %v, want all of %d: %v", seen, len(want), keys(v))
	}

	cfg := testConfig()
	cfg.Agent.Language = "en"
	v = NewNetworkPolicy(cfg).Judge(&s, testNow, nil)
	for _, f := range v.Findings {
		if f.Violation.Message != f.Violation.MessageEN {
			t.Errorf("%s: language en, message %q", f.Violation.Kind, f.Violation.Message)
		}
	}
}

func TestNetworkKeysStable(t *testing.T) {
	p := NewNetworkPolicy(testConfig())
	s := plus(onLAN(), network.Snapshot{
		Links:      []network.Link{wlan("home"), usbLink("usb0", "1-2"), eth(3, "eth1")},
		Addrs:      []network.Addr{addr(4, "192.168.1.5/24"), addr(5, "192.168.42.2/24"), addr(3, "10.30.1.1/16")},
		Neighbours: []network.Neighbour{neigh(2, "10.20.5.6", rogueMAC), neigh(2, "10.20.5.5", stranger)},
	})
	first := keys(p.Judge(&s, testNow, nil))
	if len(first) != 7 {
		t.Fatalf("findings %q", first)
	}
	// The same input, in another order, a day later: the same keys.
	r := s
	r.Links = slices.Clone(s.Links)
	slices.Reverse(r.Links)
	r.Neighbours = slices.Clone(s.Neighbours)
	slices.Reverse(r.Neighbours)
	if again := keys(p.Judge(&r, testNow.Add(24*time.Hour), nil)); !reflect.DeepEqual(first, again) {
		t.Errorf("keys changed\n%q\n%q", first, again)
	}
	// The address changes: that finding has a new key, the others not.
	c := s
	c.Addrs = slices.Clone(s.Addrs)
	for i := range c.Addrs {
		if c.Addrs[i].Prefix.String() == "192.168.1.5/24" {
			c.Addrs[i] = addr(4, "192.168.1.6/24")
		}
	}
	changed := keys(p.Judge(&c, testNow, nil))
	if slices.Contains(changed, "network_unapproved|if=4|192.168.1.5/24|ssid=home") ||
		!slices.Contains(changed, "network_unapproved|if=4|192.168.1.6/24|ssid=home") {
		t.Errorf("keys after the address change %q", changed)
	}
	var kept int
	for _, k := range changed {
		if slices.Contains(first, k) {
			kept++
		}
	}
	if kept != len(first)-1 {
		t.Errorf("%d keys kept of %d: %q", kept, len(first), changed)
	}
}

// TestNetworkExpandLikeWire holds violationLang's expansion to
// wire.Expand, the one Texts.Violation uses.
func TestNetworkExpandLikeWire(t *testing.T) {
	texts := Texts{Language: "ja", Contact: testContact}
	for _, k := range wire.Kinds {
		vals := map[string]string{}
		var tv []textValue
		for i, n := range k.Fields {
			if n == "contact" || i == 1 { // leave one name without a value
				continue
			}
			v := "<" + n + " {x}>"
			vals[n] = v
			tv = append(tv, same(n, v))
		}
		want := texts.Violation(k.Kind, "dev", vals)
		got := texts.violationLang(k.Kind, "dev", tv...)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s\n got %+v\nwant %+v", k.Kind, got, want)
		}
	}
	for _, tmpl := range []string{"", "{", "}", "{{contact}", "a{contact}b{", "{contact}{nope}{contact}", "{}"} {
		want := wire.Expand(tmpl, map[string]string{"contact": "C"})
		var b strings.Builder
		if (Texts{Contact: "C"}).expand(&b, tmpl, nil, true); b.String() != want {
			got := b.String()
			t.Errorf("expand(%q) = %q, want %q", tmpl, got, want)
		}
	}
}
