package network

import (
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/internal/netnstest"
)

// receiveUntil calls Receive until f accepts a change or the deadline
// passes; Receive runs in a goroutine so that the test can time out.
func receiveUntil(t *testing.T, m *Monitor, what string, f func(Change) bool) Change {
	t.Helper()
	type result struct {
		cs  []Change
		err error
	}
	deadline := time.After(5 * time.Second)
	for {
		rc := make(chan result, 1)
		go func() { cs, err := m.Receive(); rc <- result{cs, err} }()
		select {
		case r := <-rc:
			if r.err != nil {
				t.Fatalf("waiting for %s: Receive: %v", what, r.err)
			}
			for _, c := range r.cs {
				if c.Time.IsZero() {
					t.Errorf("change %+v without Time", c)
				}
				if f(c) {
					return c
				}
			}
		case <-deadline:
			t.Fatalf("no %s within 5s", what)
		}
	}
}

// addrTestNS makes a namespace with veth0 (MAC 02:aa:bb:cc:dd:01,
// 192.0.2.1/24, up) whose peer veth1 (192.0.2.2/24) is in a second one.
func addrTestNS(t *testing.T) (a, b *testNetns) {
	a, b = newNetns(t), newNetns(t)
	netnstest.VethPair(a.NS, "veth0", b.NS, "veth1")
	a.IP("link", "set", "veth0", "address", "02:AA:BB:CC:DD:01")
	a.IP("addr", "add", "192.0.2.1/24", "dev", "veth0")
	b.IP("addr", "add", "192.0.2.2/24", "dev", "veth1")
	a.IP("link", "set", "veth0", "up")
	b.IP("link", "set", "veth1", "up")
	return a, b
}

func snapLink(s Snapshot, name string) *Link {
	for i := range s.Links {
		if s.Links[i].Name == name {
			return &s.Links[i]
		}
	}
	return nil
}

func TestMonitorSnapshot(t *testing.T) {
	a, _ := addrTestNS(t)
	a.IP("route", "add", "default", "via", "192.0.2.254", "dev", "veth0")
	m := a.open(Options{})
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	v := snapLink(s, "veth0")
	if v == nil {
		t.Fatalf("no veth0 in %+v", s.Links)
	}
	if v.MAC.String() != "02:aa:bb:cc:dd:01" || !v.AdminUp || !v.Carrier || v.OperState != "up" || v.Kind != KindVirtual || v.Hardware || !v.Connected() {
		t.Errorf("veth0 = %+v", v)
	}
	if lo := snapLink(s, "lo"); lo == nil || lo.Kind != KindLoopback {
		t.Errorf("lo = %+v", lo)
	}
	var found bool
	for _, ad := range s.Addrs {
		if ad.Index == v.Index && ad.Prefix == netip.MustParsePrefix("192.0.2.1/24") {
			found = true
		}
	}
	if !found {
		t.Errorf("no 192.0.2.1/24 on veth0 in %+v", s.Addrs)
	}
	// The prefix route of 192.0.2.1/24 and fe80::/64 have no gateway, the
	// local table's routes are left out: only the default remains.
	want := Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Table: 254, Index: v.Index, Gateway: netip.MustParseAddr("192.0.2.254"), Family: 4}
	if len(s.Routes) != 1 || s.Routes[0] != want || !s.Routes[0].IsDefault() {
		t.Errorf("routes %+v, want [%+v]", s.Routes, want)
	}
}

