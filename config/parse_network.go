package config

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Keys of the network mappings, in the order the documentation lists them.
var (
	networkKeys      = []string{"ignore_interfaces", "watch_lan", "lan_report_window"}
	networkEntryKeys = []string{"name", "cidr", "ssid", "gateway_mac", "zone"}
	lanDeviceKeys    = []string{"name", "mac", "owner", "approved_by", "valid_from", "valid_until"}
)

// MaxContactLen is the longest agent.contact accepted, in characters: it
// is shown in every remedy, so it is a line, not a letter.
const MaxContactLen = 200

// MaxSSIDLen is the longest SSID, in bytes (IEEE 802.11).
const MaxSSIDLen = 32

// maxIfNameLen is the longest interface name Linux allows, in bytes
// (IFNAMSIZ - 1).
const maxIfNameLen = 15

// contact reads agent.contact.
func (p *parser) contact(v *yaml.Node, a *Agent) {
	s, ok := p.text("agent.contact", v)
	if !ok {
		return
	}
	if n := utf8.RuneCountInString(s); n > MaxContactLen {
		p.errorf(v, "agent.contact: longer than %d characters (%d): name a division and a phone extension or address", MaxContactLen, n)
		return
	}
	a.Contact = s
}

// network reads the network: section.
func (p *parser) network(n *yaml.Node, nw *Network) {
	m, ok := p.mapping("network", n, networkKeys)
	if !ok {
		return
	}
	if v := m.get("ignore_interfaces"); v != nil {
		nw.IgnoreInterfaces = p.ifPatterns("network.ignore_interfaces", v)
	}
	if v := m.get("watch_lan"); v != nil {
		if s, ok := p.scalar("network.watch_lan", v); ok {
			switch s {
			case "true":
				nw.WatchLAN = true
			case "false":
				nw.WatchLAN = false
			default:
				p.errorf(v, "network.watch_lan: want true or false, got %q", s)
			}
		}
	}
	if v := m.get("lan_report_window"); v != nil {
		if d, ok := p.duration("network.lan_report_window", v, MinLANReportWindow, MaxLANReportWindow, "1m", "8784h (366 days)"); ok {
			nw.LANReportWindow = d
		}
	}
}

// ifPatterns reads a list of interface name patterns (path.Match).
func (p *parser) ifPatterns(lpath string, v *yaml.Node) []string {
	items, _ := p.sequence(lpath, v)
	var out []string
	for i, it := range items {
		ipath := fmt.Sprintf("%s[%d]", lpath, i)
		s, ok := p.text(ipath, it)
		if !ok {
			continue
		}
		if _, err := path.Match(s, ""); errors.Is(err, path.ErrBadPattern) {
			p.errorf(it, "%s: %q is not a valid pattern (use * for any text, ? for one character, [0-9] for one of a set)", ipath, s)
			continue
		}
		if n := patternMinLen(s); n > maxIfNameLen {
			p.errorf(it, "%s: %q matches no interface: a name it matches has at least %d bytes, and interface names have at most %d", ipath, s, n, maxIfNameLen)
			continue
		}
		out = append(out, s)
	}
	return out
}

// patternMinLen returns the fewest bytes a name that the path.Match
// pattern s (a valid one) matches can have: * counts none, ? and a
// [set] one, any other character its own length.
func patternMinLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		switch s[i] {
		case '*':
			i++
			continue
		case '?':
			i++
		case '[':
			// As path.Match reads a class: an optional ^, then
			// characters (\x escapes one) up to a ] after the first.
			i++
			if i < len(s) && s[i] == '^' {
				i++
			}
			for first := true; i < len(s); first = false {
				if s[i] == ']' && !first {
					i++
					break
				}
				if s[i] == '\\' {
					i++
				}
				if i < len(s) {
					_, size := utf8.DecodeRuneInString(s[i:])
					i += size
				}
			}
		case '\\':
			i++
			if i < len(s) {
				_, size := utf8.DecodeRuneInString(s[i:])
				n += size - 1
				i += size
			}
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			n += size - 1
			i += size
		}
		n++
	}
	return n
}

