package policy

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/mamori-agent/mamori/collector/network"
	"github.com/mamori-agent/mamori/config"
)

// neighbours10k is the city LAN of onLAN with 10,000 neighbours on eth0:
// 8,000 IPv4 entries and 2,000 IPv6 entries of the first 2,000 devices
// (8,000 devices, each in lan_devices when registered is set).
func neighbours10k(registered bool) (*NetworkPolicy, network.Snapshot) {
	cfg := testConfig()
	s := onLAN()
	for i := range 10_000 {
		d := i % 8000
		mac := net.HardwareAddr{0x00, 0x1b, 0xa9, 0x10, byte(d >> 8), byte(d)}
		ip := netip.AddrFrom4([4]byte{10, 20, 100 + byte(d>>8), byte(d)})
		if i >= 8000 {
			ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(d >> 8), 15: byte(d)})
		}
		s.Neighbours = append(s.Neighbours, network.Neighbour{Index: 2, IP: ip, MAC: mac, State: network.NUDStale})
		if registered && i < 8000 {
			cfg.Approved.LANDevices = append(cfg.Approved.LANDevices, config.LANDevice{Name: "dev " + ip.String(), MAC: mac})
		}
	}
	// In no order, as the kernel's hash tables dump them.
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(s.Neighbours), func(i, j int) {
		s.Neighbours[i], s.Neighbours[j] = s.Neighbours[j], s.Neighbours[i]
	})
	return NewNetworkPolicy(cfg), s
}

// BenchmarkJudgeNeighbours10k judges a neighbour table of 10,000 entries
// (the network issue: at most 5 ms): all devices registered; none
// registered, first seen (a finding with its texts for each of the 8,000
// devices, as when they are recorded); and none registered but recorded
// already in their window (JudgeKnown, what the agent does at every later
// change).
func BenchmarkJudgeNeighbours10k(b *testing.B) {
	known := func([6]byte) bool { return true }
	for _, bc := range []struct {
		name       string
		registered bool
		known      func([6]byte) bool
		findings   int
	}{{"registered", true, nil, 0}, {"unregistered", false, nil, 8000}, {"unregistered-recorded", false, known, 0}} {
		b.Run(bc.name, func(b *testing.B) {
			p, s := neighbours10k(bc.registered)
			if v := p.JudgeKnown(&s, testNow, nil, bc.known); len(v.Neighbours) != 8001 || len(v.Findings) != bc.findings {
				b.Fatalf("%d neighbours, %d findings", len(v.Neighbours), len(v.Findings))
			}
			b.ReportAllocs()
			for b.Loop() {
				p.JudgeKnown(&s, testNow, nil, bc.known)
			}
		})
	}
}
