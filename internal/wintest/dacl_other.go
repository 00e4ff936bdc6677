//go:build !windows

package wintest

import (
	"os"
	"testing"
)

func privateFile(t testing.TB, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatalf("wintest.PrivateFile: %v", err)
	}
}

func openToEveryone(t testing.TB, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatalf("wintest.OpenToEveryone: %v", err)
	}
}
