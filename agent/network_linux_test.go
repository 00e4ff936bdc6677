package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/collector/network"
	"github.com/mamori-agent/mamori/internal/netnstest"
	"github.com/mamori-agent/mamori/wire"
)

// The network acceptance tests of the network issue: the agent runs with
// a Monitor opened in a network namespace the test made (the "PC"), and
// veth pairs lead to other namespaces the test made (the LAN: a switch
// with the gateway on it, devices). Every test asserts on the agent's
// audit records, and on nothing recorded twice after a restart. Traffic
// is only ever sent between these namespaces.

// testNetns is a network namespace made for one test and deleted when it
// ends (netnstest.NS), with this package's helpers sysctl and monitor.
type testNetns struct {
	*netnstest.NS
	t testing.TB
}

// newNetns makes a fresh network namespace, with loopback up and IPv6 off
// (the cases are IPv4; no link-local addresses or router solicitations
// come and go while a test counts records), and deletes it at the end.
// It skips the test unless it runs as root with ip(8).
func newNetns(t testing.TB, role string) *testNetns {
	t.Helper()
	n := &testNetns{NS: netnstest.New(t, "mamori-a-"+role), t: t}
	for _, k := range []string{"all", "default"} {
		n.sysctl("/proc/sys/net/ipv6/conf/"+k+"/disable_ipv6", "1")
	}
	return n
}

// sysctl writes a /proc/sys/net file of the namespace (the thread in the
// namespace opens it: net sysctls follow the opener's namespace).
func (n *testNetns) sysctl(path, value string) {
	n.t.Helper()
	err := n.Do(func() error {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return nil // no IPv6 in this kernel: nothing to turn off
		}
		return os.WriteFile(path, []byte(value), 0o644)
	})
	if err != nil {
		n.t.Fatalf("sysctl %s=%s in %s: %v", path, value, n.Name(), err)
	}
}

// monitor opens a network.Monitor inside the namespace, for
// Options.Network (the agent closes it when it stops; so does the
// cleanup, in case it never started).
func (n *testNetns) monitor() NetworkSource {
	n.t.Helper()
	var m *network.Monitor
	if err := n.Do(func() (err error) { m, err = network.Open(network.Options{NoWireless: true}); return err }); err != nil {
		n.t.Fatalf("network.Open in %s: %v", n.Name(), err)
	}
	n.t.Cleanup(func() { _ = m.Close() })
	return m
}

// The LAN the tests build. Interface names are the test's own (pc0, sw0,
// ...): sysfs shows the host's namespace, and the monitor must not take a
// host interface of the same name for one of these.
const (
	gwIP    = "10.20.0.1"
	gwMAC   = "00:11:22:33:44:55" // the gateway's MAC (the bridge br0 in the switch)
	pcAddr  = "10.20.1.5/16"
	pcIP    = "10.20.1.5"
	pcMAC   = "00:16:3e:00:01:05"
	copier  = "00:1b:a9:00:00:01" // registered in approved.lan_devices
	outside = "192.168.50.2/24"   // a network nobody approved
)

// netTestConfig is the policy of these tests: the city LAN (zone lgwan)
// with its gateway pinned to pin, an internet-connected segment (zone
// internet), one registered LAN device.
func netTestConfig(pin string) string {
	return `version: 1
agent:
  asset_id: PC-NET
  language: en
  rescan_interval: 1h
metrics:
  listen: ""
network:
  watch_lan: true
  lan_report_window: 1h
approved:
  networks:
    - name: City LAN
      cidr: 10.20.0.0/16
      gateway_mac: "` + pin + `"
      zone: lgwan
    - name: Internet segment
      cidr: 10.30.0.0/16
      zone: internet
  lan_devices:
    - name: Copier 3F
      mac: "` + copier + `"
`
}

// netLAN is one test's namespaces: the PC, and the switch the PC's pc0 is
// plugged into, whose bridge br0 is the gateway.
type netLAN struct {
	t       *testing.T
	pc, sw  *testNetns
	ports   int
	e       *testEnv
	r       *running
	started int // records in the log when the running agent started
}

