//go:build !unix

package audit

import (
	"os"
	"path/filepath"

	"github.com/mamori-agent/mamori/internal/atomicfile"
)

// replaceAt replaces the file name in the directory with data. Without
// openat it goes through the path (atomicfile: random O_EXCL temporary
// name, rename).
func replaceAt(dir *os.File, dirPath, name string, data []byte) error {
	return atomicfile.WriteFile(filepath.Join(dirPath, name), data)
}
