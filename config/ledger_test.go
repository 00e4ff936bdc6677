package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/japanese"
)

// writeFiles writes name → contents under a new directory and returns it.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func toCP932(t testing.TB, s string) string {
	t.Helper()
	b, err := japanese.ShiftJIS.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const jaLedger = "名称,ベンダーID,プロダクトID,シリアル番号,ポート,クラス,責任者,承認者,有効期間開始,有効期間終了,暗号化必須\r\n" +
	"作業用USBメモリ,0951,1666,001A4D5F1B2C,,,委託先作業責任者,情報政策課,2026-04-01,2027-03-31,○\r\n" +
	"受付のラベルプリンタ,04F9,2042,,1-2,,受付,情報政策課,2026-04-01,2027-03-31,×\r\n" +
	",,,,,,,,,,\r\n" +
	"会議室のカメラ,046d,,,,video; audio,,情報政策課,,,\r\n"

func TestLedger(t *testing.T) {
	want := []USBEntry{
		{Name: "yaml entry", Terms: &EntryTerms{Classes: []string{"hid"}}, Line: 5},
		{Name: "作業用USBメモリ", VendorID: "0951", ProductID: "1666", Serial: ptr("001A4D5F1B2C"), Terms: &EntryTerms{Owner: "委託先作業責任者", ApprovedBy: "情報政策課",
			ValidFrom: &Date{2026, 4, 1}, ValidUntil: &Date{2027, 3, 31}, RequireEncryption: true}, Line: 2},
		{Name: "受付のラベルプリンタ", VendorID: "04f9", ProductID: "2042", Port: "1-2", Terms: &EntryTerms{Owner: "受付", ApprovedBy: "情報政策課",
			ValidFrom: &Date{2026, 4, 1}, ValidUntil: &Date{2027, 3, 31}}, Line: 3},
		{Name: "会議室のカメラ", VendorID: "046d", Terms: &EntryTerms{Classes: []string{"video", "audio"}, ApprovedBy: "情報政策課"}, Line: 5},
	}
	for _, tt := range []struct {
		name, ledger, encoding string
	}{
		{"UTF-8 with BOM", "\ufeff" + jaLedger, ""},
		{"UTF-8", jaLedger, ""},
		{"CP932", toCP932(t, jaLedger), ""},
		{"CP932 forced", toCP932(t, jaLedger), "cp932"},
		{"UTF-8 forced", jaLedger, "utf-8"},
		{"BOM wins over cp932", "\ufeff" + jaLedger, "cp932"},
		{"dates as Excel writes them", strings.ReplaceAll(jaLedger, "2026-04-01,2027-03-31", "2026/4/1,2027/03/31"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yml := "version: 1\napproved:\n  usb_ledger: ledger.csv\n  usb:\n    - {name: yaml entry, classes: [hid]}\n"
			if tt.encoding != "" {
				yml += "  usb_ledger_encoding: " + tt.encoding + "\n"
			}
			dir := writeFiles(t, map[string]string{"c.yaml": yml, "ledger.csv": tt.ledger})
			cfgFile, ledger := filepath.Join(dir, "c.yaml"), filepath.Join(dir, "ledger.csv")
			cfg, err := Load(cfgFile)
			if err != nil {
				t.Fatal(err)
			}
			w := slicesCloneEntries(want)
			w[0].File = cfgFile
			for i := 1; i < len(w); i++ {
				w[i].File = ledger
			}
			if !reflect.DeepEqual(cfg.Approved.USB, w) {
				for i := range cfg.Approved.USB {
					t.Errorf("%d: %+v", i, cfg.Approved.USB[i])
				}
			}
			if !reflect.DeepEqual(cfg.Files, []string{cfgFile, ledger}) || !reflect.DeepEqual(cfg.Approved.USBLedgers, []string{ledger}) {
				t.Errorf("files %q, ledgers %q", cfg.Files, cfg.Approved.USBLedgers)
			}
			if d := fileDigest(t, cfgFile, ledger); cfg.Digest != d {
				t.Errorf("digest %s, want %s", cfg.Digest, d)
			}
			p := NewPolicy(cfg.Approved.USB)
			got := p.Decide(dev("1-2", "04f9", "2042", nil, "07"), time.Date(2026, 5, 1, 12, 0, 0, 0, time.Local))
			if got.Status != Approved || got.Entry.Name != "受付のラベルプリンタ" {
				t.Errorf("decision %v %+v", got.Status, got.Entry)
			}
		})
	}
}

