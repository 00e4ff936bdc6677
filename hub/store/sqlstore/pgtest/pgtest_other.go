//go:build !linux

package pgtest

import (
	"os"
	"testing"
)

// DSN skips: the test cluster is started on Linux only.
func DSN(t testing.TB) string {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal("postgres: the test cluster runs on Linux only")
	}
	t.Skip("postgres: the test cluster runs on Linux only")
	return ""
}

// Stop does nothing: no cluster is started.
func Stop() {}
