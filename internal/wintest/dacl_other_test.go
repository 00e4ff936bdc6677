//go:build !windows

package wintest

import (
	"os"
	"testing"
)

// othersMay tells from path's mode whether group or others may read or
// write it.
func othersMay(t *testing.T, path string) (read, write bool) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	m := fi.Mode().Perm()
	return m&0o044 != 0, m&0o022 != 0
}
