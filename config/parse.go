package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/mamori-agent/mamori/collector/usb"
)

// maxStringLen is the longest string value accepted, in bytes.
const maxStringLen = 1024

// Keys of each mapping, in the order the documentation lists them.
var (
	topKeys     = []string{"version", "agent", "metrics", "usb", "approved"}
	agentKeys   = []string{"asset_id", "state_dir", "language", "rescan_interval"}
	metricsKeys = []string{"listen"}
	usbKeys     = []string{"backend"}
	approvedKey = []string{"usb"}
	entryKeys   = []string{
		"name", "vendor_id", "product_id", "serial", "port", "classes",
		"owner", "approved_by", "valid_from", "valid_until", "require_encryption",
	}
)

// parser walks the node tree of one file and collects every problem.
type parser struct {
	file string
	errs ErrorList
}

func (p *parser) errAt(line, col int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errAt(n.Line, n.Column, format, args...)
}

// sortErrors puts the errors in file order (stable, so that problems at
// one position keep the order they were found in).
func (p *parser) sortErrors() {
	slices.SortStableFunc(p.errs, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
}

// parse checks data and returns the config, or nil after recording why
// not. Errors are recorded in p.errs even when a config is returned.
func (p *parser) parse(data []byte) *Config {
	if !p.checkText(data) {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errAt(1, 1, "version: 1 required (the file is empty)")
		} else {
			p.syntax(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.syntax(err)
		return nil
	default:
		n := &extra
		if len(extra.Content) > 0 {
			n = extra.Content[0]
		}
		p.errorf(n, "only one YAML document is allowed per file")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.errAt(1, 1, "version: 1 required")
		return nil
	}
	root := doc.Content[0]
	if isNull(root) {
		p.errorf(root, "version: 1 required (the file is empty)")
		return nil
	}
	top, ok := p.mapping("", root, topKeys)
	if !ok {
		return nil
	}
	cfg := Default()
	if n := top.get("version"); n != nil {
		p.version(n)
	} else {
		p.errorf(root, "version: 1 required")
	}
	if n := top.get("agent"); n != nil {
		p.agent(n, &cfg.Agent)
	}
	if n := top.get("metrics"); n != nil {
		p.metrics(n, &cfg.Metrics)
	}
	if n := top.get("usb"); n != nil {
		p.usb(n, &cfg.USB)
	}
	if n := top.get("approved"); n != nil {
		p.approved(n, &cfg.Approved)
	}
	return cfg
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserErrors are the messages of yaml's parser (as opposed to its
// scanner). For these yaml.v3 prints the line 0-based: the line of the
// enclosing mapping or list minus one, or of the offending token minus one
// when the enclosing one starts on the first line.
var yamlParserErrors = []string{
	"did not find expected",
	"found duplicate %",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// syntax records a YAML syntax error, taking the line from yaml's message
// (it has no column). The line is where yaml noticed the problem or where
// the mapping or list that holds it starts.
func (p *parser) syntax(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1 // yaml leaves the line out when it is the first
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		for _, pe := range yamlParserErrors {
			if strings.HasPrefix(msg, pe) {
				line++
				break
			}
		}
	}
	p.errAt(line, 0, "YAML syntax error: %s", msg)
}

// checkText rejects what YAML rejects without saying where: bytes that are
// not UTF-8 and control characters.
func (p *parser) checkText(data []byte) bool {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			p.errAt(line, col, "the file is not valid UTF-8 (save it as UTF-8)")
			return false
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r == 0x7f, r >= 0x80 && r <= 0x9f && r != 0x85, r == 0xfffe, r == 0xffff:
			p.errAt(line, col, "control character U+%04X is not allowed", r)
			return false
		}
		i += size
		switch {
		case r == '\n', r == '\r' && (i >= len(data) || data[i] != '\n'):
			line++
			col = 1
		default:
			col++
		}
	}
	return true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// plain rejects anchors and aliases (and with them alias bombs and merge
// keys): a config file does not need them, and they hide what applies.
func (p *parser) plain(path string, n *yaml.Node) bool {
	switch {
	case n.Kind == yaml.AliasNode:
		p.errorf(n, "%saliases (*%s) are not allowed", prefix(path), n.Value)
		return false
	case n.Anchor != "":
		p.errorf(n, "%sanchors (&%s) are not allowed", prefix(path), n.Anchor)
		return false
	}
	return true
}

func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

// fields are the values of a mapping's known keys.
type fields struct {
	known []string
	vals  []*yaml.Node // by index in known; nil when absent
}

// get returns the value of key, or nil when the mapping does not have it.
func (f fields) get(key string) *yaml.Node {
	if i := slices.Index(f.known, key); i >= 0 && f.vals != nil {
		return f.vals[i]
	}
	return nil
}

// mapping checks that n is a mapping with string keys, no duplicates and
// no keys outside known, and returns its values by key. A null n (the key
// given with nothing after it) is an empty mapping.
func (p *parser) mapping(path string, n *yaml.Node, known []string) (fields, bool) {
	f := fields{known: known}
	if !p.plain(path, n) {
		return f, false
	}
	if isNull(n) {
		return f, true
	}
	if n.Kind != yaml.MappingNode {
		if path == "" {
			p.errorf(n, "the file must be a mapping of keys (version, agent, ...), got %s", kindName(n))
		} else {
			p.errorf(n, "%s: want a mapping of keys, got %s", path, kindName(n))
		}
		return f, false
	}
	f.vals = make([]*yaml.Node, len(known))
	keyNodes := make([]*yaml.Node, len(known))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !p.plain(path, k) {
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			p.errorf(k, "%skeys must be plain names, got %s", prefix(path), kindName(k))
			continue
		}
		name := k.Value
		ki := slices.Index(known, name)
		if ki < 0 {
			p.errorf(k, "%sunknown key %q%s", prefix(path), name, suggest(name, known))
			continue
		}
		if first := keyNodes[ki]; first != nil {
			p.errorf(k, "%sduplicate key %q (first at line %d)", prefix(path), name, first.Line)
			continue
		}
		keyNodes[ki] = k
		if !p.plain(join(path, name), v) {
			continue
		}
		f.vals[ki] = v
	}
	return f, true
}

// suggest returns " (did you mean "x"?)" for a near miss, else the list.
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(name), k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (known keys: " + strings.Join(known, ", ") + ")"
}

