package config

import (
	"hash/maphash"
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
// once, so that Decide finds candidates by hashed lookups on vendor and
// product id, serial and port instead of scanning the list: the cost of
// a decision does not grow with the number of entries, only with the
// number of entries that share the device's exact identifiers and with
// the number of distinct class sets among entries that set only classes.
// A Policy is immutable and safe for concurrent use.
type Policy struct {
	entries []USBEntry
	seed    maphash.Seed
	// index holds a node per key (anchor and extras), by keyHash.
	index map[uint64]*node
	// filter is a Bloom filter of the keys in index. It is small enough
	// to stay in the CPU's cache, so that most lookups of a device that
	// is not in the list never touch the index itself.
	filter bloom
	// combos[anchor] has bit 1<<extras set for every combination of
	// anchor and extras in index.
	combos [anchorPort + 1]uint8
	// classOnly holds the entries that set only classes.
	classOnly bucket
	loc       *time.Location
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

// node is an index slot: the entries whose identifying fields are
// exactly one key.
type node struct {
	bucket
}

// bucket holds entries grouped by exact key and class set. The first
// group is kept inline, so that the usual lookup (one group, one entry)
// reads one piece of memory after the index.
type bucket struct {
	n     int // number of groups
	first group
	rest  []group
}

// group returns the i'th group.
func (b *bucket) group(i int) *group {
	if i == 0 {
		return &b.first
	}
	return &b.rest[i-1]
}

// add appends g and returns its number.
func (b *bucket) add(g group) int {
	if b.n == 0 {
		b.first = g
	} else {
		b.rest = append(b.rest, g)
	}
	b.n++
	return b.n - 1
}

// group is entries that match exactly the same devices: the same
// identifying fields and classes. They differ only in their dates (and
// informational fields), so the first valid one in file order stands for
// the group.
type group struct {
	ids      ids
	classes  classSet
	anyClass bool // the entries set no classes
	score    int
	// first and rest are the entries, in file order.
	first candidate
	rest  []candidate
	n     int
}

// add appends c.
func (g *group) add(c candidate) {
	if g.n == 0 {
		g.first = c
	} else {
		g.rest = append(g.rest, c)
	}
	g.n++
}

// ids are an entry's identifying fields, with the device's vendor and
// product id as one number (vendor<<16 | product).
type ids struct {
	anchor  uint8
	extras  uint8
	product uint32 // vendor<<16|product, or vendor alone for anchorVendor
	serial  istr
	port    istr
}

// istrMax is the longest string istr keeps inline.
const istrMax = 30

// istr is a string that, when short (as serial numbers and bus paths
// are), is also kept inline, so that comparing it reads no memory beyond
// the group that holds it.
type istr struct {
	n uint8 // length when inline, 0xff when not
	b [istrMax]byte
	s string
}

func newIstr(s string) istr {
	k := istr{n: 0xff, s: s}
	if len(s) <= istrMax {
		k.n = uint8(len(s))
		copy(k.b[:], s)
	}
	return k
}

func (k *istr) equal(s string) bool {
	if k.n != 0xff {
		return len(s) == int(k.n) && string(k.b[:k.n]) == s
	}
	return k.s == s
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
// matching field, a malformed id or a class it does not know never match.
func NewPolicy(entries []USBEntry, opts ...PolicyOption) *Policy {
	p := &Policy{
		entries: slices.Clone(entries),
		seed:    maphash.MakeSeed(),
		index:   make(map[uint64]*node, len(entries)),
		loc:     time.Local,
	}
	for _, o := range opts {
		o(p)
	}
	type groupKey struct {
		ids      ids
		classes  classSet
		anyClass bool
	}
	type groupRef struct {
		b *bucket
		i int
	}
	where := make(map[groupKey]groupRef, len(entries))
	for i := range p.entries {
		e := &p.entries[i]
		id, score, ok := entryIDs(e)
		if !ok {
			continue
		}
		gk := groupKey{ids: id, anyClass: len(e.Classes) == 0}
		if !gk.anyClass {
			for _, name := range e.Classes {
				code, known := classCode(name)
				ok = ok && known && gk.classes.add(code)
			}
			if !ok {
				continue
			}
			score |= scoreClasses
		}
		ref, ok := where[gk]
		if !ok {
			ref.b = &p.classOnly
			if id.anchor != 0 {
				ref.b = &p.nodeFor(id).bucket
			}
			ref.i = ref.b.add(group{ids: id, classes: gk.classes, anyClass: gk.anyClass, score: score})
			where[gk] = ref
		}
		c := candidate{idx: int32(i)}
		if e.ValidFrom != nil {
			c.from = e.ValidFrom.ordinal()
		}
		if e.ValidUntil != nil {
			c.until = e.ValidUntil.ordinal()
		}
		ref.b.group(ref.i).add(c)
	}
	p.filter = newBloom(len(p.index))
	for h := range p.index {
		p.filter.add(h)
	}
	return p
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

// nodeFor returns the index node for id, creating it.
func (p *Policy) nodeFor(id ids) *node {
	p.combos[id.anchor] |= 1 << id.extras
	h := p.keyHash(id.anchor, id.extras, id.product, p.strHash(id.serial.s), p.strHash(id.port.s))
	n := p.index[h]
	if n == nil {
		n = &node{}
		p.index[h] = n
	}
	return n
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
		id.anchor, id.serial = anchorSerial, newIstr(*e.Serial)
		if e.Port != "" {
			id.extras, id.port = extraPort, newIstr(e.Port)
		}
		return id, score, true
	case e.Port != "":
		id.anchor, id.port = anchorPort, newIstr(e.Port)
		return id, score, true
	default:
		return id, score, len(e.Classes) > 0
	}
	if e.Serial != nil {
		id.extras |= extraSerial
		id.serial = newIstr(*e.Serial)
	}
	if e.Port != "" {
		id.extras |= extraPort
		id.port = newIstr(e.Port)
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
	score int
	c     candidate
}

// better reports whether a candidate with score s at idx beats ch: more
// specific first, then earlier in the file.
func (ch *choice) better(s int, idx int32) bool {
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
	y, m, day := now.In(p.loc).Date()
	r := decision{
		today: int64(y)*10000 + int64(m)*100 + int64(day),
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
	r.consider(&p.classOnly, &dev)

	switch {
	case r.valid.idx >= 0:
		return Decision{Status: Approved, Entry: &p.entries[r.valid.idx]}
	case r.stale.idx >= 0:
		st := Expired
		if r.stale.c.from != 0 && r.today < r.stale.c.from {
			st = NotYetValid
		}
		return Decision{Status: st, Entry: &p.entries[r.stale.idx]}
	}
	return Decision{Status: Unapproved}
}

// probe looks up the device under one anchor with each combination of
// extras that the index holds.
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
		if n := p.index[h]; n != nil {
			r.consider(&n.bucket, dev)
		}
	}
}

// consider checks each group of b against the device in full and keeps
// the best candidates.
func (r *decision) consider(b *bucket, dev *device) {
	for gi := range b.n {
		g := b.group(gi)
		if !g.matches(dev) {
			continue
		}
		for i := range g.n {
			c := &g.first
			if i > 0 {
				c = &g.rest[i-1]
			}
			if c.validOn(r.today) {
				if r.valid.better(g.score, c.idx) {
					r.valid = choice{idx: c.idx, score: g.score, c: *c}
				}
				break // later entries of the group can only lose
			}
			if r.stale.better(g.score, c.idx) {
				r.stale = choice{idx: c.idx, score: g.score, c: *c}
			}
		}
	}
}

// matches checks every field the group's entries set.
func (g *group) matches(dev *device) bool {
	d := dev.d
	switch g.ids.anchor {
	case anchorProduct:
		if !dev.idsOK || dev.product != g.ids.product {
			return false
		}
	case anchorVendor:
		if !dev.idsOK || dev.product>>16 != g.ids.product {
			return false
		}
	}
	if (g.ids.anchor == anchorSerial || g.ids.extras&extraSerial != 0) && (d.Serial == nil || !g.ids.serial.equal(*d.Serial)) {
		return false
	}
	if (g.ids.anchor == anchorPort || g.ids.extras&extraPort != 0) && !g.ids.port.equal(d.Path) {
		return false
	}
	return g.anyClass || dev.classesOK && dev.classes.subsetOf(&g.classes)
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
