// Package fileerr is the error of a file read by mamori or mamori-hub (a
// config, an approved list, a ledger) at a position in it: "file:line:col:
// msg", and the list of every such problem in one file.
package fileerr

import (
	"fmt"
	"strconv"
	"strings"
)

// Error is one problem in a file, at a position in it. Line and
// Column are 1-based; 0 means unknown, and Error leaves the part out.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

// Error returns "file:line:col: msg" ("file:line: msg" when the column is
// unknown, "file: msg" when the line is too).
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// maxErrorLines is how many errors ErrorList.Error spells out.
const maxErrorLines = 50

// ErrorList is every problem found in one file, in file order. Parsers
// return it (never empty) when a file is invalid; errors.As(err,
// new(*Error)) finds the first problem.
type ErrorList []*Error

// Error returns one problem per line, at most 50 of them followed by a
// count of the rest.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i == maxErrorLines {
			fmt.Fprintf(&b, "\n(and %d more errors)", len(l)-i)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}
