package network

import (
	"cmp"
	"net/netip"
	"reflect"
	"slices"
	"time"
)

// diffSnapshots returns the changes that turn old into cur, for a reader
// that keeps a table from a Snapshot and the changes after it, as the
// agent does. Where notifications carry no state (Windows' IP Helper
// calls back with a row, not the whole picture, and neighbours have no
// notification at all), the Monitor re-reads and reports the difference.
//
// The order is the one such a table needs: removals first (neighbours,
// routes, addresses, then links), then links that came or changed,
// addresses, routes and neighbours. The table is expected to follow the
// kernel's implicit removals as the agent's does (a link going
// administratively down, or losing its last IPv4 address, drops its IPv4
// routes): the IPv4 routes cur still has on such a link are sent again
// after it. Replace is never set: a changed route is a removal and an
// addition. Every Change carries now.
func diffSnapshots(old, cur *Snapshot, now time.Time) []Change {
	var out []Change
	add := func(c Change) {
		c.Time = now
		out = append(out, c)
	}

	type nKey struct {
		index int
		ip    netip.Addr
	}
	type aKey struct {
		index  int
		prefix netip.Prefix
	}
	type rKey struct {
		index    int
		gw       netip.Addr
		dst      netip.Prefix
		table    uint32
		priority uint32
	}
	rKeyOf := func(r *Route) rKey { return rKey{r.Index, r.Gateway, r.Dst, r.Table, r.Priority} }

	oldN := map[nKey]*Neighbour{}
	for i := range old.Neighbours {
		n := &old.Neighbours[i]
		oldN[nKey{n.Index, n.IP}] = n
	}
	curN := map[nKey]*Neighbour{}
	for i := range cur.Neighbours {
		n := &cur.Neighbours[i]
		curN[nKey{n.Index, n.IP}] = n
	}
	oldR := map[rKey]*Route{}
	for i := range old.Routes {
		oldR[rKeyOf(&old.Routes[i])] = &old.Routes[i]
	}
	curR := map[rKey]*Route{}
	for i := range cur.Routes {
		curR[rKeyOf(&cur.Routes[i])] = &cur.Routes[i]
	}
	oldA := map[aKey]*Addr{}
	for i := range old.Addrs {
		a := &old.Addrs[i]
		oldA[aKey{a.Index, a.Prefix}] = a
	}
	curA := map[aKey]*Addr{}
	for i := range cur.Addrs {
		a := &cur.Addrs[i]
		curA[aKey{a.Index, a.Prefix}] = a
	}
	oldL := map[int]*Link{}
	for i := range old.Links {
		oldL[old.Links[i].Index] = &old.Links[i]
	}
	curL := map[int]*Link{}
	for i := range cur.Links {
		curL[cur.Links[i].Index] = &cur.Links[i]
	}

	// Removals, in the order of the old snapshot.
	for i := range old.Neighbours {
		n := &old.Neighbours[i]
		if _, ok := curN[nKey{n.Index, n.IP}]; !ok {
			c := *n
			add(Change{Kind: ChangeNeighbour, Deleted: true, Neighbour: &c})
		}
	}
	for i := range old.Routes {
		r := &old.Routes[i]
		if _, ok := curR[rKeyOf(r)]; !ok {
			c := *r
			add(Change{Kind: ChangeRoute, Deleted: true, Route: &c})
		}
	}
	// Links whose IPv4 routes the reader drops by itself.
	dropped4 := map[int]bool{}
	for i := range old.Addrs {
		a := &old.Addrs[i]
		if _, ok := curA[aKey{a.Index, a.Prefix}]; !ok {
			c := *a
			add(Change{Kind: ChangeAddr, Deleted: true, Addr: &c})
			if a.Prefix.Addr().Is4() {
				dropped4[a.Index] = true
			}
		}
	}
	for i := range old.Links {
		l := &old.Links[i]
		if _, ok := curL[l.Index]; !ok {
			c := *l
			add(Change{Kind: ChangeLink, Deleted: true, Link: &c})
		}
	}

	// Additions and changes, in the order of the new snapshot.
	for i := range cur.Links {
		l := &cur.Links[i]
		if o, ok := oldL[l.Index]; !ok || !reflect.DeepEqual(o, l) {
			c := *l
			add(Change{Kind: ChangeLink, Link: &c})
			if !l.AdminUp {
				dropped4[l.Index] = true
			}
		}
	}
	for i := range cur.Addrs {
		a := &cur.Addrs[i]
		if o, ok := oldA[aKey{a.Index, a.Prefix}]; !ok || *o != *a {
			c := *a
			add(Change{Kind: ChangeAddr, Addr: &c})
		}
	}
	sent := map[rKey]bool{}
	for i := range cur.Routes {
		r := &cur.Routes[i]
		k := rKeyOf(r)
		if o, ok := oldR[k]; !ok || *o != *r {
			c := *r
			add(Change{Kind: ChangeRoute, Route: &c})
			sent[k] = true
		}
	}
	if len(dropped4) > 0 {
		var again []Route
		for i := range cur.Routes {
			r := &cur.Routes[i]
			if r.Family == 4 && dropped4[r.Index] && !sent[rKeyOf(r)] {
				again = append(again, *r)
			}
		}
		slices.SortStableFunc(again, func(a, b Route) int { return cmp.Compare(a.Index, b.Index) })
		for i := range again {
			add(Change{Kind: ChangeRoute, Route: &again[i]})
		}
	}
	for i := range cur.Neighbours {
		n := &cur.Neighbours[i]
		if o, ok := oldN[nKey{n.Index, n.IP}]; !ok || !reflect.DeepEqual(o, n) {
			c := *n
			add(Change{Kind: ChangeNeighbour, Neighbour: &c})
		}
	}
	return out
}
