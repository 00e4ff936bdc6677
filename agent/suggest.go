package agent

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/policy"
)

// Limits that keep a suggestion loadable: the config refuses strings
// longer than 1024 bytes.
const (
	maxSuggestName   = 200
	maxSuggestSerial = 1000
)

// capString cuts s to at most n bytes on a rune boundary, marking the cut.
func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Suggest writes an `approved.usb` YAML list for devs, for IT to review:
// serial where the device has one, port where it does not. Root hubs are
// left out (they are never violations), and so are devices whose USB
// device could not be determined (usb.UnknownPathPrefix), each with a
// comment line saying why (unknownNote). Device strings are hostile, so
// the YAML is produced by the encoder, never by hand. With entriesOnly it
// writes only the list items, indented to paste under "approved: usb:".
func Suggest(devs []usb.Device, assetID string, now time.Time, entriesOnly bool) ([]byte, error) {
	return suggest(devs, nil, nil, assetID, now, entriesOnly, false)
}

// scalarPair appends key: value to a mapping node.
func scalarPair(m *yaml.Node, k, v string, style yaml.Style) {
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Value: k},
		&yaml.Node{Kind: yaml.ScalarNode, Value: v, Style: style, Tag: "!!str"})
}

// suggestNetwork returns approved.networks and approved.lan_devices items
// for what v saw: the networks the links are on (by CIDR, masked, with the
// gateway's MAC pinned when the kernel knows it, and by SSID for Wi-Fi)
// and the LAN devices on them. Without all, only what is not approved or
// registered yet.
func suggestNetwork(p *policy.NetworkPolicy, v *policy.NetworkVerdict, all bool) (nets, lans []*yaml.Node) {
	seen := map[string]bool{}
	for i := range v.Links {
		lv := &v.Links[i]
		if lv.Ignored || !lv.OnNetwork || (lv.Approved && !all) {
			continue
		}
		var pin string
		for _, g := range v.Gateways {
			if g.Index == lv.Link.Index && g.MAC != nil && g.IP.Is4() {
				pin = config.FormatMAC(g.MAC)
				break
			}
		}
		if lv.Link.SSID != "" && !seen["ssid:"+lv.Link.SSID] && (all || !ssidApproved(lv)) {
			seen["ssid:"+lv.Link.SSID] = true
			e := &yaml.Node{Kind: yaml.MappingNode, HeadComment: fmt.Sprintf("Wi-Fi seen on %s; set zone if the city splits its networks", lv.Link.Name)}
			scalarPair(e, "name", capString("Wi-Fi "+lv.Link.SSID, maxSuggestName), 0)
			scalarPair(e, "ssid", lv.Link.SSID, yaml.DoubleQuotedStyle)
			nets = append(nets, e)
		}
		for _, a := range lv.Addrs {
			if !a.Countable() || (!all && p.NetworkOf(&lv.Link, a) != nil) {
				continue
			}
			cidr := a.Prefix.Masked()
			if seen[cidr.String()] {
				continue
			}
			seen[cidr.String()] = true
			e := &yaml.Node{Kind: yaml.MappingNode,
				HeadComment: fmt.Sprintf("%s holds %s; check that %s is the city's network before approving it, and add zone: (lgwan, internet) if the city splits its networks", lv.Link.Name, a.Prefix, cidr)}
			scalarPair(e, "name", capString(fmt.Sprintf("%s %s", lv.Link.Name, cidr), maxSuggestName), 0)
			scalarPair(e, "cidr", cidr.String(), 0)
			if pin != "" && cidr.Addr().Is4() {
				scalarPair(e, "gateway_mac", pin, yaml.DoubleQuotedStyle)
			}
			nets = append(nets, e)
		}
	}
	for i := range v.Neighbours {
		n := &v.Neighbours[i]
		if n.Registered && !all {
			continue
		}
		mac := config.FormatMAC(n.MAC)
		if seen["mac:"+mac] {
			continue
		}
		seen["mac:"+mac] = true
		e := &yaml.Node{Kind: yaml.MappingNode, HeadComment: fmt.Sprintf("seen at %s on %s (%s)", n.IP, n.Interface, n.Network)}
		if n.LocallyAdministered {
			e.HeadComment += "; a locally administered MAC: it may be randomised and change"
		}
		scalarPair(e, "name", capString(fmt.Sprintf("%s on %s", n.IP, n.Interface), maxSuggestName), 0)
		scalarPair(e, "mac", mac, yaml.DoubleQuotedStyle)
		scalarPair(e, "owner", "", yaml.DoubleQuotedStyle)
		scalarPair(e, "approved_by", "", yaml.DoubleQuotedStyle)
		lans = append(lans, e)
	}
	return nets, lans
}

