package config

import (
	"hash/maphash"
	"math"
	"math/bits"
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
// once, so that Decide finds candidates by hashed lookups on vendor and
// product id, serial and port instead of scanning the list: the cost of
// a decision does not grow with the number of entries, only with the
// number of entries that share the device's exact identifiers and with
// the number of distinct class sets among entries that set only classes.
// The index is lean: about 30 bytes per entry besides the entries (16 of
// meta, 12 of hash table, 2 of filter).
// A Policy is immutable and safe for concurrent use.
type Policy struct {
	entries []USBEntry
	meta    []entryMeta // by entry
	seed    maphash.Seed
	// table is an open-addressed hash table (linear probing, at most
	// two thirds full) of the entries that have an anchor, by keyHash; a
	// slot holds the hash's low 32 bits and the entry's index + 1 (0:
	// empty). Its size is not a power of two: a hash's home slot is
	// home.
	table []slot
	// filter is a Bloom filter of the keys in table. It is small enough
	// to stay in the CPU's cache, so that most lookups of a device that
	// is not in the list never touch the table itself.
	filter bloom
	// combos[anchor] has bit 1<<extras set for every combination of
	// anchor and extras in table.
	combos [anchorPort + 1]uint8
	// classOnly holds the entries that set only classes, grouped by
	// class set.
	classOnly []classGroup
	// classSets are the distinct class sets of the entries.
	classSets []classSet
	// spans are the distinct dates of the entries (most entries of a
	// long list share a few).
	spans []span
	loc   *time.Location
}

type slot struct {
	tag uint32
	idx uint32 // entry index + 1; 0 when the slot is empty
}

// entryMeta is what Decide needs of an entry besides its strings: 16
// bytes.
type entryMeta struct {
	classes int32  // index in classSets; -1: any class
	product uint32 // vendor<<16|product, or vendor alone
	dates   uint32 // index in spans
	anchor  uint8
	extras  uint8
	score   uint8
	ok      bool // the entry can match
}

// span is the days of an entry, YYYYMMDD, 0 when open.
type span struct {
	from, until int32
}

// classGroup is the class-only entries with one class set, in order.
type classGroup struct {
	set  classSet
	idxs []int32
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

// Anchor kinds: the first identifying field of an entry, in the order
// vendor (with product), vendor (alone), serial, port.
const (
	anchorProduct uint8 = iota + 1
	anchorVendor
	anchorSerial
	anchorPort
)

// Extras: identifying fields an entry sets besides its anchor.
const (
	extraSerial uint8 = 1 << iota
	extraPort
)

// ids are an entry's identifying fields, with the device's vendor and
// product id as one number (vendor<<16 | product).
type ids struct {
	anchor  uint8
	extras  uint8
	product uint32 // vendor<<16|product, or vendor alone for anchorVendor
}

// Specificity scores: serial > port > vendor+product > vendor > classes.
const (
	scoreClasses = 1 << iota
	scoreVendor
	scoreProduct
	scorePort
	scoreSerial
)

// NewPolicy indexes entries. It keeps the slice, not a copy: the entries
// must not change afterwards (those of a Config never do). Entries that
// set no matching field, a malformed id or a class it does not know never
// match.
func NewPolicy(entries []USBEntry, opts ...PolicyOption) *Policy {
	p := &Policy{
		entries: entries,
		meta:    make([]entryMeta, len(entries)),
		seed:    maphash.MakeSeed(),
		loc:     time.Local,
	}
	for _, o := range opts {
		o(p)
	}
	setIdx := map[classSet]int32{}
	spanIdx := map[span]uint32{}
	groupIdx := map[classSet]int{}
	hashes := make([]uint64, len(entries))
	keys := 0
	for i := range entries {
		e := &entries[i]
		m := &p.meta[i]
		m.classes = -1
		id, score, ok := entryIDs(e)
		if !ok {
			continue
		}
		if classes := e.terms().Classes; len(classes) > 0 {
			var cs classSet
			for _, name := range classes {
				code, known := classCode(name)
				ok = ok && known && cs.add(code)
			}
			if !ok {
				continue
			}
			score |= scoreClasses
			si, seen := setIdx[cs]
			if !seen {
				si = int32(len(p.classSets))
				p.classSets = append(p.classSets, cs)
				setIdx[cs] = si
			}
			m.classes = si
			if id.anchor == 0 {
				gi, seen := groupIdx[cs]
				if !seen {
					gi = len(p.classOnly)
					p.classOnly = append(p.classOnly, classGroup{set: cs})
					groupIdx[cs] = gi
				}
				p.classOnly[gi].idxs = append(p.classOnly[gi].idxs, int32(i))
			}
		}
		m.anchor, m.extras, m.product, m.score, m.ok = id.anchor, id.extras, id.product, uint8(score), true
		from, until := e.Dates()
		sp := span{spanDay(from), spanDay(until)}
		si, seen := spanIdx[sp]
		if !seen {
			si = uint32(len(p.spans))
			p.spans = append(p.spans, sp)
			spanIdx[sp] = si
		}
		m.dates = si
		if id.anchor != 0 {
			p.combos[id.anchor] |= 1 << id.extras
			var serial, port uint64
			if e.Serial != nil && (id.anchor == anchorSerial || id.extras&extraSerial != 0) {
				serial = p.strHash(*e.Serial)
			}
			if id.anchor == anchorPort || id.extras&extraPort != 0 {
				port = p.strHash(e.Port)
			}
			hashes[i] = p.keyHash(id.anchor, id.extras, id.product, serial, port)
			keys++
		}
	}
	// 1.5 slots a key: 12 bytes a key, and a lookup probes about 2
	// slots for a key in the table (a key not in it stops at the filter,
	// or after about 5 slots).
	p.table = make([]slot, keys+keys/2+16)
	p.filter = newBloom(len(hashes))
	for i, h := range hashes {
		if p.meta[i].anchor == 0 || !p.meta[i].ok {
			continue
		}
		p.filter.add(h)
		j := p.home(h)
		for p.table[j].idx != 0 {
			if j++; j == len(p.table) {
				j = 0
			}
		}
		p.table[j] = slot{tag: uint32(h), idx: uint32(i) + 1}
	}
	return p
}

// home returns the slot of table where the search for hash h starts:
// h scaled to the table's size (Lemire's multiply-shift).
func (p *Policy) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(p.table)))
	return int(hi)
}

