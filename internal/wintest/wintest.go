package wintest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// IsWine reports whether the process runs under Wine. It is false on
// real Windows and off Windows.
func IsWine() bool { return isWine() }

// WineVersion returns Wine's version ("8.0"), or "" when not under Wine.
func WineVersion() string { return wineVersion() }

// PrivateFile makes the existing file path private, as the agent wants
// a token or key file: mode 0600 on Unix (os.Chmod); on Windows a
// protected DACL that gives SYSTEM, Administrators and this process's
// user full control and no one else anything (SetDACL with PrivateSDDL,
// which says why it ends in a denial for Everyone). A failure fails the
// test.
func PrivateFile(t testing.TB, path string) {
	t.Helper()
	privateFile(t, path)
}

// OpenToEveryone lets everyone read and write the existing file path,
// the opposite of PrivateFile: mode 0666 on Unix (os.Chmod); on Windows
// the DACL of EveryoneSDDL(t, "FA"), which Wine 8.0 shows as the
// "others" bits. A failure fails the test.
func OpenToEveryone(t testing.TB, path string) {
	t.Helper()
	openToEveryone(t, path)
}

// TempDir returns a new directory for the test t that is removed, with
// everything in it, when the test and its subtests end; a removal that
// fails fails the test. Under Wine the directory is made by os.MkdirTemp
// and removed by RemoveAll (children before parents); elsewhere it is
// t.TempDir.
func TempDir(t testing.TB) string {
	t.Helper()
	if !IsWine() {
		return t.TempDir()
	}
	pattern := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r < ' ' || strings.ContainsRune(`<>"|?*`, r) {
			return '_'
		}
		return r
	}, t.Name())
	if len(pattern) > 64 {
		pattern = pattern[:64]
	}
	dir, err := os.MkdirTemp("", pattern+"-")
	if err != nil {
		t.Fatalf("wintest.TempDir: %v", err)
	}
	t.Cleanup(func() {
		if err := RemoveAll(dir); err != nil {
			t.Errorf("wintest.TempDir cleanup: %v", err)
		}
	})
	return dir
}

// RemoveAll removes path and everything below it, like os.RemoveAll, and
// returns nil when path does not exist. When os.RemoveAll fails (under
// Wine it cannot remove a non-empty directory) it removes what is left
// itself, deepest first, with os.Remove, which Wine implements. Links and
// junctions are removed, never followed. The error names every entry
// that could not be removed.
func RemoveAll(path string) error {
	if path == "" {
		return errors.New("wintest.RemoveAll: empty path")
	}
	first := os.RemoveAll(path)
	if first == nil {
		return nil
	}
	if err := removeTree(path); err != nil {
		return fmt.Errorf("remove %s (after os.RemoveAll: %v): %w", path, first, err)
	}
	return nil
}

// removeTree removes path depth first: the children of a directory (a
// real one, not a link or junction) before the directory itself.
func removeTree(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	if fi.Mode().Type() == fs.ModeDir {
		ents, err := os.ReadDir(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		for _, e := range ents {
			if err := removeTree(filepath.Join(path, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