func TestMonitorReceive(t *testing.T) {
	a, b := addrTestNS(t)
	m := a.open(Options{})
	veth := func(c Change) bool { return c.Kind == ChangeLink && c.Link.Name == "veth0" }

	a.IP("link", "set", "veth0", "down")
	receiveUntil(t, m, "veth0 down", func(c Change) bool { return veth(c) && !c.Link.AdminUp && !c.Link.Connected() })
	a.IP("link", "set", "veth0", "up")
	receiveUntil(t, m, "veth0 up", func(c Change) bool { return veth(c) && c.Link.AdminUp && c.Link.Carrier })

	p := netip.MustParsePrefix("198.18.0.1/15")
	a.IP("addr", "add", p.String(), "dev", "veth0")
	receiveUntil(t, m, "address added", func(c Change) bool { return c.Kind == ChangeAddr && !c.Deleted && c.Addr.Prefix == p })
	a.IP("addr", "del", p.String(), "dev", "veth0")
	receiveUntil(t, m, "address removed", func(c Change) bool { return c.Kind == ChangeAddr && c.Deleted && c.Addr.Prefix == p })

	gw1, gw2 := netip.MustParseAddr("192.0.2.254"), netip.MustParseAddr("192.0.2.253")
	a.IP("route", "add", "default", "via", gw1.String(), "dev", "veth0")
	receiveUntil(t, m, "default route added", func(c Change) bool {
		return c.Kind == ChangeRoute && !c.Deleted && c.Route.Gateway == gw1 && c.Route.Family == 4
	})
	a.IP("route", "add", "203.0.113.0/24", "via", gw1.String(), "dev", "veth0")
	receiveUntil(t, m, "route through a gateway", func(c Change) bool {
		return c.Kind == ChangeRoute && !c.Deleted && c.Route.Dst == netip.MustParsePrefix("203.0.113.0/24") && c.Route.Gateway == gw1 && !c.Route.IsDefault()
	})
	a.IP("route", "replace", "default", "via", gw2.String(), "dev", "veth0")
	c := receiveUntil(t, m, "default route changed", func(c Change) bool { return c.Kind == ChangeRoute && c.Route.Gateway == gw2 })
	if !c.Replace {
		t.Errorf("replaced route %+v without Replace", c)
	}

	b.SendUDP("192.0.2.1:9")
	receiveUntil(t, m, "neighbour 192.0.2.2", func(c Change) bool {
		return c.Kind == ChangeNeighbour && !c.Deleted && c.Neighbour.IP == netip.MustParseAddr("192.0.2.2") && c.Neighbour.HasMAC()
	})
}

// TestMonitorRoutes checks that a route through a gateway and a default
// of another table come out of Receive with their Dst and Table, and that
// a gateway-less route other than a default and the local table's routes
// do not.
func TestMonitorRoutes(t *testing.T) {
	a, _ := addrTestNS(t)
	m := a.open(Options{NoWireless: true})
	a.IP("route", "add", "203.0.113.0/24", "via", "192.0.2.254", "dev", "veth0")
	a.IP("route", "add", "default", "via", "192.0.2.254", "dev", "veth0", "table", "100")
	a.IP("route", "add", "198.51.100.0/24", "dev", "veth0", "table", "100")                           // no gateway: dropped
	a.IP("route", "add", "198.51.100.128/25", "via", "192.0.2.254", "dev", "veth0", "table", "local") // local table: dropped
	a.IP("addr", "add", "198.18.0.1/15", "dev", "veth0")                                              // a marker after them
	v4 := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	got := map[netip.Prefix]Route{}
	receiveUntil(t, m, "the marker address", func(c Change) bool {
		if c.Kind == ChangeRoute {
			if r := c.Route; r.Dst.Bits() != 0 && !r.Gateway.IsValid() || r.Table == rtTableLocal {
				t.Errorf("route %+v came through", r)
			}
			got[c.Route.Dst] = *c.Route
		}
		return c.Kind == ChangeAddr && c.Addr.Prefix.Addr() == netip.MustParseAddr("198.18.0.1")
	})
	gw := netip.MustParseAddr("192.0.2.254")
	if r := got[v4("203.0.113.0/24")]; r.Table != 254 || r.Gateway != gw || r.IsDefault() {
		t.Errorf("203.0.113.0/24: %+v", r)
	}
	if r := got[v4("0.0.0.0/0")]; r.Table != 100 || r.Gateway != gw || r.IsDefault() {
		t.Errorf("default of table 100: %+v", r)
	}
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Routes) != 2 {
		t.Errorf("snapshot routes %+v, want 203.0.113.0/24 and table 100's default", s.Routes)
	}
	for _, r := range s.Routes {
		if got[r.Dst] != r {
			t.Errorf("snapshot route %+v, received %+v", r, got[r.Dst])
		}
	}
}

