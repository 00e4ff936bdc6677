package network

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"
)

// readCapture reads testdata/<name>, captured by TestCapture.
func readCapture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseCapture(t *testing.T, name string) []Change {
	t.Helper()
	cs, err := ParseMessages(readCapture(t, name))
	if err != nil {
		t.Fatalf("ParseMessages(%s): %v", name, err)
	}
	return cs
}

// rawMessage is one netlink message of a capture, header fields and
// payload.
type rawMessage struct {
	off, len int
	typ      uint16
	data     []byte
}

// splitRaw splits a capture into its messages (the test's own walk,
// independent of ParseMessages).
func splitRaw(t testing.TB, b []byte) []rawMessage {
	t.Helper()
	var ms []rawMessage
	for off := 0; off < len(b); {
		l := int(binary.NativeEndian.Uint32(b[off:]))
		if l < 16 || off+l > len(b) {
			t.Fatalf("capture: bad message at %d", off)
		}
		ms = append(ms, rawMessage{off: off, len: l, typ: binary.NativeEndian.Uint16(b[off+4:]), data: b[off+16 : off+l]})
		off += (l + 3) &^ 3
	}
	return ms
}

func findLink(cs []Change, name string) *Link {
	for _, c := range cs {
		if c.Link != nil && c.Link.Name == name {
			return c.Link
		}
	}
	return nil
}

func TestParseDumpLinks(t *testing.T) {
	cs := parseCapture(t, "dump_links.bin")
	if len(cs) != 4 {
		t.Fatalf("%d links, want 4 (lo, veth0, br0, ifb1)", len(cs))
	}
	for _, c := range cs {
		if c.Kind != ChangeLink || c.Deleted || c.Link == nil {
			t.Errorf("dump change %+v, want a link not deleted", c)
		}
	}
	lo := findLink(cs, "lo")
	if lo == nil || lo.Index != 1 || lo.Kind != KindLoopback || lo.MAC != nil || !lo.AdminUp || lo.OperState != "unknown" || !lo.Connected() {
		t.Errorf("lo = %+v, want index 1, loopback, no MAC (all zero), up, operstate unknown", lo)
	}
	veth := findLink(cs, "veth0")
	if veth == nil {
		t.Fatal("no veth0")
	}
	// Set as 02:AA:BB:CC:DD:01; shown lower-case.
	if veth.Index != 2 || veth.MAC.String() != "02:aa:bb:cc:dd:01" || veth.InfoKind != "veth" || veth.Kind != KindVirtual ||
		!veth.AdminUp || !veth.Carrier || veth.OperState != "up" || veth.Type != 1 || veth.Hardware {
		t.Errorf("veth0 = %+v", veth)
	}
	br := findLink(cs, "br0")
	if br == nil || br.Kind != KindBridge || br.InfoKind != "bridge" {
		t.Fatalf("br0 = %+v, want a bridge", br)
	}
	port := findLink(cs, "ifb1")
	if port == nil || port.MasterIndex != br.Index || port.Kind != KindVirtual || port.OperState != "unknown" || !port.Connected() {
		t.Errorf("ifb1 = %+v, want a virtual port of br0 (index %d), operstate unknown", port, br.Index)
	}
}

