package network

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
)

// table is a reader of Snapshots and Changes with the rules the agent's
// table follows (agent/network.go, netState.apply): a deleted link takes
// its addresses, neighbours and routes with it; a link that is not
// administratively up, or that loses its last IPv4 address, loses its
// IPv4 routes. diffSnapshots must bring such a table from one snapshot
// to the next exactly.
type table struct {
	links  map[int]Link
	addrs  map[[2]string]Addr
	routes map[string]Route
	neigh  map[[2]string]Neighbour
}

func routeID(r *Route) string {
	return r.Gateway.String() + "|" + r.Dst.String() + "|" + string(rune(r.Index)) + "|" + string(rune(r.Table)) + "|" + string(rune(r.Priority))
}

func newTable(s *Snapshot) *table {
	t := &table{links: map[int]Link{}, addrs: map[[2]string]Addr{}, routes: map[string]Route{}, neigh: map[[2]string]Neighbour{}}
	for _, l := range s.Links {
		t.links[l.Index] = l
	}
	for _, a := range s.Addrs {
		t.addrs[[2]string{string(rune(a.Index)), a.Prefix.String()}] = a
	}
	for _, r := range s.Routes {
		t.routes[routeID(&r)] = r
	}
	for _, n := range s.Neighbours {
		t.neigh[[2]string{string(rune(n.Index)), n.IP.String()}] = n
	}
	return t
}

func (t *table) dropRoutes4(index int) {
	for k, r := range t.routes {
		if r.Index == index && r.Family == 4 {
			delete(t.routes, k)
		}
	}
}

func (t *table) hasIPv4(index int) bool {
	for _, a := range t.addrs {
		if a.Index == index && a.Prefix.Addr().Is4() {
			return true
		}
	}
	return false
}

func (t *table) apply(c *Change) {
	switch c.Kind {
	case ChangeLink:
		if c.Deleted {
			delete(t.links, c.Link.Index)
			for k, a := range t.addrs {
				if a.Index == c.Link.Index {
					delete(t.addrs, k)
				}
			}
			for k, n := range t.neigh {
				if n.Index == c.Link.Index {
					delete(t.neigh, k)
				}
			}
			for k, r := range t.routes {
				if r.Index == c.Link.Index {
					delete(t.routes, k)
				}
			}
			return
		}
		t.links[c.Link.Index] = *c.Link
		if !c.Link.AdminUp {
			t.dropRoutes4(c.Link.Index)
		}
	case ChangeAddr:
		k := [2]string{string(rune(c.Addr.Index)), c.Addr.Prefix.String()}
		if c.Deleted {
			delete(t.addrs, k)
			if c.Addr.Prefix.Addr().Is4() && !t.hasIPv4(c.Addr.Index) {
				t.dropRoutes4(c.Addr.Index)
			}
			return
		}
		t.addrs[k] = *c.Addr
	case ChangeRoute:
		if c.Deleted {
			delete(t.routes, routeID(c.Route))
			return
		}
		t.routes[routeID(c.Route)] = *c.Route
	case ChangeNeighbour:
		k := [2]string{string(rune(c.Neighbour.Index)), c.Neighbour.IP.String()}
		if c.Deleted {
			delete(t.neigh, k)
			return
		}
		t.neigh[k] = *c.Neighbour
	}
}

func (t *table) equal(o *table) bool {
	return reflect.DeepEqual(t.links, o.links) && reflect.DeepEqual(t.addrs, o.addrs) &&
		reflect.DeepEqual(t.routes, o.routes) && reflect.DeepEqual(t.neigh, o.neigh)
}

