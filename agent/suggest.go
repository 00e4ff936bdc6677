package agent

import (
	"bytes"
	"fmt"
	"github.com/mamori-agent/mamori/policy"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/mamori-agent/mamori/collector/usb"
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
// left out (they are never violations). Device strings are hostile, so
// the YAML is produced by the encoder, never by hand. With entriesOnly it
// writes only the list items, indented to paste under "approved: usb:".
func Suggest(devs []usb.Device, assetID string, now time.Time, entriesOnly bool) ([]byte, error) {
	var items []*yaml.Node
	for i := range devs {
		d := &devs[i]
		if d.IsRootHub() {
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
		if d.Serial != nil && *d.Serial != "" && !longSerial {
			add("serial", *d.Serial, yaml.DoubleQuotedStyle)
		} else {
			add("port", d.Path, yaml.DoubleQuotedStyle)
		}
		add("owner", "", yaml.DoubleQuotedStyle)
		add("approved_by", "", yaml.DoubleQuotedStyle)
		entry.Content = append(entry.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: "valid_from"},
			&yaml.Node{Kind: yaml.ScalarNode, Value: now.Format(time.DateOnly)})
		entry.HeadComment = fmt.Sprintf("%s at port %s; classes: [%s]", d.VendorID+":"+d.ProductID, d.Path, strings.Join(d.ClassNames(), ", "))
		if longSerial {
			entry.HeadComment += fmt.Sprintf("; its serial is %d bytes long, more than a config value holds: matched by port instead", len(*d.Serial))
		}
		if d.IsStorage() {
			entry.HeadComment += "; storage: consider require_encryption: true"
		}
		items = append(items, entry)
	}
	list := &yaml.Node{Kind: yaml.SequenceNode, Content: items}
	if entriesOnly {
		if len(items) == 0 {
			return []byte("# nothing to suggest: every attached device is approved\n"), nil
		}
		b, err := encodeYAML(list)
		if err != nil {
			return nil, err
		}
		// Indented for pasting under "approved:\n  usb:".
		var out bytes.Buffer
		for line := range strings.Lines(string(b)) {
			out.WriteString("    " + line)
		}
		return out.Bytes(), nil
	}
	if len(items) == 0 {
		list.Style = yaml.FlowStyle
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{
		Kind: yaml.MappingNode,
		HeadComment: fmt.Sprintf("Suggested by mamori policy suggest on %s at %s.\nReview every entry, fill in owner, approved_by and valid_until, then merge into the config.",
			assetID, now.Format(time.RFC3339)),
		Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "approved"},
			{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "usb"}, list}},
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
	out, err := Suggest(devs, opts.Config.Agent.AssetID, now, opts.EntriesOnly)
	if err != nil {
		return nil, err
	}
	return out, derr
}