// entryPath names item i of the list at lpath.
func entryPath(lpath string, i int) string {
	return fmt.Sprintf("%s[%d]", lpath, i)
}

// listItems reads a list of entries, at most max of them.
func (p *parser) listItems(lpath string, v *yaml.Node, max int, what string) []*yaml.Node {
	items, _ := p.sequence(lpath, v)
	if len(items) > max {
		p.errorf(items[max], "%s: more than %d %s", lpath, max, what)
		items = items[:max]
	}
	return items
}

// entryMapping checks that item n of a list is a mapping of keys and
// returns its values; the message on error names the first two keys.
func (p *parser) entryMapping(epath string, n *yaml.Node, keys []string) (fields, bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping of keys (%s, %s, ...), got %s", epath, keys[0], keys[1], kindName(n))
		return fields{}, false
	}
	return p.mapping(epath, n, keys)
}

// networks reads approved.networks.
func (p *parser) networks(v *yaml.Node, a *ApprovedLists) {
	const lpath = "approved.networks"
	items := p.listItems(lpath, v, MaxApprovedNetworks, "approved networks")
	names := map[string]int{}    // name -> line
	matchers := map[string]int{} // cidr and ssid -> index in a.Networks
	for i, it := range items {
		epath := entryPath(lpath, i)
		m, ok := p.entryMapping(epath, it, networkEntryKeys)
		if !ok {
			continue
		}
		nerr := len(p.errs)
		e := NetworkEntry{Line: it.Line, File: p.file}
		p.entryName(epath, it, m, names, "network", &e.Name)
		cidr, ssid := m.get("cidr"), m.get("ssid")
		if cidr != nil {
			if s, ok := p.scalar(epath+".cidr", cidr); ok {
				if pfx, err := parseCIDR(s); err != nil {
					p.errorf(cidr, "%s.cidr: %v", epath, err)
				} else {
					e.CIDR = pfx
				}
			}
		}
		if ssid != nil {
			if s, ok := p.scalar(epath+".ssid", ssid); ok {
				switch {
				case s == "":
					p.errorf(ssid, "%s.ssid: must not be empty (leave the key out to match a network by cidr alone)", epath)
				case len(s) > MaxSSIDLen:
					p.errorf(ssid, "%s.ssid: longer than %d bytes (the IEEE 802.11 limit): %d bytes", epath, MaxSSIDLen, len(s))
				default:
					e.SSID = s
				}
			}
		}
		if cidr == nil && ssid == nil {
			p.errorf(it, "%s: sets neither cidr nor ssid, so it would match every network", epath)
		}
		if g := m.get("gateway_mac"); g != nil {
			if s, ok := p.scalar(epath+".gateway_mac", g); ok {
				if mac, err := ParseMAC(s); err != nil {
					p.errorf(g, "%s.gateway_mac: %v", epath, err)
				} else {
					e.GatewayMAC = mac
				}
			}
		}
		if z := m.get("zone"); z != nil {
			if s, ok := p.text(epath+".zone", z); ok {
				e.Zone = s
			}
		}
		if len(p.errs) != nerr {
			continue
		}
		key := e.CIDR.String() + "\x00" + e.SSID
		if first, dup := matchers[key]; dup {
			f := &a.Networks[first]
			p.errorf(it, "%s: matches exactly the networks of the entry %q at line %d (same cidr and ssid)", epath, f.Name, f.Line)
			continue
		}
		matchers[key] = len(a.Networks)
		a.Networks = append(a.Networks, e)
	}
}

// entryName reads the required, unique name of a network or LAN device
// entry into *name; names maps the names read so far to their lines.
func (p *parser) entryName(epath string, it *yaml.Node, m fields, names map[string]int, what string, name *string) {
	v := m.get("name")
	if v == nil {
		p.errorf(it, "%s: name is required", epath)
		return
	}
	s, ok := p.text(epath+".name", v)
	if !ok {
		return
	}
	if line, dup := names[s]; dup {
		p.errorf(v, "%s.name: %q is already the name of the %s at line %d", epath, s, what, line)
		return
	}
	names[s] = it.Line
	*name = s
}

