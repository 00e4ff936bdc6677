// Package network observes the network side of the PC from the kernel of
// the caller's network namespace: links (interfaces), their addresses,
// routes (defaults, and those through a gateway) and the neighbour table (ARP, NDP), and the Wi-Fi network
// each wireless link is on. It only ever reads: it never sends a probe,
// never captures a packet.
//
// On Linux everything comes from rtnetlink (NETLINK_ROUTE) and nl80211,
// with sysfs (/sys/class/net) for what links hang off; a Monitor
// subscribes to the change groups before it dumps, so that nothing between
// the dump and the first change is missed. Elsewhere Open returns
// errors.ErrUnsupported.
package network

import (
	"net"
	"net/netip"
	"time"
)

// Kind is what sort of link an interface is.
type Kind string

// Link kinds. The words are the record schema's (wire.Link.Kind).
const (
	KindEthernet Kind = "ethernet"
	KindWireless Kind = "wireless"
	// KindUSB is a network adapter whose device hangs off USB (tethering
	// over RNDIS, CDC-ECM or CDC-NCM, a USB Ethernet dongle, a USB Wi-Fi
	// stick).
	KindUSB      Kind = "usb"
	KindTunnel   Kind = "tunnel"
	KindBridge   Kind = "bridge" // bridge or bond master
	KindVirtual  Kind = "virtual"
	KindLoopback Kind = "loopback"
)

// Link is one network interface (RTM_NEWLINK).
type Link struct {
	Index int // ifindex
	// Name is IFLA_IFNAME made safe to show (internal/safe.String: a
	// backslash, control bytes and invalid UTF-8 escaped), so it may
	// differ from the kernel's name; sysfs is looked up by the raw name.
	Name string
	Kind Kind
	// Type is the ARPHRD_* hardware type (ifinfomsg.ifi_type); InfoKind is
	// IFLA_INFO_KIND ("bridge", "veth", "wireguard", "" for a physical
	// NIC).
	Type     uint16
	InfoKind string
	// MAC is IFLA_ADDRESS; nil when the link has none, or it is all zero.
	MAC net.HardwareAddr
	// AdminUp is IFF_UP; Carrier is IFF_LOWER_UP; OperState is
	// IFLA_OPERSTATE in the kernel's words (RFC 2863): "unknown",
	// "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up".
	AdminUp   bool
	Carrier   bool
	OperState string
	// MasterIndex is IFLA_MASTER: the bridge or bond this link is a port
	// of, 0 when none.
	MasterIndex int
	// ParentIndex is IFLA_LINK when it names another link of the same
	// network namespace: the lower device of a macvlan, macvtap, ipvlan or
	// VLAN (and the device an ip6tnl or GRE tunnel is bound to). It is 0
	// when there is none, when IFLA_LINK is the link's own index, and when
	// IFLA_LINK_NETNSID says the index is another namespace's (a veth
	// whose peer was moved elsewhere, a macvlan moved away from its
	// lower device). A veth's IFLA_LINK is its peer: for a veth pair with
	// both ends in this namespace each end's ParentIndex is the other end,
	// which is no lower device.
	ParentIndex int
	// Sysfs is set when the link's sysfs directory (/sys/class/net/<raw
	// name>) was read and its ifindex file held Index, so that Hardware,
	// USB, Driver and wireless-ness are facts. When it is false they are
	// merely unknown: the directory was gone (a deleted link), sysfs is
	// another network namespace's, or it could not be read, and the link
	// may well be a physical or USB NIC that only looks virtual. A
	// link with Sysfs false must never be trusted as virtual (fail closed).
	// Only the Linux Monitor sets it; ParseMessages never does.
	Sysfs bool
	// Hardware is set when the link has a device behind it in sysfs
	// (/sys/class/net/<name>/device): a physical or USB NIC, not a
	// virtual interface.
	Hardware bool
	// USB is the bus path ("1-2", "3-1.4") of the USB device the link's
	// device hangs off, found by walking the sysfs parent chain; "" when
	// none.
	USB string
	// Driver is the driver bound to the link's device ("rndis_host",
	// "cdc_ether", "e1000e"), "" when none.
	Driver string
	// SSID is the Wi-Fi network a wireless link is associated with
	// (nl80211 BSS in state associated), "" when none; SSIDErr says why
	// it could not be read.
	SSID    string
	SSIDErr string

	// rawName is IFLA_IFNAME as the kernel has it, for sysfs.
	rawName string
}

