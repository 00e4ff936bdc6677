package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/mamori-agent/mamori/internal/safe"
)

// The Windows Monitor in two halves: monitor_windows.go and
// iphelper_windows.go call IP Helper (iphlpapi.dll), wlanapi.dll, the
// registry and cfgmgr32 and put what they say into winAdapter values and
// raw table bytes; the functions here, pure, turn those into the portable
// types (Link, Addr, Route, Neighbour), so that the mapping is tested on
// every OS with rows shaped like real ones. Every value is read as
// hostile: counts and lengths are checked against the bytes, strings are
// sanitised.

// ErrWinTable is wrapped by the errors of the table parsers in this file.
var ErrWinTable = errors.New("malformed IP Helper table")

// IF_TYPE values (ipifcons.h) the mapping looks at.
const (
	ifTypeEthernet    = 6   // IF_TYPE_ETHERNET_CSMACD
	ifTypePPP         = 23  // IF_TYPE_PPP
	ifTypeLoopback    = 24  // IF_TYPE_SOFTWARE_LOOPBACK
	ifTypePropVirtual = 53  // IF_TYPE_PROP_VIRTUAL: WireGuard, Wintun
	ifTypeIEEE80211   = 71  // IF_TYPE_IEEE80211: Wi-Fi
	ifTypeTunnel      = 131 // IF_TYPE_TUNNEL: Teredo, ISATAP, 6to4, IP-HTTPS
)

// ARPHRD values (if_arp.h) Link.Type carries for Windows links, so that
// what reads Type (the loopback check of the policy) means the same on
// both systems.
const (
	arphrdEther = 1
	arphrdVoid  = 0xFFFF
)

// winArphrd maps an IF_TYPE to the ARPHRD_* value Linux gives the same
// kind of link: Ethernet and Wi-Fi are ARPHRD_ETHER, loopback
// ARPHRD_LOOPBACK, PPP ARPHRD_PPP, tunnels ARPHRD_NONE; anything else
// ARPHRD_VOID.
func winArphrd(ifType uint32) uint16 {
	switch ifType {
	case ifTypeEthernet, ifTypeIEEE80211:
		return arphrdEther
	case ifTypeLoopback:
		return arphrdLoopback
	case ifTypePPP:
		return arphrdPPP
	case ifTypeTunnel, ifTypePropVirtual:
		return arphrdNone
	}
	return arphrdVoid
}

// winKind gives a Windows link its Kind, in the order classify uses on
// Linux: loopback; tunnel (IF_TYPE_TUNNEL, IF_TYPE_PPP, a TunnelType, or
// IF_TYPE_PROP_VIRTUAL as WireGuard and Wintun are); USB (even a
// wireless one); wireless (IF_TYPE_IEEE80211); Ethernet when the
// interface is hardware (MIB_IF_ROW2's HardwareInterface), or when its
// row could not be read and it says IF_TYPE_ETHERNET_CSMACD; virtual
// otherwise (Hyper-V's vEthernet, TAP adapters, Wi-Fi Direct's virtual
// adapters are hardware=false).
func winKind(ifType, tunnelType uint32, rowKnown, hardware bool, usbPath string) Kind {
	switch {
	case ifType == ifTypeLoopback:
		return KindLoopback
	case ifType == ifTypeTunnel || ifType == ifTypePPP || ifType == ifTypePropVirtual || tunnelType != 0:
		return KindTunnel
	case usbPath != "":
		return KindUSB
	case ifType == ifTypeIEEE80211:
		return KindWireless
	case hardware:
		return KindEthernet
	case ifType == ifTypeEthernet && !rowKnown:
		return KindEthernet
	}
	return KindVirtual
}

// winOperState maps IF_OPER_STATUS (ifdef.h, the values RFC 2863 gives
// ifOperStatus) to the kernel's words Link.OperState uses.
func winOperState(s uint32) string {
	switch s {
	case 1:
		return "up"
	case 2:
		return "down"
	case 3:
		return "testing"
	case 4:
		return "unknown"
	case 5:
		return "dormant"
	case 6:
		return "notpresent"
	case 7:
		return "lowerlayerdown"
	}
	return fmt.Sprintf("unknown(%d)", s)
}