// parseCIDR parses a masked IPv4 or IPv6 network prefix.
func parseCIDR(s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil && a.Zone() == "" {
			if a.Is4() {
				return netip.Prefix{}, fmt.Errorf("%q has no prefix length: add it, like %s/24 (%s/32 for this one address)", s, netip.PrefixFrom(a, 24).Masked().Addr(), a)
			}
			return netip.Prefix{}, fmt.Errorf("%q has no prefix length: add it, like %s/64 (%s/128 for this one address)", s, netip.PrefixFrom(a, 64).Masked().Addr(), a)
		}
		return netip.Prefix{}, fmt.Errorf("want a network prefix like 10.20.0.0/16 or fd00:20::/64, got %q", s)
	}
	if pfx.Addr().Is4In6() && pfx.Bits() >= 96 {
		v4 := netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96).Masked()
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 prefix: write the IPv4 prefix %s", s, v4)
	}
	if m := pfx.Masked(); m != pfx {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set: want the network address %s", s, m)
	}
	return pfx, nil
}

// lanDevices reads approved.lan_devices.
func (p *parser) lanDevices(v *yaml.Node, a *ApprovedLists) {
	const lpath = "approved.lan_devices"
	items := p.listItems(lpath, v, MaxLANDevices, "LAN devices")
	names := map[string]int{}
	macs := map[[6]byte]int{} // -> index in a.LANDevices
	if len(items) > 0 {
		a.LANDevices = make([]LANDevice, 0, len(items))
	}
	for i, it := range items {
		epath := entryPath(lpath, i)
		m, ok := p.entryMapping(epath, it, lanDeviceKeys)
		if !ok {
			continue
		}
		nerr := len(p.errs)
		d := LANDevice{Line: it.Line, File: p.file}
		p.entryName(epath, it, m, names, "device", &d.Name)
		var macNode *yaml.Node
		if macNode = m.get("mac"); macNode == nil {
			p.errorf(it, "%s: mac is required", epath)
		} else if s, ok := p.scalar(epath+".mac", macNode); ok {
			if mac, err := ParseMAC(s); err != nil {
				p.errorf(macNode, "%s.mac: %v", epath, err)
			} else {
				d.MAC = mac
			}
		}
		if v := m.get("owner"); v != nil {
			if s, ok := p.text(epath+".owner", v); ok {
				d.Owner = p.st.intern(s)
			}
		}
		if v := m.get("approved_by"); v != nil {
			if s, ok := p.text(epath+".approved_by", v); ok {
				d.ApprovedBy = p.st.intern(s)
			}
		}
		d.ValidFrom = p.entryDate(epath+".valid_from", m.get("valid_from"))
		until := m.get("valid_until")
		d.ValidUntil = p.entryDate(epath+".valid_until", until)
		if d.ValidFrom != nil && d.ValidUntil != nil && d.ValidUntil.Compare(*d.ValidFrom) < 0 {
			p.errorf(until, "%s.valid_until: %s is before valid_from %s", epath, d.ValidUntil, d.ValidFrom)
		}
		if d.MAC != nil {
			k := [6]byte(d.MAC)
			if first, dup := macs[k]; dup {
				f := &a.LANDevices[first]
				p.errorf(macNode, "%s.mac: %s is already the MAC of the device %q at line %d", epath, FormatMAC(d.MAC), f.Name, f.Line)
				continue
			}
			if len(p.errs) == nerr {
				macs[k] = len(a.LANDevices)
			}
		}
		if len(p.errs) != nerr {
			continue
		}
		a.LANDevices = append(a.LANDevices, d)
	}
	if len(a.LANDevices) == 0 {
		a.LANDevices = nil
	}
}

// entryDate reads a valid_from or valid_until of a network list entry
// (nil n: not set), as approved.usb reads them.
func (p *parser) entryDate(dpath string, n *yaml.Node) *Date {
	if n == nil {
		return nil
	}
	s, ok := p.scalar(dpath, n)
	if !ok {
		return nil
	}
	d, err := ParseDate(s)
	if err != nil {
		p.errorf(n, "%s: %v", dpath, err)
		return nil
	}
	return p.st.date(d)
}