// TestParseDumpLower: mv0 is a macvlan on veth0, whose peer is in another
// namespace (IFLA_LINK_NETNSID); vethA and vethB are a pair inside.
func TestParseDumpLower(t *testing.T) {
	cs := parseCapture(t, "dump_lower.bin")
	veth, mv := findLink(cs, "veth0"), findLink(cs, "mv0")
	va, vb := findLink(cs, "vethA"), findLink(cs, "vethB")
	lo := findLink(cs, "lo")
	if veth == nil || mv == nil || va == nil || vb == nil || lo == nil {
		t.Fatalf("links %+v", cs)
	}
	if mv.InfoKind != "macvlan" || mv.ParentIndex != veth.Index || mv.Kind != KindVirtual {
		t.Errorf("mv0 = %+v, want a macvlan with ParentIndex %d (veth0)", mv, veth.Index)
	}
	if veth.ParentIndex != 0 {
		t.Errorf("veth0 ParentIndex %d: its IFLA_LINK is its peer's index in another namespace", veth.ParentIndex)
	}
	if va.ParentIndex != vb.Index || vb.ParentIndex != va.Index {
		t.Errorf("vethA ParentIndex %d, vethB %d: want each other's (%d, %d)", va.ParentIndex, vb.ParentIndex, vb.Index, va.Index)
	}
	if lo.ParentIndex != 0 {
		t.Errorf("lo ParentIndex %d", lo.ParentIndex)
	}
	// The capture must exercise the exclusion: veth0 carries IFLA_LINK
	// (5) and IFLA_LINK_NETNSID.
	for _, m := range splitRaw(t, readCapture(t, "dump_lower.bin")) {
		if m.typ == rtmNewLink && binary.NativeEndian.Uint32(m.data[4:8]) == uint32(veth.Index) {
			if !hasAttr(m.data[sizeofIfInfomsg:], 5) || !hasAttr(m.data[sizeofIfInfomsg:], iflaLinkNetnsid) {
				t.Error("veth0's message lacks IFLA_LINK or IFLA_LINK_NETNSID")
			}
		}
	}
}

func TestParseDumpAddrs(t *testing.T) {
	cs := parseCapture(t, "dump_addrs.bin")
	want := map[string]int{
		"127.0.0.1/8":    1,
		"::1/128":        1,
		"192.0.2.1/24":   2,
		"2001:db8::1/64": 2,
	}
	got := map[string]int{}
	for _, c := range cs {
		if c.Kind != ChangeAddr || c.Addr == nil || c.Deleted {
			t.Fatalf("change %+v, want an address", c)
		}
		got[c.Addr.Prefix.String()] = c.Addr.Index
		if c.Addr.Peer.IsValid() {
			t.Errorf("%v has peer %v on a broadcast link", c.Addr.Prefix, c.Addr.Peer)
		}
	}
	for p, idx := range want {
		if got[p] != idx {
			t.Errorf("address %s on index %d, want %d (got %v)", p, got[p], idx, got)
		}
	}
	var countable int
	for _, c := range cs {
		if c.Addr.Countable() {
			countable++
		}
	}
	if countable != 2 {
		t.Errorf("%d countable addresses, want 2 (192.0.2.1, 2001:db8::1)", countable)
	}
}

func TestParseDumpRoutes(t *testing.T) {
	cs := parseCapture(t, "dump_routes.bin")
	// Kept: the main table's defaults, 198.51.100.0/24 through a gateway,
	// the default of table 100. Dropped: the local table, the prefix
	// routes of the addresses and fe80::/64 (no gateway), multicast.
	v4, v6 := netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")
	want := map[Route]bool{
		{Dst: v4, Table: 254, Index: 2, Gateway: netip.MustParseAddr("192.0.2.254"), Family: 4, Priority: 100}:                        true,
		{Dst: netip.MustParsePrefix("198.51.100.0/24"), Table: 254, Index: 2, Gateway: netip.MustParseAddr("192.0.2.254"), Family: 4}: true,
		{Dst: v4, Table: 100, Index: 2, Gateway: netip.MustParseAddr("192.0.2.253"), Family: 4}:                                       true,
		{Dst: v6, Table: 254, Index: 2, Gateway: netip.MustParseAddr("2001:db8::fe"), Family: 6, Priority: 1024}:                      true,
	}
	if len(cs) != len(want) {
		t.Fatalf("%d routes, want %d: %+v", len(cs), len(want), cs)
	}
	var defaults int
	for i, c := range cs {
		if c.Kind != ChangeRoute || c.Route == nil || !want[*c.Route] {
			t.Errorf("route %d = %+v, not one of %+v", i, c.Route, want)
			continue
		}
		if c.Route.IsDefault() {
			defaults++
			if c.Route.Table != 254 || c.Route.Dst.Bits() != 0 {
				t.Errorf("IsDefault of %+v", c.Route)
			}
		}
	}
	if defaults != 2 {
		t.Errorf("%d routes IsDefault, want 2 (the main table's IPv4 and IPv6)", defaults)
	}
	// The drops are exercised: the capture holds local-table routes and
	// gateway-less prefix routes.
	var local, onLink int
	for _, m := range splitRaw(t, readCapture(t, "dump_routes.bin")) {
		if m.typ != rtmNewRoute {
			continue
		}
		if m.data[4] == rtTableLocal {
			local++
		} else if m.data[1] != 0 && m.data[7] == rtnUnicast && !hasAttr(m.data[sizeofRtMsg:], 5) { // RTA_GATEWAY
			onLink++
		}
	}
	if local == 0 || onLink == 0 {
		t.Errorf("the capture holds %d local-table routes and %d gateway-less ones: the drops are not exercised", local, onLink)
	}
}

