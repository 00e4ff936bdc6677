package network

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// Under Wine, IP Helper answers from the Linux kernel of the machine (the
// network namespace the test runs in), which the test reads too, through
// Wine's Z: drive (the Unix root): /sys/class/net, /proc/net/if_inet6,
// /proc/net/route and /proc/net/arp. What the Monitor reports is checked
// against them.

// linuxFile reads a file of the Linux host under Wine.
func linuxFile(t *testing.T, p string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(`Z:` + filepath.FromSlash(p))
	if err != nil {
		t.Logf("%s: %v", p, err)
		return "", false
	}
	return string(b), true
}

func linkByName(s *Snapshot, name string) *Link {
	for i := range s.Links {
		if s.Links[i].Name == name {
			return &s.Links[i]
		}
	}
	return nil
}

func openMonitor(t *testing.T) *Monitor {
	t.Helper()
	m, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

func TestWindowsSnapshot(t *testing.T) {
	m := openMonitor(t)
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range s.Links {
		t.Logf("link %d %q kind %s mac %v admin %v carrier %v oper %s hw %v usb %q facts %v driver %q", l.Index, l.Name, l.Kind, l.MAC, l.AdminUp, l.Carrier, l.OperState, l.Hardware, l.USB, l.Sysfs, l.Driver)
	}
	for _, a := range s.Addrs {
		t.Logf("addr %d %s flags %#x", a.Index, a.Prefix, a.Flags)
	}
	for _, r := range s.Routes {
		t.Logf("route %s via %v if %d metric %d", r.Dst, r.Gateway, r.Index, r.Priority)
	}
	for _, n := range s.Neighbours {
		t.Logf("neighbour %d %s %v state %#x", n.Index, n.IP, n.MAC, n.State)
	}
	var lo *Link
	for i := range s.Links {
		if s.Links[i].Kind == KindLoopback {
			lo = &s.Links[i]
		}
	}
	if lo == nil {
		t.Fatal("no loopback link")
	}
	found := false
	for _, a := range s.Addrs {
		found = found || a.Index == lo.Index && a.Prefix.Addr() == netip.MustParseAddr("127.0.0.1")
	}
	if !found {
		t.Error("127.0.0.1 is not on the loopback link")
	}
	if !wintest.IsWine() {
		return
	}
	compared := 0

	// Links and their MACs: /sys/class/net/<name>/address.
	entries, err := os.ReadDir(`Z:\sys\class\net`)
	if err != nil {
		t.Fatalf("Z:\\sys\\class\\net: %v", err)
	}
	for _, e := range entries {
		name := e.Name()
		l := linkByName(&s, name)
		if l == nil {
			t.Errorf("Linux link %s is not among the links", name)
			continue
		}
		compared++
		if mac, ok := linuxFile(t, "/sys/class/net/"+name+"/address"); ok {
			want, err := net.ParseMAC(strings.TrimSpace(mac))
			if err == nil && !isZero(want) && l.MAC.String() != want.String() {
				t.Errorf("link %s: MAC %v, Linux says %v", name, l.MAC, want)
			}
		}
	}

	// IPv6 addresses: /proc/net/if_inet6 (address, ifindex, prefix
	// length, scope, flags, name; hex).
	if text, ok := linuxFile(t, "/proc/net/if_inet6"); ok {
		sc := bufio.NewScanner(strings.NewReader(text))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 6 {
				continue
			}
			raw, err1 := hex.DecodeString(f[0])
			plen, err2 := strconv.ParseUint(f[2], 16, 8)
			if err1 != nil || err2 != nil || len(raw) != 16 {
				continue
			}
			want := netip.PrefixFrom(netip.AddrFrom16([16]byte(raw)), int(plen))
			l := linkByName(&s, f[5])
			if l == nil {
				t.Errorf("%s of %s: no such link", want, f[5])
				continue
			}
			ok := false
			for _, a := range s.Addrs {
				ok = ok || a.Index == l.Index && a.Prefix == want
			}
			if !ok {
				t.Errorf("Linux has %s on %s; the Monitor does not", want, f[5])
			}
			compared++
		}
	}

	// The IPv4 default route: /proc/net/route (Iface, Destination,
	// Gateway, Flags, ..., Mask; little-endian hex).
	if text, ok := linuxFile(t, "/proc/net/route"); ok {
		for _, line := range strings.Split(text, "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
				continue
			}
			g, err := strconv.ParseUint(f[2], 16, 32)
			if err != nil || g == 0 {
				continue
			}
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], uint32(g))
			gw := netip.AddrFrom4(b)
			l := linkByName(&s, f[0])
			ok := false
			for _, r := range s.Routes {
				ok = ok || r.IsDefault() && r.Gateway == gw && l != nil && r.Index == l.Index
			}
			if !ok {
				t.Errorf("Linux routes 0.0.0.0/0 via %s on %s; the Monitor has %+v", gw, f[0], s.Routes)
			}
			compared++
		}
	}

	// IPv4 neighbours: /proc/net/arp (IP, HW type, Flags, HW address,
	// Mask, Device); complete entries (flag 0x2) only.
	if text, ok := linuxFile(t, "/proc/net/arp"); ok {
		for _, line := range strings.Split(text, "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 6 || f[2] == "0x0" {
				continue
			}
			ip, err1 := netip.ParseAddr(f[0])
			mac, err2 := net.ParseMAC(f[3])
			l := linkByName(&s, f[5])
			if err1 != nil || err2 != nil || l == nil {
				continue
			}
			ok := false
			for _, n := range s.Neighbours {
				ok = ok || n.Index == l.Index && n.IP == ip && n.MAC.String() == mac.String() && n.HasMAC()
			}
			if !ok {
				t.Errorf("Linux has neighbour %s (%s) on %s; the Monitor does not", ip, mac, f[5])
			}
			compared++
		}
	}
	t.Logf("%d facts of the Linux host compared", compared)
	if compared < 2 {
		t.Errorf("only %d facts compared: the Linux view through Z: is missing", compared)
	}
}

