package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// exampleMAC is the MAC the messages of ParseMAC show.
const exampleMAC = "00:1b:a9:00:00:01"

// ParseMAC parses the MAC address of a device as the config file writes
// it: 6 octets of 2 hex digits each, upper or lower case, separated all
// by ':' or all by '-' ("00:1b:a9:00:00:01", "00-1B-A9-00-00-01"). It
// refuses what net.ParseMAC accepts beyond that (the dotted form
// "001b.a900.0001", 8-octet EUI-64 and 20-octet InfiniBand addresses)
// and addresses no device has: all zero, broadcast and multicast (the
// first octet odd). The error says which, and for the dotted form how
// to write it.
func ParseMAC(s string) (net.HardwareAddr, error) {
	mac, ok := parseMAC6(s)
	if !ok {
		if hw, err := net.ParseMAC(s); err == nil {
			switch len(hw) {
			case 6:
				if !strings.Contains(s, ".") {
					return nil, fmt.Errorf("%q has no separators: write it as %s", s, hw)
				}
				return nil, fmt.Errorf("%q is in the dotted form: write it as %s", s, hw)
			case 8:
				return nil, fmt.Errorf("%q has 8 octets (an EUI-64): want a MAC address of 6 octets like %s", s, exampleMAC)
			default:
				return nil, fmt.Errorf("%q has %d octets (an InfiniBand address): want a MAC address of 6 octets like %s", s, len(hw), exampleMAC)
			}
		}
		return nil, fmt.Errorf("want a MAC address of 6 octets like %s, got %q", exampleMAC, s)
	}
	switch {
	case mac[0]|mac[1]|mac[2]|mac[3]|mac[4]|mac[5] == 0:
		return nil, fmt.Errorf("%s is not a device's MAC address (all zero)", mac)
	case mac[0]&mac[1]&mac[2]&mac[3]&mac[4]&mac[5] == 0xff:
		return nil, fmt.Errorf("%s is the broadcast address, not a device's MAC address", mac)
	case mac[0]&1 != 0:
		return nil, fmt.Errorf("%s is a multicast address (the first octet is odd), not a device's MAC address", mac)
	}
	return mac, nil
}

// parseMAC6 parses 6 octets of 2 hex digits separated all by ':' or all
// by '-'.
func parseMAC6(s string) (net.HardwareAddr, bool) {
	if len(s) != 6*3-1 || s[2] != ':' && s[2] != '-' {
		return nil, false
	}
	sep := s[2]
	mac := make(net.HardwareAddr, 6)
	for i := range mac {
		o := i * 3
		if i > 0 && s[o-1] != sep {
			return nil, false
		}
		hi, ok1 := hexVal(s[o])
		lo, ok2 := hexVal(s[o+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		mac[i] = hi<<4 | lo
	}
	return mac, true
}

// FormatMAC returns mac as the config file and the records write it:
// lower-case hex octets separated by ':' ("00:1b:a9:00:00:01"), as
// net.HardwareAddr.String does; "" for an empty mac.
func FormatMAC(mac net.HardwareAddr) string {
	return mac.String()
}

// MatchesAddr reports whether a lies in the entry's CIDR; false when the
// entry sets no CIDR or a is invalid. IPv4-mapped IPv6 addresses
// (::ffff:10.20.3.4) count as the IPv4 address, in a and in the CIDR
// alike, and a's IPv6 zone (fe80::1%eth0) is ignored. It does not look
// at SSID: an entry that also sets one matches a link only when both do.
func (e *NetworkEntry) MatchesAddr(a netip.Addr) bool {
	p := e.CIDR
	if !p.IsValid() || !a.IsValid() {
		return false
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Contains(a.Unmap().WithZone(""))
}

// LANIndex finds the registered LAN device (approved.lan_devices) of a
// MAC address by a hashed lookup on its 6 bytes. It is immutable and safe
// for concurrent use.
type LANIndex struct {
	devs  []LANDevice
	byMAC map[[6]byte]int32
	// from and until are each device's dates as YYYYMMDD, 0 when open.
	from, until []int64
	loc         *time.Location
}

// NewLANIndex indexes devs. It keeps the slice, not a copy: the devices
// must not change afterwards (those of a Config never do). A device whose
// MAC is not 6 bytes is never found; of devices with the same MAC, the
// first is. The days of the devices' dates are taken in time.Local, or in
// the time zone of a WithLocation option (other options are ignored).
func NewLANIndex(devs []LANDevice, opts ...PolicyOption) *LANIndex {
	p := Policy{loc: time.Local}
	for _, o := range opts {
		o(&p)
	}
	x := &LANIndex{
		devs:  devs,
		byMAC: make(map[[6]byte]int32, len(devs)),
		from:  make([]int64, len(devs)),
		until: make([]int64, len(devs)),
		loc:   p.loc,
	}
	for i := range devs {
		d := &devs[i]
		x.from[i], x.until[i] = dateNumber(d.ValidFrom), dateNumber(d.ValidUntil)
		if len(d.MAC) != 6 {
			continue
		}
		k := [6]byte(d.MAC)
		if _, dup := x.byMAC[k]; !dup {
			x.byMAC[k] = int32(i)
		}
	}
	return x
}

// Len returns the number of devices indexed.
func (x *LANIndex) Len() int { return len(x.devs) }

// Lookup returns the device registered with mac, and whether its
// registration holds on the day of day (ValidFrom to ValidUntil
// inclusive, days in the index's time zone, as USB entries' dates are).
// dev is nil when no device has mac (or mac is not 6 bytes); when dev is
// set but registered false, the registration has not started yet or has
// ended. dev points into the index's slice; do not change it.
func (x *LANIndex) Lookup(mac net.HardwareAddr, day time.Time) (dev *LANDevice, registered bool) {
	if x == nil || len(mac) != 6 {
		return nil, false
	}
	i, ok := x.byMAC[[6]byte(mac)]
	if !ok {
		return nil, false
	}
	return &x.devs[i], inDates(x.from[i], x.until[i], dayNumber(day, x.loc))
}