// bloom is a Bloom filter of 64-bit hashes, about 16 bits per key, with
// both probes in one 64-bit word so that a lookup reads memory once
// (about 1.5% false positives).
type bloom struct {
	words []uint64
	mask  uint64 // number of words - 1
}

func newBloom(keys int) bloom {
	n := uint64(16)
	for n*64 < uint64(keys)*16 && n < 1<<26 {
		n <<= 1
	}
	return bloom{words: make([]uint64, n), mask: n - 1}
}

// bits returns the word index and the two bits of h.
func (b *bloom) bits(h uint64) (uint64, uint64) {
	return h & b.mask, 1<<(h>>52&63) | 1<<(h>>58)
}

func (b *bloom) add(h uint64) {
	w, bits := b.bits(h)
	b.words[w] |= bits
}

func (b *bloom) has(h uint64) bool {
	w, bits := b.bits(h)
	return b.words[w]&bits == bits
}

func (p *Policy) strHash(s string) uint64 {
	if s == "" {
		return 0
	}
	return maphash.String(p.seed, s)
}

// keyHash mixes the parts of a key into the index's key. Parts that the
// key does not use are 0. Entries whose keys collide share a node; the
// groups in it still compare the exact fields.
func (p *Policy) keyHash(anchor, extras uint8, product uint32, serial, port uint64) uint64 {
	h := uint64(anchor)<<40 | uint64(extras)<<32 | uint64(product)
	h = mix(h ^ mix(serial+0x9e3779b97f4a7c15))
	return mix(h ^ mix(port+0xbf58476d1ce4e5b9))
}

