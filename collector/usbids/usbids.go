// Package usbids names USB vendors, products and classes from the usb.ids
// database (http://www.linux-usb.org/usb.ids, the copy Debian ships as the
// usb.ids package; see usb.ids.copyright), which is embedded in the
// binary.
//
// The database is indexed lazily, on the first lookup, and the index is
// small: one entry (id and byte offsets) per vendor and per class, about
// 45 KB. Product, subclass and protocol names are found by scanning the
// few lines of their vendor or class in the embedded text, so no string
// is copied out of the database until a lookup returns it.
package usbids

import (
	_ "embed"
	"slices"
	"strconv"
	"strings"
	"sync"
)

//go:embed usb.ids
var embedded string

// DB is a parsed usb.ids database. The zero value is an empty database;
// use New or the package-level functions, which use the embedded copy.
// A DB is safe for concurrent use.
type DB struct {
	data string

	once    sync.Once
	vendors []entry // sorted by id
	classes []entry // sorted by id
}

// entry locates one top-level record ("vvvv  name" or "C cc  name"): the
// header line starts at line, its indented children run up to end.
type entry struct {
	id   uint16
	line uint32
	end  uint32
}

// New returns a database over data, which must be in usb.ids format.
// Nothing is parsed until the first lookup; malformed lines are skipped.
func New(data string) *DB { return &DB{data: data} }

var std = New(embedded)

// Default returns the database embedded in the binary.
func Default() *DB { return std }

// Vendor returns the name of vendor vid ("05f3" or "5F3"), or "" when the
// id is malformed or not in the embedded database.
func Vendor(vid string) string { return std.Vendor(vid) }

// Product returns the name of product pid of vendor vid, or "" when
// either id is malformed or unknown.
func Product(vid, pid string) string { return std.Product(vid, pid) }

// Class returns the name of a USB class code as the embedded database
// spells it, refined by subclass and protocol when they are known, joined
// with " / " ("Mass Storage / SCSI / Bulk-Only"). Pass "" for subclass
// or protocol to stop at a coarser level. It returns "" for an unknown
// class.
func Class(class, subclass, protocol string) string { return std.Class(class, subclass, protocol) }

// Version returns the "# Version:" line of the embedded database
// ("2025.07.26"), or "".
func Version() string { return std.Version() }

func (db *DB) index() {
	db.once.Do(db.build)
}

// build scans the text once and records where each vendor and class
// starts and ends.
func (db *DB) build() {
	d := db.data
	var cur *[]entry // list the open record belongs to, nil when none
	closeOpen := func(at int) {
		if cur != nil {
			(*cur)[len(*cur)-1].end = uint32(at)
			cur = nil
		}
	}
	for off := 0; off < len(d); {
		nl := strings.IndexByte(d[off:], '\n')
		lineEnd := len(d)
		if nl >= 0 {
			lineEnd = off + nl
		}
		line := d[off:lineEnd]
		switch {
		case line == "" || line[0] == '#' || line[0] == '\t':
			// Comments and blank lines end nothing; indented lines
			// belong to the open record.
		case len(line) >= 6 && line[4] == ' ' && line[5] == ' ' && isLowerHex(line[:4]):
			closeOpen(off)
			if id, ok := parseHex(line[:4], 16); ok {
				db.vendors = append(db.vendors, entry{id: uint16(id), line: uint32(off)})
				cur = &db.vendors
			}
		case len(line) >= 6 && line[0] == 'C' && line[1] == ' ' && line[4] == ' ' && isLowerHex(line[2:4]):
			closeOpen(off)
			if id, ok := parseHex(line[2:4], 8); ok {
				db.classes = append(db.classes, entry{id: uint16(id), line: uint32(off)})
				cur = &db.classes
			}
		default:
			// Any other top-level line starts a section we do not use
			// (AT, HID, R, BIAS, PHY, HUT, L, HCC, VT).
			closeOpen(off)
		}
		off = lineEnd + 1
	}
	closeOpen(len(d))
	for _, l := range []*[]entry{&db.vendors, &db.classes} {
		// The file is kept sorted, but do not rely on it; on duplicate
		// ids the first one wins.
		slices.SortStableFunc(*l, func(a, b entry) int { return int(a.id) - int(b.id) })
		*l = slices.CompactFunc(*l, func(a, b entry) bool { return a.id == b.id })
		*l = slices.Clip(*l)
	}
}

func find(l []entry, id uint16) (entry, bool) {
	i, ok := slices.BinarySearchFunc(l, id, func(e entry, id uint16) int { return int(e.id) - int(id) })
	if !ok {
		return entry{}, false
	}
	return l[i], true
}

// Vendor returns the name of vendor vid, or "".
func (db *DB) Vendor(vid string) string {
	v, ok := parseHex(vid, 16)
	if !ok {
		return ""
	}
	db.index()
	e, ok := find(db.vendors, uint16(v))
	if !ok {
		return ""
	}
	name, _ := db.header(e, 6)
	return name
}