// InterfaceAndOperStatusFlags bits of MIB_IF_ROW2 (netioapi.h).
const (
	ifFlagHardwareInterface = 0x01
)

// winAddr is one unicast address of an adapter (IP_ADAPTER_UNICAST_ADDRESS).
type winAddr struct {
	IP           netip.Addr
	Bits         int   // OnLinkPrefixLength
	DadState     int32 // NL_DAD_STATE
	PrefixOrigin int32 // NL_PREFIX_ORIGIN
}

// winAdapter is what IP Helper and the PnP tree say about one adapter.
type winAdapter struct {
	// Index is IfIndex, or Ipv6IfIndex when IPv4 is not bound (both are
	// the interface's NET_IFINDEX).
	Index int
	// GUID is AdapterName, "{...}": the interface GUID.
	GUID string
	// Alias is FriendlyName ("Ethernet", "Wi-Fi": the user may rename
	// it); Description the driver's name for the adapter.
	Alias       string
	Description string
	MAC         []byte
	IfType      uint32
	TunnelType  uint32
	OperStatus  uint32
	Addrs       []winAddr
	Gateways    []netip.Addr
	Ipv4Metric  uint32
	Ipv6Metric  uint32
	// Row is set when the adapter's MIB_IF_ROW2 was read; AdminStatus,
	// MediaConnectState and StatusFlags (InterfaceAndOperStatusFlags) are
	// from it.
	Row               bool
	AdminStatus       uint32
	MediaConnectState uint32
	StatusFlags       uint8
	// PnP is the device instance ids from the adapter's own node
	// (HKLM\SYSTEM\CurrentControlSet\Control\Network\{4D36E972-...}\<GUID>\Connection\PnPInstanceId)
	// up through its parents; PnPOK says the walk ended at the top of the
	// tree (or at a USB device) rather than failing.
	PnP   []string
	PnPOK bool
	// SSID and SSIDErr are the Wi-Fi network of a wireless adapter
	// (wlanapi), as on Linux.
	SSID    string
	SSIDErr string
}

// winLink builds the Link of an adapter:
//
//   - Name is the friendly name (safe.String: a user can rename an
//     adapter to anything), Driver the description;
//   - Kind from winKind, Type from winArphrd;
//   - AdminUp is AdminStatus up (an adapter IP Helper lists is enabled
//     when its row is unknown); Carrier is MediaConnectState connected,
//     or OperStatus up when the row is unknown;
//   - Hardware is HardwareInterface; USB the Path the USB backend gives
//     the USB device the adapter's PnP node hangs off (usbDevicePath),
//     or, when the walk up from the node failed after a USB node,
//     unknownUSBPrefix and that node: a USB adapter whose device could
//     not be determined;
//   - Sysfs, the flag that says Hardware and USB are facts, is set only
//     when both the row and the PnP walk were read: a link whose
//     hardware and bus are not known is never treated as virtual.
func winLink(a *winAdapter) Link {
	l := Link{
		Index:     a.Index,
		Name:      safe.String(a.Alias),
		Type:      winArphrd(a.IfType),
		OperState: winOperState(a.OperStatus),
		AdminUp:   true,
		Carrier:   a.OperStatus == 1,
		Driver:    safe.String(a.Description),
		SSID:      a.SSID,
		SSIDErr:   a.SSIDErr,
	}
	if len(a.MAC) > 0 && len(a.MAC) <= 32 && !isZero(a.MAC) {
		l.MAC = net.HardwareAddr(slices.Clone(a.MAC))
	}
	if a.Row {
		l.AdminUp = a.AdminStatus == 1
		l.Carrier = a.MediaConnectState == 1
		l.Hardware = a.StatusFlags&ifFlagHardwareInterface != 0
	}
	if a.PnPOK {
		l.USB = usbDevicePath(a.PnP)
	} else if n := usbNodeIn(a.PnP); n != "" {
		// The walk stopped short above a USB node (an interface of a
		// composite device whose parent could not be read): on USB, its
		// device not determined. Failing closed, it is judged as a USB
		// adapter whose device is unknown (no approval holds it).
		l.USB = unknownUSBPrefix + n
	}
	l.Sysfs = a.Row && a.PnPOK
	l.Kind = winKind(a.IfType, a.TunnelType, a.Row, l.Hardware, l.USB)
	return l
}

