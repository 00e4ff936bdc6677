package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mamori-agent/mamori/wire"
)

// TestUSBCoreReleaseLog: a log written by the USB-core release (schema 1,
// testdata/usb-core-release/README.md) still verifies, and every record
// reads back into wire.Event without losing a field: the event written
// again as a wire.Record has the same JSON members with the same values.
func TestUSBCoreReleaseLog(t *testing.T) {
	src := filepath.Join("testdata", "usb-core-release")
	dir := t.TempDir()
	for _, name := range []string{CurrentName, "audit.head"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 20 {
		t.Fatalf("verify: ok %v, %d records, problems %v; want ok with 20", rep.OK(), rep.Records, rep.Problems)
	}
	data, err := os.ReadFile(filepath.Join(dir, CurrentName))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var ev wire.Event
		dec := json.NewDecoder(bytes.NewReader(line))
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		again, err := json.Marshal(wire.NewRecord(&ev))
		if err != nil {
			t.Fatal(err)
		}
		var orig, back map[string]any
		if err := json.Unmarshal(line, &orig); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatal(err)
		}
		// The chain fields belong to the log, not to the event.
		for _, k := range []string{"seq", "prev_hash", "hash"} {
			delete(orig, k)
		}
		if !reflect.DeepEqual(orig, back) {
			t.Errorf("record %d does not read back into wire.Event without loss:\n was %s\n now %s", i+1, line, again)
		}
	}
}
