package config

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/collector/usb"
)

// dev builds a device at bus path path with the given interface classes.
func dev(path, vid, pid string, serial *string, classes ...string) *usb.Device {
	d := &usb.Device{Path: path, VendorID: vid, ProductID: pid, Serial: serial, Class: "00"}
	for i, c := range classes {
		d.Interfaces = append(d.Interfaces, usb.Interface{Number: i, Class: c})
	}
	return d
}

func date(s string) *Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return &d
}

func TestDecide(t *testing.T) {
	jst := time.FixedZone("JST", 9*3600)
	entries := []USBEntry{
		0: {Name: "hid", Terms: &EntryTerms{Classes: []string{"hid"}}},
		1: {Name: "stick", VendorID: "0951", ProductID: "1666", Serial: ptr("001A4D5F1B2C"),
			Terms: &EntryTerms{ValidFrom: date("2026-04-01"), ValidUntil: date("2027-03-31"), RequireEncryption: true}},
		2:  {Name: "printer on 1-2", VendorID: "04f9", ProductID: "2042", Port: "1-2"},
		3:  {Name: "any sandisk cruzer", VendorID: "0781", ProductID: "5567"},
		4:  {Name: "sandisk cruzer 42", VendorID: "0781", ProductID: "5567", Serial: ptr("42")},
		5:  {Name: "logitech webcams", VendorID: "046d", Terms: &EntryTerms{Classes: []string{"video", "audio"}}},
		6:  {Name: "logitech anything", VendorID: "046d"},
		7:  {Name: "old badge reader", VendorID: "072f", ProductID: "2200", Terms: &EntryTerms{ValidUntil: date("2025-12-31")}},
		8:  {Name: "renewed badge reader", VendorID: "072f", ProductID: "2200", Terms: &EntryTerms{ValidFrom: date("2026-01-01")}},
		9:  {Name: "serial only", Serial: ptr("SN-ONLY")},
		10: {Name: "port only 3-1.4", Port: "3-1.4"},
		11: {Name: "future tablet", VendorID: "1234", ProductID: "5678", Terms: &EntryTerms{ValidFrom: date("2027-01-01")}},
		12: {Name: "expired tablet", VendorID: "1234", ProductID: "5678", Terms: &EntryTerms{ValidUntil: date("2026-01-31")}},
		13: {Name: "hub class", Terms: &EntryTerms{Classes: []string{"hub"}}},
		14: {Name: "first duplicate", VendorID: "abcd", ProductID: "0001"},
		15: {Name: "second duplicate", VendorID: "ABCD", ProductID: "0001"},
		16: {Name: "expired serial", VendorID: "0781", ProductID: "5567", Serial: ptr("43"), Terms: &EntryTerms{ValidUntil: date("2026-01-01")}},
		17: {Name: "unknown class", Terms: &EntryTerms{Classes: []string{"nonsense"}}},
		18: {Name: "matches nothing"},
		19: {Name: "mass storage of vendor 0bda", VendorID: "0bda", Terms: &EntryTerms{Classes: []string{"mass-storage"}}},
	}
	p := NewPolicy(entries, WithLocation(jst))
	if p.Len() != len(entries) {
		t.Errorf("Len = %d", p.Len())
	}
	day := func(s string) time.Time {
		t, err := time.ParseInLocation("2006-01-02 15:04", s, jst)
		if err != nil {
			panic(err)
		}
		return t
	}
	now := day("2026-06-01 12:00")
	tests := []struct {
		name  string
		d     *usb.Device
		now   time.Time
		want  Status
		entry int // -1 for none
	}{
		{"serial match", dev("1-4", "0951", "1666", ptr("001A4D5F1B2C"), "08"), now, Approved, 1},
		{"same ids other serial", dev("1-4", "0951", "1666", ptr("001A4D5F1B2D"), "08"), now, Unapproved, -1},
		{"same ids no serial", dev("1-4", "0951", "1666", nil, "08"), now, Unapproved, -1},
		{"serial is case-sensitive", dev("1-4", "0951", "1666", ptr("001a4d5f1b2c"), "08"), now, Unapproved, -1},
		{"valid_until is inclusive", dev("1-4", "0951", "1666", ptr("001A4D5F1B2C")), day("2027-03-31 23:59"), Approved, 1},
		{"expired the day after", dev("1-4", "0951", "1666", ptr("001A4D5F1B2C")), day("2027-04-01 00:00"), Expired, 1},
		{"valid_from is inclusive", dev("1-4", "0951", "1666", ptr("001A4D5F1B2C")), day("2026-04-01 00:00"), Approved, 1},
		{"not yet valid the day before", dev("1-4", "0951", "1666", ptr("001A4D5F1B2C")), day("2026-03-31 23:59"), NotYetValid, 1},
		{"dates are days in the policy's zone", dev("1-4", "0951", "1666", ptr("001A4D5F1B2C")),
			time.Date(2027, 3, 31, 15, 30, 0, 0, time.UTC), Expired, 1}, // 2027-04-01 00:30 JST
		{"vid/pid only", dev("2-1", "0781", "5567", ptr("anything")), now, Approved, 3},
		{"vid/pid only, no serial", dev("2-1", "0781", "5567", nil), now, Approved, 3},
		{"most specific wins: serial over vid/pid", dev("2-1", "0781", "5567", ptr("42")), now, Approved, 4},
		{"approved beats expired when both match", dev("2-1", "0781", "5567", ptr("43")), now, Approved, 3},
		{"port match for serial-less device", dev("1-2", "04f9", "2042", nil, "07"), now, Approved, 2},
		{"port mismatch", dev("1-3", "04f9", "2042", nil, "07"), now, Unapproved, -1},
		{"port only", dev("3-1.4", "dead", "beef", nil, "ff"), now, Approved, 10},
		{"port only, other port", dev("3-1.5", "dead", "beef", nil, "ff"), now, Unapproved, -1},
		{"serial only", dev("3-1", "dead", "beef", ptr("SN-ONLY"), "ff"), now, Approved, 9},
		{"keyboard", dev("1-5", "413c", "2113", nil, "03", "03"), now, Approved, 0},
		{"composite keyboard with storage fails [hid]", dev("1-5", "413c", "2113", nil, "03", "08"), now, Unapproved, -1},
		{"device without interfaces uses its class", &usb.Device{Path: "1-6", VendorID: "1111", ProductID: "2222", Class: "03"}, now, Approved, 0},
		{"device without interfaces, other class", &usb.Device{Path: "1-6", VendorID: "1111", ProductID: "2222", Class: "08"}, now, Unapproved, -1},
		{"malformed class matches no class entry", dev("1-6", "1111", "2222", nil, "zz"), now, Unapproved, -1},
		{"external hub", &usb.Device{Path: "1-1", VendorID: "05e3", ProductID: "0610", Class: "09", Interfaces: []usb.Interface{{Class: "09"}}}, now, Approved, 13},
		{"webcam: vendor+classes beats vendor", dev("1-7", "046d", "0825", ptr("X"), "0e", "0e", "01", "01"), now, Approved, 5},
		{"vendor entry for other logitech devices", dev("1-7", "046d", "c52b", nil, "03", "03", "03"), now, Approved, 6},
		{"vendor+classes: storage of 0bda", dev("1-8", "0bda", "0129", nil, "08"), now, Approved, 19},
		{"vendor+classes: other class of 0bda", dev("1-8", "0bda", "0129", nil, "ff"), now, Unapproved, -1},
		{"renewal: new entry valid", dev("1-9", "072f", "2200", nil, "0b"), now, Approved, 8},
		{"renewal: old entry valid before", dev("1-9", "072f", "2200", nil, "0b"), day("2025-12-31 10:00"), Approved, 7},
		{"not yet valid vs expired: same specificity, earlier wins", dev("1-9", "1234", "5678", nil), now, NotYetValid, 11},
		{"upper-case ids in entries match; earlier duplicate wins", dev("1-9", "abcd", "0001", nil, "ff"), now, Approved, 14},
		{"unknown vendor", dev("1-9", "ffff", "ffff", ptr("1"), "ff"), now, Unapproved, -1},
		{"nil device", nil, now, Unapproved, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Decide(tt.d, tt.now)
			var want *USBEntry
			if tt.entry >= 0 {
				want = &p.entries[tt.entry]
			}
			if got.Status != tt.want || got.Entry != want {
				gotName := "<nil>"
				if got.Entry != nil {
					gotName = got.Entry.Name
				}
				wantName := "<nil>"
				if want != nil {
					wantName = want.Name
				}
				t.Errorf("got %v by %q, want %v by %q", got.Status, gotName, tt.want, wantName)
			}
		})
	}
	// The policy keeps its own copy.
	entries[3].ProductID = "0000"
	if got := p.Decide(dev("2-1", "0781", "5567", nil), now); got.Status != Approved || got.Entry.Name != "any sandisk cruzer" {
		t.Errorf("policy changed with its input: %+v", got)
	}
}

