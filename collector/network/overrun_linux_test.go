package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"

	"github.com/mamori-agent/mamori/internal/netnstest"
)

// TestMonitorOverrun floods a namespace with address changes on a
// notification socket with the smallest receive buffer while nobody calls
// Receive, so that the kernel drops notifications (ENOBUFS). The Monitor's
// reader is first stalled with a full queue of batches, so that the whole
// flood lands in the socket. The ChangeOverrun must come only after what
// was queued before the loss is thrown away: nothing of the flood may come
// after it, and a caller that takes a Snapshot on the ChangeOverrun and
// applies what follows must end with the final state exactly.
func TestMonitorOverrun(t *testing.T) {
	a, b := addrTestNS(t)
	netnstest.VethPair(a.NS, "veth2", b.NS, "veth3")
	a.IP("link", "set", "veth2", "up")
	m := a.open(Options{NoWireless: true, readBuffer: 32 << 10})

	// Stall the reader: changes until Receive's queue is full, and one
	// more for the batch the reader then blocks on.
	truth := map[netip.Prefix]bool{}
	for i, more := 1, 2; more > 0; i++ {
		if len(m.batches) == cap(m.batches) {
			more--
		}
		if i > 200 {
			t.Fatalf("Receive's queue holds %d batches after %d changes", len(m.batches), i)
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32)
		a.IP("addr", "add", p.String(), "dev", "veth2")
		truth[p] = true
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)

	// 3,000 addresses added to veth0, all but every 100th removed again:
	// 5,970 address notifications and as many local routes.
	const n = 3000
	var batch strings.Builder
	flood := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}) }
	for i := range n {
		fmt.Fprintf(&batch, "addr add %s/32 dev veth0\n", flood(i))
	}
	for i := range n {
		if i%100 == 0 {
			truth[netip.PrefixFrom(flood(i), 32)] = true
			continue
		}
		fmt.Fprintf(&batch, "addr del %s/32 dev veth0\n", flood(i))
	}
	file := filepath.Join(t.TempDir(), "flood")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", a.Name(), "-batch", file).CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
	// The last change: an address on the second link.
	final := netip.MustParsePrefix("198.51.100.7/24")
	a.IP("addr", "add", final.String(), "dev", "veth2")
	truth[final] = true
	truth[netip.MustParsePrefix("192.0.2.1/24")] = true

	isFlood := func(c Change) bool {
		var p netip.Addr
		switch {
		case c.Addr != nil:
			p = c.Addr.Prefix.Addr()
		case c.Route != nil:
			p = c.Route.Dst.Addr()
		}
		return p.Is4() && p.As4()[0] == 10 && p.As4()[1] == 1
	}

	// The caller: a state of IPv4 addresses, replaced by a Snapshot on
	// each ChangeOverrun, changed by the other changes. The stalled reader
	// may already hold ChangeOverruns of losses during the stalling.
	type result struct {
		cs  []Change
		err error
	}
	var (
		state           map[netip.Prefix]bool
		before, after   int
		overruns, stale int
		resultc         = make(chan result, 1)
		quiet           = 500 * time.Millisecond
		deadline        = time.After(20 * time.Second)
	)
	for done := false; !done; {
		go func() { cs, err := m.Receive(); resultc <- result{cs, err} }()
		select {
		case r := <-resultc:
			if r.err != nil {
				t.Fatal(r.err)
			}
			for _, c := range r.cs {
				switch {
				case c.Kind == ChangeOverrun:
					overruns++
					s, err := m.Snapshot()
					if err != nil {
						t.Fatal(err)
					}
					state = map[netip.Prefix]bool{}
					for _, ad := range s.Addrs {
						if ad.Prefix.Addr().Is4() && !ad.Prefix.Addr().IsLoopback() {
							state[ad.Prefix] = true
						}
					}
				case isFlood(c):
					// The reader was stalled before the flood began: all
					// of it was queued on the socket when the loss was
					// reported, and none of it is newer.
					stale++
					if stale <= 5 {
						t.Errorf("change of the flood after %d overruns: %+v (address %+v, route %+v)", overruns, c, c.Addr, c.Route)
					}
				case overruns == 0:
					before++
				default:
					after++
					if c.Kind == ChangeAddr && c.Addr.Prefix.Addr().Is4() {
						state[c.Addr.Prefix] = !c.Deleted
						if c.Deleted {
							delete(state, c.Addr.Prefix)
						}
					}
				}
			}
		case <-time.After(quiet):
			done = true
			// The goroutine's Receive returns at Close (cleanup).
		case <-deadline:
			t.Fatal("still receiving after 20s")
		}
	}
	t.Logf("%d changes before the overrun, %d overruns, %d changes after", before, overruns, after)
	if overruns == 0 {
		t.Fatal("no ChangeOverrun")
	}
	if stale > 0 {
		t.Errorf("%d changes of the flood came out of Receive", stale)
	}
	for p := range truth {
		if !state[p] {
			t.Errorf("%s missing from the state after the overrun", p)
		}
	}
	for p := range state {
		if !truth[p] {
			t.Errorf("%s in the state after the overrun: stale", p)
		}
	}
}

// TestMonitorDumpInterrupted: a dump flagged NLM_F_DUMP_INTR is taken
// again; one that stays interrupted is an error wrapping
// ErrDumpInterrupted.
func TestMonitorDumpInterrupted(t *testing.T) {
	a, _ := addrTestNS(t)
	m := a.open(Options{NoWireless: true})
	execute := m.execute
	var calls, interrupt int
	m.execute = func(req netlink.Message) ([]netlink.Message, error) {
		msgs, err := execute(req)
		calls++
		if interrupt > 0 && len(msgs) > 0 {
			interrupt--
			msgs[len(msgs)/2].Header.Flags |= netlink.DumpInterrupted
		}
		return msgs, err
	}

	interrupt = 3
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if calls != 4+3 || snapLink(s, "veth0") == nil {
		t.Errorf("%d dumps, want 7 (4 tables, 3 again); links %+v", calls, s.Links)
	}

	calls, interrupt = 0, 1000
	_, err = m.Snapshot()
	if !errors.Is(err, ErrDumpInterrupted) {
		t.Fatalf("Snapshot of always interrupted dumps: %v, want ErrDumpInterrupted", err)
	}
	if calls != dumpTries {
		t.Errorf("%d dumps, want %d", calls, dumpTries)
	}
	interrupt = 0
	if _, err := m.Snapshot(); err != nil {
		t.Errorf("Snapshot afterwards: %v", err)
	}
}
