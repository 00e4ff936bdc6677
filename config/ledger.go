package config

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/transform"
	"golang.org/x/text/width"
)

// Encodings of ledgers (approved.usb_ledger_encoding).
//
// A ledger is a CSV file as Excel saves it: "CSV UTF-8" (UTF-8 with a
// byte order mark) or plain "CSV" on Japanese Windows (CP932, that is
// Shift_JIS with Microsoft's extensions). With LedgerAuto a ledger that
// starts with a UTF-8 byte order mark, or is valid UTF-8 throughout, is
// read as UTF-8, any other as CP932. LedgerUTF8 and LedgerCP932 force
// the encoding, except that a byte order mark always means UTF-8.
//
// The first row names the columns, in any order; each other row is one
// approved entry, checked by the same rules as an entry of approved.usb.
// Column names (English ones in any case, full-width letters and digits
// taken as ASCII):
//
//	name                 名称, 名前
//	vendor_id            ベンダーID, ベンダID
//	product_id           プロダクトID, 製品ID
//	serial               シリアル番号, シリアル
//	port                 ポート
//	classes              クラス
//	owner                責任者, 所有者
//	approved_by          承認者
//	valid_from           有効期間開始, 有効開始日, 開始日
//	valid_until          有効期間終了, 有効終了日, 終了日, 有効期限
//	require_encryption   暗号化必須, 暗号化
//
// A name column is required, the others are optional; a column named
// twice or a name not in the list is an error, and so is a column
// without a name unless all its cells are empty. Cells are trimmed of
// spaces; an empty cell leaves the field unset. classes holds several
// names separated by spaces, ";" or "," (or their full-width forms, or
// "、"); require_encryption is true/false (any case), 1/0, yes/no or
// ○/×. Rows whose cells are all empty are skipped. Every row has the
// header's number of cells.
//
// Errors name FILE:LINE:COLUMN, LINE the line of the file where the row
// (or cell) starts and COLUMN the cell's column number, 1 for column A.
const (
	LedgerAuto  = "auto"
	LedgerUTF8  = "utf-8"
	LedgerCP932 = "cp932"
)

// ledgerColumns maps the column names of a ledger to entry keys.
var ledgerColumns = func() map[string]int {
	m := map[string]int{}
	for k, name := range entryKeys {
		m[name] = k
	}
	for k, names := range map[int][]string{
		kName:       {"名称", "名前"},
		kVendor:     {"ベンダーid", "ベンダid"},
		kProduct:    {"プロダクトid", "製品id"},
		kSerial:     {"シリアル番号", "シリアル"},
		kPort:       {"ポート"},
		kClasses:    {"クラス"},
		kOwner:      {"責任者", "所有者"},
		kApprovedBy: {"承認者"},
		kFrom:       {"有効期間開始", "有効開始日", "開始日"},
		kUntil:      {"有効期間終了", "有効終了日", "終了日", "有効期限"},
		kEncryption: {"暗号化必須", "暗号化"},
	} {
		for _, n := range names {
			m[n] = k
		}
	}
	return m
}()

// columnKey returns the entry key a header cell names.
func columnKey(h string) (int, bool) {
	k, ok := ledgerColumns[strings.ToLower(width.Fold.String(strings.TrimSpace(h)))]
	return k, ok
}

// ledgerFile is an opened ledger; reading it twice needs Seek.
type ledgerFile interface {
	io.ReadSeeker
	io.Closer
}

// ledgerOpener opens a ledger file.
type ledgerOpener func(path string) (ledgerFile, error)

// openLedger opens a ledger on disk: a regular file of at most
// MaxLedgerSize bytes.
func openLedger(path string) (ledgerFile, error) {
	f, err := openRegular(path, "ledger", MaxLedgerSize)
	if err != nil {
		var l ErrorList
		if errors.As(err, &l) {
			return nil, l[0]
		}
		return nil, err
	}
	return f, nil
}

