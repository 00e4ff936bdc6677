package agent

import (
	"bytes"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mamori-agent/mamori/collector/usb"
)

// Suggest writes an `approved.usb` YAML list for the devices attached now,
// for IT to review: serial where the device has one, port where it does
// not. Root hubs are left out (they are never violations). Device strings
// are hostile, so the YAML is produced by the encoder, never by hand.
func Suggest(devs []usb.Device, assetID string, now time.Time) ([]byte, error) {
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
		add("name", Describe(d), 0)
		add("vendor_id", d.VendorID, yaml.DoubleQuotedStyle)
		add("product_id", d.ProductID, yaml.DoubleQuotedStyle)
		if d.Serial != nil && *d.Serial != "" {
			add("serial", *d.Serial, yaml.DoubleQuotedStyle)
		} else {
			add("port", d.Path, yaml.DoubleQuotedStyle)
		}
		add("owner", "", yaml.DoubleQuotedStyle)
		add("approved_by", "", yaml.DoubleQuotedStyle)
		entry.Content = append(entry.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: "valid_from"},
			&yaml.Node{Kind: yaml.ScalarNode, Value: now.Format(time.DateOnly)})
		classes := d.ClassNames()
		entry.HeadComment = fmt.Sprintf("%s at port %s; classes: %v", d.VendorID+":"+d.ProductID, d.Path, classes)
		if d.IsStorage() {
			entry.HeadComment += "; storage: consider require_encryption: true"
		}
		items = append(items, entry)
	}
	list := &yaml.Node{Kind: yaml.SequenceNode, Content: items}
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
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode suggestion: %w", err)
	}
	enc.Close()
	return buf.Bytes(), nil
}

// SuggestOptions configures SuggestFromSystem.
type SuggestOptions = ScanOptions

// SuggestFromSystem enumerates the devices attached now and suggests an
// approved list for them.
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
	out, err := Suggest(devs, opts.Config.Agent.AssetID, now)
	if err != nil {
		return nil, err
	}
	return out, derr
}
