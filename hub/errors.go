package hub

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mamori-agent/mamori/internal/fileerr"
)

// Error is one problem in a file the hub reads (its config, an approved
// list), at a position in it: see fileerr.Error ("file:line:col: msg").
type Error = fileerr.Error

// ErrorList is every problem found in one file, in file order.
type ErrorList = fileerr.ErrorList

// yamlChecker collects the problems of one YAML file.
type yamlChecker struct {
	file string
	errs ErrorList
}

func (c *yamlChecker) errorf(n *yaml.Node, msg string) {
	line, col := 0, 0
	if n != nil {
		line, col = n.Line, n.Column
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Column: col, Msg: msg})
}

// document parses data as exactly one YAML document and returns its root
// node (nil after recording why not; nil without an error for an empty
// document).
func (c *yamlChecker) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			c.syntax(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		c.syntax(err)
		return nil
	default:
		c.errorf(&extra, "only one YAML document is allowed per file")
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// syntax records a YAML syntax error, at its line when yaml says it.
func (c *yamlChecker) syntax(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1 // yaml leaves the line out when it is the first
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, m, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, m
			}
		}
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Msg: msg})
}

// mapping returns the key/value pairs of a mapping node, recording
// duplicate keys and keys not in allowed (when allowed is not nil).
func (c *yamlChecker) mapping(n *yaml.Node, what string, allowed []string) [][2]*yaml.Node {
	if n.Kind == yaml.AliasNode {
		c.errorf(n, what+": aliases are not allowed")
		return nil
	}
	if n.Kind != yaml.MappingNode {
		c.errorf(n, what+" must be a mapping")
		return nil
	}
	seen := map[string]bool{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			c.errorf(k, what+": keys must be plain strings")
			continue
		}
		if seen[k.Value] {
			c.errorf(k, what+": key "+strconv.Quote(k.Value)+" is given twice")
			continue
		}
		seen[k.Value] = true
		if allowed != nil && !contains(allowed, k.Value) {
			c.errorf(k, what+": unknown key "+strconv.Quote(k.Value)+" (known: "+strings.Join(allowed, ", ")+")")
			continue
		}
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out
}

// scalar returns a scalar node's value, recording an error for anything
// else.
func (c *yamlChecker) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		c.errorf(n, what+" must be a single value")
		return "", false
	}
	return n.Value, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