func slicesCloneEntries(e []USBEntry) []USBEntry { return append([]USBEntry(nil), e...) }

func TestLedgerEnglishAndList(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"c.yaml": "version: 1\napproved:\n  usb_ledger: [a.csv, sub/b.csv]\n",
		"a.csv":  "Name, VENDOR_ID ,ｐｏｒｔ,require_encryption,classes\nA,abcd,,TRUE,\nB,,3-1.4,0,HID;class-ff mass-storage\n",
	})
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "sub", "b.csv"), []byte("name,serial\nC,\"with \"\"quote\"\"\"\n"), 0o600)
	cfg, err := Load(filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Approved.USB
	if len(u) != 3 || u[0].VendorID != "abcd" || !u[0].RequiresEncryption() || u[1].Port != "3-1.4" ||
		!reflect.DeepEqual(u[1].Terms.Classes, []string{"hid", "vendor-specific", "mass-storage"}) || *u[2].Serial != `with "quote"` ||
		u[2].File != filepath.Join(dir, "sub", "b.csv") || len(cfg.Files) != 3 {
		t.Errorf("%+v", u)
	}
}

func TestLedgerErrors(t *testing.T) {
	const hdr = "name,vendor_id,product_id,serial,port,classes,require_encryption\n"
	for _, tt := range []struct {
		name, yaml, ledger string
		want               []string
	}{
		{"unknown column", "", "name,vendor,ポート\n", []string{`L:1:2: unknown column "vendor" (known columns: name, vendor_id, product_id, serial, port, classes, owner, approved_by, valid_from, valid_until, require_encryption, or their Japanese names 名称, ベンダーID, ...)`}},
		{"near miss", "", "name,vendr_id\n", []string{`L:1:2: unknown column "vendr_id" (did you mean "vendor_id"?)`}},
		{"same field twice", "", "name,シリアル,serial\n", []string{`L:1:3: column "serial" names the same field as column "シリアル" (serial)`}},
		{"no name column", "", "serial\nX\n", []string{`L:1: no name column (名称): every entry needs a name`}},
		{"empty", "", "", []string{`L:1:1: the ledger is empty: its first row must name the columns (name, vendor_id, ...)`}},
		{"bad id", "", hdr + "a,951,,,,,\n", []string{`L:2:2: vendor_id: want 4 hex digits like "0951", got "951"`}},
		{"bad cells on a later line", "", hdr + "a,0951,,,,,\nb,0951,zz,,,,\nc,,,,usb1,,\n", []string{
			`L:3:3: product_id: want 4 hex digits like "0951", got "zz"`,
			`L:4:5: port: want a bus path like "1-2" or "3-1.4", got "usb1"`}},
		{"product without vendor", "", hdr + "a,,1666,,,,\n", []string{`L:2:3: product_id: needs vendor_id as well`}},
		{"missing name", "", hdr + ",0951,,,,,\n", []string{`L:2:1: name is required`}},
		{"nothing to match", "", hdr + "a,,,,,,true\n", []string{`L:2:1: sets none of vendor_id, product_id, serial, port, classes, so it would approve every device`}},
		{"bad bool", "", hdr + "a,0951,,,,,maybe\n", []string{`L:2:7: require_encryption: want true or false (or 1/0, yes/no, ○/×), got "maybe"`}},
		{"bad class", "", hdr + "a,,,,,hid;keyboard,\n", []string{`L:2:6: classes: unknown USB class "keyboard" (known: application-specific, audio, audio-video, billboard, cdc-data, communications, content-security, diagnostic, hid, hub, mass-storage, misc, per-interface, personal-healthcare, physical, printer, smart-card, still-image, type-c-bridge, vendor-specific, video, wireless, or class-XX with a hex code)`}},
		{"bad date, Japanese header", "", "名称,ポート,有効期間終了\na,1-1,2026/02/30\n", []string{`L:2:3: 有効期間終了: want a date YYYY-MM-DD or YYYY/M/D, got "2026/02/30"`}},
		{"serial in Excel's exponent notation", "", "name,serial\na,1.23457E+11\n", []string{`L:2:2: serial: "1.23457E+11" is a number Excel rewrote in exponent notation, not the serial: format the column as text and type the serial again`}},
		{"dates out of order", "", "name,port,valid_from,valid_until\na,1-1,2026-04-01,2026-03-31\n", []string{`L:2:4: valid_until: 2026-03-31 is before valid_from 2026-04-01`}},
		{"duplicate name in ledger", "", hdr + "a,0951,,,,,\na,0952,,,,,\n", []string{`L:3:1: name: "a" is already the name of the entry at line 2`}},
		{"duplicate name across files", "  usb:\n    - {name: a, port: 1-1}\n", hdr + "a,0951,,,,,\n", []string{`L:2:1: name: "a" is already the name of the entry at line 5 of C`}},
		{"identical matcher in ledger", "", hdr + "a,0951,1666,S,,,\nb,0951,1666,S,,,\n", []string{`L:3:1: matches exactly the devices of the entry "a" at line 2 (same vendor_id, product_id, serial, port and classes)`}},
		{"identical matcher across files", "  usb:\n    - {name: a, classes: [audio, video]}\n", hdr + "b,,,,,video audio,\n", []string{`L:2:1: matches exactly the devices of the entry "a" at line 5 of C (same vendor_id, product_id, serial, port and classes)`}},
		{"cell count", "", hdr + "a,0951\n", []string{`L:2: the row has 2 cells, the header 7`}},
		{"unnamed column with a value", "", "name,,port\na,x,1-1\n", []string{`L:2:2: the column has no name in the header row`}},
		{"unnamed empty column is fine, bad quote is not", "", "name,,port\na,,1-1\nb,\"x,1-2\n", []string{`L:3: CSV syntax error: extraneous or missing " in quoted-field`}},
		{"control character", "", hdr + "\"a\x1b[2J\",0951,,,,,\n", []string{`L:2:1: name: control character U+001B is not allowed`}},
		{"newline in a cell", "", hdr + "\"a\nb\",0951,,,,,\n", []string{`L:2:1: name: control character U+000A is not allowed`}},
		{"long cell", "", hdr + "a,,,," + strings.Repeat("1", 2000) + ",,\n", []string{`L:2:5: port: longer than 1024 bytes`}},
		{"not UTF-8 when forced", "  usb_ledger_encoding: utf-8\n", hdr + "\x83e\x83X\x83g,0951,,,,,\n", []string{`L:2:1: name: not valid UTF-8 (save the ledger as "CSV UTF-8", or set approved.usb_ledger_encoding)`}},
		{"not CP932", "  usb_ledger_encoding: cp932\n", hdr + "a\x81\x7f,0951,,,,,\n", []string{`L:2:1: name: not valid CP932 (Shift_JIS) text`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{
				"c.yaml": "version: 1\napproved:\n  usb_ledger: l.csv\n" + tt.yaml,
				"l.csv":  tt.ledger,
			})
			cfgFile, ledger := filepath.Join(dir, "c.yaml"), filepath.Join(dir, "l.csv")
			cfg, err := Load(cfgFile)
			if err == nil {
				t.Fatalf("no error: %+v", cfg.Approved.USB)
			}
			if !IsInvalid(err) {
				t.Fatalf("not an ErrorList: %v", err)
			}
			got := strings.ReplaceAll(strings.ReplaceAll(err.Error(), ledger, "L"), cfgFile, "C")
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got\n  %s\nwant\n  %s", strings.ReplaceAll(got, "\n", "\n  "), strings.ReplaceAll(want, "\n", "\n  "))
			}
		})
	}
}

