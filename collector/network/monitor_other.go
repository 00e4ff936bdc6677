//go:build !linux && !windows

package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	psnet "github.com/shirou/gopsutil/v4/net"

	"github.com/mamori-agent/mamori/internal/safe"
)

// PollInterval is how often the polling Monitor looks at the interfaces.
const PollInterval = 2 * time.Second

// Monitor watches the network by polling where the OS's own change
// notifications are not implemented yet (Windows' IP Helper comes later):
// every PollInterval it lists the interfaces and their addresses through
// gopsutil (github.com/shirou/gopsutil/v4/net, the portable interface
// list) and, when anything differs, Receive returns a ChangeOverrun so the
// caller takes a new Snapshot. It sees links and addresses only: no
// routes, no neighbours, no SSIDs, and no kinds beyond loopback
// and ethernet.
type Monitor struct {
	done      chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	last      Snapshot
}

// Open starts the polling monitor.
func Open(opts Options) (*Monitor, error) {
	m := &Monitor{done: make(chan struct{})}
	s, err := m.Snapshot()
	if err != nil {
		return nil, err
	}
	m.last = s
	return m, nil
}

// Snapshot lists the interfaces and their addresses.
func (m *Monitor) Snapshot() (Snapshot, error) {
	ifs, err := psnet.InterfacesWithContext(context.Background())
	if err != nil {
		return Snapshot{}, fmt.Errorf("network: list interfaces: %w", err)
	}
	var s Snapshot
	for _, ifi := range ifs {
		l := Link{Index: ifi.Index, Name: safe.String(ifi.Name), Kind: KindEthernet, OperState: "down"}
		for _, f := range ifi.Flags {
			switch f {
			case "up":
				l.AdminUp = true
			case "running":
				l.Carrier, l.OperState = true, "up"
			case "loopback":
				l.Kind = KindLoopback
			}
		}
		if mac, err := net.ParseMAC(ifi.HardwareAddr); err == nil && IsUnicastMAC(mac) {
			l.MAC = mac
		}
		s.Links = append(s.Links, l)
		for _, a := range ifi.Addrs {
			if p, err := netip.ParsePrefix(a.Addr); err == nil {
				s.Addrs = append(s.Addrs, Addr{Index: ifi.Index, Prefix: p})
			}
		}
	}
	slices.SortFunc(s.Links, func(a, b Link) int { return a.Index - b.Index })
	return s, nil
}

// Receive waits until a poll finds the interfaces changed and returns a
// single ChangeOverrun (take a new Snapshot). After Close it returns an
// error wrapping net.ErrClosed.
func (m *Monitor) Receive() ([]Change, error) {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		select {
		case <-m.done:
			return nil, fmt.Errorf("network: monitor closed: %w", net.ErrClosed)
		case now := <-t.C:
			s, err := m.Snapshot()
			if err != nil {
				return nil, err
			}
			m.mu.Lock()
			changed := !reflect.DeepEqual(s, m.last)
			m.last = s
			m.mu.Unlock()
			if changed {
				return []Change{{Kind: ChangeOverrun, Time: now}}, nil
			}
		}
	}
}

// Close stops Receive.
func (m *Monitor) Close() error {
	m.closeOnce.Do(func() { close(m.done) })
	return nil
}
