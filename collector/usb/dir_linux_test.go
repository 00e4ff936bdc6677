package usb

import (
	"encoding/binary"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// dirent builds one linux_dirent64 record.
func dirent(name string, typ uint8) []byte {
	reclen := (19 + len(name) + 1 + 7) &^ 7
	b := make([]byte, reclen)
	binary.NativeEndian.PutUint64(b[0:], 1)
	binary.NativeEndian.PutUint64(b[8:], 2)
	binary.NativeEndian.PutUint16(b[16:], uint16(reclen))
	b[18] = typ
	copy(b[19:], name)
	return b
}

func TestParseDirents(t *testing.T) {
	buf := slices.Concat(dirent(".", unix.DT_DIR), dirent("..", unix.DT_DIR), dirent("1-2:1.0", unix.DT_DIR),
		dirent("idVendor", unix.DT_REG), dirent("driver", unix.DT_LNK), dirent("odd", unix.DT_UNKNOWN))
	got := parseDirents(buf, nil, false)
	want := []dirEntry{{"1-2:1.0", unix.DT_DIR}, {"idVendor", unix.DT_REG}, {"driver", unix.DT_LNK}, {"odd", unix.DT_UNKNOWN}}
	if !slices.Equal(got, want) {
		t.Errorf("all: %v", got)
	}
	if got := parseDirents(buf, nil, true); !slices.Equal(got, []dirEntry{{"1-2:1.0", unix.DT_DIR}, {"odd", unix.DT_UNKNOWN}}) {
		t.Errorf("dirs only: %v", got)
	}
	// A record whose length runs past the buffer, or is too short to
	// hold a header, ends the parse.
	bad := slices.Clone(buf)
	binary.NativeEndian.PutUint16(bad[len(dirent(".", 0))+len(dirent("..", 0))+16:], 4000)
	if got := parseDirents(bad, nil, false); len(got) != 0 {
		t.Errorf("overlong record: %v", got)
	}
	binary.NativeEndian.PutUint16(bad[16:], 3)
	if got := parseDirents(bad, nil, false); len(got) != 0 {
		t.Errorf("short record: %v", got)
	}
	if got := parseDirents(buf[:10], nil, false); len(got) != 0 {
		t.Errorf("truncated: %v", got)
	}
}

func FuzzParseDirents(f *testing.F) {
	f.Add(slices.Concat(dirent("1-2:1.0", unix.DT_DIR), dirent("serial", unix.DT_REG)), false)
	f.Fuzz(func(t *testing.T, b []byte, dirsOnly bool) {
		for _, e := range parseDirents(b, nil, dirsOnly) {
			if e.name == "" || e.name == "." || e.name == ".." {
				t.Fatalf("entry %q", e.name)
			}
		}
	})
}