// TestParseRouteDrops builds route messages: the local table (by
// rtm_table or RTA_TABLE), a gateway-less route that is not a default and
// a multipath route with one nexthop through a gateway.
func TestParseRouteDrops(t *testing.T) {
	build := func(rm rtnetlink.RouteMessage) []byte {
		t.Helper()
		b, err := rm.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	gw := net.ParseIP("192.0.2.254").To4()
	tests := []struct {
		name string
		rm   rtnetlink.RouteMessage
		want []Route
	}{
		{"local table", rtnetlink.RouteMessage{Family: afInet, DstLength: 32, Table: rtTableLocal, Type: rtnUnicast,
			Attributes: rtnetlink.RouteAttributes{Dst: net.ParseIP("192.0.2.1").To4(), Gateway: gw, OutIface: 2}}, nil},
		{"local table in RTA_TABLE", rtnetlink.RouteMessage{Family: afInet, Table: 252, Type: rtnUnicast,
			Attributes: rtnetlink.RouteAttributes{Table: rtTableLocal, Gateway: gw, OutIface: 2}}, nil},
		{"on-link prefix", rtnetlink.RouteMessage{Family: afInet, DstLength: 24, Table: rtTableMain, Type: rtnUnicast,
			Attributes: rtnetlink.RouteAttributes{Dst: net.ParseIP("192.0.2.0").To4(), OutIface: 2}}, nil},
		{"on-link default of table 1000", rtnetlink.RouteMessage{Family: afInet, Table: 252, Type: rtnUnicast,
			Attributes: rtnetlink.RouteAttributes{Table: 1000, OutIface: 3}},
			[]Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Table: 1000, Index: 3, Family: 4}}},
		{"multipath prefix", rtnetlink.RouteMessage{Family: afInet, DstLength: 16, Table: rtTableMain, Type: rtnUnicast,
			Attributes: rtnetlink.RouteAttributes{Dst: net.ParseIP("10.9.0.0").To4(), Multipath: []rtnetlink.NextHop{
				{Hop: rtnetlink.RTNextHop{IfIndex: 2}, Gateway: gw},
				{Hop: rtnetlink.RTNextHop{IfIndex: 4}},
			}}},
			[]Route{{Dst: netip.MustParsePrefix("10.9.0.0/16"), Table: rtTableMain, Index: 2, Gateway: netip.AddrFrom4([4]byte(gw)), Family: 4}}},
		{"blackhole", rtnetlink.RouteMessage{Family: afInet, Table: rtTableMain, Type: 6}, nil},
	}
	for _, tt := range tests {
		cs, err := appendMessage(nil, rtmNewRoute, 0, build(tt.rm))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var got []Route
		for _, c := range cs {
			got = append(got, *c.Route)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
	// dst_len past the family's bits is malformed.
	if _, err := appendMessage(nil, rtmNewRoute, 0, build(rtnetlink.RouteMessage{Family: afInet, DstLength: 33, Table: rtTableMain, Type: rtnUnicast})); !errors.Is(err, ErrMalformed) {
		t.Errorf("dst_len 33: %v", err)
	}
}

func TestParseDumpNeighbours(t *testing.T) {
	cs := parseCapture(t, "dump_neighs.bin")
	byIP := map[string]*Neighbour{}
	for _, c := range cs {
		if c.Kind != ChangeNeighbour {
			t.Fatalf("change %+v, want a neighbour", c)
		}
		byIP[c.Neighbour.IP.String()] = c.Neighbour
	}
	peer := byIP["192.0.2.2"]
	if peer == nil || peer.Index != 2 || peer.MAC.String() != "02:aa:bb:cc:dd:02" || peer.State&(NUDReachable|NUDStale|NUDDelay|NUDProbe) == 0 || !peer.HasMAC() {
		t.Errorf("learnt neighbour 192.0.2.2 = %+v, want veth1's MAC in a learnt state", peer)
	}
	gw := byIP["192.0.2.254"]
	if gw == nil || gw.State != NUDPermanent || gw.MAC.String() != "02:00:00:00:00:fe" || !gw.HasMAC() {
		t.Errorf("static neighbour = %+v, want PERMANENT 02:00:00:00:00:fe", gw)
	}
	zero := byIP["192.0.2.99"]
	if zero == nil || zero.HasMAC() {
		t.Errorf("all-zero MAC neighbour = %+v, want listed without a usable MAC", zero)
	}
	mc := byIP["224.0.0.22"]
	if mc == nil || mc.State != NUDNoARP || mc.HasMAC() {
		t.Errorf("multicast neighbour = %+v, want NOARP with a multicast MAC that is not a device", mc)
	}
}

func TestParseEvents(t *testing.T) {
	b := readCapture(t, "events.bin")
	cs := parseCapture(t, "events.bin")
	has := func(what string, f func(c Change) bool) {
		t.Helper()
		for _, c := range cs {
			if f(c) {
				return
			}
		}
		t.Errorf("no %s in events.bin", what)
	}
	has("ifb0 created down", func(c Change) bool {
		return c.Kind == ChangeLink && !c.Deleted && c.Link.Name == "ifb0" && !c.Link.AdminUp
	})
	has("ifb0 set up", func(c Change) bool {
		return c.Kind == ChangeLink && !c.Deleted && c.Link.Name == "ifb0" && c.Link.AdminUp && c.Link.Connected()
	})
	has("ifb0 deleted", func(c Change) bool { return c.Kind == ChangeLink && c.Deleted && c.Link.Name == "ifb0" })
	has("veth0 down", func(c Change) bool {
		return c.Kind == ChangeLink && c.Link.Name == "veth0" && !c.Link.AdminUp && c.Link.OperState == "down"
	})
	has("ifb0 a port of br0", func(c Change) bool {
		return c.Kind == ChangeLink && c.Link.Name == "ifb0" && c.Link.MasterIndex == 3
	})
	addr := netip.MustParsePrefix("203.0.113.5/24")
	has("address added", func(c Change) bool { return c.Kind == ChangeAddr && !c.Deleted && c.Addr.Prefix == addr })
	has("address removed", func(c Change) bool { return c.Kind == ChangeAddr && c.Deleted && c.Addr.Prefix == addr })
	for _, gw := range []string{"192.0.2.254", "192.0.2.253"} {
		g := netip.MustParseAddr(gw)
		has("multipath nexthop "+gw+" replacing", func(c Change) bool {
			return c.Kind == ChangeRoute && !c.Deleted && c.Replace && c.Route.Gateway == g && c.Route.Index == 2 && c.Route.Priority == 100
		})
		has("multipath nexthop "+gw+" deleted", func(c Change) bool {
			return c.Kind == ChangeRoute && c.Deleted && c.Route.Gateway == g
		})
	}
	n77 := netip.MustParseAddr("192.0.2.77")
	has("neighbour added", func(c Change) bool {
		return c.Kind == ChangeNeighbour && !c.Deleted && c.Neighbour.IP == n77 && c.Neighbour.MAC.String() == "02:00:00:00:00:77"
	})
	has("neighbour deleted", func(c Change) bool { return c.Kind == ChangeNeighbour && c.Deleted && c.Neighbour.IP == n77 })

	// The bridge's AF_BRIDGE port notifications (RTM_NEWLINK and
	// RTM_DELLINK of family 7) are in the capture and are dropped: an
	// RTM_DELLINK of a port leaving a bridge is not the link going away.
	var bridgeMsgs, linkMsgs int
	for _, m := range splitRaw(t, b) {
		if m.typ == rtmNewLink || m.typ == rtmDelLink {
			if m.data[0] == afBridge {
				bridgeMsgs++
			} else {
				linkMsgs++
			}
		}
	}
	var links int
	for _, c := range cs {
		if c.Kind == ChangeLink {
			links++
			if c.Deleted && c.Link.Name != "ifb0" {
				t.Errorf("link %s deleted, only ifb0 was", c.Link.Name)
			}
		}
	}
	if bridgeMsgs == 0 || links != linkMsgs {
		t.Errorf("%d AF_BRIDGE link messages, %d others, %d link changes: want some AF_BRIDGE ones, all dropped", bridgeMsgs, linkMsgs, links)
	}
	// Gateway-less routes other than defaults (the prefix routes of
	// 203.0.113.5/24) and the local table's are dropped.
	for _, c := range cs {
		if c.Kind == ChangeRoute && (c.Route.Dst.Bits() != 0 && !c.Route.Gateway.IsValid() || c.Route.Table == rtTableLocal) {
			t.Errorf("route %+v was not dropped", c.Route)
		}
	}
}

// TestParseTruncated cuts every capture at many offsets: a cut inside a
// message is an error naming the message, never a panic; a cut at a
// message boundary is whole messages.
func TestParseTruncated(t *testing.T) {
	for _, name := range []string{"dump_links.bin", "dump_addrs.bin", "dump_routes.bin", "dump_neighs.bin", "events.bin", "dump_lower.bin"} {
		b := readCapture(t, name)
		bounds := map[int]bool{}
		for _, m := range splitRaw(t, b) {
			bounds[m.off] = true
		}
		step := max(1, len(b)/300)
		for cut := 1; cut < len(b); cut += step {
			cs, err := ParseMessages(b[:cut])
			if bounds[cut] {
				if err != nil {
					t.Errorf("%s cut at message boundary %d: %v", name, cut, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s cut at %d: no error (%d changes)", name, cut, len(cs))
				continue
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "message ") {
				t.Errorf("%s cut at %d: error %q does not wrap ErrMalformed or name the message", name, cut, err)
			}
		}
	}
}

// TestParseMalformed breaks captured messages in place.
func TestParseMalformed(t *testing.T) {
	links := readCapture(t, "dump_links.bin")
	veth := splitRaw(t, links)[1]
	neighs := splitRaw(t, readCapture(t, "dump_neighs.bin"))
	neigh := neighs[1]

	tests := []struct {
		name string
		msg  rawMessage
		edit func(b []byte) // b is the whole message, header included
		want string
	}{
		{"header length below 16", veth, func(b []byte) { binary.NativeEndian.PutUint32(b, 8) }, "message 0 (RTM_NEWLINK)"},
		{"header length past the end", veth, func(b []byte) { binary.NativeEndian.PutUint32(b, uint32(len(b)+4)) }, "message 0"},
		{"short ifinfomsg", veth, func(b []byte) { binary.NativeEndian.PutUint32(b, 16+8) }, "RTM_NEWLINK"},
		{"attribute length past the end", veth, func(b []byte) { binary.NativeEndian.PutUint16(b[16+16:], 0xfff0) }, "RTM_NEWLINK"},
		{"attribute length below 4", veth, func(b []byte) { binary.NativeEndian.PutUint16(b[16+16:], 2) }, "RTM_NEWLINK"},
		{"IFLA_MTU of 1 byte", veth, func(b []byte) { setAttrType(t, b[16+16:], 16, 4) }, "attribute 4: 1 bytes"},
		{"NDA_DST of 3 bytes", neigh, func(b []byte) { setAttrLen(t, b[16+12:], 1, 3) }, "RTM_NEWNEIGH"},
		{"NDA_IFINDEX of 2 bytes", neigh, func(b []byte) { setAttrType(t, b[16+12:], 1, 8) }, "RTM_NEWNEIGH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := make([]byte, 16+len(tt.msg.data))
			copy(b, readWhole(tt.msg))
			tt.edit(b)
			_, err := ParseMessages(b)
			if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one wrapping ErrMalformed naming %q", err, tt.want)
			}
		})
	}
}

// readWhole gives back a message with its header.
func readWhole(m rawMessage) []byte {
	b := make([]byte, 16+len(m.data))
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], m.typ)
	copy(b[16:], m.data)
	return b
}

