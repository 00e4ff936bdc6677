package network

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mamori-agent/mamori/collector/usb"
)

func TestWinKind(t *testing.T) {
	const usbPath = `USB\VID_0BDA&PID_8153\000001`
	for _, c := range []struct {
		name               string
		ifType, tunnelType uint32
		row, hardware      bool
		usb                string
		want               Kind
	}{
		{"loopback", ifTypeLoopback, 0, true, false, "", KindLoopback},
		{"intel nic", ifTypeEthernet, 0, true, true, "", KindEthernet},
		{"realtek usb nic", ifTypeEthernet, 0, true, true, usbPath, KindUSB},
		{"usb wi-fi stick", ifTypeIEEE80211, 0, true, true, usbPath, KindUSB},
		{"built-in wi-fi", ifTypeIEEE80211, 0, true, true, "", KindWireless},
		{"wi-fi direct virtual", ifTypeIEEE80211, 0, true, false, "", KindWireless},
		{"hyper-v vethernet", ifTypeEthernet, 0, true, false, "", KindVirtual},
		{"tap-windows", ifTypeEthernet, 0, true, false, "", KindVirtual},
		{"ethernet, row unknown", ifTypeEthernet, 0, false, false, "", KindEthernet},
		{"wireguard", ifTypePropVirtual, 0, true, false, "", KindTunnel},
		{"teredo", ifTypeTunnel, 14, true, false, "", KindTunnel},
		{"ppp", ifTypePPP, 0, true, false, "", KindTunnel},
		{"tunnel type on ethernet", ifTypeEthernet, 3, true, true, "", KindTunnel},
		{"wwan modem, pcie", 243, 0, true, true, "", KindEthernet},
		{"unknown type", 1, 0, true, false, "", KindVirtual},
	} {
		if got := winKind(c.ifType, c.tunnelType, c.row, c.hardware, c.usb); got != c.want {
			t.Errorf("%s: winKind = %s, want %s", c.name, got, c.want)
		}
	}
}

func TestWinOperStateArphrdFlags(t *testing.T) {
	want := []string{"unknown(0)", "up", "down", "testing", "unknown", "dormant", "notpresent", "lowerlayerdown", "unknown(8)"}
	for i, w := range want {
		if got := winOperState(uint32(i)); got != w {
			t.Errorf("winOperState(%d) = %q, want %q", i, got, w)
		}
	}
	for ty, w := range map[uint32]uint16{ifTypeEthernet: 1, ifTypeIEEE80211: 1, ifTypeLoopback: 772, ifTypePPP: 512, ifTypeTunnel: 0xfffe, ifTypePropVirtual: 0xfffe, 144: 0xffff} {
		if got := winArphrd(ty); got != w {
			t.Errorf("winArphrd(%d) = %d, want %d", ty, got, w)
		}
	}
	for _, c := range []struct {
		a    winAddr
		want uint32
	}{
		{winAddr{DadState: 4, PrefixOrigin: 3}, 0},                             // preferred, DHCP
		{winAddr{DadState: 4, PrefixOrigin: 1}, ifaFPermanent},                 // manual
		{winAddr{DadState: 4, PrefixOrigin: 2}, ifaFPermanent},                 // well known (loopback)
		{winAddr{DadState: 1, PrefixOrigin: 4}, ifaFTentative},                 // tentative, router advertisement
		{winAddr{DadState: 2, PrefixOrigin: 1}, ifaFDADFailed | ifaFPermanent}, // duplicate
		{winAddr{DadState: 3, PrefixOrigin: 3}, ifaFDeprecated},
	} {
		if got := winAddrFlags(c.a); got != c.want {
			t.Errorf("winAddrFlags(%+v) = %#x, want %#x", c.a, got, c.want)
		}
	}
}

