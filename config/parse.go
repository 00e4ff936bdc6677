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
	"sync"
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
	topKeys     = []string{"version", "agent", "metrics", "usb", "network", "report", "approved"}
	agentKeys   = []string{"asset_id", "state_dir", "language", "rescan_interval", "contact", "local_socket", "local_group"}
	metricsKeys = []string{"listen", "web_config_file"}
	usbKeys     = []string{"backend"}
	approvedKey = []string{"usb", "usb_ledger", "usb_ledger_encoding", "networks", "lan_devices"}
	entryKeys   = []string{
		"name", "vendor_id", "product_id", "serial", "port", "classes",
		"owner", "approved_by", "valid_from", "valid_until", "require_encryption",
	}
)

// Indexes of entryKeys.
const (
	kName = iota
	kVendor
	kProduct
	kSerial
	kPort
	kClasses
	kOwner
	kApprovedBy
	kFrom
	kUntil
	kEncryption
	numEntryKeys
)

// parser walks the node tree of one file (or the rows of one ledger) and
// collects every problem.
type parser struct {
	file string
	errs ErrorList
	st   *loadState
	// data is the whole file, for messages that quote a line.
	data []byte
	// fast is the approved.usb list split into items, when the file has
	// the plain shape that allows it (see splitApproved); nil otherwise.
	fast *splitList
	// fastFailed is set when an item of fast did not parse on its own:
	// the file is then read again as a whole. So it is when the document
	// turns out not to have the list where fast found it (fastUsed false).
	fastFailed bool
	fastUsed   bool
	// classBuf is scratch for the class names of the entry fastRaw reads.
	classBuf []val
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
//
// A long approved.usb list in block style is not read as part of the
// whole document: its lines are blanked in a copy of the document, and
// each item is parsed on its own, so that only one item's node tree is
// alive at a time. When an item does not parse on its own, the whole
// document is read again the ordinary way, so that errors are the same.
func (p *parser) parse(data []byte) *Config {
	if !p.checkText(data) {
		return nil
	}
	p.data = data
	if p.st.wholeDoc {
		return p.parseDoc(data)
	}
	if split := splitApproved(data); split != nil {
		p.fast = split
		cfg := p.parseDoc(split.doc)
		if !p.fastFailed && p.fastUsed {
			return cfg
		}
		p.fast, p.fastFailed, p.errs = nil, false, nil
		p.st.reset()
	}
	return p.parseDoc(data)
}

// parseDoc reads data as one YAML document.
func (p *parser) parseDoc(data []byte) *Config {
	root := p.decode(data, "version: 1 required")
	if root == nil {
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
	if n := top.get("network"); n != nil {
		p.network(n, &cfg.Network)
	}
	if n := top.get("report"); n != nil {
		p.report(n, &cfg.Report)
	}
	if n := top.get("approved"); n != nil {
		p.approved(n, &cfg.Approved)
	}
	return cfg
}

// decode reads data as exactly one YAML document and returns its root
// node, or nil after recording why not. missing is what an empty
// document lacks ("version: 1 required").
func (p *parser) decode(data []byte, missing string) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errAt(1, 1, "%s (the file is empty)", missing)
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
	if p.fast != nil && len(p.errs) > 0 {
		p.fastFailed = true
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.errAt(1, 1, "%s", missing)
		return nil
	}
	root := doc.Content[0]
	if isNull(root) {
		p.errorf(root, "%s (the file is empty)", missing)
		return nil
	}
	return root
}

// excelExponent is how Excel shows a long numeric serial it took for a
// number ("1.23457E+11"): the digits are lost, the entry would never match.
var excelExponent = regexp.MustCompile(`^[0-9](\.[0-9]+)?E\+[0-9]+$`)

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
	if p.fast != nil {
		p.fastFailed = true
		return
	}
	// yaml.v3 says "found character that cannot start any token" for a
	// tab that starts a line's indentation, on that line, and "found a
	// tab character that violates indentation" on the line before it.
	for i, l := range []int{line, line + 1} {
		if i > 0 && !strings.Contains(msg, "tab character") {
			break
		}
		if col := leadingTab(p.data, l); col > 0 {
			p.errAt(l, col, "a tab character is not allowed for indentation in YAML; use spaces")
			return
		}
	}
	p.errAt(line, 0, "YAML syntax error: %s", msg)
}