// TestUnreadable checks that what is not a bounded regular file is
// refused at once, naming the file, for the config and a ledger alike.
func TestUnreadable(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if runtime.GOOS != "windows" {
		if err := mkfifo(fifo); err != nil {
			t.Fatal(err)
		}
	}
	big := filepath.Join(dir, "big.csv")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(MaxLedgerSize + 1)
	f.Close()
	cases := []struct{ path, want string }{
		{dir, "not a regular file (a directory)"},
		{big, "file is larger than 67108864 bytes"},
		{filepath.Join(dir, "missing"), "no such file"},
	}
	if runtime.GOOS != "windows" {
		cases = append(cases, struct{ path, want string }{fifo, "not a regular file (a named pipe)"})
		if _, err := os.Stat("/dev/zero"); err == nil {
			cases = append(cases, struct{ path, want string }{"/dev/zero", "not a regular file (a character device)"})
		}
	}
	for _, c := range cases {
		done := make(chan error, 1)
		go func() { _, err := Load(c.path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("config %s: %v, want %q", c.path, err, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("config %s: Load hangs", c.path)
		}
		cfg := filepath.Join(dir, "c.yaml")
		os.WriteFile(cfg, []byte("version: 1\napproved:\n  usb_ledger: "+c.path+"\n"), 0o600)
		go func() { _, err := Load(cfg); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) ||
				!strings.HasPrefix(err.Error(), cfg+":3:15: approved.usb_ledger: ") || errors.Is(err, fs.ErrNotExist) {
				t.Errorf("ledger %s: %v, want %q", c.path, err, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("ledger %s: Load hangs", c.path)
		}
	}
}

// bigLedger returns a ledger of n entries like those of bigConfig.
func bigLedger(n int) []byte {
	var b strings.Builder
	b.WriteString("\ufeff名称,ベンダーID,プロダクトID,シリアル番号,責任者,承認者,有効期間開始,有効期間終了,暗号化必須\r\n")
	for i := range n {
		fmt.Fprintf(&b, "stick %d,%04x,%04x,SN%010d,委託先作業責任者,情報政策課,2026-04-01,2027-03-31,○\r\n", i, i%0x10000, (i*7)%0x10000, i)
	}
	return []byte(b.String())
}

func TestLedgerBig(t *testing.T) {
	n := 100_000
	if testing.Short() || raceEnabled {
		n = 2000
	}
	dir := writeFiles(t, map[string]string{"c.yaml": "version: 1\napproved:\n  usb_ledger: l.csv\n", "l.csv": string(bigLedger(n))})
	cfg, err := Load(filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Approved.USB) != n || cfg.Approved.USB[n-1].Line != n+1 {
		t.Fatalf("%d entries", len(cfg.Approved.USB))
	}
}

func BenchmarkLoadLedger100k(b *testing.B) {
	data := bigLedger(100_000)
	dir := writeFiles(b, map[string]string{"c.yaml": "version: 1\napproved:\n  usb_ledger: l.csv\n", "l.csv": string(data)})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(filepath.Join(dir, "c.yaml")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadYAML100k(b *testing.B) {
	data := bigConfig(100_000)
	dir := writeFiles(b, map[string]string{"c.yaml": string(data)})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(filepath.Join(dir, "c.yaml")); err != nil {
			b.Fatal(err)
		}
	}
}

// memLedger is a ledger in memory.
type memLedger struct{ *strings.Reader }

func (memLedger) Close() error { return nil }

// FuzzLedger reads arbitrary ledgers: every outcome is a valid config or
// an ErrorList of well-formed errors in file order.
func FuzzLedger(f *testing.F) {
	for _, s := range []string{
		jaLedger, "\ufeff" + jaLedger, toCP932(f, jaLedger),
		"name,serial\nA,\"x\"\"y\"\n", "name,,port\na,,1-1\nb,\"x,1-2\n", "",
		"name,classes,require_encryption\na,hid;audio,○\nb,video,×\n",
		"名称,ポート\r\na,1-1\r\na,1-2\r\n", "name,vendor_id\na,0951\nb,0951\n",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, enc uint8) {
		encoding := []string{LedgerAuto, LedgerUTF8, LedgerCP932}[enc%3]
		open := func(path string) (ledgerFile, error) { return memLedger{strings.NewReader(string(data))}, nil }
		yml := "version: 1\napproved:\n  usb_ledger: l.csv\n  usb_ledger_encoding: " + encoding + "\n  usb:\n    - {name: y, port: 1-1}\n"
		cfg, err := parseWith("f.yaml", []byte(yml), open)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			for i, e := range list {
				if e.File != "l.csv" || e.Line < 0 || e.Column < 0 || e.Msg == "" {
					t.Fatalf("malformed error %#v", e)
				}
				if i > 0 && (e.Line < list[i-1].Line || e.Line == list[i-1].Line && e.Column < list[i-1].Column) {
					t.Fatalf("errors out of order: %v", err)
				}
			}
			return
		}
		checkConfig(t, cfg)
	})
}