// IFA_F_* flags (include/uapi/linux/if_addr.h) Addr.Flags carries for
// Windows addresses.
const (
	ifaFDADFailed  = 0x08
	ifaFDeprecated = 0x20
	ifaFTentative  = 0x40
	ifaFPermanent  = 0x80
)

// winAddrFlags maps an address's DAD state and prefix origin to IFA_F_*
// flags: tentative, duplicate (DAD failed) and deprecated as on Linux,
// and an address set by hand or well known (loopback) as permanent.
func winAddrFlags(a winAddr) uint32 {
	var f uint32
	switch a.DadState {
	case 1: // IpDadStateTentative
		f |= ifaFTentative
	case 2: // IpDadStateDuplicate
		f |= ifaFDADFailed
	case 3: // IpDadStateDeprecated
		f |= ifaFDeprecated
	}
	if a.PrefixOrigin == 1 || a.PrefixOrigin == 2 { // manual, well known
		f |= ifaFPermanent
	}
	return f
}

// winAddrs builds the Addrs of an adapter: the prefix is the address (its
// IPv6 zone dropped, as rtnetlink has none) with the on-link prefix
// length; an address whose length does not fit its family is left out.
func winAddrs(a *winAdapter) []Addr {
	var out []Addr
	for _, u := range a.Addrs {
		ip := u.IP.Unmap().WithZone("")
		p, err := ip.Prefix(u.Bits)
		if !ip.IsValid() || err != nil || u.Bits < 0 {
			continue
		}
		out = append(out, Addr{Index: a.Index, Prefix: netip.PrefixFrom(ip, p.Bits()), Flags: winAddrFlags(u)})
	}
	return out
}

// winRoute is one row of GetIpForwardTable2 (MIB_IPFORWARD_ROW2).
type winRoute struct {
	Index    int
	Dst      netip.Prefix
	NextHop  netip.Addr // invalid or unspecified for an on-link route
	Metric   uint32
	Loopback bool
}

// winRoutes keeps the routes Route describes: default routes (0/0, ::/0)
// with or without a gateway, and any other unicast route through a
// gateway; loopback routes, multicast and broadcast destinations and
// on-link routes that are not defaults are left out. Windows has one
// routing table: every route is in the main table (254). Priority is the
// route's own metric (the interface metric is added by Windows when it
// chooses).
func winRoutes(rows []winRoute) []Route {
	var out []Route
	for _, r := range rows {
		if r.Loopback || !r.Dst.IsValid() {
			continue
		}
		dst := r.Dst.Masked()
		a := dst.Addr()
		if a.IsMulticast() || a.Is4() && dst.Bits() == 32 && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			continue
		}
		gw := r.NextHop.Unmap().WithZone("")
		if gw.IsUnspecified() {
			gw = netip.Addr{}
		}
		if dst.Bits() != 0 && !gw.IsValid() {
			continue
		}
		fam := 4
		if a.Is6() {
			fam = 6
		}
		out = append(out, Route{Dst: dst, Table: rtTableMain, Index: r.Index, Gateway: gw, Family: fam, Priority: r.Metric})
	}
	return out
}

// gatewayRoutes makes default routes of the gateways GetAdaptersAddresses
// lists, for when the route table cannot be read: one per gateway, of
// its family, with the adapter's metric.
func gatewayRoutes(adapters []winAdapter) []Route {
	var out []Route
	for _, a := range adapters {
		for _, g := range a.Gateways {
			g = g.Unmap().WithZone("")
			if !g.IsValid() || g.IsUnspecified() {
				continue
			}
			r := Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Table: rtTableMain, Index: a.Index, Gateway: g, Family: 4, Priority: a.Ipv4Metric}
			if g.Is6() {
				r.Dst, r.Family, r.Priority = netip.PrefixFrom(netip.IPv6Unspecified(), 0), 6, a.Ipv6Metric
			}
			out = append(out, r)
		}
	}
	return out
}

