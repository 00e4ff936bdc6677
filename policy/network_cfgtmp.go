package policy

// Temporary private equivalents of config.FormatMAC,
// (*config.NetworkEntry).MatchesAddr and config.LANIndex, until package
// config has them. Deleted then.

import (
	"net"
	"net/netip"
	"time"

	"github.com/mamori-agent/mamori/config"
)

func cfgFormatMAC(m net.HardwareAddr) string {
	if len(m) == 0 {
		return ""
	}
	return m.String()
}

func cfgMatchesAddr(e *config.NetworkEntry, a netip.Addr) bool {
	return e.CIDR.IsValid() && e.CIDR.Contains(a.WithZone(""))
}

type cfgLANIndex struct {
	m map[[6]byte]*config.LANDevice
}

func cfgNewLANIndex(devs []config.LANDevice) *cfgLANIndex {
	x := &cfgLANIndex{m: make(map[[6]byte]*config.LANDevice, len(devs))}
	for i := range devs {
		if len(devs[i].MAC) == 6 {
			x.m[[6]byte(devs[i].MAC)] = &devs[i]
		}
	}
	return x
}

func (x *cfgLANIndex) Lookup(mac net.HardwareAddr, day time.Time) (*config.LANDevice, bool) {
	if len(mac) != 6 {
		return nil, false
	}
	d, ok := x.m[[6]byte(mac)]
	if !ok {
		return nil, false
	}
	today := config.DateOf(day)
	if d.ValidFrom != nil && today.Compare(*d.ValidFrom) < 0 {
		return d, false
	}
	if d.ValidUntil != nil && today.Compare(*d.ValidUntil) > 0 {
		return d, false
	}
	return d, true
}
