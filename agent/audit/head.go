package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// head is the content of audit.head: the seq and hash of a record the log
// held when it was written.
type head struct {
	seq  uint64
	hash string
}

const (
	headSeqPrefix  = `{"seq":`
	headHashPrefix = `,"hash":"`
)

// marshal returns the file content for h.
func (h head) marshal() []byte {
	b := []byte(headSeqPrefix)
	b = strconv.AppendUint(b, h.seq, 10)
	b = append(b, headHashPrefix...)
	b = append(b, h.hash...)
	return append(b, '"', '}', '\n')
}

// parseHead reads the content of audit.head, exactly as marshal writes it.
func parseHead(b []byte) (head, error) {
	var h head
	rest, ok := bytes.CutPrefix(b, []byte(headSeqPrefix))
	if !ok {
		return h, fmt.Errorf("does not start with %s", headSeqPrefix)
	}
	i := bytes.IndexByte(rest, ',')
	if i <= 0 || i > 20 || (i > 1 && rest[0] == '0') || !isDigits(rest[:i]) {
		return h, errors.New("seq is not a decimal number")
	}
	seq, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil {
		return h, errors.New("seq is out of range")
	}
	rest, ok = bytes.CutPrefix(rest[i:], []byte(headHashPrefix))
	if !ok || len(rest) != HashLen+3 || !isHex(rest[:HashLen]) || string(rest[HashLen:]) != "\"}\n" {
		return h, errors.New(`hash is not 64 lower-case hex digits followed by "}`)
	}
	h.seq = seq
	h.hash = string(rest[:HashLen])
	return h, nil
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// readHead reads dir's head file. It returns ok false, and no error, when
// there is none.
func readHead(path string) (h head, ok bool, err error) {
	f, err := openRegular(path, os.O_RDONLY)
	if errors.Is(err, os.ErrNotExist) {
		return head{}, false, nil
	}
	if err != nil {
		return head{}, false, err
	}
	defer f.Close()
	b := make([]byte, 128) // a valid head is at most 104 bytes
	n, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return head{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	h, err = parseHead(b[:n])
	if err != nil {
		return head{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return h, true, nil
}
