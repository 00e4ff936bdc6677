package config

import "bytes"

// splitList is approved.usb found in the text of a config file: the
// document with the list's lines blanked, and where each item is.
type splitList struct {
	// doc is the file with the lines of the list's items left empty
	// (line numbers are kept), so that approved.usb reads as null.
	doc []byte
	// keyLine and keyCol are where the "usb:" key is (1-based).
	keyLine, keyCol int
	items           []splitItem
}

// splitItem is one item of the list: the bytes of its lines in the
// file, starting with the indentation of its "- ", and its first line.
type splitItem struct {
	start, end int
	line       int
}

// splitApproved finds approved.usb in data when the file writes it in
// the plain shape people write it in:
//
//	approved:
//	  usb:
//	    - name: ...
//	      vendor_id: ...
//	    - ...
//
// ("approved:" at the start of a line, "usb:" alone on its line one level
// in, the items in block style, each starting with "- " at one
// indentation). It returns nil for any other shape, for a file with
// document markers or directives, and for one that uses tabs or lone CRs
// near the list; the caller then reads the file as a whole.
func splitApproved(data []byte) *splitList {
	if bytes.Contains(data, []byte("\r")) && bytes.Count(data, []byte("\r")) != bytes.Count(data, []byte("\r\n")) {
		return nil
	}
	const (
		findApproved = iota
		findUSB
		firstItem
		inItems
		after
	)
	var (
		s         splitList
		phase     = findApproved
		k, j      int // indentation of approved's keys and of the items
		regionOff int // where the items start
		regionEnd = -1
	)
	line := 0
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end < 0 {
			end = len(data)
		} else {
			end += off
			next = end + 1
		}
		line++
		text := bytes.TrimRight(data[off:end], "\r")
		indent := 0
		for indent < len(text) && text[indent] == ' ' {
			indent++
		}
		rest := text[indent:]
		blank := len(rest) == 0 || rest[0] == '#'
		if !blank && rest[0] == '\t' && phase != findApproved && phase != after {
			return nil
		}
		if !blank && indent == 0 && (bytes.HasPrefix(rest, []byte("---")) || bytes.HasPrefix(rest, []byte("...")) || rest[0] == '%') {
			return nil
		}
		switch phase {
		case findApproved:
			if !blank && indent == 0 && keyOnly(rest, "approved") {
				phase = findUSB
			}
		case findUSB:
			switch {
			case blank:
			case indent == 0:
				return nil
			case k == 0:
				k = indent
				fallthrough
			case indent == k:
				if keyOnly(rest, "usb") {
					s.keyLine, s.keyCol = line, indent+1
					phase = firstItem
				}
			}
		case firstItem:
			if blank {
				break
			}
			if indent < k || !isItem(rest) {
				return nil
			}
			j = indent
			regionOff = off
			s.items = append(s.items, splitItem{start: off, line: line})
			phase = inItems
		case inItems:
			if blank || indent > j {
				break
			}
			if indent == j && isItem(rest) {
				s.items[len(s.items)-1].end = off
				s.items = append(s.items, splitItem{start: off, line: line})
				break
			}
			if indent > k && indent < j || indent == j && j > k {
				return nil
			}
			regionEnd = off
			phase = after
		case after:
			if !blank && indent == 0 && keyOnly(rest, "approved") {
				return nil
			}
		}
		off = next
	}
	if phase != inItems && phase != after {
		return nil
	}
	if regionEnd < 0 {
		regionEnd = len(data)
	}
	s.items[len(s.items)-1].end = regionEnd
	n := bytes.Count(data[regionOff:regionEnd], []byte("\n"))
	doc := make([]byte, 0, len(data)-(regionEnd-regionOff)+n)
	doc = append(doc, data[:regionOff]...)
	for range n {
		doc = append(doc, '\n')
	}
	s.doc = append(doc, data[regionEnd:]...)
	return &s
}

// keyOnly reports whether text is "key:" alone, maybe with a comment.
func keyOnly(text []byte, key string) bool {
	rest, ok := bytes.CutPrefix(text, []byte(key+":"))
	if !ok {
		return false
	}
	if len(rest) == 0 {
		return true
	}
	if rest[0] != ' ' && rest[0] != '\t' {
		return false
	}
	rest = bytes.TrimLeft(rest, " \t")
	return len(rest) == 0 || rest[0] == '#'
}

// isItem reports whether text starts a block sequence item.
func isItem(text []byte) bool {
	return text[0] == '-' && (len(text) == 1 || text[1] == ' ')
}