func TestDecideEmptyPolicy(t *testing.T) {
	for _, p := range []*Policy{NewPolicy(nil), NewPolicy([]USBEntry{{Name: "no fields"}})} {
		if got := p.Decide(dev("1-1", "0951", "1666", ptr("x"), "03"), time.Now()); got.Status != Unapproved || got.Entry != nil {
			t.Errorf("got %+v", got)
		}
	}
}

func TestDecideDefaultLocation(t *testing.T) {
	p := NewPolicy([]USBEntry{{Name: "a", Port: "1-1", Terms: &EntryTerms{ValidUntil: date("2026-01-01")}}})
	local := time.Date(2026, 1, 1, 23, 59, 0, 0, time.Local)
	if got := p.Decide(dev("1-1", "1", "2", nil), local); got.Status != Approved {
		t.Errorf("last minute of the day, local time: %v", got.Status)
	}
	if got := p.Decide(dev("1-1", "1", "2", nil), local.Add(time.Minute)); got.Status != Expired {
		t.Errorf("next day, local time: %v", got.Status)
	}
}

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{Approved: "approved", Expired: "expired", NotYetValid: "not_yet_valid", Unapproved: "unapproved"} {
		if s.String() != want {
			t.Errorf("%d: %q", s, s.String())
		}
	}
}

