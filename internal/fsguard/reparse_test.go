package fsguard

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestIsLinkElement(t *testing.T) {
	for _, c := range []struct {
		mode  fs.FileMode
		attrs uint32
		want  bool
	}{
		{fs.ModeDir, 0x10, false},       // a directory
		{0, 0x20, false},                // a file (FILE_ATTRIBUTE_ARCHIVE)
		{fs.ModeIrregular, 0x410, true}, // a junction as Go's Lstat reports it
		{fs.ModeSymlink, 0x410, true},   // a directory symbolic link
		{fs.ModeSymlink, 0x20, true},    // a symbolic link, whatever the attributes say
		{fs.ModeDir, 0x410, true},       // a reparse point Lstat calls a directory
		{0, fileAttributeReparsePoint, true},
		{fs.ModeIrregular, 0, true},
	} {
		if got := isLinkElement(c.mode, c.attrs); got != c.want {
			t.Errorf("isLinkElement(%v, %#x) = %v, want %v", c.mode, c.attrs, got, c.want)
		}
	}
	err := error(linkError(`C:\ProgramData\mamori`, `C:\ProgramData\mamori\state`))
	var u *UnsafeError
	if !errors.As(err, &u) || u.Path != `C:\ProgramData\mamori` {
		t.Fatalf("linkError = %#v", err)
	}
	if !strings.Contains(err.Error(), "a junction or symbolic link: refused; remove it") {
		t.Errorf("linkError says %q", err)
	}
}