// ReadLedger reads and checks one ledger on its own (a regular file of at
// most MaxLedgerSize bytes), in the given encoding (LedgerAuto, LedgerUTF8
// or LedgerCP932). Problems are returned as an ErrorList, as from Load.
func ReadLedger(path, encoding string) ([]USBEntry, error) {
	st := newLoadState(openLedger)
	errs, err := st.readLedger(path, encoding, io.Discard)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return st.entries, nil
}

// utf8BOM starts a file Excel saves as "CSV UTF-8".
var utf8BOM = []byte("\xef\xbb\xbf")

// readLedger reads the ledger at path into st.entries and its bytes into
// h. err is set when the file cannot be read; the ErrorList holds the
// problems in it.
func (st *loadState) readLedger(path, encoding string, h io.Writer) (ErrorList, error) {
	f, err := st.open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// First pass: count the lines (to size the list) and, unless the
	// encoding is forced, tell UTF-8 from CP932.
	lines, bom, isUTF8, size, err := scanLedger(f, encoding == LedgerAuto || encoding == "")
	if err != nil {
		return nil, err
	}
	if size > MaxLedgerSize {
		return ErrorList{{File: path, Msg: fmt.Sprintf("file is larger than %d bytes", MaxLedgerSize)}}, nil
	}
	cp932 := !bom && (encoding == LedgerCP932 || (encoding == LedgerAuto || encoding == "") && !isUTF8)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	p := &parser{file: path, st: st}
	st.grow(lines)
	cr := &countingReader{r: io.LimitReader(f, MaxLedgerSize+1)}
	br := bufio.NewReaderSize(io.TeeReader(cr, h), 64<<10)
	if b, _ := br.Peek(3); bytes.Equal(b, utf8BOM) {
		br.Discard(3)
	}
	var src io.Reader = br
	if cp932 {
		src = transform.NewReader(br, japanese.ShiftJIS.NewDecoder())
	}
	p.readRows(src, cp932)
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, err
	}
	if cr.n > MaxLedgerSize {
		return ErrorList{{File: path, Msg: fmt.Sprintf("file is larger than %d bytes", MaxLedgerSize)}}, nil
	}
	p.sortErrors()
	return p.errs, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// scanLedger reads f once, up to one byte past MaxLedgerSize: its number
// of lines, whether it starts with a byte order mark, whether (when
// check) it is valid UTF-8, and its size.
func scanLedger(f io.Reader, check bool) (lines int, bom, valid bool, size int64, err error) {
	r := io.LimitReader(f, MaxLedgerSize+1)
	buf := make([]byte, 64<<10)
	carry := 0
	valid = true
	first := true
	for {
		n, rerr := io.ReadFull(r, buf[carry:])
		data := buf[:carry+n]
		size += int64(n)
		if first && len(data) >= 3 {
			bom = bytes.Equal(data[:3], utf8BOM)
			first = false
		}
		lines += bytes.Count(data[carry:], []byte{'\n'})
		eof := rerr != nil
		cut := len(data)
		if !eof {
			// Leave an incomplete rune at the end for the next chunk.
			for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax; i-- {
				if utf8.RuneStart(data[i]) {
					if !utf8.FullRune(data[i:]) {
						cut = i
					}
					break
				}
			}
		}
		if check && valid && !utf8.Valid(data[:cut]) {
			valid = false
		}
		carry = copy(buf, data[cut:])
		if eof {
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				rerr = nil
			}
			return lines + 1, bom, valid, size, rerr
		}
	}
}

