package config

import (
	"fmt"
	"hash"
	"hash/maphash"
	"slices"
	"strings"
)

// loadState is what one Load shares between the config file and its
// ledgers: the entries read so far, their names and matching fields (to
// refuse duplicates), and the values entries share.
type loadState struct {
	open    ledgerOpener
	entries []USBEntry
	tooMany bool
	// files are the files read so far, for entryRef.
	files []string
	names map[string]entryRef
	// matchers maps the hash of an entry's matching fields to the index
	// of the first entry with them; collided holds the further entries
	// of a hash when different fields share it.
	seed     maphash.Seed
	matchers map[uint64]int32
	collided map[uint64][]int32
	// Shared values, so that 100,000 entries naming the same owner or
	// date hold one copy of it.
	strs    map[string]string
	dates   map[Date]*Date
	classes map[string][]string
	// allTerms maps the fields of an EntryTerms, with its classes and
	// dates already shared, to the EntryTerms entries share.
	allTerms map[termsKey]*EntryTerms
	serials  []string // slab the Serial pointers point into
	arena    arena    // the bytes of names and serials
	// ledgerAt is where each ledger is named in the config file.
	ledgerAt []val
	// yamlItems makes every approved.usb item read with yaml.v3 (tests
	// compare it with fastRaw).
	yamlItems bool
	// wholeDoc makes the file read as one document, never split (tests
	// compare it with the split reading).
	wholeDoc bool
}

// entryRef is where an entry was read: a file of loadState.files, a line.
type entryRef struct {
	file int32
	line int32
}

func newLoadState(open ledgerOpener) *loadState {
	st := &loadState{open: open, seed: maphash.MakeSeed()}
	st.reset()
	return st
}

// reset forgets every entry.
func (st *loadState) reset() {
	st.entries, st.tooMany, st.files = nil, false, nil
	st.names = map[string]entryRef{}
	st.matchers = map[uint64]int32{}
	st.collided = nil
	st.strs = map[string]string{}
	st.dates = map[Date]*Date{}
	st.classes = map[string][]string{}
	st.allTerms = map[termsKey]*EntryTerms{}
	st.serials = nil
	st.arena = arena{}
}

// arena copies strings into large shared buffers, so that 100,000 short
// names are a few dense allocations instead of 100,000 scattered ones
// (which the garbage of parsing would otherwise keep apart).
type arena struct {
	b strings.Builder
}

// arenaChunk is the size of an arena buffer, in bytes.
const arenaChunk = 64 << 10

// clone returns a copy of s in the arena. A strings.Builder never
// changes bytes once written, and within its capacity it never moves
// them, so substrings of its String stay valid.
func (a *arena) clone(s string) string {
	if len(s) > arenaChunk/8 {
		return strings.Clone(s)
	}
	if a.b.Cap()-a.b.Len() < len(s) {
		a.b = strings.Builder{}
		a.b.Grow(arenaChunk)
	}
	start := a.b.Len()
	a.b.WriteString(s)
	return a.b.String()[start:]
}

// grow makes room for n more entries.
func (st *loadState) grow(n int) {
	n = min(n, MaxApprovedUSB-len(st.entries))
	if n > 0 {
		st.entries = slices.Grow(st.entries, n)
	}
}

// parseConfig parses the config file itself.
func (st *loadState) parseConfig(file string, data []byte) (*Config, ErrorList) {
	p := &parser{file: file, st: st}
	cfg := p.parse(data)
	if len(p.errs) > 0 {
		p.sortErrors()
		return nil, p.errs
	}
	cfg.Approved.USB = st.entries
	return cfg, nil
}

// readLedgers reads the ledgers cfg names, in order, adding their rows to
// cfg.Approved.USB, their names to cfg.Files and their bytes to h.
func (st *loadState) readLedgers(cfg *Config, h hash.Hash) ErrorList {
	var errs, ledgerErrs ErrorList
	for i, path := range cfg.Approved.USBLedgers {
		at := st.ledgerAt[i]
		lerrs, err := st.readLedger(path, cfg.Approved.USBLedgerEncoding, h)
		if err != nil {
			errs = append(errs, &Error{File: cfg.File, Line: at.line, Column: at.col, Msg: fmt.Sprintf("%s: %v", at.s, err)})
			continue
		}
		cfg.Files = append(cfg.Files, path)
		ledgerErrs = append(ledgerErrs, lerrs...)
	}
	cfg.Approved.USB = slices.Clip(st.entries)
	return append(errs, ledgerErrs...)
}

// ref returns the entryRef of line in file.
func (st *loadState) ref(file string, line int) entryRef {
	i := slices.Index(st.files, file)
	if i < 0 {
		i = len(st.files)
		st.files = append(st.files, file)
	}
	return entryRef{file: int32(i), line: int32(min(line, 1<<31-1))}
}

