package config

import (
	"bytes"
	"unicode/utf8"
)

// fastRaw reads item i of approved.usb, the bytes of its lines in
// p.data, without yaml.v3, when the item has the shape nearly every item
// has: a block mapping of one "key: value" per line, the values plain,
// 'single' or "double" quoted on one line, classes a flow list of words,
// comments anywhere:
//
//	usb:
//	  - name: Stick 1        # a comment
//	    vendor_id: "0951"
//	    classes: [hid, audio]
//
// It returns false (and records nothing) for anything else, and for every
// item on which the yaml.v3 path would record a problem before checking
// the values (unknown or duplicate keys, null values, control characters,
// anchors, tags, ...): the caller then reads the item with yaml.v3, so
// that such errors stay exactly those of yaml.v3. When it returns true,
// r is what yamlRaw would make of the item and yamlRaw would record no
// error. FuzzFastEntry checks this.
//
// The values in r may alias scratch memory of p (the class list); they
// are only valid until the next call.
func (p *parser) fastRaw(i int, it splitItem, r *rawEntry) bool {
	*r = rawEntry{index: i, line: it.line}
	text := p.data[it.start:it.end]
	line := it.line
	col := 0        // 0-based column of the mapping's keys
	var seen uint16 // keys read, by bit
	p.classBuf = p.classBuf[:0]
	for first := true; len(text) > 0; first = false {
		var l []byte
		if nl := bytes.IndexByte(text, '\n'); nl >= 0 {
			l, text = text[:nl], text[nl+1:]
		} else {
			l, text = text, nil
		}
		// splitApproved lets through only CRs that end a line.
		l = bytes.TrimSuffix(l, []byte("\r"))
		if !safeLine(l) {
			return false
		}
		ind := 0
		for ind < len(l) && l[ind] == ' ' {
			ind++
		}
		if first {
			// "- " and the first key; splitApproved found the "-".
			if ind >= len(l) || l[ind] != '-' {
				return false
			}
			c := ind + 1
			for c < len(l) && l[c] == ' ' {
				c++
			}
			if c == ind+1 {
				return false
			}
			col = c
			r.col = c + 1
		} else {
			if ind == len(l) || l[ind] == '#' {
				line++
				continue
			}
			if ind != col {
				return false
			}
		}
		k, ok := p.fastPair(r, l, col, line)
		if !ok || seen&(1<<k) != 0 {
			return false
		}
		seen |= 1 << k
		line++
	}
	if seen&(1<<kClasses) != 0 {
		r.classes = p.classBuf
	}
	return seen != 0
}

// safeLine reports whether l holds none of what fastRaw leaves to yaml.v3
// wherever it is: tabs, and the characters YAML reads as line breaks
// (NEL, LS, PS) or skips (a BOM).
func safeLine(l []byte) bool {
	for i, c := range l {
		switch c {
		case '\t':
			return false
		case 0xc2:
			if i+1 < len(l) && l[i+1] == 0x85 {
				return false
			}
		case 0xe2:
			if i+2 < len(l) && l[i+1] == 0x80 && (l[i+2] == 0xa8 || l[i+2] == 0xa9) {
				return false
			}
		case 0xef:
			if i+2 < len(l) && l[i+1] == 0xbb && l[i+2] == 0xbf {
				return false
			}
		}
	}
	return true
}

// fastPair reads the "key: value" at column c of l, the line'th line,
// into r and returns the key's index.
func (p *parser) fastPair(r *rawEntry, l []byte, c, line int) (int, bool) {
	e := c
	for e < len(l) && (l[e] >= 'a' && l[e] <= 'z' || l[e] == '_') {
		e++
	}
	k := entryKey(l[c:e])
	if k < 0 || e+1 >= len(l) || l[e] != ':' || l[e+1] != ' ' {
		return 0, false
	}
	v := e + 1
	for v < len(l) && l[v] == ' ' {
		v++
	}
	if v == len(l) {
		return 0, false
	}
	at := val{line: line, col: v + 1, set: true}
	if k == kClasses {
		if l[v] != '[' || !p.fastClasses(l, v, line) {
			return 0, false
		}
		r.vals[k] = at
		return k, true
	}
	var s string
	var end int
	switch ch := l[v]; {
	case ch == '"':
		s, end = doubleQuoted(l, v)
	case ch == '\'':
		s, end = singleQuoted(l, v)
	case ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch >= 0x80:
		s, end = plainValue(l, v)
		if isNullWord(s) {
			return 0, false
		}
	default:
		return 0, false
	}
	if end < 0 || !restIsComment(l, end) || len(s) > maxStringLen || !isPlainText(s) {
		return 0, false
	}
	at.s = s
	r.vals[k] = at
	return k, true
}

// entryKey returns the index of key b in entryKeys, or -1.
func entryKey(b []byte) int {
	switch string(b) {
	case "name":
		return kName
	case "vendor_id":
		return kVendor
	case "product_id":
		return kProduct
	case "serial":
		return kSerial
	case "port":
		return kPort
	case "classes":
		return kClasses
	case "owner":
		return kOwner
	case "approved_by":
		return kApprovedBy
	case "valid_from":
		return kFrom
	case "valid_until":
		return kUntil
	case "require_encryption":
		return kEncryption
	}
	return -1
}