// readRows reads the header and the rows of a ledger.
func (p *parser) readRows(src io.Reader, cp932 bool) {
	cr := csv.NewReader(src)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	rec, err := cr.Read()
	if errors.Is(err, io.EOF) {
		p.errAt(1, 1, "the ledger is empty: its first row must name the columns (name, vendor_id, ...)")
		return
	}
	if err != nil {
		p.csvError(err)
		return
	}
	var header [numEntryKeys]string
	cols := make([]int, len(rec)) // entry key of each column, -1 when it has no name
	headerLine, _ := cr.FieldPos(0)
	for i, cell := range rec {
		name := strings.TrimSpace(cell)
		if msg := checkCell(name, cp932); msg != "" {
			p.errAt(headerLine, i+1, "column name: %s", msg)
			continue
		}
		cols[i] = -1
		if name == "" {
			continue
		}
		k, ok := columnKey(name)
		if !ok {
			p.errAt(headerLine, i+1, "unknown column %q%s", name, suggestColumn(name))
			continue
		}
		if header[k] != "" {
			p.errAt(headerLine, i+1, "column %q names the same field as column %q (%s)", name, header[k], entryKeys[k])
			continue
		}
		header[k] = strings.Clone(name)
		cols[i] = k
	}
	if len(p.errs) == 0 && header[kName] == "" {
		p.errAt(headerLine, 0, "no name column (名称): every entry needs a name")
	}
	if len(p.errs) > 0 {
		return
	}
	var r rawEntry
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			p.csvError(err)
			return
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(cols) {
			p.errAt(line, 0, "the row has %d cells, the header %d", len(rec), len(cols))
			continue
		}
		r = rawEntry{line: line, col: 1, header: &header, ledger: true}
		empty, ok := true, true
		for i, cell := range rec {
			cell = strings.TrimSpace(cell)
			if cell == "" {
				continue
			}
			empty = false
			cl, _ := cr.FieldPos(i)
			k := cols[i]
			if msg := checkCell(cell, cp932); msg != "" {
				p.errAt(cl, i+1, "%s%s", prefix(columnLabel(&header, k)), msg)
				ok = false
				if k >= 0 {
					r.vals[k] = val{line: cl, col: i + 1, set: true, bad: true}
				}
				continue
			}
			if k < 0 {
				p.errAt(cl, i+1, "the column has no name in the header row")
				ok = false
				continue
			}
			r.vals[k] = val{s: cell, line: cl, col: i + 1, set: true}
			if k == kClasses {
				for c := range strings.FieldsFuncSeq(cell, isClassSep) {
					r.classes = append(r.classes, val{s: c, line: cl, col: i + 1, set: true})
				}
			}
		}
		if empty {
			continue
		}
		// Name the cell of a missing name.
		for i, k := range cols {
			if k == kName && !r.vals[kName].set {
				r.vals[kName].line, r.vals[kName].col = line, i+1
			}
		}
		nerr := len(p.errs)
		e, _ := p.checkEntry(&r)
		p.add(&r, &e, ok && nerr == len(p.errs))
	}
}

// columnLabel names a column in messages.
func columnLabel(h *[numEntryKeys]string, k int) string {
	if k < 0 {
		return ""
	}
	return h[k]
}

// isClassSep separates the class names in a cell.
func isClassSep(r rune) bool {
	switch r {
	case ' ', ';', ',', '\u3000', '；', '，', '、':
		return true
	}
	return false
}

// checkCell returns why a cell is not acceptable, or "".
func checkCell(s string, cp932 bool) string {
	if len(s) > maxStringLen {
		return fmt.Sprintf("longer than %d bytes", maxStringLen)
	}
	if cp932 && strings.ContainsRune(s, utf8.RuneError) {
		return "not valid CP932 (Shift_JIS) text"
	}
	if msg := checkText(s); msg != "" {
		if !cp932 && msg == "not valid UTF-8" {
			return "not valid UTF-8 (save the ledger as \"CSV UTF-8\", or set approved.usb_ledger_encoding)"
		}
		return msg
	}
	return ""
}

// csvError records a CSV syntax error.
func (p *parser) csvError(err error) {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		p.errAt(pe.Line, 0, "CSV syntax error: %v", pe.Err)
		return
	}
	p.errAt(0, 0, "read: %v", err)
}

// suggestColumn is suggest for a ledger's column names.
func suggestColumn(name string) string {
	s := suggest(name, entryKeys)
	if strings.HasPrefix(s, " (known keys") {
		return " (known columns: " + strings.Join(entryKeys, ", ") + ", or their Japanese names 名称, ベンダーID, ...)"
	}
	return s
}