// gatewayWinRoutes returns, as route rows, the default routes the
// adapters' gateways stand for that rows does not already hold (a default
// route of the same interface through the same gateway): what stands in
// for rows of a route table that could not all be read, so that a
// default route among them is not missed.
func gatewayWinRoutes(adapters []winAdapter, rows []winRoute) []winRoute {
	var out []winRoute
	for _, r := range gatewayRoutes(adapters) {
		dup := slices.ContainsFunc(rows, func(w winRoute) bool {
			return w.Index == r.Index && w.Dst.Bits() == 0 && w.NextHop.Unmap().WithZone("") == r.Gateway
		})
		if !dup {
			out = append(out, winRoute{Index: r.Index, Dst: r.Dst, NextHop: r.Gateway, Metric: r.Priority})
		}
	}
	return out
}

// winSnapshot puts the adapters, the route rows and the neighbours read
// from one pass into a Snapshot, links sorted by index. When routes is
// nil (the route table could not be read) the gateways of the adapters
// stand for the default routes.
func winSnapshot(adapters []winAdapter, routes []winRoute, neigh []Neighbour) Snapshot {
	var s Snapshot
	for i := range adapters {
		s.Links = append(s.Links, winLink(&adapters[i]))
		s.Addrs = append(s.Addrs, winAddrs(&adapters[i])...)
	}
	slices.SortFunc(s.Links, func(a, b Link) int { return a.Index - b.Index })
	if routes != nil {
		s.Routes = winRoutes(routes)
	} else {
		s.Routes = gatewayRoutes(adapters)
	}
	s.Neighbours = neigh
	return s
}

// sockaddrInetLen is sizeof(SOCKADDR_INET), the union of SOCKADDR_IN and
// SOCKADDR_IN6 (ws2ipdef.h).
const sockaddrInetLen = 28

// parseSockaddrInet reads a SOCKADDR_INET: 0 family (USHORT, AF_INET 2 or
// AF_INET6 23); for AF_INET the address at 4; for AF_INET6 the address
// at 8 and the scope id at 24. The zone is left out (rtnetlink has none).
func parseSockaddrInet(b []byte) (netip.Addr, error) {
	if len(b) < sockaddrInetLen {
		return netip.Addr{}, fmt.Errorf("SOCKADDR_INET: %d bytes: %w", len(b), ErrWinTable)
	}
	switch fam := binary.LittleEndian.Uint16(b); fam {
	case 2:
		return netip.AddrFrom4([4]byte(b[4:8])), nil
	case 23:
		return netip.AddrFrom16([16]byte(b[8:24])), nil
	default:
		return netip.Addr{}, fmt.Errorf("SOCKADDR_INET: family %d: %w", fam, ErrWinTable)
	}
}

// ipnetRow2Len is sizeof(MIB_IPNET_ROW2) (netioapi.h) on 64-bit Windows:
//
//	0 Address (SOCKADDR_INET), 28 InterfaceIndex (ULONG), 32
//	InterfaceLuid (ULONG64), 40 PhysicalAddress (UCHAR[32]), 72
//	PhysicalAddressLength (ULONG), 76 State (NL_NEIGHBOR_STATE), 80
//	Flags (IsRouter 0x01, IsUnreachable 0x02), 84 ReachabilityTime.
//
// MIB_IPNET_TABLE2 is NumEntries (ULONG) and, 8-aligned, the rows.
const (
	ipnetRow2Len   = 88
	ipnetTableHead = 8
	// maxNeighbours bounds the rows read from one table.
	maxNeighbours = 1 << 20
)

// NL_NEIGHBOR_STATE (nldef.h) to NUD_* (neighbour.h).
var winNeighbourStates = [...]uint16{
	0: NUDFailed,     // NlnsUnreachable
	1: NUDIncomplete, // NlnsIncomplete
	2: NUDProbe,      // NlnsProbe
	3: NUDDelay,      // NlnsDelay
	4: NUDStale,      // NlnsStale
	5: NUDReachable,  // NlnsReachable
	6: NUDPermanent,  // NlnsPermanent
}