// ssidApproved reports whether an approved network names the SSID of lv.
func ssidApproved(lv *policy.LinkVerdict) bool {
	for _, e := range lv.Networks {
		if e.SSID != "" && e.SSID == lv.Link.SSID {
			return true
		}
	}
	return false
}

// unknownNote is the comment line that stands for a device whose USB
// device could not be determined (a Path starting with
// usb.UnknownPathPrefix): no entry is suggested for it, since it has no
// vendor_id, product_id or serial to be approved by, and its Path is no
// port the config takes (a port is a Linux bus path, "1-2"). One line,
// whatever the device's strings hold.
func unknownNote(d *usb.Device) string {
	note := fmt.Sprintf("not suggested: %s, %s: its USB device could not be determined, so it has no vendor_id, product_id or serial to approve it by and no port the config takes; only an approval by class (classes: [mass-storage]) covers it, and that covers all storage. Find out why Windows cannot place it (mamori status, the agent's log).",
		d.Path, policy.Describe(d))
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(note)
}

func suggest(devs []usb.Device, p *policy.NetworkPolicy, v *policy.NetworkVerdict, assetID string, now time.Time, entriesOnly, all bool) ([]byte, error) {
	var items []*yaml.Node
	var notes []string
	for i := range devs {
		d := &devs[i]
		if d.IsRootHub() {
			continue
		}
		if strings.HasPrefix(d.Path, usb.UnknownPathPrefix) {
			notes = append(notes, unknownNote(d))
			continue
		}
		entry := &yaml.Node{Kind: yaml.MappingNode}
		add := func(k, v string, style yaml.Style) {
			entry.Content = append(entry.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Value: k},
				&yaml.Node{Kind: yaml.ScalarNode, Value: v, Style: style, Tag: "!!str"})
		}
		add("name", capString(policy.Describe(d), maxSuggestName), 0)
		add("vendor_id", d.VendorID, yaml.DoubleQuotedStyle)
		add("product_id", d.ProductID, yaml.DoubleQuotedStyle)
		longSerial := d.Serial != nil && len(*d.Serial) > maxSuggestSerial
		byModel := false // no serial and no port the config takes
		switch {
		case d.Serial != nil && *d.Serial != "" && !longSerial:
			add("serial", *d.Serial, yaml.DoubleQuotedStyle)
		case config.ValidPort(d.Path):
			add("port", d.Path, yaml.DoubleQuotedStyle)
		default:
			byModel = true
		}
		add("owner", "", yaml.DoubleQuotedStyle)
		add("approved_by", "", yaml.DoubleQuotedStyle)
		entry.Content = append(entry.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: "valid_from"},
			&yaml.Node{Kind: yaml.ScalarNode, Value: now.Format(time.DateOnly)})
		entry.HeadComment = fmt.Sprintf("%s at port %s; classes: [%s]", d.VendorID+":"+d.ProductID, d.Path, strings.Join(d.ClassNames(), ", "))
		switch {
		case byModel:
			entry.HeadComment += "; no serial, and no port the config takes (a Windows device instance id is not a bus path): this entry approves every device of this vendor_id and product_id"
		case longSerial:
			entry.HeadComment += fmt.Sprintf("; its serial is %d bytes long, more than a config value holds: matched by port instead", len(*d.Serial))
		}
		if d.IsStorage() {
			entry.HeadComment += "; storage: consider require_encryption: true"
		}
		items = append(items, entry)
	}
	list := &yaml.Node{Kind: yaml.SequenceNode, Content: items}
	if entriesOnly {
		var out bytes.Buffer
		for _, n := range notes {
			out.WriteString("    # " + n + "\n")
		}
		if len(items) == 0 {
			if len(notes) == 0 {
				return []byte("# nothing to suggest: every attached device is approved\n"), nil
			}
			return out.Bytes(), nil
		}
		b, err := encodeYAML(list)
		if err != nil {
			return nil, err
		}
		// Indented for pasting under "approved:\n  usb:".
		for line := range strings.Lines(string(b)) {
			out.WriteString("    " + line)
		}
		return out.Bytes(), nil
	}
	if len(items) == 0 {
		list.Style = yaml.FlowStyle
	}
	usbKey := &yaml.Node{Kind: yaml.ScalarNode, Value: "usb", HeadComment: strings.Join(notes, "\n")}
	approved := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{usbKey, list}}
	if v != nil {
		nets, lans := suggestNetwork(p, v, all)
		if len(nets) > 0 {
			approved.Content = append(approved.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "networks"},
				&yaml.Node{Kind: yaml.SequenceNode, Content: nets})
		}
		if len(lans) > 0 {
			approved.Content = append(approved.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "lan_devices"},
				&yaml.Node{Kind: yaml.SequenceNode, Content: lans})
		}
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{
		Kind: yaml.MappingNode,
		HeadComment: fmt.Sprintf("Suggested by mamori policy suggest on %s at %s.\nReview every entry, fill in owner, approved_by and valid_until, then merge into the config.",
			cmp.Or(assetID, "this PC (no agent.asset_id)"), now.Format(time.RFC3339)),
		Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "approved"},
			approved,
		},
	}}}
	return encodeYAML(doc)
}

