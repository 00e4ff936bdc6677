package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// RecordHash returns the hash of the audit record with sequence number
// seq, the previous record's hash prevHash, and event, the record's own
// members as a JSON object (BatchEvent.Event): hex(SHA-256(prevHash ||
// content)), where content is the record line up to its hash member,
// {"seq":N,"prev_hash":"<prevHash>",<event's members>}. It is how the
// agent's audit log (agent/audit) chains its records, so the hub can check
// that a record's content is what was hashed when it was written.
func RecordHash(seq uint64, prevHash string, event []byte) string {
	inner := bytes.TrimSpace(event)
	if len(inner) >= 2 && inner[0] == '{' && inner[len(inner)-1] == '}' {
		inner = bytes.TrimSpace(inner[1 : len(inner)-1])
	}
	h := sha256.New()
	var buf [64]byte
	h.Write([]byte(prevHash))
	h.Write([]byte(`{"seq":`))
	h.Write(strconv.AppendUint(buf[:0], seq, 10))
	h.Write([]byte(`,"prev_hash":"`))
	h.Write([]byte(prevHash))
	h.Write([]byte{'"'})
	if len(inner) > 0 {
		h.Write([]byte{','})
		h.Write(inner)
	}
	h.Write([]byte{'}'})
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}