// TestWindowsEventSources is the self-test: under Wine 8.0 the IP Helper
// notifications register but never call back (not even the initial
// notification), so they must be reported as fallen back to rescans; on
// Windows they must work.
func TestWindowsEventSources(t *testing.T) {
	m := openMonitor(t)
	start := time.Now()
	srcs := m.EventSources()
	if d := time.Since(start); d > initialWait+time.Second {
		t.Errorf("EventSources took %s", d)
	}
	byName := map[string]EventSource{}
	for _, s := range srcs {
		t.Logf("%s: working %v: %s", s.Name, s.Working, s.Detail)
		byName[s.Name] = s
	}
	if last := srcs[len(srcs)-1]; last.Name != "rescan" || !last.Working || !strings.Contains(last.Detail, RescanInterval.String()) {
		t.Errorf("last source: %+v", last)
	}
	ifc, ok := byName["NotifyIpInterfaceChange"]
	if !ok {
		t.Fatal("NotifyIpInterfaceChange not reported")
	}
	if wintest.IsWine() {
		if ifc.Working || !strings.Contains(ifc.Detail, "rescans every") {
			t.Errorf("under Wine: %+v", ifc)
		}
	} else if !ifc.Working {
		t.Errorf("on Windows: %+v", ifc)
	}
	if _, ok := byName["GetIpNetTable2"]; !ok {
		t.Error("GetIpNetTable2 not reported")
	}
}

// TestWindowsReceive checks the Receive loop on the real tables: a state
// that lacks a link (as if it had just come) is brought up to date by the
// next rescan, callbacks that find the queue full neither block nor get
// lost, and Close ends a blocked Receive.
func TestWindowsReceive(t *testing.T) {
	m := openMonitor(t)
	m.rescan = 200 * time.Millisecond
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Links) == 0 {
		t.Fatal("no links")
	}
	gone := s.Links[len(s.Links)-1]
	m.mu.Lock()
	m.last.Links = m.last.Links[:len(m.last.Links)-1]
	m.mu.Unlock()

	type result struct {
		c   []Change
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := m.Receive()
		got <- result{c, err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(r.c) != 1 || r.c[0].Kind != ChangeLink || r.c[0].Deleted || r.c[0].Link.Index != gone.Index {
			t.Errorf("changes %+v, want link %d added", r.c, gone.Index)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive did not report the link")
	}

	// A burst of callbacks: none blocks, the overflow is counted, and
	// Receive wakes (with nothing to report, it waits on).
	done := make(chan struct{})
	go func() {
		for range cap(m.events) + 50 {
			post(m.id, srcInterface, 0)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("callbacks blocked")
	}
	if m.overflows.Load() < 50 {
		t.Errorf("overflows %d, want at least 50", m.overflows.Load())
	}
	post(m.id+1000, srcInterface, 0) // a context no Monitor has: ignored

	go func() {
		c, err := m.Receive()
		got <- result{c, err}
	}()
	time.Sleep(600 * time.Millisecond)
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case r := <-got:
		if !errors.Is(r.err, net.ErrClosed) {
			t.Errorf("Receive after Close: %+v, %v", r.c, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Receive did not return after Close")
	}
	if _, err := m.Snapshot(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Snapshot after Close: %v", err)
	}
}