// TestPolicyFromConfig runs the example file through the policy.
func TestPolicyFromConfig(t *testing.T) {
	cfg, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := NewPolicy(cfg.Approved.USB)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.Local)
	for _, tt := range []struct {
		d    *usb.Device
		want string
	}{
		{dev("1-4", "0951", "1666", ptr("001A4D5F1B2C"), "08"), "Encrypted stick issued to the work lead"},
		{dev("1-2", "04f9", "2042", nil, "07"), "Label printer at the front desk (no serial number)"},
		{dev("1-3", "046d", "0825", nil, "0e", "01"), "Webcams of one vendor for video calls"},
		{dev("1-5", "413c", "2113", nil, "03"), "Keyboards and mice"},
		{dev("1-5", "413c", "2113", nil, "03", "08"), ""},
	} {
		got := p.Decide(tt.d, now)
		name := ""
		if got.Entry != nil {
			name = got.Entry.Name
		}
		if name != tt.want {
			t.Errorf("%s %s:%s: got %q (%v), want %q", tt.d.Path, tt.d.VendorID, tt.d.ProductID, name, got.Status, tt.want)
		}
	}
}

// benchEntries returns n approved entries of the kinds a large list
// holds, and devices to look up (matching and not).
func benchEntries(n int) ([]USBEntry, []*usb.Device) {
	r := rand.New(rand.NewPCG(1, 2))
	classSets := [][]string{{"hid"}, {"audio"}, {"video", "audio"}, {"printer"}, {"smart-card"}, {"hid", "audio"}}
	var entries []USBEntry
	var devs []*usb.Device
	hex4 := func() string { return fmt.Sprintf("%04x", r.IntN(0x10000)) }
	for i := range n {
		e := USBEntry{Name: fmt.Sprintf("entry %d", i), Terms: &EntryTerms{ValidFrom: date("2026-01-01"), ValidUntil: date("2027-12-31")}}
		var d *usb.Device
		switch k := i % 20; {
		case k < 12: // issued sticks: vendor, product, serial
			e.VendorID, e.ProductID, e.Serial = hex4(), hex4(), ptr(fmt.Sprintf("SN%010d", i))
			d = dev("1-4", e.VendorID, e.ProductID, e.Serial, "08")
		case k < 15: // device models
			e.VendorID, e.ProductID = hex4(), hex4()
			d = dev("1-5", e.VendorID, e.ProductID, ptr("x"), "03")
		case k < 16: // serial only
			e.Serial = ptr(fmt.Sprintf("S%d", i))
			d = dev("1-6", hex4(), hex4(), e.Serial, "ff")
		case k < 18: // serial-less devices at a port
			e.VendorID, e.ProductID, e.Port = hex4(), hex4(), fmt.Sprintf("%d-%d.%d", 1+i%8, 1+i%15, 1+i%7)
			d = dev(e.Port, e.VendorID, e.ProductID, nil, "07")
		case k < 19: // one vendor's devices of some classes
			e.VendorID, e.Terms = hex4(), &EntryTerms{Classes: classSets[i%len(classSets)], ValidFrom: e.Terms.ValidFrom, ValidUntil: e.Terms.ValidUntil}
			d = dev("1-7", e.VendorID, hex4(), nil, "01")
		default: // classes only, a few distinct sets
			e.Terms = &EntryTerms{Classes: classSets[i%len(classSets)], ValidFrom: e.Terms.ValidFrom, ValidUntil: e.Terms.ValidUntil}
			d = dev("1-8", hex4(), hex4(), nil, "0b")
		}
		entries = append(entries, e)
		devs = append(devs, d)
	}
	// Unknown devices: the common case at a PC, and the full search.
	for range n / 4 {
		devs = append(devs, dev("2-1", hex4(), hex4(), ptr(fmt.Sprintf("U%d", r.Int())), "08", "03"))
	}
	r.Shuffle(len(devs), func(i, j int) { devs[i], devs[j] = devs[j], devs[i] })
	// Copy the devices in lookup order, so that each sits in memory next
	// to the one before, as a device just read from sysfs is in cache.
	for i, d := range devs {
		c := *d
		c.Path, c.VendorID, c.ProductID = strings.Clone(d.Path), strings.Clone(d.VendorID), strings.Clone(d.ProductID)
		if d.Serial != nil {
			c.Serial = ptr(strings.Clone(*d.Serial))
		}
		c.Interfaces = slices.Clone(d.Interfaces)
		devs[i] = &c
	}
	return entries, devs
}

