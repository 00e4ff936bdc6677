// Package gztest reads the gzip-compressed fixtures tests keep (disk
// heads and file system images under testdata, with their origins in a
// README beside them). It is for tests only.
package gztest

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"testing"
)

// Read returns the content of the gzip file at path, failing t when it
// cannot be read or unpacked.
func Read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return raw
}
