//go:build unix

package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSQLiteFilesPrivate: the database and its WAL are readable by the
// owner only, whatever the umask; a missing directory says what to do.
func TestSQLiteFilesPrivate(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	addAgent(t, s, "pc-01")
	for _, name := range []string{"hub.db", "hub.db-wal"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v", name, fi.Mode())
		}
	}
	s.Close()
	if _, err := Open(context.Background(), "sqlite://"+filepath.Join(dir, "missing", "hub.db")); err == nil || !strings.Contains(err.Error(), "mkdir -m 700") {
		t.Fatalf("missing directory: %v", err)
	}
}
