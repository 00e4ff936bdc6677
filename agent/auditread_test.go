package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/mamori-agent/mamori/agent/audit"
)

// readAuditLog reads the audit log in state, each record as a T (the
// part of a record a test reads); nil when there is no log yet. The
// agent may be writing a record while it is read: a last line not ended
// yet is not a record (read mid-write, it is torn), so it is left for
// the next read.
func readAuditLog[T any](t testing.TB, state string) []T {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, audit.CurrentName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r T
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit record %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}