// randomSnapshot makes a consistent snapshot from r: links 1..5, each
// perhaps present, up, with addresses, routes and neighbours drawn from
// small sets so that two draws overlap.
func randomSnapshot(r *rand.Rand) Snapshot {
	var s Snapshot
	for i := 1; i <= 5; i++ {
		if r.IntN(4) == 0 {
			continue
		}
		l := Link{Index: i, Name: "if" + string(rune('0'+i)), Kind: KindEthernet, AdminUp: r.IntN(4) != 0, Carrier: r.IntN(2) == 0, OperState: "up",
			MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}}
		if r.IntN(3) == 0 {
			l.SSID = []string{"", "Office", "Cafe"}[r.IntN(3)]
		}
		s.Links = append(s.Links, l)
		for j := range 3 {
			if r.IntN(2) == 0 {
				s.Addrs = append(s.Addrs, Addr{Index: i, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, byte(j + 1)}), 24), Flags: uint32(r.IntN(2)) * ifaFPermanent})
			}
		}
		if r.IntN(2) == 0 {
			s.Addrs = append(s.Addrs, Addr{Index: i, Prefix: netip.MustParsePrefix("fd00::" + string(rune('0'+i)) + "/64")})
		}
		if r.IntN(2) == 0 {
			s.Routes = append(s.Routes, Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Table: rtTableMain, Index: i, Gateway: netip.AddrFrom4([4]byte{10, byte(i), 0, 254}), Family: 4, Priority: uint32(r.IntN(2)) * 10})
		}
		if r.IntN(2) == 0 {
			s.Routes = append(s.Routes, Route{Dst: netip.MustParsePrefix("::/0"), Table: rtTableMain, Index: i, Gateway: netip.MustParseAddr("fe80::1"), Family: 6})
		}
		for j := range 2 {
			if r.IntN(2) == 0 {
				s.Neighbours = append(s.Neighbours, Neighbour{Index: i, IP: netip.AddrFrom4([4]byte{10, byte(i), 0, byte(100 + j)}),
					MAC: net.HardwareAddr{2, 1, 0, 0, byte(i), byte(r.IntN(2))}, State: []uint16{NUDReachable, NUDStale, NUDFailed}[r.IntN(3)]})
			}
		}
	}
	return s
}

func TestDiffSnapshotsBringsTableAlong(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(1700000000, 0)
	prev := randomSnapshot(r)
	tab := newTable(&prev)
	for i := range 3000 {
		cur := randomSnapshot(r)
		changes := diffSnapshots(&prev, &cur, now)
		for j := range changes {
			if !changes[j].Time.Equal(now) {
				t.Fatal("change without the time")
			}
			tab.apply(&changes[j])
		}
		if want := newTable(&cur); !tab.equal(want) {
			t.Fatalf("step %d: the table after %d changes differs from the snapshot\nold %+v\nnew %+v\nchanges %+v", i, len(changes), prev, cur, changes)
		}
		if len(diffSnapshots(&cur, &cur, now)) != 0 {
			t.Fatalf("step %d: changes between a snapshot and itself", i)
		}
		prev = cur
	}
}

func TestDiffSnapshotsOrder(t *testing.T) {
	old := Snapshot{
		Links:      []Link{{Index: 1, Name: "eth0", AdminUp: true}, {Index: 2, Name: "usb0", AdminUp: true}},
		Addrs:      []Addr{{Index: 1, Prefix: netip.MustParsePrefix("10.0.0.2/24")}, {Index: 2, Prefix: netip.MustParsePrefix("192.168.42.5/24")}},
		Routes:     []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Table: rtTableMain, Index: 1, Gateway: netip.MustParseAddr("10.0.0.1"), Family: 4}},
		Neighbours: []Neighbour{{Index: 2, IP: netip.MustParseAddr("192.168.42.129"), State: NUDReachable, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}}},
	}
	cur := Snapshot{
		Links:  []Link{{Index: 1, Name: "eth0", AdminUp: true, SSID: "x"}},
		Addrs:  []Addr{{Index: 1, Prefix: netip.MustParsePrefix("10.0.0.2/24")}},
		Routes: []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Table: rtTableMain, Index: 1, Gateway: netip.MustParseAddr("10.0.0.1"), Family: 4}},
	}
	got := diffSnapshots(&old, &cur, time.Time{})
	type step struct {
		k   ChangeKind
		del bool
	}
	var steps []step
	for _, c := range got {
		steps = append(steps, step{c.Kind, c.Deleted})
	}
	want := []step{{ChangeNeighbour, true}, {ChangeAddr, true}, {ChangeLink, true}, {ChangeLink, false}}
	if !slices.Equal(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
	if got[3].Link.SSID != "x" {
		t.Errorf("an SSID change is a link change: %+v", got[3])
	}
}

// FuzzDiffSnapshots checks the table property on snapshots drawn from the
// fuzzer's seeds.
func FuzzDiffSnapshots(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Add(uint64(99), uint64(7))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		ra, rb := rand.New(rand.NewPCG(a, 0)), rand.New(rand.NewPCG(b, 1))
		old, cur := randomSnapshot(ra), randomSnapshot(rb)
		tab := newTable(&old)
		for _, c := range diffSnapshots(&old, &cur, time.Time{}) {
			tab.apply(&c)
		}
		if !tab.equal(newTable(&cur)) {
			t.Fatalf("table differs\nold %+v\nnew %+v", old, cur)
		}
	})
}