// wineAdapters is what Wine 8.0's GetAdaptersAddresses and GetIfTable2Ex
// gave on a Debian 12 machine (lo, eth0 with IPv4 and IPv6), with no PnP
// information (Wine has no Connection keys).
func wineAdapters() []winAdapter {
	return []winAdapter{
		{Index: 1, GUID: "{00000001-0000-0000-0000-4E6574446576}", Alias: "lo", Description: "lo", IfType: ifTypeLoopback, OperStatus: 1,
			Addrs: []winAddr{{IP: netip.MustParseAddr("::1"), Bits: 128, DadState: 4, PrefixOrigin: 1}, {IP: netip.MustParseAddr("127.0.0.1"), Bits: 8, DadState: 4, PrefixOrigin: 1}},
			Row:   true, AdminStatus: 1, MediaConnectState: 1},
		{Index: 4, GUID: "{00000004-0000-0000-0000-4E6574446576}", Alias: "eth0", Description: "eth0", MAC: []byte{2, 0xfc, 0, 0, 0, 1}, IfType: ifTypeEthernet, OperStatus: 1,
			Addrs: []winAddr{
				{IP: netip.MustParseAddr("fd00::2"), Bits: 64, DadState: 4, PrefixOrigin: 3},
				{IP: netip.MustParseAddr("fe80::fc:ff:fe00:1%4"), Bits: 64, DadState: 4, PrefixOrigin: 3},
				{IP: netip.MustParseAddr("192.0.2.2"), Bits: 24, DadState: 4, PrefixOrigin: 3},
			},
			Gateways: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
			Row:      true, AdminStatus: 1, MediaConnectState: 1, StatusFlags: 5},
		{Index: 2, GUID: "{00000002-0000-0000-0000-4E6574446576}", Alias: "ifb0", Description: "ifb0", MAC: []byte{0xce, 0x5d, 0x60, 0x86, 0x31, 0x4a}, IfType: ifTypeEthernet, OperStatus: 2,
			Row: true, AdminStatus: 1, MediaConnectState: 2, StatusFlags: 5},
	}
}

func TestWinSnapshotWine(t *testing.T) {
	routes := []winRoute{
		{Index: 4, Dst: netip.MustParsePrefix("0.0.0.0/0"), NextHop: netip.MustParseAddr("192.0.2.1")},
		{Index: 4, Dst: netip.MustParsePrefix("192.0.2.0/24"), NextHop: netip.IPv4Unspecified()},
	}
	s := winSnapshot(wineAdapters(), routes, nil)
	if len(s.Links) != 3 || s.Links[0].Index != 1 || s.Links[1].Index != 2 || s.Links[2].Index != 4 {
		t.Fatalf("links not sorted by index: %+v", s.Links)
	}
	lo, ifb, eth := s.Links[0], s.Links[1], s.Links[2]
	if lo.Kind != KindLoopback || lo.Type != arphrdLoopback || lo.MAC != nil || !lo.Connected() {
		t.Errorf("lo: %+v", lo)
	}
	if eth.Kind != KindEthernet || eth.Name != "eth0" || eth.MAC.String() != "02:fc:00:00:00:01" || !eth.Hardware || eth.Sysfs || eth.USB != "" || !eth.Connected() || eth.OperState != "up" {
		t.Errorf("eth0: %+v", eth)
	}
	if ifb.Connected() || ifb.OperState != "down" || ifb.Carrier {
		t.Errorf("ifb0: %+v", ifb)
	}
	var got []string
	for _, a := range s.Addrs {
		got = append(got, a.Prefix.String())
	}
	if strings.Join(got, " ") != "::1/128 127.0.0.1/8 fd00::2/64 fe80::fc:ff:fe00:1/64 192.0.2.2/24" {
		t.Errorf("addresses: %v", got)
	}
	if len(s.Routes) != 1 || !s.Routes[0].IsDefault() || s.Routes[0].Gateway.String() != "192.0.2.1" || s.Routes[0].Index != 4 || s.Routes[0].Family != 4 {
		t.Errorf("routes: %+v", s.Routes)
	}
	// Without a route table, the gateways stand for the default routes.
	s = winSnapshot(wineAdapters(), nil, nil)
	if len(s.Routes) != 1 || !s.Routes[0].IsDefault() || s.Routes[0].Gateway.String() != "192.0.2.1" {
		t.Errorf("gateway routes: %+v", s.Routes)
	}
	// A table with rows that could not be read: the gateways stand for
	// the default routes beside the rows kept, once each.
	partial := []winRoute{routes[1]}
	s = winSnapshot(wineAdapters(), append(partial, gatewayWinRoutes(wineAdapters(), partial)...), nil)
	if len(s.Routes) != 1 || !s.Routes[0].IsDefault() || s.Routes[0].Gateway.String() != "192.0.2.1" || s.Routes[0].Index != 4 {
		t.Errorf("partial table: %+v", s.Routes)
	}
	if extra := gatewayWinRoutes(wineAdapters(), routes); len(extra) != 0 {
		t.Errorf("a default route the table holds added again: %+v", extra)
	}
}

