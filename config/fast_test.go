package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// fastItemHead is the document FuzzFastEntry puts an item text in.
const fastItemHead = "version: 1\napproved:\n  usb:\n"

// fastItemSeeds are item texts (as they follow fastItemHead) that the
// tests and the fuzz target start from.
var fastItemSeeds = []string{
	"    - name: stick 1\n      vendor_id: \"0951\"\n      product_id: \"1666\"\n      serial: \"SN0000000001\"\n" +
		"      owner: 委託先作業責任者\n      approved_by: 情報政策課\n      valid_from: 2026-04-01\n      valid_until: 2027-03-31\n",
	"    - name: Keyboards and mice  # any keyboard\n      classes: [hid]\n\n    # the lead's stick\n    - name: 'It''s mine'\n      vendor_id: 0951\n      product_id: 16a6\n      require_encryption: true\n",
	"    - name: \"esc \\\" \\\\ \\x41 \\u00e9 \\U0001F600 \\_ \\/\"\n      port: 1-2.3\n",
	"    - name: \"tab\\tin\"\n      port: \"1-2\"\n",
	"    - name: \"bidi \\u202e\"\n      port: \"1-2\"\n",
	"    - name: \"surrogate \\ud800\"\n      port: \"1-2\"\n",
	"    - name: a\n      classes: [ hid , class-ff,audio ]   # c\n      serial: X\n",
	"    - name: a\n      classes: [hid, null]\n",
	"    - name: a\n      classes: []\n",
	"    - name: a\n      classes: hid\n",
	"    - name: a\n      classes:\n        - hid\n",
	"    - name: null\n      port: 1-1\n",
	"    - name: ~\n      port: 1-1\n",
	"    - name:\n      port: 1-1\n",
	"    - name: a\n      name: b\n      port: 1-1\n",
	"    - name: a\n      Port: 1-1\n",
	"    - name: a\n      port: 1-1\n       bad: 1\n",
	"    - name: a\n      port: 1-1\n     bad: 1\n",
	"    - name: a b: c\n      port: 1-1\n",
	"    - name: a:b\n      port: 1-1\n",
	"    - name: a #b\n      port: 1-1#2\n",
	"    - name: multi\n        line\n      port: 1-1\n",
	"    - name: 'multi\n        line'\n      port: 1-1\n",
	"    - name: \"multi\\\n        line\"\n      port: 1-1\n",
	"    - &a name: a\n      port: 1-1\n",
	"    - name: &a a\n      port: 1-1\n",
	"    - name: !!str a\n      port: 1-1\n",
	"    - name: a\n      require_encryption: yes\n      port: 1-1\n",
	"    - name: a\n      port: 1-1\n      valid_from: 2026-02-30\n",
	"    -   name: wide\n        port: 1-1\n    -\tname: tab\n      port: 1-2\n",
	"    - name: crlf\r\n      port: 1-1\r\n",
	"    - name: a\n      vendor_id: 0x0951\n      product_id: 1e3\n",
	"    - name: '   '\n      port: 1-1\n",
	"    - name: \"\"\n      port: 1-1\n",
	"    - name: \u00a0nbsp\n      port: 1-1\n",
	"    - name: bom\ufeff\n      port: 1-1\n",
	"    - name: nel\u0085x\n      port: 1-1\n",
	"    - name: 'a' b\n      port: 1-1\n",
	"    - name: \"a\"#b\n      port: 1-1\n",
	"    - {name: flow, port: 1-1}\n",
	"    - name: a\n      port: 1-1\n# at column 0\n  # between\n    - name: b\n      port: 1-2\n",
	"    - name: <<\n      port: 1-1\n",
	"    - name: a\n      <<: {port: 1-1}\n",
	"    - name: dup\n      port: 1-1\n    - name: dup\n      port: 1-1\n",
	// The network keys after the list: where the list ends, and that they
	// read the same either way.
	"    - name: a\n      port: 1-1\n  networks:\n    - name: LAN\n      cidr: 10.20.0.0/16\n      gateway_mac: \"00:11:22:33:44:55\"\n" +
		"  lan_devices:\n    - name: printer\n      mac: 00-1B-A9-00-00-01\n      valid_from: 2026-04-01\nnetwork:\n  ignore_interfaces: [\"docker*\"]\n  watch_lan: false\n",
	"    - name: a\n      port: 1-1\n  networks:\n  - {name: Wi-Fi, ssid: city-staff}\n  lan_devices:\n  - {name: b, mac: \"01:00:5e:00:00:01\"}\nagent:\n  contact: \"\"\n",
	"    - name: a\n      port: 1-1\n  networks:\n    - name: a\n      cidr: 10.20.3.4/16\n      usb: x\n  usb:\n    - name: b\n      port: 1-2\n",
	"    - name: a\n      port: 1-1\n  lan_devices:\n    - name: a\n    mac: \"00:1b:a9:00:00:01\"\n",
}

// yamlItemRaw reads item i of split as fastItems does with yaml.v3.
func yamlItemRaw(p *parser, i int, it splitItem, r *rawEntry) (nerr int, ok bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(p.data[it.start:it.end], &doc); err != nil ||
		len(doc.Content) != 1 || doc.Content[0].Kind != yaml.SequenceNode || len(doc.Content[0].Content) != 1 {
		return 0, false
	}
	n := doc.Content[0].Content[0]
	if it.line > 1 {
		shiftLines(n, it.line-1)
	}
	if !p.plain(fmt.Sprintf("approved.usb[%d]", i), n) {
		return 0, false
	}
	return p.yamlRaw(i, n, r)
}

