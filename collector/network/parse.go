package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/jsimonetti/rtnetlink/v2"

	"github.com/mamori-agent/mamori/internal/safe"
)

// Linux rtnetlink numbers, spelt out here so that the decoder builds and is
// tested on every OS (golang.org/x/sys/unix has them only on Linux). Values
// from include/uapi/linux/{netlink,rtnetlink,if_link,neighbour,if_arp}.h.
const (
	nlmsgHdrLen = 16     // sizeof(struct nlmsghdr)
	nlaTypeMask = 0x3fff // NLA_TYPE_MASK: nlattr.nla_type without NLA_F_NESTED, NLA_F_NET_BYTEORDER

	nlmsgNoop    = 0x1 // NLMSG_NOOP
	nlmsgError   = 0x2 // NLMSG_ERROR
	nlmsgDone    = 0x3 // NLMSG_DONE
	nlmsgOverrun = 0x4 // NLMSG_OVERRUN

	nlmFReplace = 0x100 // NLM_F_REPLACE

	rtmNewLink  = 16 // RTM_NEWLINK
	rtmDelLink  = 17 // RTM_DELLINK
	rtmGetLink  = 18 // RTM_GETLINK
	rtmNewAddr  = 20 // RTM_NEWADDR
	rtmDelAddr  = 21 // RTM_DELADDR
	rtmGetAddr  = 22 // RTM_GETADDR
	rtmNewRoute = 24 // RTM_NEWROUTE
	rtmDelRoute = 25 // RTM_DELROUTE
	rtmGetRoute = 26 // RTM_GETROUTE
	rtmNewNeigh = 28 // RTM_NEWNEIGH
	rtmDelNeigh = 29 // RTM_DELNEIGH
	rtmGetNeigh = 30 // RTM_GETNEIGH

	afUnspec = 0  // AF_UNSPEC
	afInet   = 2  // AF_INET
	afBridge = 7  // AF_BRIDGE
	afInet6  = 10 // AF_INET6

	rtTableMain  = 254 // RT_TABLE_MAIN
	rtTableLocal = 255 // RT_TABLE_LOCAL
	rtnUnicast   = 1   // RTN_UNICAST

	iflaLinkNetnsid = 37 // IFLA_LINK_NETNSID

	iffUp      = 0x1     // IFF_UP
	iffLowerUp = 0x10000 // IFF_LOWER_UP

	sizeofIfInfomsg = 16
	sizeofIfAddrmsg = 8
	sizeofRtMsg     = 12
	sizeofNdMsg     = 12
)

// ARPHRD_* hardware types (include/uapi/linux/if_arp.h) that decide a
// link's Kind.
const (
	arphrdPPP      = 512
	arphrdTunnel   = 768
	arphrdTunnel6  = 769
	arphrdLoopback = 772
	arphrdSIT      = 776
	arphrdIPGRE    = 778
	arphrdNone     = 0xfffe
)

// ErrMalformed is wrapped by the errors of ParseMessages for input that is
// not well-formed rtnetlink.
var ErrMalformed = errors.New("malformed rtnetlink message")

