package usbids

import (
	"strings"
	"testing"
)

func TestEmbedded(t *testing.T) {
	for _, tc := range []struct{ name, got, want string }{
		{"vendor", Vendor("05f3"), "PI Engineering, Inc."},
		{"vendor upper", Vendor("05F3"), "PI Engineering, Inc."},
		{"vendor short", Vendor("5f3"), "PI Engineering, Inc."},
		{"first vendor", Vendor("0001"), "Fry's Electronics"},
		{"last vendor", Vendor("ffee"), "FNK Tech"},
		{"product", Product("05f3", "0007"), "Kinesis Advantage PRO MPC/USB Keyboard"},
		{"product yubico", Product("1050", "0120"), "Yubikey Touch U2F Security Key"},
		{"product linux root hub", Product("1d6b", "0002"), "2.0 root hub"},
		{"product unknown", Product("05f3", "fffe"), ""},
		{"vendor unknown", Vendor("fffe"), ""},
		{"vendor malformed", Vendor("xyz"), ""},
		{"vendor too long", Vendor("105000"), ""},
		{"vendor empty", Vendor(""), ""},
		{"vendor signed", Vendor("-1"), ""},
		{"product malformed", Product("05f3", "0x07"), ""},
		{"class", Class("08", "", ""), "Mass Storage"},
		{"class sub", Class("08", "06", ""), "Mass Storage / SCSI"},
		{"class sub proto", Class("08", "06", "50"), "Mass Storage / SCSI / Bulk-Only"},
		{"class unknown proto", Class("08", "06", "fe"), "Mass Storage / SCSI"},
		{"class unknown sub", Class("08", "7e", "50"), "Mass Storage"},
		{"class hid boot kbd", Class("03", "01", "01"), "Human Interface Device / Boot Interface Subclass / Keyboard"},
		{"class vendor", Class("ff", "", ""), "Vendor Specific Class"},
		{"class still image", Class("06", "01", "01"), "Imaging / Still Image Capture / Picture Transfer Protocol (PIMA 15470)"},
		{"class unknown", Class("77", "", ""), ""},
		{"class malformed", Class("808", "", ""), ""},
		{"version", Version(), "2025.07.26"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// A protocol belongs to the subclass above it: the protocol 01 of
// subclass 01 must not be reported for subclass 02.
func TestClassProtocolScope(t *testing.T) {
	db := New("C 0a  Ten\n\t01  One\n\t\t01  One-one\n\t02  Two\n\t\t02  Two-two\nC 0b  Eleven\n")
	for _, tc := range []struct{ c, s, p, want string }{
		{"0a", "01", "01", "Ten / One / One-one"},
		{"0a", "02", "01", "Ten / Two"},
		{"0a", "02", "02", "Ten / Two / Two-two"},
		{"0b", "01", "", "Eleven"},
	} {
		if got := db.Class(tc.c, tc.s, tc.p); got != tc.want {
			t.Errorf("Class(%s,%s,%s) = %q, want %q", tc.c, tc.s, tc.p, got, tc.want)
		}
	}
}

func TestMalformedDB(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		vid, pid   string
		vendor     string
		product    string
	}{
		{"empty", "", "0001", "0001", "", ""},
		{"no newline at end", "0001  One\n\t0002  Two", "0001", "0002", "One", "Two"},
		{"crlf", "0001  One\r\n\t0002  Two\r\n", "0001", "0002", "One", "Two"},
		{"upper hex not a vendor", "00AB  Upper\n", "00ab", "", "", ""},
		{"one space", "0001 One\n", "0001", "", "", ""},
		{"short line", "0001\n\t0002\n", "0001", "0002", "", ""},
		{"product of next vendor", "0001  One\n0002  Two\n\t0003  Three\n", "0001", "0003", "One", ""},
		{"interfaces are not products", "0001  One\n\t0002  Two\n\t\t0003  If\n", "0001", "0003", "One", ""},
		{"other section ends vendor", "0001  One\nAT 0003  X\n\t0003  Y\n", "0001", "0003", "One", ""},
		{"unsorted", "0002  Two\n0001  One\n\t0009  Nine\n", "0001", "0009", "One", "Nine"},
		{"duplicate first wins", "0001  One\n0001  Uno\n", "0001", "", "One", ""},
		{"binary junk", "\x00\xff\t\t\t\n  \n0001  \xffOne\n", "0001", "", "\xffOne", ""},
	} {
		db := New(tc.data)
		if got := db.Vendor(tc.vid); got != tc.vendor {
			t.Errorf("%s: Vendor = %q, want %q", tc.name, got, tc.vendor)
		}
		if tc.pid != "" {
			if got := db.Product(tc.vid, tc.pid); got != tc.product {
				t.Errorf("%s: Product = %q, want %q", tc.name, got, tc.product)
			}
		}
	}
}

// The index is small: one entry per vendor and per class.
func TestIndexSize(t *testing.T) {
	db := Default()
	db.index()
	if n := len(db.vendors); n < 3000 || n > 4000 {
		t.Errorf("vendors = %d, want about 3400", n)
	}
	if n := len(db.classes); n < 20 || n > 40 {
		t.Errorf("classes = %d", n)
	}
	if cap(db.vendors) != len(db.vendors) {
		t.Errorf("vendor index not clipped: cap %d len %d", cap(db.vendors), len(db.vendors))
	}
}

func FuzzDB(f *testing.F) {
	f.Add("0001  One\n\t0002  Two\n", "0001", "0002", "08", "06", "50")
	f.Add("C 08  Mass Storage\n\t06  SCSI\n\t\t50  Bulk-Only\n", "0001", "0002", "08", "06", "50")
	f.Add(embedded[:4096], "0001", "7778", "00", "", "")
	f.Fuzz(func(t *testing.T, data, vid, pid, c, s, p string) {
		db := New(data)
		for _, out := range []string{db.Vendor(vid), db.Product(vid, pid), db.Class(c, s, p)} {
			if strings.Contains(out, "\n") {
				t.Fatalf("name with newline: %q", out)
			}
		}
	})
}

func BenchmarkVendor(b *testing.B) {
	Vendor("0001") // index outside the loop
	for b.Loop() {
		Vendor("05f3")
	}
}

func BenchmarkProduct(b *testing.B) {
	Vendor("0001")
	for b.Loop() {
		Product("046d", "c52b") // Logitech: the vendor with the most products
	}
}

func BenchmarkClass(b *testing.B) {
	Vendor("0001")
	for b.Loop() {
		Class("08", "06", "50")
	}
}

// BenchmarkIndex measures the one-time cost of the first lookup.
func BenchmarkIndex(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		New(embedded).Vendor("05f3")
	}
}

// Nothing is parsed before the first lookup.
func TestLazy(t *testing.T) {
	db := New(embedded)
	if db.vendors != nil || db.classes != nil {
		t.Fatal("indexed at New")
	}
	if db.Vendor("05f3") == "" || db.vendors == nil {
		t.Fatal("not indexed by the first lookup")
	}
}
