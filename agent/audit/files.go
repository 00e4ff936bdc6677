package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/mamori-agent/mamori/internal/fsguard"
)

// File names inside the state directory.
const (
	// CurrentName is the file records are appended to.
	CurrentName = "audit.jsonl"
	// HeadName is the file holding the seq and hash of a recent record.
	HeadName = "audit.head"
	lockName = "audit.lock"
)

const (
	rotatedPrefix = "audit-"
	rotatedSuffix = ".jsonl"
	seqDigits     = 20
)

var errLineTooLong = fmt.Errorf("line longer than %d bytes", MaxLineSize)

// rotatedName is the name a file whose first record has seq firstSeq gets
// when it is rotated out. Zero-padding makes names sort in seq order.
func rotatedName(firstSeq uint64) string {
	return fmt.Sprintf("%s%0*d%s", rotatedPrefix, seqDigits, firstSeq, rotatedSuffix)
}

// parseRotatedName returns the first seq a rotated file name states.
func parseRotatedName(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, rotatedPrefix)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, rotatedSuffix)
	if !ok || len(s) != seqDigits {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// rotatedFile is one rotated-out file of the log.
type rotatedFile struct {
	name     string
	firstSeq uint64 // as its name states
}

// listRotated returns the rotated files in dir in seq order.
func listRotated(dir string) ([]rotatedFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	var out []rotatedFile
	for _, e := range entries {
		if seq, ok := parseRotatedName(e.Name()); ok {
			out = append(out, rotatedFile{e.Name(), seq})
		}
	}
	// ReadDir sorts by name, and equal-width names sort by seq; sort
	// anyway so the order does not rest on that.
	slices.SortFunc(out, func(a, b rotatedFile) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// readLine returns the next line from br without its newline, or io.EOF
// when nothing is left. complete is false for a final line that has no
// newline. A line longer than MaxLineSize (newline included) gives
// errLineTooLong. The returned slice is valid until the next call.
func readLine(br *bufio.Reader, buf *[]byte) (line []byte, complete bool, err error) {
	frag, err := br.ReadSlice('\n')
	if err == nil {
		if len(frag) > MaxLineSize {
			return nil, false, errLineTooLong
		}
		return frag[:len(frag)-1], true, nil
	}
	b := (*buf)[:0]
	for {
		if len(b)+len(frag) > MaxLineSize {
			return nil, false, errLineTooLong
		}
		b = append(b, frag...)
		*buf = b
		switch err {
		case nil:
			return b[:len(b)-1], true, nil
		case bufio.ErrBufferFull:
		case io.EOF:
			if len(b) == 0 {
				return nil, false, io.EOF
			}
			return b, false, nil
		default:
			return nil, false, err
		}
		frag, err = br.ReadSlice('\n')
	}
}

const scanChunk = 64 << 10

// tornStart returns the offset just past the last newline in the first
// size bytes of r (0 when there is none): the bytes from there on are a
// line whose write never completed.
func tornStart(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, scanChunk)
	for end := size; end > 0; {
		n := min(int64(len(buf)), end)
		b := buf[:n]
		if _, err := r.ReadAt(b, end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// lastLine returns the last line of the first size bytes of r, which end
// in a newline, without that newline (nil when size is 0).
func lastLine(r io.ReaderAt, size int64) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	var b []byte
	end := size - 1 // the final newline
	if b1 := make([]byte, 1); true {
		if _, err := r.ReadAt(b1, end); err != nil {
			return nil, err
		}
		if b1[0] != '\n' {
			return nil, errors.New("file does not end with a newline")
		}
	}
	for pos := end; pos > 0; {
		n := min(scanChunk, pos)
		chunk := make([]byte, n)
		if _, err := r.ReadAt(chunk, pos-n); err != nil {
			return nil, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			b = append(chunk[i+1:], b...)
			break
		}
		b = append(chunk, b...)
		pos -= n
		if len(b) >= MaxLineSize {
			return nil, errLineTooLong
		}
	}
	if len(b) >= MaxLineSize {
		return nil, errLineTooLong
	}
	return b, nil
}

// firstLine returns the first line of r without its newline.
func firstLine(r io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(r, scanChunk)
	var buf []byte
	line, _, err := readLine(br, &buf)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(line), nil
}

// readLastRecord parses the last line of the named file, which must end in
// a newline.
func readLastRecord(path string) (parsed, error) {
	f, err := openRegular(path, os.O_RDONLY)
	if err != nil {
		return parsed{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return parsed{}, fmt.Errorf("stat %s: %w", path, err)
	}
	line, err := lastLine(f, fi.Size())
	if err != nil {
		return parsed{}, fmt.Errorf("read last record of %s: %w", path, err)
	}
	if line == nil {
		return parsed{}, fmt.Errorf("%s is empty", path)
	}
	p, err := parseLine(line)
	if err != nil {
		return parsed{}, fmt.Errorf("last record of %s: %w", path, err)
	}
	return p, nil
}

// errNotRegular is wrapped by openFile's error for a path that holds a
// symlink, FIFO, device, directory or socket instead of a regular file.
var errNotRegular = fsguard.ErrNotRegular

// openFile opens one of this package's files (fsguard.OpenFile: no
// symlink followed, no FIFO waited on, a regular file or an error).
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	return fsguard.OpenFile(path, flag, perm)
}

// openRegular opens an existing regular file; see openFile.
func openRegular(path string, flag int) (*os.File, error) {
	return openFile(path, flag&^(os.O_CREATE|os.O_EXCL|os.O_TRUNC), 0)
}

// openOrCreate opens the regular file at path, or creates it (O_EXCL, mode
// 0600) when there is none. created says which.
func openOrCreate(path string, flag int) (f *os.File, created bool, err error) {
	for range 3 {
		f, err = openRegular(path, flag)
		if !errors.Is(err, fs.ErrNotExist) {
			return f, false, err
		}
		f, err = openFile(path, flag|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, err == nil, err
		}
		// Created by someone else meanwhile: open that one.
	}
	return nil, false, err
}

// tornPrefix starts the names of side files holding torn tails.
const tornPrefix = CurrentName + ".torn-"

// tornFiles returns the names of the torn-tail side files in dir: traces
// that the log held (or was writing) records.
func tornFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tornPrefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