// Connected reports whether the link counts as up for judging several
// networks at once: administratively up and either carrier present or
// operstate "unknown" (tunnels, dummies and CDC-ECM report "unknown").
func (l *Link) Connected() bool {
	return l.AdminUp && (l.Carrier || l.OperState == "unknown")
}

// Addr is one address on a link (RTM_NEWADDR).
type Addr struct {
	Index int
	// Prefix is the local address (IFA_LOCAL, else IFA_ADDRESS) with its
	// prefix length.
	Prefix netip.Prefix
	// Peer is the far end of a point-to-point link (IFA_ADDRESS when it
	// differs from IFA_LOCAL); invalid when none. Never judged.
	Peer netip.Addr
	// Flags is the IFA_F_* flags (IFA_FLAGS, else ifaddrmsg.ifa_flags):
	// IFA_F_TENTATIVE 0x40, IFA_F_DEPRECATED 0x20, IFA_F_PERMANENT 0x80,
	// IFA_F_DADFAILED 0x08, ...
	Flags uint32
}

// Countable reports whether the address puts its link on a network:
// anything but loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16,
// fe80::/10), unspecified and multicast addresses.
func (a Addr) Countable() bool {
	ip := a.Prefix.Addr()
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !ip.IsUnspecified() && !ip.IsMulticast()
}

// Route is one nexthop of a route (RTM_NEWROUTE): of a default route
// (Dst of length 0) of any table, with or without a gateway, or of any
// other unicast route with a gateway; routes of the local table (255),
// routes that are not unicast and gateway-less nexthops of routes that are
// not defaults are left out. The default routes the host actually uses
// are those of the main table (IsDefault); policy routing may send some
// traffic through other tables' routes.
type Route struct {
	// Dst is the destination (RTA_DST with rtm_dst_len): 0.0.0.0/0 or
	// ::/0 for a default route.
	Dst netip.Prefix
	// Table is the routing table (RTA_TABLE, else rtmsg.rtm_table): 254
	// main, 253 default, or a policy routing table's number.
	Table uint32
	// Index is the link it leaves through (RTA_OIF, or rtnexthop.rtnh_ifindex
	// of a multipath route's nexthop); 0 when the kernel did not say (a
	// route through a nexthop object, RTA_NH_ID, sent with
	// net.ipv4.nexthop_compat_mode=0): the caller cannot tell where it
	// leaves and must not take it for harmless.
	Index int
	// Gateway is RTA_GATEWAY (or the address of RTA_VIA, then possibly an
	// IPv6 gateway of an IPv4 route), of the route or of its nexthop;
	// invalid for an on-link route, always valid when Dst is longer than
	// /1 (routes without a gateway are kept only for 0/0 and the /1
	// halves that override a default).
	Gateway netip.Addr
	// Family is the route's family (rtmsg.rtm_family): 4 or 6.
	Family   int
	Priority uint32 // RTA_PRIORITY, the metric
}

// IsDefault reports whether r is a default route (Dst 0.0.0.0/0 or ::/0)
// of the main table (254), the one the host uses for traffic no policy
// routing rule sends elsewhere.
func (r *Route) IsDefault() bool {
	return r.Dst.Bits() == 0 && r.Table == rtTableMain
}