// ParseMessages decodes a buffer of one or more rtnetlink messages, netlink
// headers included, as read from a NETLINK_ROUTE socket (one datagram, or
// several concatenated). Link (RTM_NEWLINK, RTM_DELLINK), address
// (RTM_NEWADDR, RTM_DELADDR), route (RTM_NEWROUTE, RTM_DELROUTE) and
// neighbour (RTM_NEWNEIGH, RTM_DELNEIGH) messages become Changes, with
// Deleted set for RTM_DEL*; NLMSG_OVERRUN becomes a ChangeOverrun. It drops,
// without error: routes that are not unicast, routes of the local table
// (255), and of the routes that are not defaults (dst_len 0) the nexthops
// without a gateway (see Route); neighbours and addresses of families other
// than AF_INET and AF_INET6 (the bridge forwarding database, AF_BRIDGE);
// link messages of a family other than AF_UNSPEC (a bridge's port
// notifications, AF_BRIDGE, which are not about the link itself);
// NLMSG_NOOP, NLMSG_DONE and message types it does not know. Decoding
// stops at NLMSG_DONE. Each nexthop of a multipath route (RTA_MULTIPATH)
// is a Change of its own.
//
// Input that is truncated or malformed returns an error that wraps
// ErrMalformed and names the message (its index from 0, and its type),
// together with the changes decoded before it. An NLMSG_ERROR with a
// non-zero error code returns an error too. It never panics. Change.Time is
// left zero, and links are not enriched (Kind is classified from the
// message alone: Hardware, USB and SSID need sysfs and nl80211).
func ParseMessages(b []byte) ([]Change, error) {
	var out []Change
	for i := 0; len(b) > 0; i++ {
		if len(b) < nlmsgHdrLen {
			return out, fmt.Errorf("network: message %d: %d bytes left, short of a netlink header: %w", i, len(b), ErrMalformed)
		}
		l := binary.NativeEndian.Uint32(b[0:4])
		typ := binary.NativeEndian.Uint16(b[4:6])
		flags := binary.NativeEndian.Uint16(b[6:8])
		if l < nlmsgHdrLen || uint64(l) > uint64(len(b)) {
			return out, fmt.Errorf("network: message %d (%s): length %d, %d bytes left: %w", i, typeName(typ), l, len(b), ErrMalformed)
		}
		data := b[nlmsgHdrLen:l]
		next := min(int(nlmsgAlign(l)), len(b))
		b = b[next:]

		switch typ {
		case nlmsgDone:
			return out, nil
		case nlmsgError:
			if len(data) < 4 {
				return out, fmt.Errorf("network: message %d (%s): %w", i, typeName(typ), ErrMalformed)
			}
			if code := int32(binary.NativeEndian.Uint32(data[0:4])); code != 0 {
				return out, fmt.Errorf("network: message %d (%s): kernel error %d", i, typeName(typ), -code)
			}
			continue
		case nlmsgOverrun:
			out = append(out, Change{Kind: ChangeOverrun})
			continue
		}
		var err error
		if out, err = appendMessage(out, typ, flags, data); err != nil {
			return out, fmt.Errorf("network: message %d (%s): %w", i, typeName(typ), err)
		}
	}
	return out, nil
}

// nlmsgAlign rounds l up to the netlink alignment (NLMSG_ALIGN, 4 bytes).
func nlmsgAlign(l uint32) uint64 { return (uint64(l) + 3) &^ 3 }

// typeName names a netlink message type for errors.
func typeName(typ uint16) string {
	switch typ {
	case nlmsgNoop:
		return "NLMSG_NOOP"
	case nlmsgError:
		return "NLMSG_ERROR"
	case nlmsgDone:
		return "NLMSG_DONE"
	case nlmsgOverrun:
		return "NLMSG_OVERRUN"
	case rtmNewLink:
		return "RTM_NEWLINK"
	case rtmDelLink:
		return "RTM_DELLINK"
	case rtmNewAddr:
		return "RTM_NEWADDR"
	case rtmDelAddr:
		return "RTM_DELADDR"
	case rtmNewRoute:
		return "RTM_NEWROUTE"
	case rtmDelRoute:
		return "RTM_DELROUTE"
	case rtmNewNeigh:
		return "RTM_NEWNEIGH"
	case rtmDelNeigh:
		return "RTM_DELNEIGH"
	}
	return fmt.Sprintf("type %d", typ)
}