// encodeYAML writes n with two-space indentation.
func encodeYAML(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encode suggestion: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode suggestion: %w", err)
	}
	return buf.Bytes(), nil
}

// SuggestOptions configures SuggestFromSystem.
type SuggestOptions struct {
	ScanOptions
	// All includes the devices the config approves already; by default
	// only those it does not (unapproved, expired, not yet valid) are
	// suggested.
	All bool
	// EntriesOnly writes only the list items, for merging.
	EntriesOnly bool
}

// SuggestFromSystem enumerates the devices attached now and suggests an
// approved list for those not approved yet.
func SuggestFromSystem(opts SuggestOptions) ([]byte, error) {
	c, err := newSources(opts.Config, opts.Roots, opts.Logger)
	if err != nil {
		return nil, err
	}
	defer c.close()
	devs, derr := c.devices()
	// Drives no USB device claims (Windows) are devices too, as in scan:
	// each gets its comment line saying why nothing is suggested.
	if vols, verr := c.volumes(nil); len(vols) > 0 || verr != nil {
		devs = append(devs, placeVolumes(vols)...)
		derr = errors.Join(derr, verr)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if !opts.All {
		pol := policy.NewUSBPolicy(opts.Config)
		keep := devs[:0:0]
		for i := range devs {
			if dec := pol.Decide(&devs[i], now); dec.Violation != nil {
				keep = append(keep, devs[i])
			}
		}
		devs = keep
	}
	var verdict *policy.NetworkVerdict
	npol := policy.NewNetworkPolicy(opts.Config)
	if !opts.NoNetwork && !opts.EntriesOnly {
		snap, err := networkSnapshot(opts.NetSysfs)
		switch {
		case errors.Is(err, errors.ErrUnsupported):
		case err != nil:
			derr = errors.Join(derr, fmt.Errorf("network: %w", err))
		default:
			verdict = npol.Judge(&snap, now, nil)
		}
	}
	out, err := suggest(devs, npol, verdict, opts.Config.Agent.AssetID, now, opts.EntriesOnly, opts.All)
	if err != nil {
		return nil, err
	}
	return out, derr
}