// leadingTab returns the 1-based column of the first tab in the
// indentation of the given line of data, 0 when it has none.
func leadingTab(data []byte, line int) int {
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return 0
		}
		data = data[i+1:]
	}
	for i, c := range data {
		switch c {
		case ' ':
		case '\t':
			return i + 1
		default:
			return 0
		}
	}
	return 0
}

// checkText rejects what YAML rejects without saying where: bytes that are
// not UTF-8 and control characters.
func (p *parser) checkText(data []byte) bool {
	if textOK(data) {
		return true
	}
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

// textOK reports quickly whether checkText accepts data.
func textOK(data []byte) bool {
	for i := 0; i < len(data); {
		if c := data[i]; c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 || r <= 0x9f && r != 0x85 || r == 0xfffe || r == 0xffff {
			return false
		}
		i += size
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
	keys  []*yaml.Node // the keys of vals
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
	f.keys = keyNodes
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
		if d, ok := p.duration("agent.rescan_interval", v, MinRescanInterval, MaxRescanInterval, "1s", "1h"); ok {
			a.RescanInterval = d
		}
	}
	if v := m.get("contact"); v != nil {
		p.contact(v, a)
	}
	p.localAPI(m.get("local_socket"), m.get("local_group"), a)
}

// duration reads a duration with a unit (time.ParseDuration's, or whole
// days "7d" as mamori-hub's config takes them) and checks that it lies
// within [lo, hi] (loText and hiText say so in the error).
func (p *parser) duration(path string, n *yaml.Node, lo, hi time.Duration, loText, hiText string) (time.Duration, bool) {
	s, ok := p.scalar(path, n)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if days, isDays := strings.CutSuffix(s, "d"); err != nil && isDays {
		if n2, aerr := strconv.Atoi(days); aerr == nil && n2 > 0 && n2 < 10000 && strconv.Itoa(n2) == days {
			d, err = time.Duration(n2)*24*time.Hour, nil
		}
	}
	if err != nil {
		p.errorf(n, "%s: want a duration with a unit, like 60s, 5m, 24h or 7d (whole days), got %q", path, s)
		return 0, false
	}
	if d < lo || d > hi {
		p.errorf(n, "%s: want a duration from %s to %s, got %q", path, loText, hiText, s)
		return 0, false
	}
	return d, true
}

func (p *parser) metrics(n *yaml.Node, m *Metrics) {
	f, ok := p.mapping("metrics", n, metricsKeys)
	if !ok {
		return
	}
	if v := f.get("web_config_file"); v != nil {
		if s, ok := p.text("metrics.web_config_file", v); ok {
			m.WebConfigFile = p.relative(s)
		}
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

// relative joins a relative path named in the file to the file's
// directory.
func (p *parser) relative(path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(filepath.Dir(p.file), path)
}

// checkListen accepts host:port with a numeric port; host is empty (every
// address), an IP address or a host name.
func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port, like 127.0.0.1:9868, got %q", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil || port[0] == '+' || (len(port) > 1 && port[0] == '0') {
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
	p.approvedWith(n, a, approvedKey)
}

// approvedWith reads the approved lists of n, a mapping of the keys in
// known (approvedKey in a config file; hubApprovedKeys in the hub's
// document, which has no ledgers).
func (p *parser) approvedWith(n *yaml.Node, a *ApprovedLists, known []string) {
	m, ok := p.mapping("approved", n, known)
	if !ok {
		return
	}
	if v := m.get("usb_ledger"); v != nil {
		p.ledgers(v, a)
	}
	if v := m.get("networks"); v != nil {
		p.networks(v, a)
	}
	if v := m.get("lan_devices"); v != nil {
		p.lanDevices(v, a)
	}
	if v := m.get("usb_ledger_encoding"); v != nil {
		if s, ok := p.scalar("approved.usb_ledger_encoding", v); ok {
			if s != LedgerAuto && s != LedgerUTF8 && s != LedgerCP932 {
				p.errorf(v, "approved.usb_ledger_encoding: want %q, %q or %q, got %q", LedgerAuto, LedgerUTF8, LedgerCP932, s)
			} else {
				a.USBLedgerEncoding = s
			}
		}
	}
	v := m.get("usb")
	if v == nil {
		return
	}
	if p.fast != nil {
		if k := m.keys[slices.Index(known, "usb")]; isNull(v) && k.Line == p.fast.keyLine && k.Column == p.fast.keyCol {
			p.fastUsed = true
			p.fastItems()
		} else {
			p.fastFailed = true
		}
		return
	}
	items, _ := p.sequence("approved.usb", v)
	p.st.grow(len(items))
	for i, it := range items {
		p.yamlEntry(i, it)
	}
}

// ledgers reads approved.usb_ledger: one path or a list of them.
func (p *parser) ledgers(v *yaml.Node, a *ApprovedLists) {
	const path = "approved.usb_ledger"
	var nodes []*yaml.Node
	if v.Kind == yaml.SequenceNode {
		items, ok := p.sequence(path, v)
		if !ok {
			return
		}
		if len(items) == 0 {
			p.errorf(v, "%s: must not be empty (leave the key out when there is no ledger)", path)
			return
		}
		if len(items) > MaxLedgers {
			p.errorf(items[MaxLedgers], "%s: at most %d ledgers", path, MaxLedgers)
			return
		}
		nodes = items
	} else {
		nodes = []*yaml.Node{v}
	}
	for i, n := range nodes {
		ipath := path
		if v.Kind == yaml.SequenceNode {
			ipath = fmt.Sprintf("%s[%d]", path, i)
		}
		s, ok := p.text(ipath, n)
		if !ok {
			continue
		}
		file := p.relative(s)
		if j := slices.Index(a.USBLedgers, file); j >= 0 {
			p.errorf(n, "%s: %q is already named at line %d", ipath, s, p.st.ledgerAt[j].line)
			continue
		}
		a.USBLedgers = append(a.USBLedgers, file)
		p.st.ledgerAt = append(p.st.ledgerAt, val{s: ipath, line: n.Line, col: n.Column})
	}
}

// fastItems reads the items of approved.usb that splitApproved found, one
// at a time.
func (p *parser) fastItems() {
	f := p.fast
	p.st.grow(len(f.items))
	var doc yaml.Node
	var r rawEntry
	for i, it := range f.items {
		if !p.st.yamlItems && p.fastRaw(i, it, &r) {
			p.finishEntry(&r, len(p.errs))
			continue
		}
		doc = yaml.Node{}
		if err := yaml.Unmarshal(p.data[it.start:it.end], &doc); err != nil ||
			len(doc.Content) != 1 || doc.Content[0].Kind != yaml.SequenceNode || len(doc.Content[0].Content) != 1 {
			p.fastFailed = true
			return
		}
		n := doc.Content[0].Content[0]
		if it.line > 1 {
			shiftLines(n, it.line-1)
		}
		if !p.plain(fmt.Sprintf("approved.usb[%d]", i), n) {
			continue
		}
		p.yamlEntry(i, n)
	}
}

// shiftLines adds d to the line of n and every node under it.
func shiftLines(n *yaml.Node, d int) {
	n.Line += d
	for _, c := range n.Content {
		shiftLines(c, d)
	}
}

var portRE = regexp.MustCompile(`^[1-9][0-9]{0,2}-[1-9][0-9]{0,2}(\.[1-9][0-9]{0,2}){0,6}$`)

// ValidPort reports whether s is a port an approved USB entry takes: a
// Linux bus path ("1-2", "3-1.4"; sysfs /sys/bus/usb/devices names).
func ValidPort(s string) bool { return portRE.MatchString(s) }

// val is one value of an entry as written, with where it was written
// (line and column 0 when the entry leaves it out).
type val struct {
	s         string
	line, col int
	set       bool
	bad       bool // set, but already reported as malformed
}

// rawEntry is one entry's values as read from YAML or a ledger row,
// before they are checked.
type rawEntry struct {
	line, col int // where the entry starts
	index     int // its number in approved.usb (YAML)
	vals      [numEntryKeys]val
	classes   []val // each class name
	// header names the ledger's columns by key (nil for YAML, where
	// values are named approved.usb[i].key).
	header *[numEntryKeys]string
	// ledger is set for a ledger row: its booleans accept more words.
	ledger bool
}

// label names the entry (k < 0) or one of its values in messages.
func (r *rawEntry) label(k int) string {
	if r.header != nil {
		if k < 0 {
			return ""
		}
		return r.header[k]
	}
	if k < 0 {
		return fmt.Sprintf("approved.usb[%d]", r.index)
	}
	return fmt.Sprintf("approved.usb[%d].%s", r.index, entryKeys[k])
}

// classLabel names the i'th class name of the entry.
func (r *rawEntry) classLabel(i int) string {
	if r.header != nil {
		return r.header[kClasses]
	}
	return fmt.Sprintf("%s[%d]", r.label(kClasses), i)
}

// at returns where value k was written, or where the entry starts.
func (r *rawEntry) at(k int) (int, int) {
	if k >= 0 && r.vals[k].line > 0 {
		return r.vals[k].line, r.vals[k].col
	}
	return r.line, r.col
}

// errAtKey records a problem with value k (k < 0: the entry).
func (p *parser) errAtKey(r *rawEntry, k int, format string, args ...any) {
	line, col := r.at(k)
	p.errAt(line, col, "%s%s", prefix(r.label(k)), fmt.Sprintf(format, args...))
}

// yamlEntry reads the i'th approved.usb entry n and adds it.
func (p *parser) yamlEntry(i int, n *yaml.Node) {
	var r rawEntry
	if nerr, ok := p.yamlRaw(i, n, &r); ok {
		p.finishEntry(&r, nerr)
	}
}

// finishEntry checks the values of r and adds the entry; nerr is the
// number of errors before its values were read (the entry is added only
// when there are no more).
func (p *parser) finishEntry(r *rawEntry, nerr int) {
	e, _ := p.checkEntry(r)
	p.add(r, &e, nerr == len(p.errs))
}

// yamlRaw reads the values of the i'th approved.usb entry n into r, and
// returns the number of errors before its values were read, or false
// when n is not a mapping of entry keys (recording why).
func (p *parser) yamlRaw(i int, n *yaml.Node, r *rawEntry) (int, bool) {
	*r = rawEntry{line: n.Line, col: n.Column, index: i}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping of keys (name, vendor_id, ...), got %s", r.label(-1), kindName(n))
		return 0, false
	}
	path := r.label(-1)
	m, ok := p.mapping(path, n, entryKeys)
	if !ok {
		return 0, false
	}
	nerr := len(p.errs)
	for k := range numEntryKeys {
		v := m.vals[k]
		if v == nil {
			continue
		}
		if k == kClasses {
			r.vals[k] = val{line: v.Line, col: v.Column, set: true}
			r.classes = p.yamlClasses(r.label(k), v)
			continue
		}
		s, ok := p.scalarOf(path, k, v)
		r.vals[k] = val{s: s, line: v.Line, col: v.Column, set: true, bad: !ok}
	}
	return nerr, true
}

// scalarOf is scalar for entry key k, naming the value only on error.
func (p *parser) scalarOf(path string, k int, n *yaml.Node) (string, bool) {
	if n.Kind == yaml.ScalarNode && len(n.Value) <= maxStringLen && isPlainText(n.Value) {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
			return n.Value, true
		}
	}
	return p.scalar(path+"."+entryKeys[k], n)
}