// appendMessage decodes the payload of one rtnetlink message of type typ
// and appends what it says to dst: one Change, none for a message that
// is dropped (see ParseMessages), or one per nexthop of a multipath route.
// It is the one place where rtnetlink messages become this package's
// types, for ParseMessages, Monitor.Snapshot and Monitor.Receive alike.
func appendMessage(dst []Change, typ, flags uint16, data []byte) ([]Change, error) {
	switch typ {
	case rtmNewLink, rtmDelLink:
		l, ok, err := decodeLink(data)
		if ok && err == nil {
			dst = append(dst, Change{Kind: ChangeLink, Deleted: typ == rtmDelLink, Link: l})
		}
		return dst, err
	case rtmNewAddr, rtmDelAddr:
		a, ok, err := decodeAddr(data)
		if ok && err == nil {
			dst = append(dst, Change{Kind: ChangeAddr, Deleted: typ == rtmDelAddr, Addr: a})
		}
		return dst, err
	case rtmNewRoute, rtmDelRoute:
		rs, err := decodeRoutes(data)
		if err != nil {
			return dst, err
		}
		for i := range rs {
			dst = append(dst, Change{Kind: ChangeRoute, Deleted: typ == rtmDelRoute, Replace: typ == rtmNewRoute && flags&nlmFReplace != 0, Route: &rs[i]})
		}
		return dst, nil
	case rtmNewNeigh, rtmDelNeigh:
		n, ok, err := decodeNeighbour(data)
		if ok && err == nil {
			dst = append(dst, Change{Kind: ChangeNeighbour, Deleted: typ == rtmDelNeigh, Neighbour: n})
		}
		return dst, err
	}
	return dst, nil
}

// decodeLink decodes an ifinfomsg and its IFLA_* attributes.
func decodeLink(data []byte) (*Link, bool, error) {
	if len(data) < sizeofIfInfomsg {
		return nil, false, fmt.Errorf("ifinfomsg: %d bytes: %w", len(data), ErrMalformed)
	}
	if data[0] != afUnspec {
		return nil, false, nil
	}
	if err := checkAttrs(data[sizeofIfInfomsg:], linkAttrSize); err != nil {
		return nil, false, fmt.Errorf("link attributes: %w", err)
	}
	var m rtnetlink.LinkMessage
	if err := m.UnmarshalBinary(data); err != nil {
		return nil, false, fmt.Errorf("link: %v: %w", err, ErrMalformed)
	}
	l := &Link{
		Index:     int(m.Index),
		Type:      m.Type,
		AdminUp:   m.Flags&iffUp != 0,
		Carrier:   m.Flags&iffLowerUp != 0,
		OperState: "unknown",
	}
	if a := m.Attributes; a != nil {
		l.Name, l.rawName = safe.String(a.Name), a.Name
		l.OperState = operState(a.OperationalState)
		if a.Master != nil {
			l.MasterIndex = int(*a.Master)
		}
		// IFLA_LINK (decoded into Type); with IFLA_LINK_NETNSID the index
		// is another namespace's.
		if a.Type != 0 && int(a.Type) != l.Index && !hasAttr(data[sizeofIfInfomsg:], iflaLinkNetnsid) {
			l.ParentIndex = int(a.Type)
		}
		if a.Info != nil {
			l.InfoKind = safe.String(a.Info.Kind)
		}
		if !isZero(a.Address) {
			l.MAC = a.Address
		}
	}
	l.Kind = classify(l, false)
	return l, true, nil
}