// checkFastItems checks, for each item of approved.usb in data, that
// fastRaw either declines or reads what yamlRaw reads with no error; and
// that the whole file parses to the same config or errors either way,
// and also when it is read as one document, never split.
// It returns how many items fastRaw read.
func checkFastItems(t *testing.T, data []byte) int {
	t.Helper()
	if !(&parser{}).checkText(data) {
		return 0
	}
	read := 0
	if split := splitApproved(data); split != nil {
		fp := &parser{file: "f.yaml", st: newLoadState(nil), data: data}
		yp := &parser{file: "f.yaml", st: newLoadState(nil), data: data}
		for i, it := range split.items {
			var fr, yr rawEntry
			if !fp.fastRaw(i, it, &fr) {
				continue
			}
			read++
			fr.classes = slices.Clone(fr.classes)
			yp.errs = nil
			nerr, ok := yamlItemRaw(yp, i, it, &yr)
			if !ok || len(yp.errs) > 0 {
				t.Fatalf("item %d %q: fastRaw read %+v; yaml.v3 (ok %v): %v", i, data[it.start:it.end], fr, ok, yp.errs)
			}
			if nerr != 0 || !reflect.DeepEqual(fr, yr) {
				t.Fatalf("item %d %q:\nfastRaw %+v\nyaml.v3 %+v", i, data[it.start:it.end], fr, yr)
			}
		}
	}
	fast, ferrs := newLoadState(nil).parseConfig("f.yaml", data)
	slow := newLoadState(nil)
	slow.yamlItems = true
	want, werrs := slow.parseConfig("f.yaml", data)
	if !reflect.DeepEqual(fast, want) || ferrs.Error() != werrs.Error() {
		t.Fatalf("%q:\nfast %+v\n%v\nyaml.v3 %+v\n%v", data, fast, ferrs, want, werrs)
	}
	whole := newLoadState(nil)
	whole.wholeDoc = true
	if want, werrs := whole.parseConfig("f.yaml", data); !reflect.DeepEqual(fast, want) || ferrs.Error() != werrs.Error() {
		t.Fatalf("%q:\nsplit %+v\n%v\nwhole document %+v\n%v", data, fast, ferrs, want, werrs)
	}
	return read
}

func TestFastEntry(t *testing.T) {
	for _, s := range fastItemSeeds {
		checkFastItems(t, []byte(fastItemHead+s))
	}
	// The items fastRaw is for must not fall back.
	for _, tt := range []struct {
		item string
		n    int
	}{
		{fastItemSeeds[0], 1},
		{fastItemSeeds[1], 2},
		{fastItemSeeds[2], 0}, // \/ is not an escape in yaml.v3
		{strings.ReplaceAll(fastItemSeeds[2], ` \/`, ""), 1},
		{fastItemSeeds[3], 0}, // a tab is an error: yaml.v3 tells it
		{fastItemSeeds[6], 1},
		{"    -   name: wide\n        port: 1-1\n", 1},
		{"    - name: crlf\r\n      port: 1-1\r\n", 1},
		{"    - name: a #b\n      port: 1-1#2\n", 1},
		{"    - name: a:b\n      vendor_id: 0x0951\n      product_id: 1e3\n", 1},
		{"    - name: '   '\n      port: 1-1\n    - name: \"\"\n      port: 1-1\n", 2},
		{"    - name: a\n      port: 1-1\n# at column 0\n  # between\n    - name: b\n      port: 1-2\n", 2},
		{"    - name: dup\n      port: 1-1\n    - name: dup\n      port: 1-1\n", 2},
		{"    - name: a\n      require_encryption: yes\n      port: 1-1\n      valid_from: 2026-02-30\n", 1},
	} {
		if got := checkFastItems(t, []byte(fastItemHead+tt.item)); got != tt.n {
			t.Errorf("%q: fastRaw read %d items, want %d", tt.item, got, tt.n)
		}
	}
	data := bigConfig(1000)
	if got := checkFastItems(t, data); got != 1000 {
		t.Errorf("bigConfig: fastRaw read %d of 1000 items", got)
	}
}

// FuzzFastEntry checks that fastRaw reads an item exactly as yaml.v3 does
// or leaves it to yaml.v3.
func FuzzFastEntry(f *testing.F) {
	for _, s := range fastItemSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, item []byte) {
		if got, want := textOK(item), (&parser{}).checkText(item); got != want {
			t.Fatalf("%q: textOK %v, checkText %v", item, got, want)
		}
		data := append([]byte(fastItemHead), item...)
		checkFastItems(t, data)
	})
}

func TestEntryKey(t *testing.T) {
	for i, k := range entryKeys {
		if got := entryKey([]byte(k)); got != i {
			t.Errorf("entryKey(%q) = %d, want %d", k, got, i)
		}
	}
	if got := entryKey([]byte("nam")); got != -1 {
		t.Errorf("entryKey(nam) = %d", got)
	}
}

// TestTextOK checks that textOK agrees with checkText.
func TestTextOK(t *testing.T) {
	for _, s := range []string{"", "a\tb\r\nc", "\x00", "\x7f", "\u0085", "\u0080", "\u009f", "\u00a0", "\ufffe", "\uffff", "\ufffd", "\xff", "\xc2", "é\U0001F600"} {
		if got, want := textOK([]byte(s)), (&parser{}).checkText([]byte(s)); got != want {
			t.Errorf("%q: textOK %v, checkText %v", s, got, want)
		}
	}
}