func BenchmarkDecide100k(b *testing.B) { benchmarkDecide(b, 100_000) }

// BenchmarkDecide1k is the baseline: the same mix with a list that fits
// in the CPU's caches.
func BenchmarkDecide1k(b *testing.B) { benchmarkDecide(b, 1_000) }

func benchmarkDecide(b *testing.B, n int) {
	entries, devs := benchEntries(n)
	p := NewPolicy(entries)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.Local)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		p.Decide(devs[i%len(devs)], now)
		i++
	}
}

func BenchmarkNewPolicy100k(b *testing.B) {
	entries, _ := benchEntries(100_000)
	b.ReportAllocs()
	for b.Loop() {
		NewPolicy(entries)
	}
}

// TestDecide100kCorrect checks the benchmark's policy decides as a plain
// scan over the entries would.
func TestDecide100kCorrect(t *testing.T) {
	n := 100_000
	if testing.Short() || raceEnabled {
		n = 5_000
	}
	entries, devs := benchEntries(n)
	p := NewPolicy(entries)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.Local)
	devs = devs[:300]
	for _, d := range devs {
		got := p.Decide(d, now)
		want := scanDecide(entries, d, now, time.Local)
		if got.Status != want.Status || (got.Entry == nil) != (want.Entry == nil) ||
			got.Entry != nil && got.Entry.Name != want.Entry.Name {
			t.Fatalf("%+v: got %v %v, want %v %v", d, got.Status, got.Entry, want.Status, want.Entry)
		}
	}
}

