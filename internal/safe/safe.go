// Package safe makes untrusted strings (USB descriptor strings, file-system
// labels, anything read from a device) safe to store, print and log.
package safe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest string, in bytes, that String keeps. USB string
// descriptors hold at most 126 UTF-16 units; anything far longer is forged.
const MaxLen = 512

// String returns s with invalid UTF-8 replaced by U+FFFD, control
// characters, terminal escapes and bidirectional overrides escaped as
// \xNN or \u{NNNN}, surrounding whitespace and a trailing newline trimmed,
// and the result cut to MaxLen bytes (marked with "…").
func String(s string) string {
	s = strings.TrimRight(s, "\n")
	if !needsWork(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0, isBidi(r), r == '\u2028', r == '\u2029':
			fmt.Fprintf(&b, `\u{%04x}`, r)
		default:
			b.WriteRune(r)
		}
		if b.Len() > MaxLen {
			break
		}
	}
	out := b.String()
	if len(out) > MaxLen {
		cut := MaxLen
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + "…"
	}
	return out
}

func needsWork(s string) bool {
	if len(s) > MaxLen {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			// Non-ASCII takes the slow path; it is rare in USB strings.
			return true
		}
	}
	return false
}

func isBidi(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') ||
		r == '\u200e' || r == '\u200f' || r == '\u061c' || unicode.Is(unicode.Cf, r) && r != '\u200d'
}
