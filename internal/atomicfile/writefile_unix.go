//go:build unix

package atomicfile

import (
	"path/filepath"

	"github.com/google/renameio/v2"
)

// writeFile writes data to a new file beside path and renames it over
// path. The temporary file is created in path's own directory (never in
// os.TempDir, which renameio would otherwise try) with fixed permissions
// (never copied from whatever is at path now).
func writeFile(path string, data []byte) error {
	t, err := renameio.NewPendingFile(path,
		renameio.WithTempDir(filepath.Dir(path)),
		renameio.WithStaticPermissions(Perm))
	if err != nil {
		return err
	}
	defer t.Cleanup()
	if _, err := t.Write(data); err != nil {
		return err
	}
	return t.CloseAtomicallyReplace()
}