// editDistance is the Levenshtein distance of short ASCII-ish strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sequence checks that n is a list and returns its items; null is empty.
func (p *parser) sequence(path string, n *yaml.Node) ([]*yaml.Node, bool) {
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: want a list, got %s", path, kindName(n))
		return nil, false
	}
	items := make([]*yaml.Node, 0, len(n.Content))
	ok := true
	for i, it := range n.Content {
		if !p.plain(fmt.Sprintf("%s[%d]", path, i), it) {
			ok = false
			continue
		}
		items = append(items, it)
	}
	return items, ok
}

// scalar returns the text of a single value exactly as written, so that
// unquoted 0951 or 1e3 keep their digits. Null, lists, mappings, custom
// tags and text with control characters are errors.
func (p *parser) scalar(path string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s: want a single value, got %s", path, kindName(n))
		return "", false
	}
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
	case "!!null":
		p.errorf(n, "%s: a value is required", path)
		return "", false
	default:
		p.errorf(n, "%s: tag %s is not allowed", path, tag)
		return "", false
	}
	s := n.Value
	if len(s) > maxStringLen {
		p.errorf(n, "%s: longer than %d bytes", path, maxStringLen)
		return "", false
	}
	if !utf8.ValidString(s) {
		p.errorf(n, "%s: not valid UTF-8", path)
		return "", false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			p.errorf(n, "%s: control character U+%04X is not allowed", path, r)
			return "", false
		}
	}
	return s, true
}

// text is a string value that must not be empty.
func (p *parser) text(path string, n *yaml.Node) (string, bool) {
	s, ok := p.scalar(path, n)
	if ok && strings.TrimSpace(s) == "" {
		p.errorf(n, "%s: must not be empty", path)
		return "", false
	}
	return s, ok
}

func (p *parser) version(n *yaml.Node) {
	s, ok := p.scalar("version", n)
	if !ok {
		return
	}
	if n.ShortTag() != "!!int" {
		p.errorf(n, "version: want the number 1, got %q", s)
		return
	}
	if v, err := strconv.ParseInt(s, 0, 64); err != nil || v != Version {
		p.errorf(n, "version: unsupported version %s (this mamori reads version %d)", s, Version)
	}
}

func (p *parser) agent(n *yaml.Node, a *Agent) {
	m, ok := p.mapping("agent", n, agentKeys)
	if !ok {
		return
	}
	if v := m.get("asset_id"); v != nil {
		if s, ok := p.text("agent.asset_id", v); ok {
			a.AssetID = s
		}
	}
	if v := m.get("state_dir"); v != nil {
		if s, ok := p.text("agent.state_dir", v); ok {
			if !filepath.IsAbs(s) {
				p.errorf(v, "agent.state_dir: want an absolute path, got %q", s)
			} else {
				a.StateDir = filepath.Clean(s)
			}
		}
	}
	if v := m.get("language"); v != nil {
		if s, ok := p.scalar("agent.language", v); ok {
			if s != LanguageJA && s != LanguageEN {
				p.errorf(v, "agent.language: want %q or %q, got %q", LanguageJA, LanguageEN, s)
			} else {
				a.Language = s
			}
		}
	}
	if v := m.get("rescan_interval"); v != nil {
		if d, ok := p.duration("agent.rescan_interval", v); ok {
			a.RescanInterval = d
		}
	}
}

