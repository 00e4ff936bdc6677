package media

import (
	"github.com/mamori-agent/mamori/internal/gztest"
	"path/filepath"
	"testing"
)

// testImage returns testdata/images/<name>.img.gz unpacked.
func testImage(t *testing.T, name string) []byte {
	t.Helper()
	return gztest.Read(t, filepath.Join("testdata", "images", name+".img.gz"))
}