// scanDecide is the specification of Decide as a linear scan.
func scanDecide(entries []USBEntry, d *usb.Device, now time.Time, loc *time.Location) Decision {
	today := DateOf(now.In(loc))
	score := func(e *USBEntry) int {
		_, s, _ := entryIDs(e)
		if len(e.terms().Classes) > 0 {
			s |= scoreClasses
		}
		return s
	}
	var best, stale *USBEntry
	for i := range entries {
		e := &entries[i]
		if !e.matchesSomething() ||
			e.VendorID != "" && strings.ToLower(e.VendorID) != d.VendorID ||
			e.ProductID != "" && strings.ToLower(e.ProductID) != d.ProductID ||
			e.Serial != nil && (d.Serial == nil || *d.Serial != *e.Serial) ||
			e.Port != "" && e.Port != d.Path {
			continue
		}
		t := e.terms()
		if len(t.Classes) > 0 {
			var codes []string
			for _, in := range d.Interfaces {
				codes = append(codes, in.Class)
			}
			if len(codes) == 0 {
				codes = []string{d.Class}
			}
			ok := true
			for _, c := range codes {
				in := false
				for _, name := range t.Classes {
					ec, known := classCode(name)
					in = in || known && ec == c
				}
				ok = ok && in
			}
			// An entry with a class name it does not know matches nothing.
			for _, name := range t.Classes {
				_, known := classCode(name)
				ok = ok && known
			}
			if !ok {
				continue
			}
		}
		valid := (t.ValidFrom == nil || t.ValidFrom.Compare(today) <= 0) && (t.ValidUntil == nil || today.Compare(*t.ValidUntil) <= 0)
		if valid {
			if best == nil || score(e) > score(best) {
				best = e
			}
		} else if stale == nil || score(e) > score(stale) {
			stale = e
		}
	}
	switch {
	case best != nil:
		return Decision{Status: Approved, Entry: best}
	case stale != nil:
		if from, _ := stale.Dates(); from != nil && today.Compare(*from) < 0 {
			return Decision{Status: NotYetValid, Entry: stale}
		}
		return Decision{Status: Expired, Entry: stale}
	}
	return Decision{Status: Unapproved}
}

// FuzzDecide compares Decide with the linear scan on lists and devices
// drawn from a small alphabet, so that entries overlap and collide.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 2, 2, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte{3, 0, 0, 0, 1, 3, 2, 3, 0, 0, 0, 1, 1, 2, 2, 0, 1, 1, 2, 1, 2, 3, 4, 5, 6, 7})
	vids := []string{"", "0951", "0781", "ABCD"}
	pids := []string{"", "1666", "5567"}
	serials := []*string{nil, ptr("A"), ptr("B"), ptr(""), ptr(strings.Repeat("L", 40)), ptr(strings.Repeat("L", 41))}
	ports := []string{"", "1-1", "1-2"}
	classes := [][]string{nil, {"hid"}, {"hid", "mass-storage"}, {"video", "audio"}, {"class-ff"}, {"bogus"}}
	dates := []*Date{nil, date("2026-01-01"), date("2026-06-01"), date("2026-12-31")}
	ifaces := [][]string{{"03"}, {"03", "08"}, {"08"}, nil, {"0e", "01"}, {"ff"}, {"zz"}}
	nows := []time.Time{
		time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC),
		time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pick := func(n int) int {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return int(b) % n
		}
		d := &usb.Device{
			Path:      ports[1+pick(2)],
			VendorID:  strings.ToLower(vids[1+pick(3)]),
			ProductID: pids[1+pick(2)],
			Serial:    serials[pick(len(serials))],
			Class:     []string{"00", "03", "08", "09"}[pick(4)],
		}
		for i, c := range ifaces[pick(len(ifaces))] {
			d.Interfaces = append(d.Interfaces, usb.Interface{Number: i, Class: c})
		}
		now := nows[pick(len(nows))]
		var entries []USBEntry
		for i := 0; len(data) > 0 && i < 64; i++ {
			e := USBEntry{
				Name:     fmt.Sprintf("e%d", i),
				VendorID: vids[pick(len(vids))], Serial: serials[pick(len(serials))],
				Port: ports[pick(len(ports))], Terms: &EntryTerms{Classes: classes[pick(len(classes))],
					ValidFrom: dates[pick(len(dates))], ValidUntil: dates[pick(len(dates))]},
			}
			if e.VendorID != "" {
				e.ProductID = pids[pick(len(pids))]
			}
			entries = append(entries, e)
		}
		p := NewPolicy(entries, WithLocation(time.UTC))
		got := p.Decide(d, now)
		want := scanDecide(entries, d, now, time.UTC)
		name := func(e *USBEntry) string {
			if e == nil {
				return "<nil>"
			}
			return e.Name
		}
		if got.Status != want.Status || name(got.Entry) != name(want.Entry) {
			t.Fatalf("device %+v at %v: got %v %s, want %v %s\nentries %+v", d, now, got.Status, name(got.Entry), want.Status, name(want.Entry), entries)
		}
	})
}
