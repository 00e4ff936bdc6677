//go:build !linux

package usb

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// sysDir is a directory of a sysfs tree. Off Linux there is no sysfs;
// this portable version lets the same code read a copied tree (tests,
// offline analysis) through the os package.
type sysDir struct {
	path string
}

func openDir(path string) (sysDir, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return sysDir{}, err
	}
	if !fi.IsDir() {
		return sysDir{}, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("not a directory")}
	}
	return sysDir{path: path}, nil
}

func (d sysDir) close() {}

// isSysfsMount is false off Linux: there is no sysfs to mount, only
// copied trees.
func isSysfsMount(string) (bool, error) { return false, nil }

// ino is unknown off Linux: no identity cache there.
func (d sysDir) ino() (uint64, bool) { return 0, false }

func (d sysDir) readAttr(name string, buf []byte) ([]byte, error) {
	f, err := os.Open(filepath.Join(d.path, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := io.ReadFull(f, buf)
	switch err {
	case nil:
		return buf[:n], fmt.Errorf("read %s/%s: %w", d.path, name, errTooLarge)
	case io.EOF, io.ErrUnexpectedEOF:
		return buf[:n], nil
	default:
		return nil, err
	}
}

func (d sysDir) readlink(name string, _ []byte) (string, error) {
	return os.Readlink(filepath.Join(d.path, name))
}

func (d sysDir) entries(_ []byte, dirsOnly bool) ([]dirEntry, error) {
	des, err := os.ReadDir(d.path)
	out := make([]dirEntry, 0, len(des))
	for _, de := range des {
		if dirsOnly && !de.IsDir() {
			continue
		}
		out = append(out, dirEntry{name: de.Name(), dir: de.IsDir()})
	}
	return out, err
}

// dirEntry is one name in a directory.
type dirEntry struct {
	name string
	dir  bool
}

func (e dirEntry) isDir() bool { return e.dir }
