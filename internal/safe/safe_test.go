package safe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SanDisk", "SanDisk"},
		{"Ultra\n", "Ultra"},
		{"a\x1b[31mred", `a\x1b[31mred`},
		{"bad\xff\xfeutf8", "bad\uFFFDutf8"},
		{"tab\there", `tab\x09here`},
		{"del\x7f", `del\x7f`},
		{"c1\u009b2J", `c1\u{009b}2J`},
		{"rlo\u202egnp.exe", `rlo\u{202e}gnp.exe`},
		{"東芝 USB メモリ", "東芝 USB メモリ"},
		{"", ""},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStringLong(t *testing.T) {
	got := String(strings.Repeat("日", 10000))
	if len(got) > MaxLen+len("…") || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Fatalf("long string not cut cleanly: %d bytes, valid=%v", len(got), utf8.ValidString(got))
	}
}

func FuzzString(f *testing.F) {
	f.Add("plain")
	f.Add("\x1b]0;title\x07")
	f.Add("\xff\x00\u202e")
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q", s)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= '\u202a' && r <= '\u202e') {
				t.Fatalf("control rune %U left in %q", r, out)
			}
		}
		if len(out) > MaxLen+len("…") {
			t.Fatalf("output too long: %d", len(out))
		}
	})
}
