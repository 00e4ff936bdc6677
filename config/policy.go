package config

import (
	"slices"
	"time"

	"github.com/mamori-agent/mamori/collector/usb"
)

// Status is the outcome of matching a device against the approved list.
type Status int

// Statuses, from Decide.
const (
	// Unapproved: no entry matches the device.
	Unapproved Status = iota
	// Approved: an entry matches and is valid today.
	Approved
	// Expired: entries match, but none is valid and the chosen one ended
	// before today (violation usb_approval_expired).
	Expired
	// NotYetValid: entries match, but none is valid and the chosen one
	// starts after today (violation usb_approval_not_yet_valid).
	NotYetValid
)

// String returns "approved", "expired", "not_yet_valid" or "unapproved".
func (s Status) String() string {
	switch s {
	case Approved:
		return "approved"
	case Expired:
		return "expired"
	case NotYetValid:
		return "not_yet_valid"
	}
	return "unapproved"
}

// Decision is the result of Decide.
type Decision struct {
	Status Status
	// Entry is the entry that decided (nil when Unapproved). It points
	// into the Policy; do not change it.
	Entry *USBEntry
}

// Policy answers whether a USB device is approved. It indexes the entries
// once, so that Decide looks up candidates by vendor, product, serial and
// port instead of scanning the list. A Policy is immutable and safe for
// concurrent use.
type Policy struct {
	entries []USBEntry
	index   map[matchKey]*bucket
	masks   []uint8 // key masks present in index, most specific first
	loc     *time.Location
}

// PolicyOption configures NewPolicy.
type PolicyOption func(*Policy)

// WithLocation sets the time zone in which the entries' dates are days
// (default time.Local).
func WithLocation(loc *time.Location) PolicyOption {
	return func(p *Policy) {
		if loc != nil {
			p.loc = loc
		}
	}
}

// Bits of a key mask: which identifying fields an entry sets.
const (
	keyVendor uint8 = 1 << iota
	keyProduct
	keySerial
	keyPort
)

// matchKey holds the identifying fields an entry sets; the others are "".
type matchKey struct {
	mask                          uint8
	vendor, product, serial, port string
}

// bucket holds the entries with one matchKey, grouped by class set.
type bucket struct {
	groups []group
}

// group is entries that match exactly the same devices: the same key and
// the same classes. They differ only in their dates (and informational
// fields), so the first valid one in file order stands for the group.
type group struct {
	classes  classSet
	anyClass bool // the entries set no classes
	score    int
	entries  []candidate // in file order
}

type candidate struct {
	idx         int32
	from, until int64 // YYYYMMDD, 0 when open
}

// Specificity scores: serial > port > vendor+product > vendor > classes.
const (
	scoreClasses = 1 << iota
	scoreVendor
	scoreProduct
	scorePort
	scoreSerial
)

// NewPolicy indexes entries (it keeps a copy). Entries that set no
// matching field or name a class it does not know never match.
func NewPolicy(entries []USBEntry, opts ...PolicyOption) *Policy {
	p := &Policy{
		entries: slices.Clone(entries),
		index:   make(map[matchKey]*bucket, len(entries)),
		loc:     time.Local,
	}
	for _, o := range opts {
		o(p)
	}
	type groupKey struct {
		key      matchKey
		classes  classSet
		anyClass bool
	}
	groups := make(map[groupKey]int, len(entries))
	masks := map[uint8]bool{}
	for i := range p.entries {
		e := &p.entries[i]
		if !e.matchesSomething() {
			continue
		}
		k, score := entryKey(e)
		gk := groupKey{key: k, anyClass: len(e.Classes) == 0}
		if !gk.anyClass {
			ok := true
			for _, name := range e.Classes {
				code, known := classCode(name)
				ok = ok && known && gk.classes.add(code)
			}
			if !ok {
				continue
			}
			score |= scoreClasses
		}
		b := p.index[k]
		if b == nil {
			b = &bucket{}
			p.index[k] = b
			masks[k.mask] = true
		}
		gi, ok := groups[gk]
		if !ok {
			gi = len(b.groups)
			groups[gk] = gi
			b.groups = append(b.groups, group{classes: gk.classes, anyClass: gk.anyClass, score: score})
		}
		c := candidate{idx: int32(i)}
		if e.ValidFrom != nil {
			c.from = e.ValidFrom.ordinal()
		}
		if e.ValidUntil != nil {
			c.until = e.ValidUntil.ordinal()
		}
		b.groups[gi].entries = append(b.groups[gi].entries, c)
	}
	for m := range masks {
		p.masks = append(p.masks, m)
	}
	slices.SortFunc(p.masks, func(a, b uint8) int { return maskScore(b) - maskScore(a) })
	return p
}

