//go:build unix

package fsguard

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPrepareStateUnix: on Unix PrepareState is MkdirState: a new state
// directory is made 0700 and used where it was asked for, nothing found;
// one others can write is refused, never replaced by an alternate, and
// nothing is made beside it. FindState is the path itself.
func TestPrepareStateUnix(t *testing.T) {
	base := t.TempDir()
	state := filepath.Join(base, "mamori")
	sd, err := PrepareState(state, nil)
	if err != nil || sd.Path != state || sd.Configured != state || sd.Alternate || len(sd.Findings) != 0 {
		t.Fatalf("PrepareState(new) = %+v, %v", sd, err)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the state directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	sd, err = PrepareState(state, nil)
	wantUnsafe(t, err, state, "writable by group and others")
	if sd.Path != "" || sd.Alternate {
		t.Errorf("PrepareState(others may write) = %+v, want no directory to use", sd)
	}
	if ents, err := os.ReadDir(base); err != nil || len(ents) != 1 {
		t.Errorf("beside the state directory: %v, %v; want nothing made", ents, err)
	}
	if st, err := FindState(state); err != nil || st.Path != state || st.Alternate {
		t.Errorf("FindState = %+v, %v", st, err)
	}
}
