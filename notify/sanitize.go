package notify

import (
	"strings"
	"unicode/utf8"
)

// MaxText bounds a notification's summary and its body, each, in bytes
// of UTF-8 before the body's markup escaping (Compose): the texts name
// devices and networks whose strings someone else chose (a USB product
// string, an SSID), and a notification service is no place to test how
// much it takes.
const MaxText = 4 << 10

// cut ends a text cut short by CleanText.
const cut = "…"

// CleanText returns s fit to show in a notification: invalid UTF-8, the
// C0 control characters but the line feed (U+0000–U+0009,
// U+000B–U+001F), DEL and the C1 controls (U+007F–U+009F), and the
// bidirectional embeddings, overrides and isolates (U+202A–U+202E,
// U+2066–U+2069, which would make the text read otherwise than it is)
// each replaced by U+FFFD; at most limit bytes, cut between two
// characters with "…" ending a cut (limit 0 or less: no bound; under 3,
// no room for the "…"). A NUL
// would make the D-Bus message invalid (the specification's strings
// hold none): the bus refuses it, and the warning would not be shown.
func CleanText(s string, limit int) string {
	if clean(s) && (limit <= 0 || len(s) <= limit) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		// An invalid byte comes as utf8.RuneError too.
		if !keep(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		if limit > 0 && b.Len() > limit {
			// Cut below; what is left does not count.
			break
		}
	}
	c := b.String()
	if limit <= 0 || len(c) <= limit {
		return c
	}
	mark := cut
	if limit < len(mark) {
		mark = ""
	}
	n := 0
	for _, r := range c {
		size := utf8.RuneLen(r)
		if n+size > limit-len(mark) {
			break
		}
		n += size
	}
	return c[:n] + mark
}

// clean reports whether s is valid UTF-8 and holds nothing CleanText
// replaces.
func clean(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !keep(r) {
			return false
		}
	}
	return true
}

// keep reports whether r is shown as it is.
func keep(r rune) bool {
	switch {
	case r == '\n':
		return true
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return false
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return false
	}
	return true
}