// newNetLAN builds the PC on the city LAN: pc0 (pcMAC, pcAddr, up) to the
// switch, the gateway gwIP with gwMAC on the switch's bridge, the default
// route via the gateway; and a test env with the config for pin.
func newNetLAN(t *testing.T, pin string) *netLAN {
	t.Helper()
	netnstest.Require(t)
	l := &netLAN{t: t, pc: newNetns(t, "pc"), sw: newNetns(t, "sw")}
	l.sw.IP("link", "add", "br0", "type", "bridge")
	l.sw.IP("link", "set", "br0", "address", gwMAC)
	l.sw.IP("addr", "add", gwIP+"/16", "dev", "br0")
	l.sw.IP("link", "set", "br0", "up")
	netnstest.VethPair(l.pc.NS, "pc0", l.sw.NS, "sw0")
	l.sw.IP("link", "set", "sw0", "master", "br0")
	l.sw.IP("link", "set", "sw0", "up")
	l.pc.IP("link", "set", "pc0", "address", pcMAC)
	l.pc.IP("addr", "add", pcAddr, "dev", "pc0")
	l.pc.IP("link", "set", "pc0", "up")
	l.pc.IP("route", "add", "default", "via", gwIP, "dev", "pc0")
	l.e = newEnv(t, netTestConfig(pin))
	// A sysfs without USB devices: only the network is watched here.
	for _, d := range []string{"devices", "bus/usb/devices"} {
		if err := os.MkdirAll(filepath.Join(l.e.sysfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// start starts the agent on the PC's namespace.
func (l *netLAN) start() {
	l.t.Helper()
	l.started = len(l.records())
	l.r = l.e.start(Options{Network: l.pc.monitor()})
	l.t.Cleanup(func() {
		if l.r != nil {
			l.r.stop(l.t)
			l.r = nil
		}
	})
}

func (l *netLAN) stop() {
	l.t.Helper()
	l.r.stop(l.t)
	l.r = nil
}

// device plugs a new namespace into the switch: d0 with mac and cidr, up.
func (l *netLAN) device(mac, cidr string) *testNetns {
	l.t.Helper()
	l.ports++
	port := fmt.Sprintf("sw%d", l.ports)
	d := newNetns(l.t, "dev")
	netnstest.VethPair(d.NS, "d0", l.sw.NS, port)
	l.sw.IP("link", "set", port, "master", "br0")
	l.sw.IP("link", "set", port, "up")
	d.IP("link", "set", "d0", "address", mac)
	d.IP("addr", "add", cidr, "dev", "d0")
	d.IP("link", "set", "d0", "up")
	return d
}

// second plugs a second interface of the PC, pc1 with cidr, into a
// namespace of its own (another network). up says whether pc1 is set up.
func (l *netLAN) second(cidr string, up bool) *testNetns {
	l.t.Helper()
	o := newNetns(l.t, "other")
	netnstest.VethPair(l.pc.NS, "pc1", o.NS, "o0")
	o.IP("link", "set", "o0", "up")
	if cidr != "" {
		l.pc.IP("addr", "add", cidr, "dev", "pc1")
	}
	if up {
		l.pc.IP("link", "set", "pc1", "up")
	}
	return o
}

// resolveGateway makes the PC's kernel learn the gateway's MAC: one UDP
// datagram from the PC to the gateway (port 9, discard; nobody listens,
// the switch's namespace answers with an ICMP error).
func (l *netLAN) resolveGateway() { l.pc.SendUDP(gwIP + ":9") }

// netRecord is an audit record as the network tests read it.
type netRecord struct {
	Seq       uint64          `json:"seq"`
	Type      string          `json:"type"`
	Source    string          `json:"source"`
	Trigger   string          `json:"trigger"`
	Kind      string          `json:"kind"`
	Subject   string          `json:"subject"`
	Instance  string          `json:"instance"`
	Message   string          `json:"message"`
	Until     *time.Time      `json:"until"`
	Link      *wire.Link      `json:"link"`
	Address   *wire.Address   `json:"address"`
	Routes    []wire.Gateway  `json:"routes"`
	Violation *wire.Violation `json:"violation"`
}

func (r netRecord) String() string {
	s := fmt.Sprintf("%d %s %s", r.Seq, r.Type, r.Source)
	if r.Kind != "" {
		s += " " + r.Kind
	}
	if r.Subject != "" {
		s += " [" + r.Subject + "]"
	}
	if r.Instance != "" {
		s += " (" + r.Instance + ")"
	}
	if r.Violation != nil {
		s += " device=" + r.Violation.Device
	}
	return s
}

func (l *netLAN) records() []netRecord {
	l.t.Helper()
	return readAuditLog[netRecord](l.t, l.e.state)
}

func dumpNet(recs []netRecord) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// waitRecords polls the audit log (every 5 ms, up to 5 s) until cond holds
// for its records.
func (l *netLAN) waitRecords(what string, cond func([]netRecord) bool) []netRecord {
	l.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := l.records()
		if cond(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out waiting for %s; audit log has:\n%s", what, dumpNet(recs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// where returns the records for which f holds.
func where(recs []netRecord, f func(r *netRecord) bool) []netRecord {
	var out []netRecord
	for i := range recs {
		if f(&recs[i]) {
			out = append(out, recs[i])
		}
	}
	return out
}

func ofType(typ string) func(r *netRecord) bool {
	return func(r *netRecord) bool { return r.Type == typ }
}

func violationOf(kind string) func(r *netRecord) bool {
	return func(r *netRecord) bool { return r.Type == wire.TypeViolation && r.Kind == kind }
}

func clearedOf(kind string) func(r *netRecord) bool {
	return func(r *netRecord) bool {
		return r.Type == wire.TypeViolationCleared && r.Violation != nil && r.Violation.Kind == kind
	}
}

func onLink(typ, name string) func(r *netRecord) bool {
	return func(r *netRecord) bool { return r.Type == typ && r.Link != nil && r.Link.Name == name }
}

func addrRec(typ, prefix string) func(r *netRecord) bool {
	return func(r *netRecord) bool { return r.Type == typ && r.Address != nil && r.Address.Prefix == prefix }
}

// gatewayKnown holds for a route_changed naming the gateway with its MAC.
func gatewayKnown(mac string) func(r *netRecord) bool {
	return func(r *netRecord) bool {
		if r.Type != wire.TypeRouteChanged {
			return false
		}
		for _, g := range r.Routes {
			if g.Interface == "pc0" && g.IP == gwIP && g.MAC != nil && *g.MAC == mac {
				return true
			}
		}
		return false
	}
}

// settle waits until the audit log has not grown for quiet (at most 3 s):
// the notifications of the test's last change have been handled.
func (l *netLAN) settle(quiet time.Duration) []netRecord {
	l.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	last, since := -1, time.Now()
	for {
		recs := l.records()
		if len(recs) != last {
			last, since = len(recs), time.Now()
		} else if time.Since(since) >= quiet || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// restartNoDoubles stops the agent and starts it again on the same state
// directory and namespaces, nothing changed in between: the restart must
// record no network or LAN record at all (no second link_added,
// address_added, link_up, route_changed for what is still there, no
// second violation for a condition still present, no second
// lan_device_unregistered within its window, nothing cleared either).
// The agent keeps running.
func (l *netLAN) restartNoDoubles() {
	l.t.Helper()
	l.settle(100 * time.Millisecond)
	l.stop()
	before := len(l.records())
	l.start()
	after := l.settle(150 * time.Millisecond)[before:]
	if len(after) == 0 || after[0].Type != TypeAgentStarted {
		l.t.Fatalf("restart: want agent_started first, got:\n%s", dumpNet(after))
	}
	if again := where(after, func(r *netRecord) bool {
		return r.Source == wire.SourceNetwork || r.Source == wire.SourceLAN
	}); len(again) != 0 {
		l.t.Errorf("after a restart with nothing changed, the agent recorded again:\n%s\nwhole log:\n%s", dumpNet(again), dumpNet(l.records()))
	}
}

// noViolations fails the test when recs hold a violation.
func noViolations(t *testing.T, recs []netRecord) {
	t.Helper()
	if v := where(recs, ofType(wire.TypeViolation)); len(v) != 0 {
		t.Errorf("unexpected violations:\n%s", dumpNet(v))
	}
}

// TestNetworkApprovedLANPinnedGateway: the PC on the approved LAN, its
// default route via the pinned gateway whose MAC the kernel learnt from
// traffic. Nothing is a violation; route_changed names the gateway and
// its MAC.
func TestNetworkApprovedLANPinnedGateway(t *testing.T) {
	l := newNetLAN(t, gwMAC)
	l.start()
	recs := l.waitRecords("pc0 added", func(rs []netRecord) bool { return len(where(rs, onLink(wire.TypeLinkAdded, "pc0"))) == 1 })
	if got := where(recs, onLink(wire.TypeLinkUp, "pc0")); len(got) != 1 {
		t.Errorf("want one link_up for pc0:\n%s", dumpNet(recs))
	}
	if got := where(recs, addrRec(wire.TypeAddressAdded, pcAddr)); len(got) != 1 || got[0].Address.Interface != "pc0" {
		t.Errorf("want one address_added %s on pc0:\n%s", pcAddr, dumpNet(recs))
	}
	l.resolveGateway()
	recs = l.waitRecords("route_changed with the gateway's MAC", func(rs []netRecord) bool {
		return len(where(rs, gatewayKnown(gwMAC))) > 0
	})
	rc := where(recs, gatewayKnown(gwMAC))
	if len(rc) != 1 || !strings.Contains(rc[0].Message, gwIP) || !strings.Contains(rc[0].Message, gwMAC) ||
		!strings.Contains(rc[0].Instance, gwIP) || !strings.Contains(rc[0].Instance, gwMAC) {
		t.Errorf("route_changed must name the gateway %s and its MAC %s once:\n%s", gwIP, gwMAC, dumpNet(rc))
	}
	if al := where(recs, onLink(wire.TypeLinkAdded, "pc0")); len(al) == 1 {
		ln := al[0].Link
		if ln.MAC == nil || *ln.MAC != pcMAC || ln.Approved == nil || !*ln.Approved || ln.Network != "City LAN" {
			t.Errorf("link_added pc0 = %+v, want MAC %s, approved on City LAN", ln, pcMAC)
		}
	}
	noViolations(t, l.settle(100*time.Millisecond))
	l.restartNoDoubles()
	noViolations(t, l.records())
}

// TestNetworkLookAlikeGateway: the same LAN, but the gateway answering
// has another MAC than the pinned one.
func TestNetworkLookAlikeGateway(t *testing.T) {
	const pin = "00:11:22:33:44:66"
	l := newNetLAN(t, pin)
	l.start()
	l.resolveGateway()
	l.waitRecords("network_unapproved", func(rs []netRecord) bool {
		return len(where(rs, violationOf(wire.KindNetworkUnapproved))) > 0
	})
	recs := l.settle(100 * time.Millisecond)
	v := where(recs, violationOf(wire.KindNetworkUnapproved))
	if len(v) != 1 {
		t.Fatalf("want exactly one network_unapproved:\n%s", dumpNet(recs))
	}
	vio := v[0].Violation
	if vio.Device != "pc0" || !strings.Contains(vio.Message, gwIP) || !strings.Contains(vio.Message, gwMAC) ||
		!strings.Contains(vio.Message, pin) || !strings.Contains(vio.MessageJA, gwIP) {
		t.Errorf("the violation must name pc0, the gateway %s, its MAC %s and the pin %s: %+v", gwIP, gwMAC, pin, vio)
	}
	if len(where(recs, gatewayKnown(gwMAC))) != 1 {
		t.Errorf("want route_changed naming the look-alike's MAC:\n%s", dumpNet(recs))
	}
	// The look-alike is not registered either: a LAN device report, of
	// another kind.
	if n := len(where(recs, violationOf(wire.KindLANDeviceUnregistered))); n != 1 {
		t.Errorf("want one lan_device_unregistered for the look-alike, got %d:\n%s", n, dumpNet(recs))
	}
	l.restartNoDoubles()

	// The default route moves to another gateway (ip route replace): the
	// look-alike no longer carries it.
	l.pc.IP("route", "replace", "default", "via", "10.20.0.2", "dev", "pc0")
	recs = l.waitRecords("route replaced", func(rs []netRecord) bool {
		return len(where(rs, clearedOf(wire.KindNetworkUnapproved))) == 1
	})
	last := where(recs, ofType(wire.TypeRouteChanged))
	if r := last[len(last)-1]; len(r.Routes) != 1 || r.Routes[0].IP != "10.20.0.2" {
		t.Errorf("after ip route replace, want the one default route via 10.20.0.2: %s %+v", r, r.Routes)
	}
}

// TestNetworkSecondNetworkJoined: on the LAN, a second interface joins a
// network nobody approved, then leaves it.
func TestNetworkSecondNetworkJoined(t *testing.T) {
	l := newNetLAN(t, gwMAC)
	l.start()
	l.waitRecords("pc0 up", func(rs []netRecord) bool { return len(where(rs, onLink(wire.TypeLinkUp, "pc0"))) == 1 })
	l.second(outside, true)
	l.waitRecords("multi-homed and unapproved", func(rs []netRecord) bool {
		return len(where(rs, violationOf(wire.KindNetworkMultiHomed))) > 0 && len(where(rs, violationOf(wire.KindNetworkUnapproved))) > 0
	})
	recs := l.settle(100 * time.Millisecond)
	mh := where(recs, violationOf(wire.KindNetworkMultiHomed))
	if len(mh) != 1 || !slices.Equal(mh[0].Violation.Interfaces, []string{"pc0", "pc1"}) || mh[0].Violation.Device != "pc0,pc1" ||
		!slices.Equal(mh[0].Violation.Networks, []string{"City LAN"}) {
		t.Errorf("want one network_multi_homed naming pc0 and pc1 on City LAN:\n%s", dumpNet(mh))
	}
	un := where(recs, violationOf(wire.KindNetworkUnapproved))
	if len(un) != 1 || un[0].Violation.Device != "pc1" || !strings.Contains(un[0].Violation.Message, outside) {
		t.Errorf("want one network_unapproved for pc1's %s:\n%s", outside, dumpNet(un))
	}
	l.restartNoDoubles()

	l.pc.IP("addr", "del", outside, "dev", "pc1")
	recs = l.waitRecords("violations cleared", func(rs []netRecord) bool {
		return len(where(rs, clearedOf(wire.KindNetworkMultiHomed))) == 1 && len(where(rs, clearedOf(wire.KindNetworkUnapproved))) == 1
	})
	if c := where(recs, clearedOf(wire.KindNetworkUnapproved)); c[0].Violation.Device != "pc1" || c[0].Subject != un[0].Subject {
		t.Errorf("violation_cleared %s must name the condition %q", c[0], un[0].Subject)
	}
	if n := len(where(recs, addrRec(wire.TypeAddressRemoved, outside))); n != 1 {
		t.Errorf("want one address_removed %s:\n%s", outside, dumpNet(recs))
	}
	l.restartNoDoubles()

	// Joined again: a new appearance of each condition.
	l.pc.IP("addr", "add", outside, "dev", "pc1")
	l.waitRecords("violations again", func(rs []netRecord) bool {
		return len(where(rs, violationOf(wire.KindNetworkMultiHomed))) == 2 && len(where(rs, violationOf(wire.KindNetworkUnapproved))) == 2
	})
}

// TestNetworkZoneBridge: the PC on the LGWAN-connected LAN and on the
// internet-connected segment at once, both approved.
func TestNetworkZoneBridge(t *testing.T) {
	l := newNetLAN(t, gwMAC)
	l.second("10.30.1.5/16", true)
	l.start()
	l.waitRecords("zone bridge", func(rs []netRecord) bool {
		return len(where(rs, violationOf(wire.KindNetworkZoneBridge))) > 0
	})
	recs := l.settle(100 * time.Millisecond)
	zb := where(recs, violationOf(wire.KindNetworkZoneBridge))
	if len(zb) != 1 {
		t.Fatalf("want one network_zone_bridge:\n%s", dumpNet(recs))
	}
	v := zb[0].Violation
	if v.Severity != wire.SeverityCritical || !slices.Equal(v.Interfaces, []string{"pc0", "pc1"}) ||
		!slices.Equal(v.Networks, []string{"City LAN", "Internet segment"}) {
		t.Errorf("zone bridge = %+v, want critical, pc0 and pc1, both networks", v)
	}
	if n := len(where(recs, ofType(wire.TypeViolation))); n != 1 {
		t.Errorf("two approved networks are only a zone bridge, want no other violation:\n%s", dumpNet(recs))
	}
	l.restartNoDoubles()
	l.pc.IP("link", "set", "pc1", "down")
	l.waitRecords("zone bridge cleared", func(rs []netRecord) bool {
		return len(where(rs, clearedOf(wire.KindNetworkZoneBridge))) == 1
	})
}

// TestNetworkLinkDownUp: links going down and up, and no multi-homed for
// a link that is down (though its address is still judged).
func TestNetworkLinkDownUp(t *testing.T) {
	l := newNetLAN(t, gwMAC)
	other := l.second(outside, false)
	l.start()
	recs := l.waitRecords("pc1's address judged", func(rs []netRecord) bool {
		return len(where(rs, violationOf(wire.KindNetworkUnapproved))) == 1
	})
	if n := len(where(recs, onLink(wire.TypeLinkUp, "pc1"))); n != 0 {
		t.Errorf("pc1 is down, want no link_up:\n%s", dumpNet(recs))
	}
	l.restartNoDoubles()
	if n := len(where(l.records(), violationOf(wire.KindNetworkMultiHomed))); n != 0 {
		t.Errorf("multi-homed raised for a link that is down:\n%s", dumpNet(l.records()))
	}

	l.pc.IP("link", "set", "pc1", "up")
	recs = l.waitRecords("pc1 up, multi-homed", func(rs []netRecord) bool {
		return len(where(rs, onLink(wire.TypeLinkUp, "pc1"))) == 1 && len(where(rs, violationOf(wire.KindNetworkMultiHomed))) == 1
	})
	if up := where(recs, onLink(wire.TypeLinkUp, "pc1"))[0].Link; !up.AdminUp || !up.Carrier {
		t.Errorf("link_up pc1: %+v", up)
	}
	// The far end goes away: pc1 loses its carrier.
	other.IP("link", "set", "o0", "down")
	l.waitRecords("pc1 carrier lost", func(rs []netRecord) bool {
		return len(where(rs, onLink(wire.TypeLinkDown, "pc1"))) == 1 && len(where(rs, clearedOf(wire.KindNetworkMultiHomed))) == 1
	})
	other.IP("link", "set", "o0", "up")
	l.waitRecords("pc1 carrier back", func(rs []netRecord) bool {
		return len(where(rs, onLink(wire.TypeLinkUp, "pc1"))) == 2 && len(where(rs, violationOf(wire.KindNetworkMultiHomed))) == 2
	})

	// pc0, the LAN side, down and up.
	l.pc.IP("link", "set", "pc0", "down")
	recs = l.waitRecords("pc0 down", func(rs []netRecord) bool {
		return len(where(rs, onLink(wire.TypeLinkDown, "pc0"))) == 1 && len(where(rs, clearedOf(wire.KindNetworkMultiHomed))) == 2
	})
	if d := where(recs, onLink(wire.TypeLinkDown, "pc0"))[0].Link; d.AdminUp {
		t.Errorf("link_down pc0 says admin up: %+v", d)
	}
	l.restartNoDoubles()
	l.pc.IP("link", "set", "pc0", "up")
	recs = l.waitRecords("pc0 up", func(rs []netRecord) bool {
		return len(where(rs, onLink(wire.TypeLinkUp, "pc0"))) == 2 && len(where(rs, violationOf(wire.KindNetworkMultiHomed))) == 3
	})
	if n := len(where(recs, onLink(wire.TypeLinkAdded, "pc0"))); n != 1 {
		t.Errorf("down and up is not a new link: %d link_added for pc0:\n%s", n, dumpNet(recs))
	}
	l.restartNoDoubles()
}

// TestNetworkAddressChange: the PC's address changes; the same address
// removed and added again is a new appearance.
func TestNetworkAddressChange(t *testing.T) {
	const next = "10.20.1.6/16"
	l := newNetLAN(t, gwMAC)
	l.start()
	l.waitRecords("pc0's address", func(rs []netRecord) bool { return len(where(rs, addrRec(wire.TypeAddressAdded, pcAddr))) == 1 })
	l.pc.IP("addr", "del", pcAddr, "dev", "pc0")
	l.pc.IP("addr", "add", next, "dev", "pc0")
	recs := l.waitRecords("address changed", func(rs []netRecord) bool {
		return len(where(rs, addrRec(wire.TypeAddressRemoved, pcAddr))) == 1 && len(where(rs, addrRec(wire.TypeAddressAdded, next))) == 1
	})
	if r := where(recs, addrRec(wire.TypeAddressRemoved, pcAddr))[0]; r.Address.Interface != "pc0" || r.Link == nil || r.Link.Name != "pc0" {
		t.Errorf("address_removed must name pc0: %s %+v", r, r.Address)
	}
	l.restartNoDoubles()
	l.pc.IP("addr", "del", next, "dev", "pc0")
	l.waitRecords("address removed", func(rs []netRecord) bool { return len(where(rs, addrRec(wire.TypeAddressRemoved, next))) == 1 })
	l.pc.IP("addr", "add", next, "dev", "pc0")
	l.waitRecords("the same address again", func(rs []netRecord) bool { return len(where(rs, addrRec(wire.TypeAddressAdded, next))) == 2 })
	// An address whose lifetimes alone change is no new appearance.
	l.pc.IP("addr", "change", next, "dev", "pc0", "valid_lft", "3600", "preferred_lft", "1800")
	recs = l.settle(150 * time.Millisecond)
	if n := len(where(recs, addrRec(wire.TypeAddressAdded, next))); n != 2 {
		t.Errorf("want two address_added for %s (re-added once, lifetimes changed once):\n%s", next, dumpNet(recs))
	}
	noViolations(t, recs)
	l.restartNoDoubles()
}

// TestNetworkLANDevices: devices on the LAN make themselves known to the
// PC by sending to it; the kernel learns their MACs from their ARP
// requests. A registered one is no violation; an unregistered one is
// reported once, a locally administered one says so.
func TestNetworkLANDevices(t *testing.T) {
	const (
		strangerMAC = "00:16:3e:aa:bb:01"
		randomMAC   = "02:42:ac:11:00:02"
	)
	l := newNetLAN(t, gwMAC)
	registered := l.device(copier, "10.20.0.10/16")
	stranger := l.device(strangerMAC, "10.20.0.11/16")
	random := l.device(randomMAC, "10.20.0.12/16")
	l.start()
	l.resolveGateway()
	registered.SendUDP(pcIP + ":9")
	stranger.SendUDP(pcIP + ":9")
	recs := l.waitRecords("the stranger reported", func(rs []netRecord) bool {
		return len(where(rs, violationOf(wire.KindLANDeviceUnregistered))) == 1
	})
	u := where(recs, violationOf(wire.KindLANDeviceUnregistered))[0]
	if u.Source != wire.SourceLAN || u.Violation.Device != strangerMAC || u.Violation.IP != "10.20.0.11" ||
		u.Violation.Interface != "pc0" || u.Violation.LocallyAdministered || u.Until == nil ||
		!slices.Equal(u.Violation.Networks, []string{"City LAN"}) {
		t.Errorf("lan_device_unregistered = %s %+v", u, u.Violation)
	}
	// The stranger talks again: still the same window.
	stranger.SendUDP(pcIP + ":9")
	random.SendUDP(pcIP + ":9")
	l.waitRecords("the random MAC reported", func(rs []netRecord) bool {
		return len(where(rs, violationOf(wire.KindLANDeviceUnregistered))) == 2
	})
	recs = l.settle(100 * time.Millisecond)
	all := where(recs, violationOf(wire.KindLANDeviceUnregistered))
	if len(all) != 2 {
		t.Fatalf("want two lan_device_unregistered (the stranger once, the random MAC):\n%s", dumpNet(recs))
	}
	r := all[1].Violation
	if r.Device != randomMAC || r.IP != "10.20.0.12" || !r.LocallyAdministered || !strings.Contains(r.MessageEN, "locally administered") {
		t.Errorf("locally administered device: %+v", r)
	}
	for _, v := range where(recs, ofType(wire.TypeViolation)) {
		if v.Violation.Device == copier || v.Violation.Device == gwMAC {
			t.Errorf("a registered device (the copier, the pinned gateway) reported: %s", v)
		}
	}
	if n := len(where(recs, ofType(wire.TypeViolation))); n != 2 {
		t.Errorf("want no violation but the two LAN devices:\n%s", dumpNet(recs))
	}
	l.restartNoDoubles()
	// Seen again after the restart, still within the window.
	stranger.SendUDP(pcIP + ":9")
	recs = l.settle(150 * time.Millisecond)
	if n := len(where(recs, violationOf(wire.KindLANDeviceUnregistered))); n != 2 {
		t.Errorf("lan_device_unregistered recorded again within its window:\n%s", dumpNet(recs))
	}
}

// TestNetworkChangedWhileStopped: what ended while the agent was not
// running is recorded as ended at its next start, once; what is still
// there is not recorded again.
func TestNetworkChangedWhileStopped(t *testing.T) {
	l := newNetLAN(t, gwMAC)
	l.second(outside, true)
	l.start()
	l.waitRecords("multi-homed", func(rs []netRecord) bool {
		return len(where(rs, violationOf(wire.KindNetworkMultiHomed))) == 1 && len(where(rs, violationOf(wire.KindNetworkUnapproved))) == 1
	})
	l.settle(100 * time.Millisecond)
	l.stop()
	before := len(l.records())
	l.pc.IP("link", "del", "pc1")
	l.start()
	recs := l.settle(150 * time.Millisecond)[before:]
	for _, want := range []func(*netRecord) bool{
		onLink(wire.TypeLinkRemoved, "pc1"), clearedOf(wire.KindNetworkMultiHomed), clearedOf(wire.KindNetworkUnapproved),
	} {
		if n := len(where(recs, want)); n != 1 {
			t.Errorf("the start after pc1 left: want each end recorded once:\n%s", dumpNet(recs))
			break
		}
	}
	if again := where(recs, func(r *netRecord) bool {
		return r.Type == wire.TypeLinkAdded || r.Type == wire.TypeLinkUp || r.Type == wire.TypeAddressAdded || r.Type == wire.TypeViolation
	}); len(again) != 0 {
		t.Errorf("the start recorded again what is still there:\n%s", dumpNet(again))
	}
	if c := where(recs, clearedOf(wire.KindNetworkUnapproved)); len(c) == 1 && c[0].Violation.Device != "pc1" {
		t.Errorf("violation_cleared of a condition carried over a restart names %q, want pc1", c[0].Violation.Device)
	}
	l.restartNoDoubles()
}
