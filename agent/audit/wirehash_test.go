package audit

import (
	"encoding/json"
	"testing"

	"github.com/mamori-agent/mamori/wire"
)

// TestWireRecordHash: the hub checks each record it receives with
// wire.RecordHash; it must give the log's own hash for every record, from
// the fields as read back (Entry.Fields) and as the writer marshalled
// them, empty records and strings with escapes included.
func TestWireRecordHash(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	var objs [][]byte
	for i, rec := range []any{testEvent(1), struct{}{}, map[string]string{"message": "<script>&\u2028\"\\"}, testEvent(2)} {
		obj, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		r, err := l.Append(rec)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		objs = append(objs, obj)
		_ = r
	}
	l.Close()
	entries, err := ReadAfter(dir, 0)
	if err != nil || len(entries) != len(objs) {
		t.Fatalf("read back %d entries: %v", len(entries), err)
	}
	for i, e := range entries {
		prev, obj, err := e.Fields()
		if err != nil {
			t.Fatal(err)
		}
		if got := wire.RecordHash(e.Seq, prev, obj); got != e.Hash {
			t.Errorf("record %d read back: wire.RecordHash %s, log %s", e.Seq, got, e.Hash)
		}
		if got := wire.RecordHash(e.Seq, prev, objs[i]); got != e.Hash {
			t.Errorf("record %d as marshalled: wire.RecordHash %s, log %s", e.Seq, got, e.Hash)
		}
		if got := wire.RecordHash(e.Seq, prev, append(objs[i], ' ')); got != e.Hash {
			t.Errorf("record %d with a trailing space: %s", e.Seq, got)
		}
	}
}
