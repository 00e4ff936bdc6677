package media

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"

	"github.com/mamori-agent/mamori/internal/safe"
)

// Labels come off the medium in whatever encoding the machine that wrote
// them used: DOS code-page bytes in FAT, UTF-16 in NTFS, exFAT, f2fs,
// Joliet and UDF, (usually) UTF-8 in ext, btrfs, xfs, swap and LUKS2. They
// are decoded here, and what does not decode is kept losslessly, never
// replaced by U+FFFD (two different labels must never read the same):
//
//   - a byte that is not part of a valid character becomes \xNN, as udev's
//     ID_FS_LABEL_ENC writes it;
//   - a UTF-16 surrogate without its pair becomes \u{dNNN};
//   - decoded text goes through safe.String, which escapes controls,
//     terminal escapes and bidirectional overrides in the same notation.

// labelBuilder assembles a label from decoded text and escapes of
// undecodable units. Text is passed through safe.String a run at a time;
// the escapes it writes itself are already safe and are not escaped again.
type labelBuilder struct {
	out  strings.Builder
	text []byte
	cut  bool
}

func (l *labelBuilder) addText(b []byte) { l.text = append(l.text, b...) }

func (l *labelBuilder) addRune(r rune) { l.text = utf8.AppendRune(l.text, r) }

func (l *labelBuilder) addByteEscape(c byte) { l.addEscape(fmt.Sprintf(`\x%02x`, c)) }

func (l *labelBuilder) addEscape(e string) {
	l.flush()
	if l.out.Len()+len(e) > safe.MaxLen {
		l.cut = true
		return
	}
	if !l.cut {
		l.out.WriteString(e)
	}
}

func (l *labelBuilder) flush() {
	if len(l.text) == 0 {
		return
	}
	s := safe.String(string(l.text))
	l.text = l.text[:0]
	if l.cut {
		return
	}
	if l.out.Len()+len(s) > safe.MaxLen {
		// Cut at a rune boundary; safe.String's own output is valid UTF-8.
		room := safe.MaxLen - l.out.Len()
		for room > 0 && !utf8.RuneStart(s[room]) {
			room--
		}
		s = strings.TrimSuffix(s[:room], "…")
		l.cut = true
	}
	l.out.WriteString(s)
}

func (l *labelBuilder) String() string {
	l.flush()
	if l.cut {
		return l.out.String() + "…"
	}
	return l.out.String()
}

// utf8Label reads b as UTF-8: valid characters are kept (and sanitised),
// every byte of an invalid sequence becomes \xNN.
func utf8Label(b []byte) string {
	var l labelBuilder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			l.addByteEscape(b[0])
			b = b[1:]
			continue
		}
		l.addText(b[:n])
		b = b[n:]
	}
	return l.String()
}

// utf16Label decodes UTF-16 units (trailing NULs dropped): a surrogate pair
// is one character, an unpaired surrogate becomes \u{dNNN}.
func utf16Label(u []uint16) string {
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	var l labelBuilder
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case utf16.IsSurrogate(rune(c)):
			if c < 0xDC00 && i+1 < len(u) && u[i+1] >= 0xDC00 && u[i+1] <= 0xDFFF {
				l.addRune(utf16.DecodeRune(rune(c), rune(u[i+1])))
				i++
				continue
			}
			l.addEscape(fmt.Sprintf(`\u{%04x}`, c))
		default:
			l.addRune(rune(c))
		}
	}
	return l.String()
}

func utf16LELabel(b []byte) string { return utf16Label(utf16Units(b, false)) }

func utf16BELabel(b []byte) string { return utf16Label(utf16Units(b, true)) }

func utf16Units(b []byte, bigEndian bool) []uint16 {
	u := make([]uint16, len(b)/2)
	for i := range u {
		if bigEndian {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		} else {
			u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
		}
	}
	return u
}