// Product returns the name of product pid of vendor vid, or "".
func (db *DB) Product(vid, pid string) string {
	v, ok := parseHex(vid, 16)
	if !ok {
		return ""
	}
	p, ok := parseHex(pid, 16)
	if !ok {
		return ""
	}
	db.index()
	e, ok := find(db.vendors, uint16(v))
	if !ok {
		return ""
	}
	_, body := db.header(e, 6)
	// A vendor may have hundreds of products: look for the exact line
	// with strings.Index rather than parsing each one.
	key := hex4(p) + "  "
	at := -1
	for from := 0; from < len(body); {
		i := strings.Index(body[from:], key)
		if i < 0 {
			return ""
		}
		i += from
		// Only a product line counts: exactly one tab before the id,
		// at the start of a line.
		if i >= 1 && body[i-1] == '\t' && (i == 1 || body[i-2] == '\n') {
			at = i
			break
		}
		from = i + 1
	}
	if at < 0 {
		return ""
	}
	line := body[at+len(key):]
	if nl := strings.IndexByte(line, '\n'); nl >= 0 {
		line = line[:nl]
	}
	return strings.TrimSpace(line)
}

func hex4(v uint64) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[v>>12&0xf], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf]})
}

// Class returns the class name refined by subclass and protocol, or "".
func (db *DB) Class(class, subclass, protocol string) string {
	c, ok := parseHex(class, 8)
	if !ok {
		return ""
	}
	db.index()
	e, ok := find(db.classes, uint16(c))
	if !ok {
		return ""
	}
	name, body := db.header(e, 6)
	if name == "" {
		return ""
	}
	s, ok := parseHex(subclass, 8)
	if !ok {
		return name
	}
	sub, at := childAt(body, 1, 2, s)
	if sub == "" {
		return name
	}
	name += " / " + sub
	p, ok := parseHex(protocol, 8)
	if !ok {
		return name
	}
	// Protocols are the doubly indented lines after the subclass line,
	// up to the next subclass.
	rest := body[at:]
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[i+1:]
	} else {
		rest = ""
	}
	end := 0
	for end < len(rest) {
		nl := strings.IndexByte(rest[end:], '\n')
		line := rest[end:]
		if nl >= 0 {
			line = rest[end : end+nl]
		}
		if strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, "\t\t") {
			break
		}
		if nl < 0 {
			end = len(rest)
			break
		}
		end += nl + 1
	}
	if proto := child(rest[:end], 2, 2, p); proto != "" {
		name += " / " + proto
	}
	return name
}

// Version returns the database's "# Version:" value, or "".
func (db *DB) Version() string {
	const key = "# Version:"
	d := db.data
	if len(d) > 4096 {
		d = d[:4096]
	}
	i := strings.Index(d, key)
	if i < 0 {
		return ""
	}
	v := d[i+len(key):]
	if nl := strings.IndexByte(v, '\n'); nl >= 0 {
		v = v[:nl]
	}
	return strings.TrimSpace(v)
}

// header returns the name on e's header line (after skip bytes of id and
// separator) and the text of its indented children.
func (db *DB) header(e entry, skip int) (name, body string) {
	if int(e.end) > len(db.data) || e.line > e.end {
		return "", ""
	}
	rec := db.data[e.line:e.end]
	line := rec
	if nl := strings.IndexByte(rec, '\n'); nl >= 0 {
		line, body = rec[:nl], rec[nl+1:]
	}
	if len(line) < skip {
		return "", body
	}
	return strings.TrimSpace(line[skip:]), body
}

// child finds, among the lines of body indented by tabs tabs, the one
// whose id (digits hex digits) is id, and returns its name.
func child(body string, tabs, digits int, id uint64) string {
	name, _ := childAt(body, tabs, digits, id)
	return name
}

// childAt is child that also returns the offset of the matching line.
func childAt(body string, tabs, digits int, id uint64) (string, int) {
	for off := 0; off < len(body); {
		nl := strings.IndexByte(body[off:], '\n')
		lineEnd := len(body)
		if nl >= 0 {
			lineEnd = off + nl
		}
		line := body[off:lineEnd]
		if len(line) >= tabs+digits+2 && strings.Count(line[:tabs], "\t") == tabs && line[tabs] != '\t' &&
			line[tabs+digits] == ' ' && line[tabs+digits+1] == ' ' {
			if v, ok := parseHex(line[tabs:tabs+digits], digits*4); ok && v == id {
				return strings.TrimSpace(line[tabs+digits+2:]), off
			}
		}
		off = lineEnd + 1
	}
	return "", 0
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseHex parses s as hex of at most bits bits, without sign or prefix.
func parseHex(s string, bits int) (uint64, bool) {
	if s == "" || len(s) > bits/4 || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, bits)
	return v, err == nil
}