// where names r for a message about file cur: "line 12", or "line 12 of
// other.csv".
func (st *loadState) where(cur string, r entryRef) string {
	if f := st.files[r.file]; f != cur {
		return fmt.Sprintf("line %d of %s", r.line, f)
	}
	return fmt.Sprintf("line %d", r.line)
}

// intern returns s, sharing the copy of an equal string read before.
func (st *loadState) intern(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := st.strs[s]; ok {
		return c
	}
	c := st.arena.clone(s)
	st.strs[c] = c
	return c
}

// serial returns a pointer to a copy of s, kept in a slab with others.
func (st *loadState) serial(s string) *string {
	if len(st.serials) == cap(st.serials) {
		st.serials = make([]string, 0, 1024)
	}
	st.serials = append(st.serials, st.arena.clone(s))
	return &st.serials[len(st.serials)-1]
}

// date returns a pointer to d shared by every entry with that day.
func (st *loadState) date(d Date) *Date {
	if p, ok := st.dates[d]; ok {
		return p
	}
	p := &d
	st.dates[d] = p
	return p
}

// termsKey identifies an EntryTerms whose classes (by classList) and
// dates (by date) are already shared: equal lists and days are the same
// pointers.
type termsKey struct {
	classes           *string
	owner, approvedBy string
	from, until       *Date
	encryption        bool
}

// terms returns an EntryTerms equal to *t shared by every entry with the
// same terms, or nil when t is zero. Its classes and dates must come from
// classList and date; its strings may be transient (they are copied).
func (st *loadState) terms(t *EntryTerms) *EntryTerms {
	if t.Classes == nil && t.Owner == "" && t.ApprovedBy == "" && t.ValidFrom == nil && t.ValidUntil == nil && !t.RequireEncryption {
		return nil
	}
	k := termsKey{owner: t.Owner, approvedBy: t.ApprovedBy, from: t.ValidFrom, until: t.ValidUntil, encryption: t.RequireEncryption}
	if len(t.Classes) > 0 {
		k.classes = &t.Classes[0]
	}
	if p, ok := st.allTerms[k]; ok {
		return p
	}
	c := *t
	c.Owner, c.ApprovedBy = st.intern(t.Owner), st.intern(t.ApprovedBy)
	k.owner, k.approvedBy = c.Owner, c.ApprovedBy
	st.allTerms[k] = &c
	return &c
}

// classList returns names, sharing an equal list read before.
func (st *loadState) classList(names []string) []string {
	key := strings.Join(names, ",")
	if l, ok := st.classes[key]; ok {
		return l
	}
	l := slices.Clip(slices.Clone(names))
	st.classes[key] = l
	return l
}

// matcher registers e's matching fields as those of entry idx, or
// returns the index of the earlier entry with the same ones.
func (st *loadState) matcher(e *USBEntry, idx int) (int, bool) {
	var h maphash.Hash
	h.SetSeed(st.seed)
	h.WriteString(e.VendorID)
	h.WriteByte(0)
	h.WriteString(e.ProductID)
	h.WriteByte(0)
	if e.Serial != nil {
		h.WriteByte(1)
		h.WriteString(*e.Serial)
	}
	h.WriteByte(0)
	h.WriteString(e.Port)
	h.WriteByte(0)
	cs := classSetOf(e.terms().Classes)
	for _, w := range cs {
		for range 8 {
			h.WriteByte(byte(w))
			w >>= 8
		}
	}
	sum := h.Sum64()
	first, ok := st.matchers[sum]
	if !ok {
		st.matchers[sum] = int32(idx)
		return 0, false
	}
	if sameMatcher(&st.entries[first], e) {
		return int(first), true
	}
	for _, j := range st.collided[sum] {
		if sameMatcher(&st.entries[j], e) {
			return int(j), true
		}
	}
	if st.collided == nil {
		st.collided = map[uint64][]int32{}
	}
	st.collided[sum] = append(st.collided[sum], int32(idx))
	return 0, false
}

// sameMatcher reports whether a and b match exactly the same devices by
// their fields (the same ids, serial, port and set of classes).
func sameMatcher(a, b *USBEntry) bool {
	return a.VendorID == b.VendorID && a.ProductID == b.ProductID && a.Port == b.Port &&
		(a.Serial == nil) == (b.Serial == nil) && (a.Serial == nil || *a.Serial == *b.Serial) &&
		classSetOf(a.terms().Classes) == classSetOf(b.terms().Classes)
}

// classSetOf returns the set of codes of class names (unknown names are
// left out).
func classSetOf(names []string) classSet {
	var s classSet
	for _, n := range names {
		if code, ok := classCode(n); ok {
			s.add(code)
		}
	}
	return s
}