// Neighbour is one entry of the neighbour table (RTM_NEWNEIGH).
type Neighbour struct {
	Index int
	IP    netip.Addr       // NDA_DST
	MAC   net.HardwareAddr // NDA_LLADDR; nil when the kernel has none
	// State is the NUD_* state bits (ndmsg.ndm_state); Flags the NTF_*
	// flags.
	State uint16
	Flags uint8
}

// NUD states (include/uapi/linux/neighbour.h).
const (
	NUDIncomplete = 0x01
	NUDReachable  = 0x02
	NUDStale      = 0x04
	NUDDelay      = 0x08
	NUDProbe      = 0x10
	NUDFailed     = 0x20
	NUDNoARP      = 0x40
	NUDPermanent  = 0x80
)

// HasMAC reports whether the entry's state carries a MAC that the kernel
// learnt or was given (REACHABLE, STALE, DELAY, PROBE, PERMANENT, NOARP)
// and the MAC is a unicast, non-zero one.
func (n *Neighbour) HasMAC() bool {
	const withMAC = NUDReachable | NUDStale | NUDDelay | NUDProbe | NUDPermanent | NUDNoARP
	return n.State&withMAC != 0 && IsUnicastMAC(n.MAC)
}

// IsUnicastMAC reports whether mac is a 6-byte unicast, non-zero MAC.
func IsUnicastMAC(mac net.HardwareAddr) bool {
	if len(mac) != 6 || mac[0]&0x01 != 0 {
		return false
	}
	for _, b := range mac {
		if b != 0 {
			return true
		}
	}
	return false
}

// IsLocallyAdministered reports whether mac has the locally administered
// bit (0x02 of the first octet) set and is not multicast: a randomised or
// assigned MAC, not a maker's.
func IsLocallyAdministered(mac net.HardwareAddr) bool {
	return len(mac) > 0 && mac[0]&0x02 != 0 && mac[0]&0x01 == 0
}

// Snapshot is the whole network state at one moment.
type Snapshot struct {
	Links      []Link
	Addrs      []Addr
	Routes     []Route // routes with a gateway and default routes, of every table but local
	Neighbours []Neighbour
}

// ChangeKind says what a change notification is about.
type ChangeKind int

// Change kinds.
const (
	ChangeLink ChangeKind = iota + 1
	ChangeAddr
	ChangeRoute
	ChangeNeighbour
	// ChangeWireless is an nl80211 event (connect, disconnect, roam).
	ChangeWireless
	// ChangeOverrun means notifications were lost (ENOBUFS), or one
	// could not be decoded: take a whole new Snapshot and replace the
	// state with it. Changes returned before it were applied correctly;
	// see Monitor.Receive.
	ChangeOverrun
)

// Change is one change notification, decoded. Exactly one of Link, Addr,
// Route, Neighbour is set for the matching kind (Link for ChangeWireless,
// none for ChangeOverrun); Deleted is set for
// RTM_DEL* messages. Routes that Route leaves out (local table, not
// unicast, gateway-less routes other than defaults) are dropped before
// they get here.
type Change struct {
	Kind    ChangeKind
	Deleted bool
	// Replace is set for an RTM_NEWROUTE with NLM_F_REPLACE (ip route
	// replace): the route took the place of the route of the same table,
	// destination, family and priority, and no RTM_DELROUTE came for the
	// old one. Each
	// nexthop of a multipath route is a Change of its own, all with the
	// same Replace.
	Replace   bool
	Link      *Link
	Addr      *Addr
	Route     *Route
	Neighbour *Neighbour
	// Time is when the notification was read from the socket.
	Time time.Time
}

// Options configures a Monitor.
type Options struct {
	// Sysfs is the sysfs root for the links' parent chains (default
	// "/sys"). rtnetlink itself always answers for the caller's network
	// namespace.
	Sysfs string
	// NoWireless turns nl80211 off (SSIDs stay empty).
	NoWireless bool

	// readBuffer, when above 0, is the SO_RCVBUF asked for the
	// notification socket instead of the default; tests make it small to
	// overrun it.
	readBuffer int
}