// operState names an IFLA_OPERSTATE value in the kernel's words
// (Documentation/networking/operstates.rst).
func operState(s rtnetlink.OperationalState) string {
	switch s {
	case rtnetlink.OperStateUnknown:
		return "unknown"
	case rtnetlink.OperStateNotPresent:
		return "notpresent"
	case rtnetlink.OperStateDown:
		return "down"
	case rtnetlink.OperStateLowerLayerDown:
		return "lowerlayerdown"
	case rtnetlink.OperStateTesting:
		return "testing"
	case rtnetlink.OperStateDormant:
		return "dormant"
	case rtnetlink.OperStateUp:
		return "up"
	}
	return fmt.Sprintf("unknown(%d)", uint8(s))
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// classify gives a link its Kind from what the message says (ifi_type,
// IFLA_INFO_KIND) and what sysfs and nl80211 added (USB, Hardware;
// wireless), in this order: loopback, bridge (bridge, bond, team), tunnel,
// USB (even a wireless one), wireless, ethernet (a device behind it),
// virtual (veth, dummy, macvlan, vlan, ...).
func classify(l *Link, wireless bool) Kind {
	switch l.InfoKind {
	case "bridge", "bond", "team":
		if l.Type != arphrdLoopback {
			return KindBridge
		}
	case "tun", "tap", "wireguard", "gre", "gretap", "ipip", "sit", "vti", "vti6",
		"ip6tnl", "ip6gre", "ip6gretap", "ipsec", "xfrm":
		if l.Type != arphrdLoopback {
			return KindTunnel
		}
	}
	switch l.Type {
	case arphrdLoopback:
		return KindLoopback
	case arphrdNone, arphrdPPP, arphrdTunnel, arphrdTunnel6, arphrdSIT, arphrdIPGRE:
		return KindTunnel
	}
	switch {
	case l.USB != "":
		return KindUSB
	case wireless:
		return KindWireless
	case l.Hardware:
		return KindEthernet
	}
	return KindVirtual
}

// decodeAddr decodes an ifaddrmsg and its IFA_* attributes.
func decodeAddr(data []byte) (*Addr, bool, error) {
	if len(data) < sizeofIfAddrmsg {
		return nil, false, fmt.Errorf("ifaddrmsg: %d bytes: %w", len(data), ErrMalformed)
	}
	if data[0] != afInet && data[0] != afInet6 {
		return nil, false, nil
	}
	var m rtnetlink.AddressMessage
	if err := m.UnmarshalBinary(data); err != nil {
		return nil, false, fmt.Errorf("address: %v: %w", err, ErrMalformed)
	}
	a := &Addr{Index: int(m.Index), Flags: uint32(m.Flags)}
	var local, addr net.IP
	if at := m.Attributes; at != nil {
		local, addr = at.Local, at.Address
		if at.Flags != 0 {
			a.Flags = at.Flags
		}
	}
	ip, peer := local, addr
	if ip == nil {
		ip, peer = addr, nil
	}
	if ip == nil {
		return nil, false, fmt.Errorf("address without IFA_LOCAL or IFA_ADDRESS: %w", ErrMalformed)
	}
	na, err := familyAddr(m.Family, ip)
	if err != nil {
		return nil, false, fmt.Errorf("address: %w", err)
	}
	a.Prefix = netip.PrefixFrom(na, int(m.PrefixLength))
	if !a.Prefix.IsValid() {
		return nil, false, fmt.Errorf("address %s: prefix length %d: %w", na, m.PrefixLength, ErrMalformed)
	}
	if peer != nil && !peer.Equal(ip) {
		p, err := familyAddr(m.Family, peer)
		if err != nil {
			return nil, false, fmt.Errorf("peer: %w", err)
		}
		a.Peer = p
	}
	return a, true, nil
}

// familyAddr converts the bytes of an address attribute of a message of
// family AF_INET or AF_INET6, which must have the family's length.
func familyAddr(family uint8, ip []byte) (netip.Addr, error) {
	want := 4
	if family == afInet6 {
		want = 16
	}
	if len(ip) != want {
		return netip.Addr{}, fmt.Errorf("%d-byte address in a family %d message: %w", len(ip), family, ErrMalformed)
	}
	a, _ := netip.AddrFromSlice(ip)
	return a, nil
}

// decodeRoutes decodes an rtmsg and its RTA_* attributes into one Route
// per nexthop that is kept. It keeps unicast (RTN_UNICAST) IPv4 and IPv6
// routes of every table but local (255; the table is RTA_TABLE when
// present, else rtm_table): default routes (dst_len 0) whole, with a
// gateway or on-link, and of other routes the nexthops with a gateway
// (RTA_GATEWAY or RTA_VIA, of the route or of a multipath nexthop). So a
// Route whose Dst is not a default always has a Gateway.
func decodeRoutes(data []byte) ([]Route, error) {
	if len(data) < sizeofRtMsg {
		return nil, fmt.Errorf("rtmsg: %d bytes: %w", len(data), ErrMalformed)
	}
	// Look before decoding: other families (MPLS, multicast routing) have
	// attributes that are not IP addresses, and the local table is large.
	family, dstLen, table, typ := data[0], data[1], data[4], data[7]
	if (family != afInet && family != afInet6) || typ != rtnUnicast || table == rtTableLocal {
		return nil, nil
	}
	fam, bits := 4, 32
	if family == afInet6 {
		fam, bits = 6, 128
	}
	if int(dstLen) > bits {
		return nil, fmt.Errorf("route: dst_len %d in a family %d message: %w", dstLen, family, ErrMalformed)
	}
	var m rtnetlink.RouteMessage
	if err := m.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("route: %v: %w", err, ErrMalformed)
	}
	a := &m.Attributes
	tbl := a.Table
	if tbl == 0 {
		tbl = uint32(table)
	}
	if tbl == rtTableLocal {
		return nil, nil
	}
	var dst netip.Prefix
	if dstLen == 0 {
		dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if fam == 6 {
			dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
	} else {
		if a.Dst == nil {
			return nil, fmt.Errorf("route: dst_len %d without RTA_DST: %w", dstLen, ErrMalformed)
		}
		d, err := familyAddr(family, a.Dst)
		if err != nil {
			return nil, fmt.Errorf("RTA_DST: %w", err)
		}
		dst = netip.PrefixFrom(d, int(dstLen))
	}
	r := Route{Dst: dst, Table: tbl, Family: fam, Priority: a.Priority}
	if len(a.Multipath) == 0 {
		gw, err := gateway(a.Gateway, a.Via)
		if err != nil {
			return nil, err
		}
		// A route without a gateway is kept when it stands for a default
		// (0/0, or half the address space: the split that overrides
		// one), on-link or through a nexthop object the kernel sent
		// without an interface (Index 0: see Route.Index).
		if dstLen > 1 && !gw.IsValid() {
			return nil, nil
		}
		r.Index, r.Gateway = int(a.OutIface), gw
		return []Route{r}, nil
	}
	rs := make([]Route, 0, len(a.Multipath))
	for _, nh := range a.Multipath {
		gw, err := gateway(nh.Gateway, nh.Via)
		if err != nil {
			return nil, fmt.Errorf("nexthop: %w", err)
		}
		if dstLen > 1 && !gw.IsValid() {
			continue
		}
		r.Index, r.Gateway = int(nh.Hop.IfIndex), gw
		rs = append(rs, r)
	}
	return rs, nil
}

// gateway is RTA_GATEWAY, else the address of RTA_VIA (an IPv6 gateway of
// an IPv4 route); invalid for an on-link route.
func gateway(gw net.IP, via *rtnetlink.RouteVia) (netip.Addr, error) {
	if gw == nil && via != nil {
		if via.Family != afInet && via.Family != afInet6 {
			return netip.Addr{}, nil
		}
		gw = via.Addr
		if len(gw) != 4 && len(gw) != 16 {
			return netip.Addr{}, fmt.Errorf("RTA_VIA of %d bytes: %w", len(gw), ErrMalformed)
		}
	}
	if gw == nil {
		return netip.Addr{}, nil
	}
	a, ok := netip.AddrFromSlice(gw)
	if !ok {
		return netip.Addr{}, fmt.Errorf("gateway of %d bytes: %w", len(gw), ErrMalformed)
	}
	return a, nil
}

// decodeNeighbour decodes an ndmsg and its NDA_* attributes; entries of
// families other than AF_INET and AF_INET6 (the bridge forwarding
// database) are dropped.
func decodeNeighbour(data []byte) (*Neighbour, bool, error) {
	if len(data) < sizeofNdMsg {
		return nil, false, fmt.Errorf("ndmsg: %d bytes: %w", len(data), ErrMalformed)
	}
	if data[0] != afInet && data[0] != afInet6 {
		return nil, false, nil
	}
	if err := checkAttrs(data[sizeofNdMsg:], neighAttrSize); err != nil {
		return nil, false, fmt.Errorf("neighbour attributes: %w", err)
	}
	var m rtnetlink.NeighMessage
	if err := m.UnmarshalBinary(data); err != nil {
		return nil, false, fmt.Errorf("neighbour: %v: %w", err, ErrMalformed)
	}
	n := &Neighbour{Index: int(m.Index), State: m.State, Flags: m.Flags}
	if m.Attributes == nil || m.Attributes.Address == nil {
		return nil, false, fmt.Errorf("neighbour without NDA_DST: %w", ErrMalformed)
	}
	ip, err := familyAddr(uint8(m.Family), m.Attributes.Address)
	if err != nil {
		return nil, false, fmt.Errorf("NDA_DST: %w", err)
	}
	n.IP = ip
	if len(m.Attributes.LLAddress) > 0 {
		n.MAC = m.Attributes.LLAddress
	}
	return n, true, nil
}

// attrSize gives the length an attribute type must have: a length >= 0,
// anyLen, or nestedLen with the attrSize of the nested list.
type attrSize func(typ uint16) (n int, nested attrSize)

const (
	anyLen    = -1
	nestedLen = -2
)

// checkAttrs checks that b is a well-formed list of netlink attributes
// (struct nlattr, each at least 4 bytes, none past the end) and that each
// has the length size gives for its type. rtnetlink's link and neighbour
// decoders stop silently at a misfit attribute and return what they had;
// this turns that into an error. It does not allocate.
func checkAttrs(b []byte, size attrSize) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%d bytes left, short of an attribute header: %w", len(b), ErrMalformed)
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) & nlaTypeMask
		if l < 4 || l > len(b) {
			return fmt.Errorf("attribute %d: length %d, %d bytes left: %w", typ, l, len(b), ErrMalformed)
		}
		switch want, nested := size(typ); {
		case want == nestedLen:
			if err := checkAttrs(b[4:l], nested); err != nil {
				return fmt.Errorf("in attribute %d: %w", typ, err)
			}
		case want >= 0 && l-4 != want:
			return fmt.Errorf("attribute %d: %d bytes, want %d: %w", typ, l-4, want, ErrMalformed)
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return nil
}