// codePageEncoding returns the decoder of a DOS/Windows code page as the
// Linux vfat "codepage=" mount option and Windows name it (437, 850, 932,
// ...), or nil when it is unknown here.
func codePageEncoding(cp int) encoding.Encoding {
	switch cp {
	case 437:
		return charmap.CodePage437
	case 850:
		return charmap.CodePage850
	case 852:
		return charmap.CodePage852
	case 855:
		return charmap.CodePage855
	case 858:
		return charmap.CodePage858
	case 860:
		return charmap.CodePage860
	case 862:
		return charmap.CodePage862
	case 863:
		return charmap.CodePage863
	case 865:
		return charmap.CodePage865
	case 866:
		return charmap.CodePage866
	case 874:
		return charmap.Windows874
	case 932:
		return japanese.ShiftJIS // Windows' CP932 table
	case 936:
		return simplifiedchinese.GBK
	case 949:
		return korean.EUCKR // with the Unified Hangul Code extension of CP949
	case 950:
		return traditionalchinese.Big5
	case 1250:
		return charmap.Windows1250
	case 1251:
		return charmap.Windows1251
	case 1252:
		return charmap.Windows1252
	case 1253:
		return charmap.Windows1253
	case 1254:
		return charmap.Windows1254
	case 1255:
		return charmap.Windows1255
	case 1256:
		return charmap.Windows1256
	case 1257:
		return charmap.Windows1257
	case 1258:
		return charmap.Windows1258
	}
	return nil
}

// KnownCodePage reports whether labels in DOS code page cp can be decoded.
func KnownCodePage(cp int) bool { return codePageEncoding(cp) != nil }

// CodePageForLanguage returns the DOS (OEM) code page Windows uses for FAT
// names in a language ("ja" -> 932, "de" -> 850, "en" -> 437), or 0 when
// there is none known here. lang is a BCP 47 tag or a POSIX locale
// ("ja_JP.UTF-8"); only the language and, for Chinese, the script or
// region matter.
func CodePageForLanguage(lang string) int {
	lang = strings.ToLower(lang)
	if i := strings.IndexAny(lang, ".@"); i >= 0 {
		lang = lang[:i]
	}
	lang = strings.ReplaceAll(lang, "_", "-")
	base, rest, _ := strings.Cut(lang, "-")
	switch base {
	case "ja":
		return 932
	case "zh":
		switch {
		case strings.Contains(rest, "hant"), strings.HasPrefix(rest, "tw"), strings.HasPrefix(rest, "hk"), strings.HasPrefix(rest, "mo"):
			return 950
		}
		return 936
	case "ko":
		return 949
	case "th":
		return 874
	case "en":
		return 437
	case "de", "fr", "es", "it", "pt", "nl", "da", "sv", "fi", "is", "ca", "eu", "gl", "id", "ms", "af":
		return 850
	case "nb", "nn", "no":
		return 865
	case "pl", "cs", "sk", "hu", "sl", "hr", "ro", "sq", "bs", "sr-latn":
		return 852
	case "ru", "uk", "be", "bg":
		return 866
	case "he":
		return 862
	}
	return 0
}

// parseCodePage reads the value of a vfat "codepage=" option ("932",
// "cp932"), or 0.
func parseCodePage(s string) int {
	s = strings.TrimPrefix(strings.ToLower(s), "cp")
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 65535 {
		return 0
	}
	return n
}

// codePageLabel decodes b (a FAT name, trailing spaces already trimmed) in
// code page cp. A byte that does not start a character of the code page
// (a lone DBCS lead byte, an unassigned byte) becomes \xNN; with a code
// page not known here, b is read as UTF-8 in the same lossless way.
func codePageLabel(b []byte, cp int) string {
	enc := codePageEncoding(cp)
	if enc == nil {
		return utf8Label(b)
	}
	dec := enc.NewDecoder()
	var l labelBuilder
	for i := 0; i < len(b); {
		if b[i] < 0x80 {
			l.addText(b[i : i+1])
			i++
			continue
		}
		n := decodeOne(dec, b[i:])
		if n == 0 {
			l.addByteEscape(b[i])
			i++
			continue
		}
		out, _ := dec.Bytes(b[i : i+n])
		l.addText(out)
		i += n
	}
	return l.String()
}

// decodeOne returns how many bytes (1 or 2: every code page here is single
// or double byte) at the start of b make exactly one character other than
// U+FFFD, or 0.
func decodeOne(dec *encoding.Decoder, b []byte) int {
	for n := 1; n <= 2 && n <= len(b); n++ {
		out, err := dec.Bytes(b[:n])
		if err != nil {
			continue
		}
		r, size := utf8.DecodeRune(out)
		if size == len(out) && size > 0 && r != utf8.RuneError {
			return n
		}
	}
	return 0
}

// trimFATName drops the padding of an 11-byte FAT name: trailing spaces
// (and NULs, which some tools write).
func trimFATName(b []byte) []byte { return bytes.TrimRight(b, " \x00") }
