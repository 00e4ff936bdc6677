package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxLineSize is the longest record line, newline included, that Append
// writes and Verify accepts. A longer line in a log is a broken record.
const MaxLineSize = 1 << 20

// HashLen is the length of a hash in hex digits.
const HashLen = 2 * sha256.Size

// ZeroHash is the prev_hash of the first record of a log.
var ZeroHash = strings.Repeat("0", HashLen)

const (
	seqPrefix  = `{"seq":`
	prevPrefix = `,"prev_hash":"`
	hashPrefix = `,"hash":"`
	// hashSuffixLen is the length of `,"hash":"<64 hex>"}`.
	hashSuffixLen = len(hashPrefix) + HashLen + len(`"}`)
)

// reserved are the keys the log writes itself; caller records must not use
// them, in any letter case (encoding/json matches keys case-insensitively).
var reserved = []string{"seq", "prev_hash", "hash"}

// computeHash returns hex(SHA-256(prevHash || content)).
func computeHash(prevHash string, content []byte) string {
	h := sha256.New()
	io.WriteString(h, prevHash)
	h.Write(content)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// buildLine returns the full line (newline included) for a record with the
// given seq and prevHash whose caller fields are the JSON object obj, and
// the record's hash. obj must have passed checkFields.
func buildLine(seq uint64, prevHash string, obj []byte) (line []byte, hash string) {
	inner := bytes.TrimSpace(obj)
	inner = bytes.TrimSpace(inner[1 : len(inner)-1]) // without { }
	line = make([]byte, 0, len(seqPrefix)+20+len(prevPrefix)+HashLen+2+len(inner)+hashSuffixLen+1)
	line = append(line, seqPrefix...)
	line = strconv.AppendUint(line, seq, 10)
	line = append(line, prevPrefix...)
	line = append(line, prevHash...)
	line = append(line, '"')
	if len(inner) > 0 {
		line = append(line, ',')
		line = append(line, inner...)
	}
	line = append(line, '}') // content ends here
	hash = computeHash(prevHash, line)
	line = line[:len(line)-1]
	line = append(line, hashPrefix...)
	line = append(line, hash...)
	line = append(line, '"', '}', '\n')
	return line, hash
}

// checkFields checks that obj, the caller's marshalled record, is a single
// JSON object without reserved or duplicate keys and without a newline.
func checkFields(obj []byte) error {
	if bytes.IndexByte(obj, '\n') >= 0 {
		// json.Marshal compacts its output; this guards the line format.
		return errors.New("record contains a newline")
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("record is not valid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("record is a JSON %s, not an object", jsonKind(tok))
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("record is not valid JSON: %w", err)
		}
		key, _ := tok.(string)
		for _, r := range reserved {
			if strings.EqualFold(key, r) {
				return fmt.Errorf("record has the reserved key %q", key)
			}
		}
		if seen[key] {
			return fmt.Errorf("record has the key %q twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("record is not valid JSON at key %q: %w", key, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("record is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("record has data after its JSON object")
	}
	return nil
}

func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "array"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return "value"
}

// parsed is what the fixed parts of a record line say.
type parsed struct {
	seq      uint64
	prevHash string
	hash     string
	// content is the line without its hash field: the bytes hashed.
	content []byte
}

// parseLine reads the fixed parts of a record line (without its newline),
// byte for byte as buildLine writes them, and checks that the content is a
// JSON object. It does not check the hash; see (parsed).ok.
func parseLine(line []byte) (parsed, error) {
	var p parsed
	rest, ok := bytes.CutPrefix(line, []byte(seqPrefix))
	if !ok {
		return p, fmt.Errorf("does not start with %s", seqPrefix)
	}
	n := 0
	for n < len(rest) && n <= 20 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || (n > 1 && rest[0] == '0') {
		return p, errors.New("seq is not a decimal number")
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil || seq == 0 {
		return p, errors.New("seq is out of range")
	}
	p.seq = seq
	rest, ok = bytes.CutPrefix(rest[n:], []byte(prevPrefix))
	if !ok || len(rest) < HashLen+1 || rest[HashLen] != '"' || !isHex(rest[:HashLen]) {
		return p, errors.New("prev_hash missing or not 64 lower-case hex digits")
	}
	p.prevHash = string(rest[:HashLen])
	if len(line) < hashSuffixLen {
		return p, errors.New("hash field missing")
	}
	cut := len(line) - hashSuffixLen
	suffix := line[cut:]
	if !bytes.HasPrefix(suffix, []byte(hashPrefix)) || !bytes.HasSuffix(suffix, []byte(`"}`)) {
		return p, errors.New(`does not end with ,"hash":"<64 hex>"}`)
	}
	h := suffix[len(hashPrefix) : len(hashPrefix)+HashLen]
	if !isHex(h) {
		return p, errors.New("hash is not 64 lower-case hex digits")
	}
	p.hash = string(h)
	// The content must reach past the prev_hash field: the hash field
	// cannot overlap the fixed prefix.
	prefixLen := len(line) - len(rest) + HashLen + 1
	if cut < prefixLen {
		return p, errors.New("hash field overlaps the record's start")
	}
	content := make([]byte, cut+1)
	copy(content, line[:cut])
	content[cut] = '}'
	if !json.Valid(content) {
		return p, errors.New("record without its hash is not a valid JSON object")
	}
	p.content = content
	return p, nil
}

// ok reports whether the record's stated hash recomputes from its stated
// prev_hash and its content.
func (p parsed) ok() bool {
	return computeHash(p.prevHash, p.content) == p.hash
}

func isHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