func (p *parser) duration(path string, n *yaml.Node) (time.Duration, bool) {
	s, ok := p.scalar(path, n)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.errorf(n, "%s: want a duration with a unit, like 60s or 5m, got %q", path, s)
		return 0, false
	}
	if d <= 0 {
		p.errorf(n, "%s: must be positive, got %q", path, s)
		return 0, false
	}
	return d, true
}

func (p *parser) metrics(n *yaml.Node, m *Metrics) {
	f, ok := p.mapping("metrics", n, metricsKeys)
	if !ok {
		return
	}
	v := f.get("listen")
	if v == nil {
		return
	}
	if isNull(v) {
		m.Listen = "" // "listen:" with nothing: off
		return
	}
	s, ok := p.scalar("metrics.listen", v)
	if !ok {
		return
	}
	if s == "" {
		m.Listen = ""
		return
	}
	if err := checkListen(s); err != nil {
		p.errorf(v, "metrics.listen: %v", err)
		return
	}
	m.Listen = s
}

// checkListen accepts host:port with a numeric port; host is empty (every
// address), an IP address or a host name.
func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port, like 127.0.0.1:9868, got %q", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port[0] == '+' || (len(port) > 1 && port[0] == '0') {
		_ = n
		return fmt.Errorf("want a port number 0-65535 in %q", s)
	}
	if host == "" || isHostName(host) {
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("%q is neither an IP address nor a host name", host)
	}
	return nil
}

// isHostName reports whether s is a DNS host name (letters, digits,
// hyphens, dot-separated labels).
func isHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	// All-numeric names are malformed IP addresses, not host names.
	return strings.ContainsFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
}

func (p *parser) usb(n *yaml.Node, u *USB) {
	m, ok := p.mapping("usb", n, usbKeys)
	if !ok {
		return
	}
	if v := m.get("backend"); v != nil {
		if s, ok := p.scalar("usb.backend", v); ok {
			if s != BackendSysfs && s != BackendLibusb {
				p.errorf(v, "usb.backend: want %q or %q, got %q", BackendSysfs, BackendLibusb, s)
			} else {
				u.Backend = s
			}
		}
	}
}

func (p *parser) approved(n *yaml.Node, a *ApprovedLists) {
	m, ok := p.mapping("approved", n, approvedKey)
	if !ok {
		return
	}
	v := m.get("usb")
	if v == nil {
		return
	}
	items, _ := p.sequence("approved.usb", v)
	names := make(map[string]int, len(items))
	if len(items) > 0 {
		a.USB = make([]USBEntry, 0, len(items))
	}
	for i, it := range items {
		path := fmt.Sprintf("approved.usb[%d]", i)
		e, nameNode, ok := p.entry(path, it)
		if e.Name != "" {
			if first, dup := names[e.Name]; dup {
				p.errorf(nameNode, "%s.name: %q is already the name of the entry at line %d", path, e.Name, first)
			} else {
				names[e.Name] = e.Line
			}
		}
		if ok {
			a.USB = append(a.USB, e)
		}
	}
}

var portRE = regexp.MustCompile(`^[1-9][0-9]{0,2}-[1-9][0-9]{0,2}(\.[1-9][0-9]{0,2}){0,6}$`)

