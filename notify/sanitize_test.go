package notify

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mamori-agent/mamori/agent/localapi"
)

func TestCleanText(t *testing.T) {
	for _, c := range []struct {
		in    string
		limit int
		want  string
	}{
		{"SanDisk Ultra Fit（シリアル 4C530001）\n直ちに", MaxText, "SanDisk Ultra Fit（シリアル 4C530001）\n直ちに"},
		{"a\x00b", 0, "a\ufffdb"},
		{"tab\there\r\n", 0, "tab\ufffdhere\ufffd\n"},
		{"esc\x1b[2J del\x7f c1\u0085\u009b", 0, "esc\ufffd[2J del\ufffd c1\ufffd\ufffd"},
		{"\u202eevil\u202a\u202b\u202c\u202d \u2066\u2067\u2068\u2069ok", 0, "\ufffdevil\ufffd\ufffd\ufffd\ufffd \ufffd\ufffd\ufffd\ufffdok"},
		// The marks and separators around them are kept: not overrides.
		{"\u200e\u200f\u2029\u2065\u206a", 0, "\u200e\u200f\u2029\u2065\u206a"},
		{"bad\xff\xfeutf8", 0, "bad\ufffd\ufffdutf8"},
		{"\ufffd", 0, "\ufffd"},
		{"abcdef", 6, "abcdef"},
		{"abcdefg", 6, "abc…"},
		// Cut between characters: "あ" is 3 bytes.
		{"ああああ", 10, "ああ…"},
		{"ああああ", 8, "あ…"},
		{"a\x00bcdefgh", 7, "a\ufffd…"},
		{"abcdef", 2, "ab"},
		{"", 5, ""},
	} {
		if got := CleanText(c.in, c.limit); got != c.want {
			t.Errorf("CleanText(%q, %d) = %q, want %q", c.in, c.limit, got, c.want)
		}
	}
}

// TestComposeCleans: a device string with control characters, a
// bidirectional override or a NUL, and texts far too long, make a
// notification with neither, each of summary and body at most MaxText
// bytes (the body before its markup is escaped).
func TestComposeCleans(t *testing.T) {
	w := sampleWarning("ja")
	w.Texts[0].Subject = "Evil\x00Stick\u202e\x1b[31m<b>"
	w.Texts[0].Title = strings.Repeat("長", 3000)
	w.Texts[1].Remedy = strings.Repeat("x", 1<<20)
	for _, markup := range []bool{false, true} {
		n := Compose(w, markup, nil)
		for name, s := range map[string]string{"summary": n.Summary, "body": n.Body} {
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\x1b\u202e") {
				t.Errorf("markup %v: %s not clean: %q", markup, name, s[:min(len(s), 200)])
			}
		}
		if len(n.Summary) > MaxText || !strings.HasSuffix(n.Summary, "…") || !strings.HasPrefix(n.Summary, "長長") {
			t.Errorf("markup %v: summary %d bytes: %q…", markup, len(n.Summary), n.Summary[len(n.Summary)-10:])
		}
		body := n.Body
		if markup {
			body = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(body)
		}
		if len(body) > MaxText || !strings.HasSuffix(body, "…") || !strings.HasPrefix(body, "Evil\ufffdStick\ufffd\ufffd[31m<b>\n") {
			t.Errorf("markup %v: body %d bytes: %q", markup, len(body), body[:min(len(body), 80)])
		}
	}
	bare := Compose(&localapi.Warning{Kind: "usb\x00kind", Device: "1-2\u2066"}, false, nil)
	if bare.Summary != "usb\ufffdkind" || bare.Body != "1-2\ufffd" {
		t.Errorf("bare %+v", bare)
	}
}

// FuzzCleanText: whatever the text and bound, the result is valid
// UTF-8 with nothing CleanText replaces, within the bound, and the
// cleaned text itself or a cut of it.
func FuzzCleanText(f *testing.F) {
	f.Add("a\x00b\u202ec\xff", 0)
	f.Add("ああああ\n\t", 10)
	f.Add(strings.Repeat("\u2066x", 50), 64)
	f.Add("", 1)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit %= 1 << 16
		got := CleanText(s, limit)
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 %q", got)
		}
		for _, r := range got {
			if !keep(r) {
				t.Fatalf("%q kept in %q", r, got)
			}
		}
		full := CleanText(s, 0)
		if n := utf8.RuneCountInString(full); n != len([]rune(s)) {
			t.Fatalf("%q: %d characters cleaned, %d in", s, n, len([]rune(s)))
		}
		if limit <= 0 || len(full) <= limit {
			if got != full {
				t.Fatalf("CleanText(%q, %d) = %q, not %q", s, limit, got, full)
			}
			return
		}
		if len(got) > limit {
			t.Fatalf("CleanText(%q, %d) = %q: %d bytes", s, limit, got, len(got))
		}
		if !strings.HasPrefix(full, strings.TrimSuffix(got, cut)) || (limit >= len(cut) && !strings.HasSuffix(got, cut)) {
			t.Fatalf("CleanText(%q, %d) = %q: not a cut of %q", s, limit, got, full)
		}
		if clean(s) && len(s) <= limit && got != s {
			t.Fatalf("clean %q changed to %q", s, got)
		}
	})
}