// isNullWord reports whether a plain scalar is null in YAML (the empty
// and "~" cannot reach here).
func isNullWord(s string) bool {
	return s == "null" || s == "Null" || s == "NULL"
}

// restIsComment reports whether l from i on is blank or a comment after
// at least one space.
func restIsComment(l []byte, i int) bool {
	if i == len(l) {
		return true
	}
	if l[i] != ' ' {
		return false
	}
	for i < len(l) && l[i] == ' ' {
		i++
	}
	return i == len(l) || l[i] == '#'
}

// plainValue reads the plain scalar starting at l[v] to the end of the
// line or a comment, and returns it and where it ends; -1 when it is not
// one plain scalar (": " in it makes it a key).
func plainValue(l []byte, v int) (string, int) {
	end := len(l)
	for i := v + 1; i < len(l); i++ {
		if l[i] == '#' && l[i-1] == ' ' {
			end = i
			break
		}
	}
	for i := v; i < end; i++ {
		if l[i] == ':' && (i+1 == end || l[i+1] == ' ') {
			return "", -1
		}
	}
	for end > v && l[end-1] == ' ' {
		end--
	}
	return string(l[v:end]), end
}

// singleQuoted reads the single-quoted scalar starting at l[v], on one
// line, and returns it and the index after its closing quote (-1 when it
// does not close on the line).
func singleQuoted(l []byte, v int) (string, int) {
	i := v + 1
	j := bytes.IndexByte(l[i:], '\'')
	if j < 0 {
		return "", -1
	}
	if i+j+1 >= len(l) || l[i+j+1] != '\'' {
		return string(l[i : i+j]), i + j + 1 // no '' in it
	}
	var b []byte
	for i < len(l) {
		switch c := l[i]; {
		case c != '\'':
			b = append(b, c)
			i++
		case i+1 < len(l) && l[i+1] == '\'':
			b = append(b, '\'')
			i += 2
		default:
			return string(b), i + 1
		}
	}
	return "", -1
}

// doubleQuoted reads the double-quoted scalar starting at l[v], on one
// line, unescaping as yaml.v3 does, and returns it and the index after
// its closing quote (-1 when it does not close on the line or holds an
// escape yaml.v3 refuses).
func doubleQuoted(l []byte, v int) (string, int) {
	i := v + 1
	start := i
	for i < len(l) && l[i] != '"' && l[i] != '\\' {
		i++
	}
	if i == len(l) {
		return "", -1
	}
	if l[i] == '"' {
		return string(l[start:i]), i + 1
	}
	b := append([]byte(nil), l[start:i]...)
	for i < len(l) {
		c := l[i]
		if c == '"' {
			return string(b), i + 1
		}
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(l) {
			return "", -1 // an escaped line break
		}
		n := 0
		switch l[i+1] {
		case '0':
			b = append(b, 0)
		case 'a':
			b = append(b, '\a')
		case 'b':
			b = append(b, '\b')
		case 't':
			b = append(b, '\t')
		case 'n':
			b = append(b, '\n')
		case 'v':
			b = append(b, '\v')
		case 'f':
			b = append(b, '\f')
		case 'r':
			b = append(b, '\r')
		case 'e':
			b = append(b, 0x1b)
		case ' ', '"', '\'', '\\':
			b = append(b, l[i+1])
		case 'N':
			b = utf8.AppendRune(b, 0x85)
		case '_':
			b = utf8.AppendRune(b, 0xa0)
		case 'L':
			b = utf8.AppendRune(b, 0x2028)
		case 'P':
			b = utf8.AppendRune(b, 0x2029)
		case 'x':
			n = 2
		case 'u':
			n = 4
		case 'U':
			n = 8
		default:
			return "", -1
		}
		i += 2
		if n == 0 {
			continue
		}
		if i+n > len(l) {
			return "", -1
		}
		code := 0
		for _, h := range l[i : i+n] {
			d, ok := hexVal(h)
			if !ok {
				return "", -1
			}
			code = code<<4 | int(d)
		}
		if code >= 0xd800 && code <= 0xdfff || code > 0x10ffff {
			return "", -1
		}
		b = utf8.AppendRune(b, rune(code))
		i += n
	}
	return "", -1
}

// fastClasses reads the flow list of class names at l[v] ("[hid, audio]":
// words of letters, digits, '-' and '_' starting with a letter or digit)
// into p.classBuf.
func (p *parser) fastClasses(l []byte, v, line int) bool {
	i := v + 1
	for {
		for i < len(l) && l[i] == ' ' {
			i++
		}
		s := i
		for i < len(l) && (l[i] >= 'a' && l[i] <= 'z' || l[i] >= 'A' && l[i] <= 'Z' || l[i] >= '0' && l[i] <= '9' ||
			i > s && (l[i] == '-' || l[i] == '_')) {
			i++
		}
		if i == s || i-s > maxStringLen {
			return false
		}
		w := string(l[s:i])
		if isNullWord(w) {
			return false
		}
		p.classBuf = append(p.classBuf, val{s: w, line: line, col: s + 1, set: true})
		for i < len(l) && l[i] == ' ' {
			i++
		}
		if i == len(l) {
			return false
		}
		switch l[i] {
		case ',':
			i++
		case ']':
			return restIsComment(l, i+1)
		default:
			return false
		}
	}
}