func TestWinLinkPnP(t *testing.T) {
	base := winAdapter{Index: 7, Alias: "Ethernet 2", Description: "Realtek USB GbE Family Controller", MAC: []byte{0x00, 0xe0, 0x4c, 0x68, 0x01, 0x02},
		IfType: ifTypeEthernet, OperStatus: 1, Row: true, AdminStatus: 1, MediaConnectState: 1, StatusFlags: ifFlagHardwareInterface}
	for _, c := range []struct {
		name   string
		chain  []string
		ok     bool
		usb    string
		kind   Kind
		sysfs  bool
		hwFlag uint8
	}{
		{"usb nic, its own node", []string{`USB\VID_0BDA&PID_8153\000001000000`}, true, `USB\VID_0BDA&PID_8153\000001000000`, KindUSB, true, 1},
		{"phone tethering, interface of a composite device", []string{`USB\VID_18D1&PID_4EE4&MI_00\6&2F3B1C2A&0&0000`, `USB\VID_18D1&PID_4EE4\0123456789ABCDEF`}, true, `USB\VID_18D1&PID_4EE4\0123456789ABCDEF`, KindUSB, true, 1},
		{"pci nic", []string{`PCI\VEN_8086&DEV_15BC&SUBSYS_22B817AA&REV_10\3&11583659&0&FE`, `PCI\VEN_8086&DEV_A0B0\3&11583659&0&E8`, `ACPI\PNP0A08\0`, `ACPI_HAL\PNP0C08\0`, `HTREE\ROOT\0`}, true, "", KindEthernet, true, 1},
		{"hyper-v", []string{`ROOT\VMS_MP\0000`, `HTREE\ROOT\0`}, true, "", KindVirtual, true, 0},
		{"walk failed", []string{`PCI\VEN_8086&DEV_15BC\3&11583659&0&FE`}, false, "", KindEthernet, false, 1},
		{"under a root hub only", []string{`USB\ROOT_HUB30\4&1D2E5277&0&0`, `HTREE\ROOT\0`}, true, "", KindEthernet, true, 1},
		// The walk failed above an interface of a composite device: on
		// USB, its device unknown, never "not USB".
		{"walk failed above a USB interface", []string{`USB\VID_18D1&PID_4EE4&MI_00\6&2F3B1C2A&0&0000`}, false, `unknown:USB\VID_18D1&PID_4EE4&MI_00\6&2F3B1C2A&0&0000`, KindUSB, false, 1},
		{"walk failed above a root hub", []string{`PCI\VEN_1\1`, `USB\ROOT_HUB30\4&1D2E5277&0&0`}, false, "", KindEthernet, false, 1},
	} {
		a := base
		a.PnP, a.PnPOK, a.StatusFlags = c.chain, c.ok, c.hwFlag
		l := winLink(&a)
		if l.USB != c.usb || l.Kind != c.kind || l.Sysfs != c.sysfs || l.Driver != base.Description {
			t.Errorf("%s: %+v", c.name, l)
		}
	}
	// A hostile alias is escaped; the row unknown keeps the link unknown.
	a := base
	a.Alias, a.Row = "evil\x1b[2J\u202e", false
	l := winLink(&a)
	if strings.ContainsAny(l.Name, "\x1b\u202e") || l.Sysfs || l.Hardware || !l.AdminUp || !l.Carrier {
		t.Errorf("hostile alias, no row: %+v", l)
	}
	// A disabled adapter's row, and a long or zero MAC.
	a = base
	a.AdminStatus, a.MAC = 2, make([]byte, 6)
	if l := winLink(&a); l.AdminUp || l.MAC != nil || l.Connected() {
		t.Errorf("admin down: %+v", l)
	}
	a.MAC = []byte{0, 0, 0, 0, 0, 0, 0, 0xe0} // Teredo's 8-byte address
	if l := winLink(&a); len(l.MAC) != 8 {
		t.Errorf("8-byte MAC: %v", l.MAC)
	}
}