// mix is the splitmix64 finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// entryIDs returns e's identifying fields and their specificity score;
// false when e sets none or has a malformed id.
func entryIDs(e *USBEntry) (ids, int, bool) {
	var id ids
	score := 0
	if e.Serial != nil {
		score |= scoreSerial
	}
	if e.Port != "" {
		score |= scorePort
	}
	switch {
	case e.VendorID != "" && e.ProductID != "":
		v, ok1 := parseID(e.VendorID)
		pr, ok2 := parseID(e.ProductID)
		if !ok1 || !ok2 {
			return id, 0, false
		}
		id.anchor, id.product = anchorProduct, uint32(v)<<16|uint32(pr)
		score |= scoreVendor | scoreProduct
	case e.VendorID != "":
		v, ok := parseID(e.VendorID)
		if !ok {
			return id, 0, false
		}
		id.anchor, id.product = anchorVendor, uint32(v)
		score |= scoreVendor
	case e.ProductID != "":
		return id, 0, false // a product id means nothing without a vendor
	case e.Serial != nil:
		id.anchor = anchorSerial
		if e.Port != "" {
			id.extras = extraPort
		}
		return id, score, true
	case e.Port != "":
		id.anchor = anchorPort
		return id, score, true
	default:
		return id, score, len(e.terms().Classes) > 0
	}
	if e.Serial != nil {
		id.extras |= extraSerial
	}
	if e.Port != "" {
		id.extras |= extraPort
	}
	return id, score, true
}

// parseID parses 4 hex digits.
func parseID(s string) (uint16, bool) {
	if len(s) != 4 {
		return 0, false
	}
	var v uint16
	for i := range 4 {
		d, ok := hexVal(s[i])
		if !ok {
			return 0, false
		}
		v = v<<4 | uint16(d)
	}
	return v, true
}

// Len returns the number of entries the policy was built from.
func (p *Policy) Len() int { return len(p.entries) }

// choice is the best candidate found so far.
type choice struct {
	idx   int32 // -1 when none
	score uint8
}

// better reports whether a candidate with score s at idx beats ch: more
// specific first, then earlier in the file.
func (ch *choice) better(s uint8, idx int32) bool {
	return ch.idx < 0 || s > ch.score || s == ch.score && idx < ch.idx
}

// device is what Decide needs of a usb.Device, computed once.
type device struct {
	d          *usb.Device
	product    uint32 // vendor<<16|product
	idsOK      bool   // vendor and product id are 4 hex digits
	serialHash uint64
	portHash   uint64
	classes    classSet
	classesOK  bool
}

// decision collects the best valid and the best out-of-date candidate.
type decision struct {
	today        int64
	valid, stale choice
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
	if d == nil || len(p.entries) == 0 {
		return Decision{Status: Unapproved}
	}
	r := decision{
		today: dayNumber(now, p.loc),
		valid: choice{idx: -1},
		stale: choice{idx: -1},
	}
	dev := device{d: d}
	v, ok1 := parseID(d.VendorID)
	pr, ok2 := parseID(d.ProductID)
	dev.idsOK = ok1 && ok2
	dev.product = uint32(v)<<16 | uint32(pr)
	if d.Serial != nil {
		dev.serialHash = p.strHash(*d.Serial)
	}
	dev.portHash = p.strHash(d.Path)
	dev.classes, dev.classesOK = deviceClasses(d)

	if dev.idsOK {
		p.probe(&r, &dev, anchorProduct, dev.product)
		p.probe(&r, &dev, anchorVendor, dev.product>>16)
	}
	p.probe(&r, &dev, anchorSerial, 0)
	p.probe(&r, &dev, anchorPort, 0)
	if dev.classesOK {
		for gi := range p.classOnly {
			g := &p.classOnly[gi]
			if !dev.classes.subsetOf(&g.set) {
				continue
			}
			for _, i := range g.idxs {
				if r.consider(p, i) {
					break // later entries of the group can only lose
				}
			}
		}
	}

	switch {
	case r.valid.idx >= 0:
		return Decision{Status: Approved, Entry: &p.entries[r.valid.idx]}
	case r.stale.idx >= 0:
		st := Expired
		if from := int64(p.spans[p.meta[r.stale.idx].dates].from); from != 0 && r.today < from {
			st = NotYetValid
		}
		return Decision{Status: st, Entry: &p.entries[r.stale.idx]}
	}
	return Decision{Status: Unapproved}
}