// attrAt returns the offset of the attribute of type typ in an attribute
// list.
func attrAt(t *testing.T, b []byte, typ uint16) int {
	t.Helper()
	for off := 0; off+4 <= len(b); {
		l := int(binary.NativeEndian.Uint16(b[off:]))
		if binary.NativeEndian.Uint16(b[off+2:]) == typ {
			return off
		}
		if l < 4 {
			break
		}
		off += (l + 3) &^ 3
	}
	t.Fatalf("no attribute %d", typ)
	return 0
}

// setAttrType gives the attribute of type from the type to, keeping its
// length (so that its length no longer fits).
func setAttrType(t *testing.T, b []byte, from, to uint16) {
	off := attrAt(t, b, from)
	binary.NativeEndian.PutUint16(b[off+2:], to)
}

// setAttrLen shrinks the payload of the attribute of type typ to n bytes
// (the rest becomes padding that is not read).
func setAttrLen(t *testing.T, b []byte, typ uint16, n int) {
	off := attrAt(t, b, typ)
	binary.NativeEndian.PutUint16(b[off:], uint16(4+n))
}

func TestParseErrorMessage(t *testing.T) {
	b := make([]byte, 36)
	binary.NativeEndian.PutUint32(b[0:4], 36)
	binary.NativeEndian.PutUint16(b[4:6], nlmsgError)
	binary.NativeEndian.PutUint32(b[16:20], uint32(0xffffffff-12)) // -13, EACCES
	if _, err := ParseMessages(b); err == nil || !strings.Contains(err.Error(), "kernel error 13") {
		t.Errorf("NLMSG_ERROR -13: %v", err)
	}
	binary.NativeEndian.PutUint32(b[16:20], 0) // an acknowledgement
	if cs, err := ParseMessages(b); err != nil || len(cs) != 0 {
		t.Errorf("NLMSG_ERROR 0: %v, %v", cs, err)
	}
	binary.NativeEndian.PutUint16(b[4:6], nlmsgOverrun)
	if cs, err := ParseMessages(b); err != nil || len(cs) != 1 || cs[0].Kind != ChangeOverrun {
		t.Errorf("NLMSG_OVERRUN: %v, %v", cs, err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		l        Link
		wireless bool
		want     Kind
	}{
		{Link{Type: arphrdLoopback}, false, KindLoopback},
		{Link{Type: 1, InfoKind: "bond"}, false, KindBridge},
		{Link{Type: 1, InfoKind: "team", Hardware: true}, false, KindBridge},
		{Link{Type: arphrdNone, InfoKind: "wireguard"}, false, KindTunnel},
		{Link{Type: 1, InfoKind: "tun"}, false, KindTunnel},
		{Link{Type: arphrdPPP}, false, KindTunnel},
		{Link{Type: 1, Hardware: true, USB: "1-2"}, true, KindUSB},
		{Link{Type: 1, Hardware: true}, true, KindWireless},
		{Link{Type: 1, Hardware: true}, false, KindEthernet},
		{Link{Type: 1, InfoKind: "veth"}, false, KindVirtual},
		{Link{Type: 1, InfoKind: "macvlan"}, false, KindVirtual},
	}
	for _, tt := range tests {
		if got := classify(&tt.l, tt.wireless); got != tt.want {
			t.Errorf("classify(%+v, wireless %v) = %s, want %s", tt.l, tt.wireless, got, tt.want)
		}
	}
}

func TestSSIDElement(t *testing.T) {
	ies := []byte{1, 2, 0x82, 0x84, 0, 5, 'c', 'a', 0xff, '\n', 'e', 3, 1, 6}
	if s, ok := ssidElement(ies); !ok || s != "ca\xff\ne" {
		t.Errorf("ssidElement = %q, %v", s, ok)
	}
	if _, ok := ssidElement(ies[:6]); ok {
		t.Error("a cut SSID element was taken")
	}
}