// entry reads one approved.usb entry. It returns the node of the name so
// that a duplicate name can be reported there.
func (p *parser) entry(path string, n *yaml.Node) (USBEntry, *yaml.Node, bool) {
	e := USBEntry{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping of keys (name, vendor_id, ...), got %s", path, kindName(n))
		return e, nil, false
	}
	m, ok := p.mapping(path, n, entryKeys)
	if !ok {
		return e, nil, false
	}
	nerr := len(p.errs)
	nameNode := m.get("name")
	if nameNode == nil {
		p.errorf(n, "%s: name is required", path)
	} else if s, ok := p.text(path+".name", nameNode); ok {
		e.Name = s
	}
	if v := m.get("vendor_id"); v != nil {
		e.VendorID, _ = p.hexID(path+".vendor_id", v)
	}
	if v := m.get("product_id"); v != nil {
		e.ProductID, _ = p.hexID(path+".product_id", v)
		if m.get("vendor_id") == nil {
			p.errorf(v, "%s.product_id: needs vendor_id as well", path)
		}
	}
	if v := m.get("serial"); v != nil {
		if s, ok := p.scalar(path+".serial", v); ok {
			if s == "" {
				p.errorf(v, "%s.serial: must not be empty (leave the key out to match any serial)", path)
			} else {
				e.Serial = &s
			}
		}
	}
	if v := m.get("port"); v != nil {
		if s, ok := p.scalar(path+".port", v); ok {
			if !portRE.MatchString(s) {
				p.errorf(v, "%s.port: want a bus path like \"1-2\" or \"3-1.4\", got %q", path, s)
			} else {
				e.Port = s
			}
		}
	}
	if v := m.get("classes"); v != nil {
		e.Classes = p.classes(path+".classes", v)
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"owner", &e.Owner}, {"approved_by", &e.ApprovedBy}} {
		if v := m.get(f.key); v != nil {
			*f.dst, _ = p.text(path+"."+f.key, v)
		}
	}
	if v := m.get("valid_from"); v != nil {
		e.ValidFrom = p.date(path+".valid_from", v)
	}
	if v := m.get("valid_until"); v != nil {
		e.ValidUntil = p.date(path+".valid_until", v)
		if e.ValidFrom != nil && e.ValidUntil != nil && e.ValidUntil.Compare(*e.ValidFrom) < 0 {
			p.errorf(v, "%s.valid_until: %s is before valid_from %s", path, e.ValidUntil, e.ValidFrom)
		}
	}
	if v := m.get("require_encryption"); v != nil {
		e.RequireEncryption, _ = p.boolean(path+".require_encryption", v)
	}
	if !e.matchesSomething() && !slices.ContainsFunc([]string{"vendor_id", "product_id", "serial", "port", "classes"},
		func(k string) bool { return m.get(k) != nil }) {
		p.errorf(n, "%s: sets none of vendor_id, product_id, serial, port, classes, so it would approve every device", path)
	}
	return e, nameNode, len(p.errs) == nerr
}

// matchesSomething reports whether e sets a matching field.
func (e *USBEntry) matchesSomething() bool {
	return e.VendorID != "" || e.ProductID != "" || e.Serial != nil || e.Port != "" || len(e.Classes) > 0
}

// hexID reads a vendor or product id: 4 hex digits, returned lower-case.
func (p *parser) hexID(path string, n *yaml.Node) (string, bool) {
	s, ok := p.scalar(path, n)
	if !ok {
		return "", false
	}
	if len(s) != 4 || strings.IndexFunc(s, func(r rune) bool { return !isHex(r) }) >= 0 {
		p.errorf(n, "%s: want 4 hex digits like \"0951\", got %q", path, s)
		return "", false
	}
	return strings.ToLower(s), true
}

func isHex(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F'
}

// classes reads a non-empty list of class names, normalised to the short
// names usb.ClassName gives.
func (p *parser) classes(path string, n *yaml.Node) []string {
	if isNull(n) {
		p.errorf(n, "%s: want a list of class names, like [hid]", path)
		return nil
	}
	items, ok := p.sequence(path, n)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.errorf(n, "%s: must not be empty (leave the key out to match any class)", path)
		return nil
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		s, ok := p.scalar(ipath, it)
		if !ok {
			continue
		}
		code, ok := classCode(s)
		if !ok {
			known := usb.ClassNameList()
			slices.Sort(known)
			p.errorf(it, "%s: unknown USB class %q (known: %s, or class-XX with a hex code)", ipath, s, strings.Join(known, ", "))
			continue
		}
		name := usb.ClassName(code)
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// classCode maps a class name ("hid", "HID", "class-3f") to its 2-digit
// lower-case hex code.
func classCode(name string) (string, bool) {
	name = strings.ToLower(name)
	if code, ok := usb.ClassCode(name); ok {
		return code, true
	}
	if c, ok := strings.CutPrefix(name, "class-"); ok && len(c) == 2 && isHex(rune(c[0])) && isHex(rune(c[1])) {
		return c, true
	}
	return "", false
}

func (p *parser) date(path string, n *yaml.Node) *Date {
	s, ok := p.scalar(path, n)
	if !ok {
		return nil
	}
	d, err := ParseDate(s)
	if err != nil {
		p.errorf(n, "%s: %v", path, err)
		return nil
	}
	return &d
}

func (p *parser) boolean(path string, n *yaml.Node) (bool, bool) {
	s, ok := p.scalar(path, n)
	if !ok {
		return false, false
	}
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	p.errorf(n, "%s: want true or false, got %q", path, s)
	return false, false
}