// probe looks up the device under one anchor with each combination of
// extras that the table holds.
func (p *Policy) probe(r *decision, dev *device, anchor uint8, product uint32) {
	combos := p.combos[anchor]
	for extras := range extraSerial | extraPort + 1 {
		if combos&(1<<extras) == 0 {
			continue
		}
		var serial, port uint64
		if anchor == anchorSerial || extras&extraSerial != 0 {
			if dev.d.Serial == nil {
				continue
			}
			serial = dev.serialHash
		}
		if anchor == anchorPort || extras&extraPort != 0 {
			port = dev.portHash
		}
		h := p.keyHash(anchor, extras, product, serial, port)
		if !p.filter.has(h) {
			continue
		}
		tag := uint32(h)
		for j := p.home(h); p.table[j].idx != 0; {
			s := p.table[j]
			if j++; j == len(p.table) {
				j = 0
			}
			if s.tag != tag {
				continue
			}
			i := int32(s.idx - 1)
			if m := &p.meta[i]; m.anchor == anchor && m.extras == extras && p.matches(i, dev) {
				r.consider(p, i)
			}
		}
	}
}

// consider weighs entry i, which matches the device; it reports whether
// the entry is valid today.
func (r *decision) consider(p *Policy, i int32) bool {
	m := &p.meta[i]
	if sp := p.spans[m.dates]; inDates(int64(sp.from), int64(sp.until), r.today) {
		if r.valid.better(m.score, i) {
			r.valid = choice{idx: i, score: m.score}
		}
		return true
	}
	if r.stale.better(m.score, i) {
		r.stale = choice{idx: i, score: m.score}
	}
	return false
}

// matches checks every field entry i sets against the device.
func (p *Policy) matches(i int32, dev *device) bool {
	m := &p.meta[i]
	e := &p.entries[i]
	d := dev.d
	switch m.anchor {
	case anchorProduct:
		if !dev.idsOK || dev.product != m.product {
			return false
		}
	case anchorVendor:
		if !dev.idsOK || dev.product>>16 != m.product {
			return false
		}
	}
	if (m.anchor == anchorSerial || m.extras&extraSerial != 0) && (d.Serial == nil || *e.Serial != *d.Serial) {
		return false
	}
	if (m.anchor == anchorPort || m.extras&extraPort != 0) && e.Port != d.Path {
		return false
	}
	return m.classes < 0 || dev.classesOK && dev.classes.subsetOf(&p.classSets[m.classes])
}

// dayNumber returns the day of t in the time zone loc as YYYYMMDD, the
// form dateNumber gives dates in.
func dayNumber(t time.Time, loc *time.Location) int64 {
	y, m, d := t.In(loc).Date()
	return int64(y)*10000 + int64(m)*100 + int64(d)
}

// spanDay returns dateNumber(d) as an int32, years beyond ±200,000
// clamped (they order the same against any day a clock gives).
func spanDay(d *Date) int32 {
	n := dateNumber(d)
	switch {
	case n > math.MaxInt32:
		return math.MaxInt32
	case n < math.MinInt32:
		return math.MinInt32
	}
	return int32(n)
}

// dateNumber returns d as YYYYMMDD, 0 for nil (an open bound).
func dateNumber(d *Date) int64 {
	if d == nil {
		return 0
	}
	return d.ordinal()
}

// inDates reports whether day lies within from and until, inclusive
// (all YYYYMMDD; 0 is an open bound).
func inDates(from, until, day int64) bool {
	return (from == 0 || from <= day) && (until == 0 || day <= until)
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