// isPlainText reports whether s is valid UTF-8 without control
// characters (those scalar and checkCell refuse).
func isPlainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return checkText(s) == ""
		}
	}
	return true
}

// checkText returns why s is not acceptable text, or "".
func checkText(s string) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return fmt.Sprintf("control character U+%04X is not allowed", r)
		}
	}
	return ""
}

// yamlClasses reads the classes list of an entry.
func (p *parser) yamlClasses(path string, n *yaml.Node) []val {
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
	out := make([]val, 0, len(items))
	for i, it := range items {
		if s, ok := p.scalar(fmt.Sprintf("%s[%d]", path, i), it); ok {
			out = append(out, val{s: s, line: it.Line, col: it.Column, set: true})
		}
	}
	return out
}

// checkEntry checks the values of one entry, from YAML or a ledger row,
// by the same rules, and returns the entry and whether it is valid.
func (p *parser) checkEntry(r *rawEntry) (USBEntry, bool) {
	e := USBEntry{Line: r.line, File: p.file}
	nerr := len(p.errs)
	v := &r.vals
	good := func(k int) bool { return v[k].set && !v[k].bad }
	if !v[kName].set {
		p.errAtKey(r, -1, "name is required")
	} else if !v[kName].bad {
		if s, ok := p.nonEmpty(r, kName); ok {
			e.Name = p.st.arena.clone(s)
		}
	}
	if good(kVendor) {
		e.VendorID, _ = p.hexID(r, kVendor)
	}
	if v[kProduct].set {
		if good(kProduct) {
			e.ProductID, _ = p.hexID(r, kProduct)
		}
		if !v[kVendor].set {
			p.errAtKey(r, kProduct, "needs vendor_id as well")
		}
	}
	if good(kSerial) {
		if s := v[kSerial].s; s == "" {
			p.errAtKey(r, kSerial, "must not be empty (leave the key out to match any serial)")
		} else if r.ledger && excelExponent.MatchString(s) {
			p.errAtKey(r, kSerial, "%q is a number Excel rewrote in exponent notation, not the serial: format the column as text and type the serial again", s)
		} else {
			e.Serial = p.st.serial(s)
		}
	}
	if good(kPort) {
		if s := v[kPort].s; !portRE.MatchString(s) {
			p.errAtKey(r, kPort, "want a bus path like \"1-2\" or \"3-1.4\", got %q", s)
		} else {
			e.Port = p.st.intern(s)
		}
	}
	var t EntryTerms
	if v[kClasses].set {
		t.Classes = p.classes(r)
	}
	if good(kOwner) {
		s, _ := p.nonEmpty(r, kOwner)
		t.Owner = s
	}
	if good(kApprovedBy) {
		s, _ := p.nonEmpty(r, kApprovedBy)
		t.ApprovedBy = s
	}
	if good(kFrom) {
		t.ValidFrom = p.date(r, kFrom)
	}
	if good(kUntil) {
		t.ValidUntil = p.date(r, kUntil)
		if t.ValidFrom != nil && t.ValidUntil != nil && t.ValidUntil.Compare(*t.ValidFrom) < 0 {
			p.errAtKey(r, kUntil, "%s is before valid_from %s", t.ValidUntil, t.ValidFrom)
		}
	}
	if good(kEncryption) {
		t.RequireEncryption, _ = p.boolean(r, kEncryption)
	}
	e.Terms = p.st.terms(&t)
	if !v[kVendor].set && !v[kProduct].set && !v[kSerial].set && !v[kPort].set && !v[kClasses].set {
		p.errAtKey(r, -1, "sets none of vendor_id, product_id, serial, port, classes, so it would approve every device")
	}
	return e, len(p.errs) == nerr
}