// entryKey returns the key of e's identifying fields and their score.
func entryKey(e *USBEntry) (matchKey, int) {
	var k matchKey
	if e.VendorID != "" {
		k.mask |= keyVendor
		k.vendor = lower(e.VendorID)
	}
	if e.ProductID != "" {
		k.mask |= keyProduct
		k.product = lower(e.ProductID)
	}
	if e.Serial != nil {
		k.mask |= keySerial
		k.serial = *e.Serial
	}
	if e.Port != "" {
		k.mask |= keyPort
		k.port = e.Port
	}
	return k, maskScore(k.mask)
}

func maskScore(mask uint8) int {
	s := 0
	if mask&keyVendor != 0 {
		s |= scoreVendor
	}
	if mask&keyProduct != 0 {
		s |= scoreProduct
	}
	if mask&keySerial != 0 {
		s |= scoreSerial
	}
	if mask&keyPort != 0 {
		s |= scorePort
	}
	return s
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Len returns the number of entries the policy was built from.
func (p *Policy) Len() int { return len(p.entries) }

// choice is the best candidate found so far.
type choice struct {
	idx   int32 // -1 when none
	score int
	c     candidate
}

// better reports whether a candidate with score s at idx beats ch: more
// specific first, then earlier in the file.
func (ch *choice) better(s int, idx int32) bool {
	return ch.idx < 0 || s > ch.score || s == ch.score && idx < ch.idx
}

// Decide matches d against the approved entries on the day of now in the
// policy's time zone. An entry matches when every matching field it sets
// matches: vendor and product id, serial, port (d.Path), and classes
// (every interface class of d, or its device class when it has no
// interfaces, is in the entry's list). Among matching entries valid today
// the most specific wins (serial > port > vendor+product > vendor >
// classes only; then the earlier entry); when none is valid, the most
// specific out-of-date one gives Expired or NotYetValid. Decide does not
// treat root hubs specially: that is the caller's rule.
func (p *Policy) Decide(d *usb.Device, now time.Time) Decision {
	if d == nil || len(p.masks) == 0 {
		return Decision{Status: Unapproved}
	}
	y, m, day := now.In(p.loc).Date()
	today := int64(y)*10000 + int64(m)*100 + int64(day)
	devClasses, classesOK := deviceClasses(d)

	valid := choice{idx: -1}
	stale := choice{idx: -1}
	for _, mask := range p.masks {
		if valid.idx >= 0 && maskScore(mask)|scoreClasses < valid.score {
			break // masks are sorted: nothing left can beat it
		}
		k := matchKey{mask: mask}
		if mask&keyVendor != 0 {
			k.vendor = d.VendorID
		}
		if mask&keyProduct != 0 {
			k.product = d.ProductID
		}
		if mask&keySerial != 0 {
			if d.Serial == nil {
				continue
			}
			k.serial = *d.Serial
		}
		if mask&keyPort != 0 {
			k.port = d.Path
		}
		b := p.index[k]
		if b == nil {
			continue
		}
		for gi := range b.groups {
			g := &b.groups[gi]
			if !g.anyClass && (!classesOK || !devClasses.subsetOf(&g.classes)) {
				continue
			}
			for _, c := range g.entries {
				if c.validOn(today) {
					if valid.better(g.score, c.idx) {
						valid = choice{idx: c.idx, score: g.score, c: c}
					}
					break // later entries of the group can only lose
				}
				if stale.better(g.score, c.idx) {
					stale = choice{idx: c.idx, score: g.score, c: c}
				}
			}
		}
	}
	switch {
	case valid.idx >= 0:
		return Decision{Status: Approved, Entry: &p.entries[valid.idx]}
	case stale.idx >= 0:
		st := Expired
		if stale.c.from != 0 && today < stale.c.from {
			st = NotYetValid
		}
		return Decision{Status: st, Entry: &p.entries[stale.idx]}
	}
	return Decision{Status: Unapproved}
}

// validOn reports whether the candidate's dates include today (inclusive).
func (c candidate) validOn(today int64) bool {
	return (c.from == 0 || c.from <= today) && (c.until == 0 || today <= c.until)
}

// classSet is a set of USB class codes, one bit per code.
type classSet [4]uint64

// add puts the 2-digit hex code in the set; false when code is malformed.
func (s *classSet) add(code string) bool {
	if len(code) != 2 {
		return false
	}
	hi, ok1 := hexVal(code[0])
	lo, ok2 := hexVal(code[1])
	if !ok1 || !ok2 {
		return false
	}
	v := hi<<4 | lo
	s[v>>6] |= 1 << (v & 63)
	return true
}

func (s *classSet) subsetOf(t *classSet) bool {
	return s[0]&^t[0] == 0 && s[1]&^t[1] == 0 && s[2]&^t[2] == 0 && s[3]&^t[3] == 0
}

func hexVal(c byte) (uint8, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// deviceClasses returns the class codes of d's interfaces, or its device
// class when it has none; false when a code is malformed.
func deviceClasses(d *usb.Device) (classSet, bool) {
	var s classSet
	if len(d.Interfaces) == 0 {
		return s, s.add(d.Class)
	}
	for i := range d.Interfaces {
		if !s.add(d.Interfaces[i].Class) {
			return s, false
		}
	}
	return s, true
}
