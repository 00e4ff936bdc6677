package safe

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SanDisk", "SanDisk"},
		{"", ""},
		{"Ultra\n", `Ultra\x0a`},
		{"Ultra\n\n", `Ultra\x0a\x0a`},
		{"  spaced  ", "  spaced  "},
		{"a\x1b[31mred", `a\x1b[31mred`},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`},
		{"\xe2\x82", `\xe2\x82`},         // a cut-off 3-byte sequence: two escapes
		{"\xed\xa0\x80", `\xed\xa0\x80`}, // a UTF-8 surrogate is invalid
		{"\xc0\xaf", `\xc0\xaf`},         // overlong
		{"tab\there", `tab\x09here`},
		{"nul\x00", `nul\x00`},
		{"del\x7f", `del\x7f`},
		{"c1\u009b2J", `c1\u{009b}2J`},
		{"rlo\u202egnp.exe", `rlo\u{202e}gnp.exe`},
		{"\u061c\u200e\u200f\u2066\u2069", `\u{061c}\u{200e}\u{200f}\u{2066}\u{2069}`},
		{"line\u2028para\u2029", `line\u{2028}para\u{2029}`},
		{"soft\u00adhyphen\ufeff", `soft\u{00ad}hyphen\u{feff}`},
		{"zw\u200bnj\u200cj\u200d", `zw\u{200b}nj\u{200c}j` + "\u200d"},
		{"tag\U000e0041", `tag\u{e0041}`},
		{`back\slash`, `back\\slash`},
		{`\x06`, `\\x06`},
		{"\ufffd", "\ufffd"},
		{"\u00a0nbsp é 東芝 USB メモリ 🔑", "\u00a0nbsp é 東芝 USB メモリ 🔑"},
		// serial-escape-collision: 2-10's raw serial and 2-11's, the text
		// of 2-10's escape, stay apart.
		{"R\u00ffq\x06J\u0086KR2F\x15\u0087", `Rÿq\x06J\u{0086}KR2F\x15\u{0087}`},
		{`Rÿq\x06J\u{0086}KR2F\x15\u{0087}`, `Rÿq\\x06J\\u{0086}KR2F\\x15\\u{0087}`},
	} {
		got := String(tc.in)
		if got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
		back, err := Unescape(got)
		if err != nil || back != tc.in {
			t.Errorf("Unescape(%q) = %q, %v; want %q", got, back, err, tc.in)
		}
	}
}

func TestStringCut(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"fits", strings.Repeat("a", MaxLen), strings.Repeat("a", MaxLen)},
		{"one over", strings.Repeat("a", MaxLen+1), strings.Repeat("a", MaxLen) + "…"},
		{"plain multibyte", strings.Repeat("日", 10000), strings.Repeat("日", MaxLen/3) + "…"},
		// 1022 bytes, then an 8-byte escape that does not fit: cut before it.
		{"escape not split", strings.Repeat("a", MaxLen-2) + "\u0086", strings.Repeat("a", MaxLen-2) + "…"},
		{"escape fits exactly", strings.Repeat("a", MaxLen-8) + "\u0086", strings.Repeat("a", MaxLen-8) + `\u{0086}`},
		{"backslash not split", strings.Repeat("a", MaxLen-1) + `\`, strings.Repeat("a", MaxLen-1) + "…"},
		// the longest real USB string: 126 units, each escaped to 8 bytes
		{"126 C1 controls", strings.Repeat("\u0085", 126), strings.Repeat(`\u{0085}`, 126)},
	} {
		got := String(tc.in)
		if got != tc.want {
			t.Errorf("%s: String = %q (%d bytes), want %q (%d bytes)", tc.name, got, len(got), tc.want, len(tc.want))
		}
	}
}

func TestUnescapeErrors(t *testing.T) {
	for _, in := range []string{
		`\`, `a\`, `\q`, `\n`, `\x`, `\x0`, `\x0A`, `\x41`, `\x20`, `\x7e`, `\xc3\xa9`, `\xc2\x86`,
		`\u`, `\u0086`, `\u{86}`, `\u{0086`, `\u{00860}`, `\u{0000086}`, `\u{00e9}`, `\u{d800}`,
		`\u{110000}`, `\u{0041}`, `\u{200D}`, `\u{200d}`, `\u{0A0}`,
		"raw\x01", "raw\x7f", "raw\xff", "raw\u0086", "raw\u202e",
	} {
		if got, err := Unescape(in); err == nil || !errors.Is(err, ErrEscape) {
			t.Errorf("Unescape(%q) = %q, %v; want an ErrEscape error", in, got, err)
		}
	}
}

func TestStringPlainNoAlloc(t *testing.T) {
	for _, s := range []string{"SanDisk Ultra Fit 4C530001090116118063", "東芝 USB メモリ"} {
		if n := testing.AllocsPerRun(100, func() { _ = String(s) }); n != 0 {
			t.Errorf("String(%q): %v allocations, want 0", s, n)
		}
	}
}

func BenchmarkString(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"ascii", "SanDisk Ultra Fit 4C530001090116118063"},
		{"utf8", "東芝 USB メモリ"},
		{"escapes", "R\u00ffq\x06J\u0086KR2F\x15\u0087"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.in)))
			for b.Loop() {
				_ = String(bc.in)
			}
		})
	}
}

// escapeFits reports whether String(s) is s escaped in full, not cut.
func escapeFits(s string) bool {
	b, cut := appendEscaped(nil, s, 0, MaxLen)
	_ = b
	return !cut
}

func FuzzString(f *testing.F) {
	f.Add("plain", "plain2")
	f.Add("\x1b]0;title\x07", `\x1b]0;title\x07`)
	f.Add("\xff\x00\u202e", "\ufffd\x00\u202e")
	f.Add("R\u00ffq\x06J\u0086KR2F\x15\u0087", `Rÿq\x06J\u{0086}KR2F\x15\u{0087}`)
	f.Fuzz(func(t *testing.T, s, s2 string) {
		out := String(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q", s)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || escapedRune(r) {
				t.Fatalf("rune %U left in %q", r, out)
			}
		}
		if len(out) > MaxLen+len(Ellipsis) {
			t.Fatalf("output too long: %d", len(out))
		}
		fits := escapeFits(s)
		if fits {
			back, err := Unescape(out)
			if err != nil || back != s {
				t.Fatalf("Unescape(String(%q)) = %q, %v", s, back, err)
			}
		} else if !strings.HasSuffix(out, Ellipsis) || len(out) <= MaxLen-16+len(Ellipsis) {
			t.Fatalf("cut output %q (%d bytes) not marked or cut short", out, len(out))
		}
		// Injective below the cap.
		if s2 != s && fits && escapeFits(s2) && String(s2) == out {
			t.Fatalf("String(%q) == String(%q) == %q", s, s2, out)
		}
		// Unescape accepts only what String returns.
		if u, err := Unescape(s2); err == nil && escapeFits(u) && String(u) != s2 {
			t.Fatalf("Unescape(%q) = %q, but String gives %q", s2, u, String(u))
		}
	})
}