// linkAttrSize gives the length of the IFLA_* attributes that rtnetlink
// decodes as fixed-size integers or nested lists
// (include/uapi/linux/if_link.h).
func linkAttrSize(typ uint16) (int, attrSize) {
	switch typ {
	case 4, 5, 10, 13, 21, 27, 35, iflaLinkNetnsid, 47, 48: // IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_TXQLEN, IFLA_NUM_VF, IFLA_GROUP, IFLA_CARRIER_CHANGES, IFLA_LINK_NETNSID, IFLA_CARRIER_UP_COUNT, IFLA_CARRIER_DOWN_COUNT
		return 4, nil
	case 16, 17, 33: // IFLA_OPERSTATE, IFLA_LINKMODE, IFLA_CARRIER
		return 1, nil
	case 18: // IFLA_LINKINFO
		return nestedLen, anyAttrSize
	case 43: // IFLA_XDP
		return nestedLen, xdpAttrSize
	}
	return anyLen, nil
}

// xdpAttrSize gives the length of the IFLA_XDP_* attributes.
func xdpAttrSize(typ uint16) (int, attrSize) {
	switch typ {
	case 1, 3, 4, 8: // IFLA_XDP_FD, IFLA_XDP_FLAGS, IFLA_XDP_PROG_ID, IFLA_XDP_EXPECTED_FD
		return 4, nil
	case 2: // IFLA_XDP_ATTACHED
		return 1, nil
	}
	return anyLen, nil
}

// hasAttr reports whether the attribute list b, already checked by
// checkAttrs, holds an attribute of type typ.
func hasAttr(b []byte, typ uint16) bool {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if binary.NativeEndian.Uint16(b[2:4])&nlaTypeMask == typ {
			return true
		}
		if l < 4 {
			return false
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return false
}

// anyAttrSize lets every attribute have any length.
func anyAttrSize(uint16) (int, attrSize) { return anyLen, nil }

// neighAttrSize gives the length of the NDA_* attributes that rtnetlink
// decodes as fixed-size integers (include/uapi/linux/neighbour.h).
func neighAttrSize(typ uint16) (int, attrSize) {
	if typ == 8 { // NDA_IFINDEX
		return 4, nil
	}
	return anyLen, nil
}
