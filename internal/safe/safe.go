// Package safe makes untrusted strings (USB descriptor strings, file-system
// labels, anything read from a device) safe to store, print and log,
// without losing what they said: the escaping is one-to-one, so two
// different device strings never become one recorded value, and Unescape
// gives the original bytes back.
package safe

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest escaped string, in bytes, that String returns
// without cutting it. A USB string descriptor holds at most 126 UTF-16
// units and the kernel (usb_string, utf16s_to_utf8s) turns each into at
// most one character; the longest escape of one such character is 8 bytes
// (`\u{0086}`), so 1008 bytes hold any real USB string escaped. Longer
// values are forged or come from elsewhere (a file-system label, an error
// text) and are cut.
const MaxLen = 1024

// Ellipsis marks a string that String cut at MaxLen.
const Ellipsis = "…"

// ErrEscape is wrapped by the errors of Unescape: the text is not
// something String returns.
var ErrEscape = errors.New("malformed escape")

// String returns s escaped so that it can be printed and logged, one to
// one:
//
//   - each byte that is not part of valid UTF-8 becomes \xNN, two
//     lower-case hex digits (three invalid bytes give three escapes);
//   - the C0 controls U+0000–U+001F and DEL U+007F become \xNN;
//   - the C1 controls U+0080–U+009F, the line and paragraph separators
//     U+2028 and U+2029, the bidirectional controls (U+061C, U+200E,
//     U+200F, U+202A–U+202E, U+2066–U+2069) and every other character of
//     Unicode category Cf (format: U+00AD, U+FEFF, U+E0001, ...) except
//     the zero-width joiner U+200D become \u{NNNN}, the code point in
//     lower-case hex with at least 4 digits (\u{0086}, \u{e0001});
//   - a backslash becomes \\;
//   - everything else, U+FFFD and other printable non-ASCII included, is
//     kept as it is.
//
// Nothing is trimmed: callers that read a sysfs attribute remove the one
// newline the kernel appends, and no more.
//
// Different inputs give different outputs as long as the escaped form
// fits in MaxLen bytes, and Unescape inverts String exactly there. A
// longer escaped form is cut at MaxLen bytes or just before, only between
// two escape sequences or characters, and Ellipsis is appended; only such
// cut values can coincide (with each other, or with a string whose text
// ends in "…"). The category tables are those of the Go release's
// unicode package.
//
// A string that needs no escape and fits is returned as is, without
// allocating.
func String(s string) string {
	i := firstEscape(s)
	if i == len(s) && len(s) <= MaxLen {
		return s
	}
	b := make([]byte, 0, min(len(s)+len(s)/8+8, MaxLen+len(Ellipsis)))
	b, _ = appendEscaped(b, s, i, MaxLen)
	return string(b)
}

// firstEscape returns the index of the first byte of s that String does
// not copy as it is, or len(s).
func firstEscape(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f || c == '\\' {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || escapedRune(r) {
			return i
		}
		i += size
	}
	return len(s)
}