// TestUSBDevicePathMatchesBackend checks that a link names its USB device
// as the USB backend does (usb.Device.Path on Windows), so that the
// network policy finds the device's verdict.
func TestUSBDevicePathMatchesBackend(t *testing.T) {
	for _, id := range []string{
		`USB\VID_0BDA&PID_8153\000001000000`,
		`USB\VID_18D1&PID_4EE4\0123456789ABCDEF`,
		`usb\vid_05ac&pid_12a8\a1b2c3d4e5f6`,
		`USB\VID_046D&PID_C52B\5&1E2A5B3C&0&2`,
		`USB\VID_0781&PID_5567\Serial with spaces~!`,
	} {
		parsed, err := usb.ParseInstanceID(id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := usbDevicePath([]string{id}); got != parsed.String() {
			t.Errorf("usbDevicePath(%s) = %q, backend Path %q", id, got, parsed.String())
		}
		if _, err := usb.ParseUSBInstanceID(id); err != nil {
			t.Errorf("%s is not a USB device id to the backend: %v", id, err)
		}
	}
	for _, chain := range [][]string{
		nil,
		{`PCI\VEN_8086&DEV_15BC\3&11583659&0&FE`, `HTREE\ROOT\0`},
		{`USB\VID_18D1&PID_4EE4&MI_00\6&2F3B1C2A&0&0000`}, // interface without its device
		{`USB\ROOT_HUB30\4&1D2E5277&0&0`, `USB\VID_1111&PID_2222\X`},
		{`USB\VID_0BDA\000001`}, // no PID
		{`USB\\`, `USB`, ``},
	} {
		if got := usbDevicePath(chain); got != "" {
			t.Errorf("usbDevicePath(%q) = %q, want none", chain, got)
		}
	}
	// Escapes in the instance part, as the backend writes them.
	if got := usbDevicePath([]string{"USB\\VID_1234&PID_5678\\se\x1brial"}); got != `USB\VID_1234&PID_5678\se\x1brial` {
		t.Errorf("escaped serial: %q", got)
	}
}

func TestWinRoutes(t *testing.T) {
	gw6 := netip.MustParseAddr("fe80::1%12")
	rows := []winRoute{
		{Index: 4, Dst: netip.MustParsePrefix("0.0.0.0/0"), NextHop: netip.MustParseAddr("192.0.2.1"), Metric: 25},
		{Index: 12, Dst: netip.MustParsePrefix("::/0"), NextHop: gw6, Metric: 256},
		{Index: 4, Dst: netip.MustParsePrefix("192.0.2.0/24"), NextHop: netip.IPv4Unspecified()},      // on-link
		{Index: 9, Dst: netip.MustParsePrefix("0.0.0.0/1"), NextHop: netip.MustParseAddr("10.8.0.1")}, // VPN split
		{Index: 9, Dst: netip.MustParsePrefix("10.20.0.0/16"), NextHop: netip.MustParseAddr("10.8.0.1")},
		{Index: 1, Dst: netip.MustParsePrefix("127.0.0.0/8"), NextHop: netip.IPv4Unspecified(), Loopback: true},
		{Index: 4, Dst: netip.MustParsePrefix("224.0.0.0/4"), NextHop: netip.IPv4Unspecified()},
		{Index: 4, Dst: netip.MustParsePrefix("255.255.255.255/32"), NextHop: netip.MustParseAddr("192.0.2.9")},
		{Index: 13, Dst: netip.MustParsePrefix("0.0.0.0/0"), NextHop: netip.IPv4Unspecified()}, // on-link default (PPP)
		{Index: 5},
	}
	got := winRoutes(rows)
	var s []string
	for _, r := range got {
		s = append(s, r.Dst.String()+" via "+r.Gateway.String()+" if "+strconv.Itoa(r.Index))
		if r.Table != rtTableMain {
			t.Errorf("table %d", r.Table)
		}
	}
	want := "0.0.0.0/0 via 192.0.2.1 if 4|::/0 via fe80::1 if 12|0.0.0.0/1 via 10.8.0.1 if 9|10.20.0.0/16 via 10.8.0.1 if 9|0.0.0.0/0 via invalid IP if 13"
	if strings.Join(s, "|") != want {
		t.Errorf("routes:\n got %s\nwant %s", strings.Join(s, "|"), want)
	}
	if got[1].Family != 6 || got[0].Priority != 25 || !got[0].IsDefault() || !got[1].IsDefault() || got[2].IsDefault() {
		t.Errorf("families, metrics: %+v", got)
	}
}

// wineIpNetTable is GetIpNetTable2(AF_INET) as Wine 8.0 gave it: the
// gateway 192.0.2.1 on eth0 (reachable), and multicast entries without
// MACs.
func wineIpNetTable(t testing.TB) []byte {
	rows := []string{
		"02000000c0000201000000000000000000000000000000010000180004000000000000040000060002fc00000005000000000000000000000000000000000000000000000000000006000000050000000000060000000000",
		"02000000e0000016000000000000000000000600effffffa00000000010000000000000100001800000000000000000000000000000000000000000000000000000000000000000000000000060000000000060000000000",
	}
	b := make([]byte, 8)
	binary.LittleEndian.PutUint32(b, uint32(len(rows)))
	for _, r := range rows {
		raw, err := hex.DecodeString(r)
		if err != nil || len(raw) != ipnetRow2Len {
			t.Fatalf("row %s: %v", r, err)
		}
		b = append(b, raw...)
	}
	return b
}

// ipnetRow builds one MIB_IPNET_ROW2.
func ipnetRow(ip netip.Addr, index int, mac net.HardwareAddr, state uint32, router bool) []byte {
	b := make([]byte, ipnetRow2Len)
	if ip.Is4() {
		binary.LittleEndian.PutUint16(b, 2)
		a := ip.As4()
		copy(b[4:], a[:])
	} else {
		binary.LittleEndian.PutUint16(b, 23)
		a := ip.As16()
		copy(b[8:], a[:])
	}
	binary.LittleEndian.PutUint32(b[28:], uint32(index))
	copy(b[40:], mac)
	binary.LittleEndian.PutUint32(b[72:], uint32(len(mac)))
	binary.LittleEndian.PutUint32(b[76:], state)
	if router {
		b[80] = 1
	}
	return b
}

func TestParseIpNetTable2(t *testing.T) {
	n, err := parseIpNetTable2(wineIpNetTable(t))
	if err != nil || len(n) != 2 {
		t.Fatalf("%+v, %v", n, err)
	}
	gw := n[0]
	if gw.Index != 4 || gw.IP.String() != "192.0.2.1" || gw.MAC.String() != "02:fc:00:00:00:05" || gw.State != NUDReachable || !gw.HasMAC() {
		t.Errorf("gateway: %+v", gw)
	}
	if mc := n[1]; mc.IP.String() != "224.0.0.22" || mc.Index != 1 || mc.MAC != nil || mc.State != NUDPermanent || mc.HasMAC() {
		t.Errorf("multicast: %+v", mc)
	}

	b := make([]byte, 8)
	binary.LittleEndian.PutUint32(b, 3)
	b = append(b, ipnetRow(netip.MustParseAddr("fe80::1"), 12, net.HardwareAddr{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}, 4, true)...)
	b = append(b, ipnetRow(netip.MustParseAddr("10.0.0.9"), 3, nil, 1, false)...)
	bad := ipnetRow(netip.MustParseAddr("10.0.0.10"), 3, nil, 0, false)
	binary.LittleEndian.PutUint32(bad[72:], 33) // MAC length past the array
	b = append(b, bad...)
	n, err = parseIpNetTable2(b)
	if !errors.Is(err, ErrWinTable) || len(n) != 2 {
		t.Fatalf("%+v, %v", n, err)
	}
	if n[0].IP.String() != "fe80::1" || n[0].State != NUDStale || n[0].Flags != ntfRouter || !n[0].HasMAC() {
		t.Errorf("v6 router: %+v", n[0])
	}
	if n[1].State != NUDIncomplete || n[1].HasMAC() {
		t.Errorf("incomplete: %+v", n[1])
	}
	for _, short := range [][]byte{nil, {1, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}} {
		if _, err := parseIpNetTable2(short); !errors.Is(err, ErrWinTable) {
			t.Errorf("%x: %v", short, err)
		}
	}
}

func TestParseSockaddrInet(t *testing.T) {
	b := make([]byte, 28)
	if _, err := parseSockaddrInet(b); !errors.Is(err, ErrWinTable) {
		t.Errorf("family 0: %v", err)
	}
	if _, err := parseSockaddrInet(b[:27]); !errors.Is(err, ErrWinTable) {
		t.Errorf("short: %v", err)
	}
	b[0] = 23
	b[8], b[9], b[23] = 0xfe, 0x80, 1
	b[24] = 12 // scope id: dropped
	if a, err := parseSockaddrInet(b); err != nil || a.String() != "fe80::1" {
		t.Errorf("v6: %v %v", a, err)
	}
}

// wlanConnection builds a WLAN_CONNECTION_ATTRIBUTES.
func wlanConnection(state uint32, ssid []byte) []byte {
	b := make([]byte, wlanConnAttrsLen)
	binary.LittleEndian.PutUint32(b, state)
	binary.LittleEndian.PutUint32(b[520:], uint32(len(ssid)))
	copy(b[524:], ssid)
	return b
}

func TestParseWlan(t *testing.T) {
	if s, err := parseWlanConnection(wlanConnection(1, []byte("CityOffice-5G"))); err != nil || s != "CityOffice-5G" {
		t.Errorf("connected: %q %v", s, err)
	}
	if s, err := parseWlanConnection(wlanConnection(4, []byte("Stale"))); err != nil || s != "" {
		t.Errorf("disconnected: %q %v", s, err)
	}
	// SSIDs are bytes: invalid UTF-8 and controls are kept, escaped.
	s, err := parseWlanConnection(wlanConnection(1, []byte("caf\xe9\x1b")))
	if err != nil || s != `caf\xe9\x1b` {
		t.Errorf("raw bytes: %q %v", s, err)
	}
	bad := wlanConnection(1, nil)
	binary.LittleEndian.PutUint32(bad[520:], 33)
	if _, err := parseWlanConnection(bad); !errors.Is(err, ErrWinTable) {
		t.Errorf("SSID length 33: %v", err)
	}
	if _, err := parseWlanConnection(make([]byte, 600)); !errors.Is(err, ErrWinTable) {
		t.Errorf("short: %v", err)
	}

	g, ok := guidBytes("{01234567-89AB-CDEF-0123-456789ABCDEF}")
	want := [16]byte{0x67, 0x45, 0x23, 0x01, 0xab, 0x89, 0xef, 0xcd, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	if !ok || g != want {
		t.Errorf("guidBytes: %x %v", g, ok)
	}
	for _, bad := range []string{"", "{01234567-89AB-CDEF-0123-456789ABCDEF", "{01234567-89AB-CDEF-0123-456789ABCDEG}", "01234567-89AB-CDEF-0123-456789ABCDEF00"} {
		if _, ok := guidBytes(bad); ok {
			t.Errorf("guidBytes(%q) accepted", bad)
		}
	}
	list := make([]byte, wlanListHead+2*wlanInfoLen)
	binary.LittleEndian.PutUint32(list, 2)
	copy(list[wlanListHead:], want[:])
	binary.LittleEndian.PutUint32(list[wlanListHead+16+512:], wlanStateConnected)
	ifs, err := parseWlanInterfaceList(list)
	if err != nil || len(ifs) != 2 || ifs[0].GUID != want || ifs[0].State != wlanStateConnected || ifs[1].State != 0 {
		t.Errorf("list: %+v %v", ifs, err)
	}
	binary.LittleEndian.PutUint32(list, 3)
	if _, err := parseWlanInterfaceList(list); !errors.Is(err, ErrWinTable) {
		t.Errorf("3 in 2: %v", err)
	}
}

func FuzzParseIpNetTable2(f *testing.F) {
	f.Add(wineIpNetTable(f))
	f.Add(append([]byte{1, 0, 0, 0, 0, 0, 0, 0}, ipnetRow(netip.MustParseAddr("fe80::1"), 2, net.HardwareAddr{2, 0, 0, 0, 0, 1}, 5, true)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, _ := parseIpNetTable2(b)
		for _, x := range n {
			if !x.IP.IsValid() || len(x.MAC) > 32 || x.IP.Zone() != "" {
				t.Fatalf("accepted %+v", x)
			}
		}
	})
}

func FuzzParseWlan(f *testing.F) {
	f.Add(wlanConnection(1, []byte("CityOffice")))
	f.Add(wlanConnection(1, []byte("\xff\x00\x1b")))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseWlanConnection(b)
		if err == nil && (!utf8.ValidString(s) || strings.ContainsAny(s, "\x00\x1b")) {
			t.Fatalf("unsafe SSID %q", s)
		}
		ifs, err := parseWlanInterfaceList(b)
		if err == nil && len(ifs)*wlanInfoLen > len(b) {
			t.Fatalf("%d interfaces from %d bytes", len(ifs), len(b))
		}
	})
}

func FuzzUSBDevicePath(f *testing.F) {
	f.Add(`USB\VID_18D1&PID_4EE4&MI_00\6&2F3B1C2A&0&0000`, `USB\VID_18D1&PID_4EE4\0123456789ABCDEF`)
	f.Add(`PCI\VEN_8086&DEV_15BC\3&11583659&0&FE`, `HTREE\ROOT\0`)
	f.Fuzz(func(t *testing.T, a, b string) {
		p := usbDevicePath([]string{a, b})
		if p == "" {
			return
		}
		if !strings.HasPrefix(p, `USB\`) || !utf8.ValidString(p) || strings.ContainsAny(p, "\x00\x1b") {
			t.Fatalf("path %q from %q, %q", p, a, b)
		}
	})
}