// ntfRouter is NTF_ROUTER (neighbour.h), Neighbour.Flags of a router.
const ntfRouter = 0x80

// parseIpNetTable2 reads a MIB_IPNET_TABLE2 (GetIpNetTable2) into
// Neighbours. b is the table's bytes, header included. A row whose
// address or MAC length does not parse is left out and counted in the
// error; the others are returned.
func parseIpNetTable2(b []byte) ([]Neighbour, error) {
	if len(b) < ipnetTableHead {
		return nil, fmt.Errorf("MIB_IPNET_TABLE2: %d bytes: %w", len(b), ErrWinTable)
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxNeighbours || int64(n)*ipnetRow2Len > int64(len(b)-ipnetTableHead) {
		return nil, fmt.Errorf("MIB_IPNET_TABLE2: %d rows in %d bytes: %w", n, len(b), ErrWinTable)
	}
	out := make([]Neighbour, 0, n)
	bad := 0
	for i := range int(n) {
		row := b[ipnetTableHead+i*ipnetRow2Len:][:ipnetRow2Len]
		ip, err := parseSockaddrInet(row)
		macLen := binary.LittleEndian.Uint32(row[72:])
		state := binary.LittleEndian.Uint32(row[76:])
		if err != nil || macLen > 32 {
			bad++
			continue
		}
		nb := Neighbour{Index: int(binary.LittleEndian.Uint32(row[28:])), IP: ip}
		if int(state) < len(winNeighbourStates) {
			nb.State = winNeighbourStates[state]
		}
		if row[80]&0x01 != 0 {
			nb.Flags |= ntfRouter
		}
		if mac := row[40 : 40+macLen]; len(mac) > 0 && !isZero(mac) {
			nb.MAC = net.HardwareAddr(slices.Clone(mac))
		}
		out = append(out, nb)
	}
	if bad > 0 {
		return out, fmt.Errorf("MIB_IPNET_TABLE2: %d of %d rows malformed: %w", bad, n, ErrWinTable)
	}
	return out, nil
}

// usbDevicePath returns the Path the USB backend (collector/usb,
// SetupAPI) gives the USB device found first along chain, the device
// instance ids from an adapter's own node up through its parents: the
// first USB\VID_v&PID_p\instance node that is not an interface of a
// composite device (&MI_xx) or a root hub, as
// "USB\<device id>\<instance>" with the parts sanitised; "" when there is
// none. An interface node is passed through to its parent.
func usbDevicePath(chain []string) string {
	for _, id := range chain {
		parts := strings.Split(id, `\`)
		if len(parts) != 3 || !strings.EqualFold(parts[0], "USB") || parts[1] == "" || parts[2] == "" {
			continue
		}
		dev := strings.ToUpper(parts[1])
		if strings.HasPrefix(dev, "ROOT_HUB") {
			return ""
		}
		var vid, pid, mi bool
		for f := range strings.SplitSeq(dev, "&") {
			switch {
			case strings.HasPrefix(f, "VID_"):
				vid = true
			case strings.HasPrefix(f, "PID_"):
				pid = true
			case strings.HasPrefix(f, "MI_"):
				mi = true
			}
		}
		if !vid || !pid || mi {
			continue
		}
		return `USB\` + safe.String(parts[1]) + `\` + safe.String(parts[2])
	}
	return ""
}

// unknownUSBPrefix starts Link.USB of an adapter known to be on USB
// whose USB device could not be determined: the prefix the USB backend
// gives the Paths of devices it cannot identify (usb.UnknownPathPrefix),
// so that no device, and no approval, answers to it.
const unknownUSBPrefix = "unknown:"

// usbNodeIn returns the first node of chain under the USB enumerator
// (USB\...\..., a root hub's excepted), its parts sanitised; "" when
// there is none.
func usbNodeIn(chain []string) string {
	for _, id := range chain {
		parts := strings.Split(id, `\`)
		if len(parts) != 3 || !strings.EqualFold(parts[0], "USB") || parts[1] == "" || parts[2] == "" ||
			strings.HasPrefix(strings.ToUpper(parts[1]), "ROOT_HUB") {
			continue
		}
		return `USB\` + safe.String(parts[1]) + `\` + safe.String(parts[2])
	}
	return ""
}

// WLAN_INTERFACE_INFO_LIST and WLAN_CONNECTION_ATTRIBUTES (wlanapi.h).
const (
	wlanListHead     = 8   // dwNumberOfItems, dwIndex
	wlanInfoLen      = 532 // GUID, WCHAR[256] description, WLAN_INTERFACE_STATE
	wlanConnAttrsLen = 604
	// wlanStateConnected is wlan_interface_state_connected.
	wlanStateConnected = 1
	// maxWlanInterfaces bounds the interfaces read from one list.
	maxWlanInterfaces = 256
)

// wlanInterface is one WLAN_INTERFACE_INFO: its GUID in memory order
// (Data1, Data2, Data3 little-endian, Data4) and its state.
type wlanInterface struct {
	GUID  [16]byte
	State uint32
}

// parseWlanInterfaceList reads a WLAN_INTERFACE_INFO_LIST
// (WlanEnumInterfaces).
func parseWlanInterfaceList(b []byte) ([]wlanInterface, error) {
	if len(b) < wlanListHead {
		return nil, fmt.Errorf("WLAN_INTERFACE_INFO_LIST: %d bytes: %w", len(b), ErrWinTable)
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxWlanInterfaces || int64(n)*wlanInfoLen > int64(len(b)-wlanListHead) {
		return nil, fmt.Errorf("WLAN_INTERFACE_INFO_LIST: %d interfaces in %d bytes: %w", n, len(b), ErrWinTable)
	}
	out := make([]wlanInterface, n)
	for i := range out {
		e := b[wlanListHead+i*wlanInfoLen:]
		copy(out[i].GUID[:], e[:16])
		out[i].State = binary.LittleEndian.Uint32(e[16+512:])
	}
	return out, nil
}

// parseWlanConnection reads the SSID of a WLAN_CONNECTION_ATTRIBUTES
// (WlanQueryInterface, wlan_intf_opcode_current_connection): 0 isState,
// 4 wlanConnectionMode, 8 strProfileName (WCHAR[256]), 520
// wlanAssociationAttributes, whose DOT11_SSID is uSSIDLength (ULONG) and
// ucSSID (UCHAR[32]). The SSID is "" unless the state is connected; its
// bytes are kept, escaped (safe.String), as on Linux.
func parseWlanConnection(b []byte) (string, error) {
	if len(b) < wlanConnAttrsLen {
		return "", fmt.Errorf("WLAN_CONNECTION_ATTRIBUTES: %d bytes: %w", len(b), ErrWinTable)
	}
	if binary.LittleEndian.Uint32(b) != wlanStateConnected {
		return "", nil
	}
	n := binary.LittleEndian.Uint32(b[520:])
	if n > 32 {
		return "", fmt.Errorf("WLAN_CONNECTION_ATTRIBUTES: SSID length %d: %w", n, ErrWinTable)
	}
	return safe.String(string(b[524 : 524+n])), nil
}

// guidBytes is a GUID string "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" (an
// adapter's AdapterName) in memory order, to compare with the GUIDs
// wlanapi returns; false when s is not one.
func guidBytes(s string) ([16]byte, bool) {
	var g [16]byte
	if len(s) != 38 || s[0] != '{' || s[37] != '}' || s[9] != '-' || s[14] != '-' || s[19] != '-' || s[24] != '-' {
		return g, false
	}
	hex := strings.ReplaceAll(s[1:37], "-", "")
	var raw [16]byte
	for i := range raw {
		hi, ok1 := unhex(hex[2*i])
		lo, ok2 := unhex(hex[2*i+1])
		if !ok1 || !ok2 {
			return g, false
		}
		raw[i] = hi<<4 | lo
	}
	// Data1 (4 bytes), Data2, Data3 (2 each) are little-endian in memory.
	g = raw
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	return g, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