// escapedRune reports whether String writes r, a valid non-ASCII rune, as
// \u{...}.
func escapedRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f, r == '\u2028', r == '\u2029':
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f',
		r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true // bidirectional controls (all Cf today; listed in case a table changes)
	case r == '\u200d':
		return false // zero-width joiner: part of emoji sequences
	}
	return r >= 0xa0 && unicode.Is(unicode.Cf, r)
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends s[:start] as it is and the escape of s[start:]
// to b, keeping the appended part within limit bytes: at the first
// character or escape that would pass the limit it appends Ellipsis
// instead and stops. cut reports whether it stopped. limit < 0: no
// limit.
func appendEscaped(b []byte, s string, start, limit int) (_ []byte, cut bool) {
	base := len(b)
	if limit >= 0 && start > limit {
		start = 0 // the plain prefix alone is too long: walk it too
	}
	b = append(b, s[:start]...)
	var tok [16]byte
	for i := start; i < len(s); {
		c := s[i]
		var t []byte
		size := 1
		switch {
		case c == '\\':
			t = append(tok[:0], '\\', '\\')
		case c < 0x20 || c == 0x7f:
			t = append(tok[:0], '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		case c < utf8.RuneSelf:
			t = append(tok[:0], c)
		default:
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				t = append(tok[:0], '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			case escapedRune(r):
				t = append(tok[:0], '\\', 'u', '{')
				t = appendHexRune(t, r)
				t = append(t, '}')
			default:
				t = append(tok[:0], s[i:i+size]...)
			}
		}
		if limit >= 0 && len(b)-base+len(t) > limit {
			return append(b, Ellipsis...), true
		}
		b = append(b, t...)
		i += size
	}
	return b, false
}

// appendHexRune appends r in lower-case hex, at least 4 digits.
func appendHexRune(b []byte, r rune) []byte {
	n := 4
	for r>>(4*n) != 0 {
		n++
	}
	for k := n - 1; k >= 0; k-- {
		b = append(b, hexDigits[r>>(4*k)&0xf])
	}
	return b
}

// Unescape inverts String: Unescape(String(s)) == s for every s whose
// escaped form fits in MaxLen bytes (a cut value gives back its text up
// to the cut, followed by "…"). It accepts exactly the texts String
// returns and fails, with an error wrapping ErrEscape, on anything else:
// a backslash not followed by \, x or u, a \x or \u{} that is malformed
// (upper-case or missing digits, leading zeros beyond 4 digits, no
// closing brace, beyond U+10FFFF or a surrogate), an escape of something
// String keeps as it is (\x41, \u{00e9}, \xc3\xa9 forming valid UTF-8),
// or a character String would have escaped standing unescaped (a raw
// control, invalid UTF-8).
func Unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		if i := firstEscape(s); i < len(s) {
			return "", fmt.Errorf("byte %d: unescaped %s: %w", i, describe(s[i:]), ErrEscape)
		}
		return s, nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			r, size := utf8.DecodeRuneInString(s[i:])
			if c < 0x20 || c == 0x7f || r == utf8.RuneError && size == 1 || c >= utf8.RuneSelf && escapedRune(r) {
				return "", fmt.Errorf("byte %d: unescaped %s: %w", i, describe(s[i:]), ErrEscape)
			}
			out = append(out, s[i:i+size]...)
			i += size
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("byte %d: backslash at the end: %w", i, ErrEscape)
		}
		switch s[i+1] {
		case '\\':
			out = append(out, '\\')
			i += 2
		case 'x':
			if i+4 > len(s) || !isLowerHex(s[i+2]) || !isLowerHex(s[i+3]) {
				return "", fmt.Errorf("byte %d: \\x needs two lower-case hex digits: %w", i, ErrEscape)
			}
			v := unhex(s[i+2])<<4 | unhex(s[i+3])
			if v >= 0x20 && v < 0x7f {
				return "", fmt.Errorf("byte %d: \\x%s escapes a printable character: %w", i, s[i+2:i+4], ErrEscape)
			}
			out = append(out, v)
			i += 4
		case 'u':
			end := strings.IndexByte(s[i:], '}')
			if i+3 > len(s) || s[i+2] != '{' || end < 0 {
				return "", fmt.Errorf("byte %d: \\u needs {hex digits}: %w", i, ErrEscape)
			}
			digits := s[i+3 : i+end]
			r, ok := parseRuneHex(digits)
			if !ok {
				return "", fmt.Errorf("byte %d: \\u{%s}: want 4 to 6 lower-case hex digits, no extra leading zeros, a code point: %w", i, describe(digits), ErrEscape)
			}
			if !escapedRune(r) {
				return "", fmt.Errorf("byte %d: \\u{%s} escapes a character kept as it is: %w", i, digits, ErrEscape)
			}
			out = utf8.AppendRune(out, r)
			i += end + 1
		default:
			return "", fmt.Errorf("byte %d: unknown escape \\%s: %w", i, describe(s[i+1:]), ErrEscape)
		}
	}
	// \xNN escapes of bytes >= 0x80 stand for bytes that are not valid
	// UTF-8 where they are; escaping the result again must give s back,
	// or some of them (\xc3\xa9) spell a character String keeps.
	if again, _ := appendEscaped(make([]byte, 0, len(s)), string(out), 0, -1); string(again) != s {
		return "", fmt.Errorf("\\x escapes spell valid UTF-8, which is kept as it is: %w", ErrEscape)
	}
	return string(out), nil
}

// describe quotes the first character of s for an error message, itself
// escaped.
func describe(s string) string {
	_, size := utf8.DecodeRuneInString(s)
	return fmt.Sprintf("%q", String(s[:size]))
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// parseRuneHex parses the digits of a \u{...} escape as String writes
// them: 4 to 6 lower-case hex digits, more than 4 only without a leading
// zero, a valid code point that is not a surrogate.
func parseRuneHex(d string) (rune, bool) {
	if len(d) < 4 || len(d) > 6 || len(d) > 4 && d[0] == '0' {
		return 0, false
	}
	var r rune
	for i := 0; i < len(d); i++ {
		if !isLowerHex(d[i]) {
			return 0, false
		}
		r = r<<4 | rune(unhex(d[i]))
	}
	if r > utf8.MaxRune || r >= 0xd800 && r <= 0xdfff {
		return 0, false
	}
	return r, true
}