// nonEmpty returns value k, which must not be blank.
func (p *parser) nonEmpty(r *rawEntry, k int) (string, bool) {
	s := r.vals[k].s
	if strings.TrimSpace(s) == "" {
		p.errAtKey(r, k, "must not be empty")
		return "", false
	}
	return s, true
}

// add puts a read entry in the list, after checking that its name and
// its matching fields are not those of an entry before it. An invalid
// entry (ok false) is not added, but its name still counts.
func (p *parser) add(r *rawEntry, e *USBEntry, ok bool) {
	st := p.st
	if e.Name != "" {
		if first, dup := st.names[e.Name]; dup {
			p.errAtKey(r, kName, "%q is already the name of the entry at %s", e.Name, st.where(p.file, first))
		} else {
			st.names[e.Name] = st.ref(p.file, e.Line)
		}
	}
	if !ok {
		return
	}
	if len(st.entries) >= MaxApprovedUSB {
		if !st.tooMany {
			p.errAtKey(r, -1, "more than %d approved USB entries", MaxApprovedUSB)
			st.tooMany = true
		}
		return
	}
	if first, dup := st.matcher(e, len(st.entries)); dup {
		f := &st.entries[first]
		p.errAtKey(r, -1, "matches exactly the devices of the entry %q at %s (same vendor_id, product_id, serial, port and classes)",
			f.Name, st.where(p.file, st.ref(f.File, f.Line)))
		return
	}
	st.entries = append(st.entries, *e)
}

