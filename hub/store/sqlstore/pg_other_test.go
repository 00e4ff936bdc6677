//go:build !linux

package sqlstore

import (
	"os"
	"testing"
)

// postgresDSN skips: the test cluster is started on Linux only.
func postgresDSN(t *testing.T) string {
	if os.Getenv("CI") == "true" {
		t.Fatal("postgres: the test cluster runs on Linux only")
	}
	t.Skip("postgres: the test cluster runs on Linux only")
	return ""
}

func stopPostgres() {}