func TestMonitorKinds(t *testing.T) {
	a := newNetns(t)
	// The dummy module may be missing (it is on the kernel the tests were
	// written on); ifb is as virtual.
	virt := "dummy0"
	if out, err := exec.Command("ip", "-n", a.Name(), "link", "add", virt, "type", "dummy").CombinedOutput(); err != nil {
		t.Logf("no dummy links (%s), using ifb", strings.TrimSpace(string(out)))
		virt = "ifb0"
		a.IP("link", "add", virt, "type", "ifb")
	}
	a.IP("link", "add", "br0", "type", "bridge")
	a.IP("link", "set", virt, "master", "br0")
	tap := true
	if out, err := exec.Command("ip", "-n", a.Name(), "tuntap", "add", "tap0", "mode", "tap").CombinedOutput(); err != nil {
		t.Logf("no tap (%s)", strings.TrimSpace(string(out)))
		tap = false
	}
	m := a.open(Options{})
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	br := snapLink(s, "br0")
	if br == nil || br.Kind != KindBridge {
		t.Fatalf("br0 = %+v, want a bridge", br)
	}
	if d := snapLink(s, virt); d == nil || d.Kind != KindVirtual || d.MasterIndex != br.Index {
		t.Errorf("%s = %+v, want virtual, a port of br0 (%d)", virt, d, br.Index)
	}
	if tap {
		if l := snapLink(s, "tap0"); l == nil || l.Kind != KindTunnel {
			t.Errorf("tap0 = %+v, want a tunnel", l)
		}
	}
}

// TestMonitorParentIndex: a macvlan's lower device, through Snapshot and
// Receive.
func TestMonitorParentIndex(t *testing.T) {
	a, _ := addrTestNS(t)
	m := a.open(Options{NoWireless: true})
	a.IP("link", "add", "mv0", "link", "veth0", "type", "macvlan")
	c := receiveUntil(t, m, "mv0", func(c Change) bool { return c.Kind == ChangeLink && c.Link.Name == "mv0" })
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	veth, mv := snapLink(s, "veth0"), snapLink(s, "mv0")
	if veth == nil || mv == nil {
		t.Fatalf("links %+v", s.Links)
	}
	if mv.ParentIndex != veth.Index || c.Link.ParentIndex != veth.Index {
		t.Errorf("mv0 ParentIndex %d in the snapshot, %d in the change; want %d", mv.ParentIndex, c.Link.ParentIndex, veth.Index)
	}
	if veth.ParentIndex != 0 {
		t.Errorf("veth0 (peer in another namespace) ParentIndex %d", veth.ParentIndex)
	}
}

// TestMonitorSubscribeBeforeDump makes a link between Open and Snapshot:
// it must be in the snapshot or in a later Receive.
func TestMonitorSubscribeBeforeDump(t *testing.T) {
	a, _ := addrTestNS(t)
	m := a.open(Options{})
	a.IP("link", "add", "br9", "type", "bridge")
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snapLink(s, "br9") != nil {
		return
	}
	receiveUntil(t, m, "br9", func(c Change) bool { return c.Kind == ChangeLink && c.Link.Name == "br9" })
}

func TestMonitorClose(t *testing.T) {
	a := newNetns(t)
	m := a.open(Options{})
	errc := make(chan error, 1)
	go func() { _, err := m.Receive(); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Receive after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Receive still blocked 5s after Close")
	}
	if _, err := m.Receive(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Receive after Close: %v", err)
	}
	if _, err := m.Snapshot(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Snapshot after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestMonitorNoWireless: without nl80211 (there is no Wi-Fi here, and
// NoWireless) nothing fails.
func TestMonitorNoWireless(t *testing.T) {
	a := newNetns(t)
	m := a.open(Options{NoWireless: true})
	if _, err := m.Snapshot(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSnapshot(b *testing.B) {
	a, peer := newNetns(b), newNetns(b)
	for _, n := range []string{"0", "1", "2", "3"} {
		netnstest.VethPair(a.NS, "veth"+n, peer.NS, "peer"+n)
		a.IP("addr", "add", "192.0.2."+n+"1/24", "dev", "veth"+n)
		a.IP("link", "set", "veth"+n, "up")
	}
	a.IP("route", "add", "default", "via", "192.0.2.254", "dev", "veth0")
	a.IP("link", "add", "br0", "type", "bridge")
	m := a.open(Options{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Snapshot(); err != nil {
			b.Fatal(err)
		}
	}
}
