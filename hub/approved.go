package hub

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// MaxApprovedSize is the largest approved-lists document accepted.
const MaxApprovedSize = 4 << 20

// approvedKeys are the keys of the approved lists the hub serves: the
// agent config's approved: section without the ledger keys (a ledger is a
// file on the PC, not something the hub can hand out).
var approvedKeys = []string{"usb", "networks", "lan_devices"}

// CheckApproved checks data, the YAML of the approved lists, as far as
// the hub can without the agent's parser (which it must not import): one
// document; a mapping of usb, networks and lan_devices, each a list of
// mappings with plain keys, none given twice; no aliases or anchors. The
// agent checks each entry with its own parser when it pulls the lists,
// and keeps its last good copy when they are refused.
func CheckApproved(file string, data []byte) error {
	c := &yamlChecker{file: file}
	if len(data) > MaxApprovedSize {
		c.errs = append(c.errs, &Error{File: file, Msg: "larger than " + strconv.Itoa(MaxApprovedSize) + " bytes"})
		return c.errs
	}
	root := c.document(data)
	if root == nil {
		if len(c.errs) == 0 {
			c.errs = append(c.errs, &Error{File: file, Line: 1, Column: 1, Msg: "the approved lists are empty (want usb:, networks: or lan_devices:)"})
		}
		return c.errs
	}
	for _, kv := range c.mapping(root, "approved", approvedKeys) {
		k, v := kv[0], kv[1]
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		if v.Kind != yaml.SequenceNode {
			c.errorf(v, k.Value+" must be a list")
			continue
		}
		for i, item := range v.Content {
			what := k.Value + "[" + strconv.Itoa(i) + "]"
			for _, f := range c.mapping(item, what, nil) {
				c.plain(f[1], what+"."+f[0].Value)
			}
		}
	}
	if len(c.errs) > 0 {
		return c.errs
	}
	return nil
}

// plain records anchors and aliases anywhere below n: the lists the hub
// hands out read as they are written.
func (c *yamlChecker) plain(n *yaml.Node, what string) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		c.errorf(n, what+": anchors and aliases are not allowed")
		return
	}
	for _, ch := range n.Content {
		c.plain(ch, what)
	}
}