// matchesSomething reports whether e sets a matching field.
func (e *USBEntry) matchesSomething() bool {
	return e.VendorID != "" || e.ProductID != "" || e.Serial != nil || e.Port != "" || len(e.terms().Classes) > 0
}

// hexID reads a vendor or product id: 4 hex digits, returned lower-case.
func (p *parser) hexID(r *rawEntry, k int) (string, bool) {
	s := r.vals[k].s
	if v, ok := parseID(s); ok {
		return hexIDString(v), true
	}
	p.errAtKey(r, k, "want 4 hex digits like \"0951\", got %q", s)
	return "", false
}

// hexIDTable holds "0000" to "ffff", so that ids share it.
var hexIDTable = sync.OnceValue(func() string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, 4<<16)
	for v := range 1 << 16 {
		b = append(b, digits[v>>12], digits[v>>8&15], digits[v>>4&15], digits[v&15])
	}
	return string(b)
})

// hexIDString returns v as 4 lower-case hex digits.
func hexIDString(v uint16) string {
	i := int(v) * 4
	return hexIDTable()[i : i+4]
}

func isHex(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F'
}

// classes checks the class names of an entry, normalised to the short
// names usb.ClassName gives.
func (p *parser) classes(r *rawEntry) []string {
	if len(r.classes) == 0 {
		return nil
	}
	var buf [8]string
	out := buf[:0]
	ok := true
	for i, c := range r.classes {
		code, known := classCode(c.s)
		if !known {
			known := usb.ClassNameList()
			slices.Sort(known)
			p.errAt(c.line, c.col, "%sunknown USB class %q (known: %s, or class-XX with a hex code)",
				prefix(r.classLabel(i)), c.s, strings.Join(known, ", "))
			ok = false
			continue
		}
		name := usb.ClassName(code)
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if !ok {
		return nil
	}
	return p.st.classList(out)
}

// classCode maps a class name ("hid", "HID", "class-3f") to its 2-digit
// lower-case hex code.
func classCode(name string) (string, bool) {
	if code, ok := usb.ClassCode(name); ok {
		return code, true
	}
	name = strings.ToLower(name)
	if code, ok := usb.ClassCode(name); ok {
		return code, true
	}
	if c, ok := strings.CutPrefix(name, "class-"); ok && len(c) == 2 && isHex(rune(c[0])) && isHex(rune(c[1])) {
		return c, true
	}
	return "", false
}

func (p *parser) date(r *rawEntry, k int) *Date {
	parse := ParseDate
	if r.ledger {
		parse = parseLedgerDate
	}
	d, err := parse(r.vals[k].s)
	if err != nil {
		p.errAtKey(r, k, "%v", err)
		return nil
	}
	return p.st.date(d)
}

// boolean reads require_encryption: true or false; a ledger also takes
// TRUE/FALSE in any case, 1/0, yes/no, ○/× (and ◯, ✕).
func (p *parser) boolean(r *rawEntry, k int) (bool, bool) {
	s := r.vals[k].s
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	if r.ledger {
		switch strings.ToLower(s) {
		case "true", "1", "yes", "○", "◯":
			return true, true
		case "false", "0", "no", "×", "✕":
			return false, true
		}
		p.errAtKey(r, k, "want true or false (or 1/0, yes/no, ○/×), got %q", s)
		return false, false
	}
	p.errAtKey(r, k, "want true or false, got %q", s)
	return false, false
}
