package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// driveLayout builds a DRIVE_LAYOUT_INFORMATION_EX.
func driveLayout(style uint32, entries ...[]byte) []byte {
	b := make([]byte, driveLayoutHead)
	binary.LittleEndian.PutUint32(b, style)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(entries)))
	for _, e := range entries {
		b = append(b, e...)
	}
	return b
}

// partitionEntry builds a PARTITION_INFORMATION_EX; kind is the MBR type
// byte, or for GPT the first byte of the type GUID (0: unused).
func partitionEntry(style uint32, off, length int64, num uint32, kind byte) []byte {
	e := make([]byte, partitionInfoLen)
	binary.LittleEndian.PutUint32(e, style)
	binary.LittleEndian.PutUint64(e[8:], uint64(off))
	binary.LittleEndian.PutUint64(e[16:], uint64(length))
	binary.LittleEndian.PutUint32(e[24:], num)
	e[32] = kind
	return e
}

func TestParseDriveLayout(t *testing.T) {
	// A USB stick as Windows formats it: one FAT32 partition at 1 MiB;
	// the MBR's other three slots are empty (Windows lists all four).
	stick := driveLayout(partitionStyleMBR,
		partitionEntry(partitionStyleMBR, 1<<20, 31<<30, 1, 0x0C),
		partitionEntry(partitionStyleMBR, 0, 0, 0, 0),
		partitionEntry(partitionStyleMBR, 0, 0, 0, 0),
		partitionEntry(partitionStyleMBR, 0, 0, 0, 0))
	style, parts, err := parseDriveLayout(stick)
	if err != nil || style != partitionStyleMBR || !slices.Equal(parts, []layoutPart{{1, 1 << 20, 31 << 30}}) {
		t.Errorf("stick: %d %+v %v", style, parts, err)
	}
	// An extended partition is a container; its logical partitions come
	// as entries of their own.
	ext := driveLayout(partitionStyleMBR,
		partitionEntry(partitionStyleMBR, 1<<20, 1<<30, 1, 0x07),
		partitionEntry(partitionStyleMBR, 1<<30+1<<20, 2<<30, 0, 0x0F),
		partitionEntry(partitionStyleMBR, 1<<30+2<<20, 1<<30, 5, 0x07))
	if _, parts, err := parseDriveLayout(ext); err != nil || len(parts) != 2 || parts[1].Number != 5 {
		t.Errorf("extended: %+v %v", parts, err)
	}
	// GPT: the basic-data partition, and an entry with no type.
	gpt := driveLayout(partitionStyleGPT,
		partitionEntry(partitionStyleGPT, 17408, 1<<27, 1, 0x16), // MSR
		partitionEntry(partitionStyleGPT, 1<<27+17408, 60<<30, 2, 0xA2),
		partitionEntry(partitionStyleGPT, 0, 1<<20, 3, 0))
	if style, parts, err := parseDriveLayout(gpt); err != nil || style != partitionStyleGPT || len(parts) != 2 {
		t.Errorf("gpt: %+v %v", parts, err)
	}
	if style, parts, err := parseDriveLayout(driveLayout(partitionStyleRAW)); err != nil || style != partitionStyleRAW || parts != nil {
		t.Errorf("raw: %+v %v", parts, err)
	}
	for name, b := range map[string][]byte{
		"short":          make([]byte, 47),
		"bad style":      driveLayout(7),
		"count too high": append(driveLayout(partitionStyleMBR), 0)[:driveLayoutHead],
		"negative":       driveLayout(partitionStyleMBR, partitionEntry(partitionStyleMBR, -512, 1<<20, 1, 7)),
		"overflow":       driveLayout(partitionStyleMBR, partitionEntry(partitionStyleMBR, 1<<62, 1<<62, 1, 7)),
	} {
		if name == "count too high" {
			binary.LittleEndian.PutUint32(b[4:], 2)
		}
		if _, _, err := parseDriveLayout(b); !errors.Is(err, ErrIOCTLData) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseDriveLayout(f *testing.F) {
	f.Add(driveLayout(partitionStyleMBR, partitionEntry(partitionStyleMBR, 1<<20, 31<<30, 1, 0x0C)))
	f.Add(driveLayout(partitionStyleGPT, partitionEntry(partitionStyleGPT, 17408, 1<<27, 1, 0x16)))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, parts, _ := parseDriveLayout(b)
		for _, p := range parts {
			if p.Offset < 0 || p.Length <= 0 || p.Offset+p.Length < 0 {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}

// failingReader fails every read.
type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("Invalid function.") }

// TestProbeDiskUnits: every partition of the layout is probed from the
// disk, whether Windows gave it a volume or not. The disk is the one of
// the review: a GPT stick whose partition 1 is BitLocker To Go (it gets
// a drive letter) and whose partition 2 is plain FAT with
// GPT_BASIC_DATA_ATTRIBUTE_NO_DRIVE_LETTER (it gets none, and is reached
// as \\?\Volume{GUID}\): both are units, the second plain. What cannot be
// listed or read is a unit with Err, never left out.
func TestProbeDiskUnits(t *testing.T) {
	seeds := fuzzSeeds(t)
	const size = 8 << 20
	disk := func(first []byte) []byte {
		b := make([]byte, size)
		copy(b, gpt()[:1024])
		copy(b[1<<20:], first)
		copy(b[5<<20:], seeds["fat12.img"])
		return b
	}
	togo, clear := disk(seeds["bitlk-togo-aes-xts-128"]), disk(seeds["bitlk-clearkey-aes-cbc-128"])
	layout := driveLayout(partitionStyleGPT,
		partitionEntry(partitionStyleGPT, 1<<20, 4<<20, 1, 0xA2),
		partitionEntry(partitionStyleGPT, 5<<20, 3<<20, 2, 0xA2))

	units := probeDiskUnits("PhysicalDrive2", bytes.NewReader(togo), size, 512, layout, nil, ProbeOptions{})
	if len(units) != 2 {
		t.Fatalf("%d units %+v, want 2", len(units), units)
	}
	if u := units[0]; u.Number != 1 || u.Offset != 1<<20 || u.Length != 4<<20 || u.Err != nil || u.Info.Encryption != EncryptionBitLockerToGo || u.Info.ClearKey {
		t.Errorf("partition 1: %+v, want BitLocker To Go", u)
	}
	if u := units[1]; u.Number != 2 || u.Offset != 5<<20 || u.Err != nil || u.Info.Encryption != "" || u.Info.FSType != FSVFAT || u.Info.Label != "MY STICK" {
		t.Errorf("partition 2 (no drive letter): %+v, want plain vfat", u)
	}
	// BitLocker suspended on partition 1: the clear key is seen.
	units = probeDiskUnits("PhysicalDrive2", bytes.NewReader(clear), size, 512, layout, nil, ProbeOptions{})
	if len(units) != 2 || !units[0].Info.ClearKey || units[0].Info.Encryption != "" {
		t.Errorf("clear key: %+v", units)
	}

	lerr := errors.New("IOCTL_DISK_GET_DRIVE_LAYOUT_EX: Invalid function.")
	for _, c := range []struct {
		name   string
		img    []byte
		r      io.ReaderAt
		sector int
		layout []byte
		lerr   error
		want   []string // per unit: "" for no Err, else a part of it
		fs     string   // the last unit's FSType
	}{
		{"no layout, a partition table", togo, nil, 512, nil, lerr, []string{"it holds a gpt partition table, but Windows gave no partition layout"}, ""},
		{"no layout, a whole-disk FAT (superfloppy)", seeds["fat12.img"], nil, 512, nil, lerr, []string{""}, FSVFAT},
		{"raw layout", seeds["fat12.img"], nil, 512, driveLayout(partitionStyleRAW), nil, []string{""}, FSVFAT},
		{"no partition with data", seeds["fat12.img"], nil, 512, driveLayout(partitionStyleMBR, partitionEntry(partitionStyleMBR, 0, 0, 0, 0)), nil, []string{""}, FSVFAT},
		{"layout does not parse", togo, nil, 512, make([]byte, 10), nil, []string{"partition layout"}, ""},
		{"layout faulty after partition 1", togo, nil, 512, driveLayout(partitionStyleGPT,
			partitionEntry(partitionStyleGPT, 1<<20, 4<<20, 1, 0xA2),
			partitionEntry(partitionStyleGPT, -512, 3<<20, 2, 0xA2)), nil, []string{"out of range", ""}, FSBitLocker},
		{"offset off the sector", togo, nil, 4096, driveLayout(partitionStyleGPT,
			partitionEntry(partitionStyleGPT, 1<<20+512, 4<<20, 1, 0xA2)), nil, []string{"partition 1: window offset"}, ""},
		{"unreadable", nil, failingReader{}, 512, layout, nil, []string{"partition 1: read first sector", "partition 2: read first sector"}, ""},
	} {
		r := c.r
		if r == nil {
			r = bytes.NewReader(c.img)
		}
		units := probeDiskUnits("PhysicalDrive2", r, int64(len(c.img)), c.sector, c.layout, c.lerr, ProbeOptions{})
		if len(units) != len(c.want) {
			t.Errorf("%s: %d units %+v, want %d", c.name, len(units), units, len(c.want))
			continue
		}
		for i, w := range c.want {
			switch err := units[i].Err; {
			case w == "" && err != nil:
				t.Errorf("%s: unit %d: %v", c.name, i, err)
			case w != "" && (err == nil || !strings.Contains(err.Error(), w) || !strings.Contains(err.Error(), "PhysicalDrive2")):
				t.Errorf("%s: unit %d: %v, want %q in it", c.name, i, err, w)
			}
		}
		if last := units[len(units)-1]; last.Info.FSType != c.fs {
			t.Errorf("%s: last unit %+v, want fs %q", c.name, last, c.fs)
		}
	}
}

// TestProbeDiskUnitsReserved: the Microsoft Reserved partition Windows
// makes on every GPT disk it partitions (zeroed, no file system) is not a
// unit of the medium; one someone wrote into is.
func TestProbeDiskUnitsReserved(t *testing.T) {
	seeds := fuzzSeeds(t)
	const size = 8 << 20
	img := make([]byte, size)
	copy(img, gpt()[:1024])
	copy(img[2<<20:], seeds["bitlk-togo-aes-xts-128"])
	msr := partitionEntry(partitionStyleGPT, 1<<20, 1<<20, 1, 0)
	copy(msr[32:48], msrType[:])
	layout := driveLayout(partitionStyleGPT, msr, partitionEntry(partitionStyleGPT, 2<<20, 6<<20, 2, 0xA2))
	units := probeDiskUnits("PhysicalDrive2", bytes.NewReader(img), size, 512, layout, nil, ProbeOptions{})
	if len(units) != 1 || units[0].Number != 2 || units[0].Info.Encryption != EncryptionBitLockerToGo {
		t.Fatalf("zeroed reserved partition: units %+v, want partition 2 alone", units)
	}
	img[1<<20+70000] = 0xFF // beyond what is checked: still left out
	if units := probeDiskUnits("PhysicalDrive2", bytes.NewReader(img), size, 512, layout, nil, ProbeOptions{}); len(units) != 1 {
		t.Fatalf("units %+v", units)
	}
	img[1<<20+100] = 0xFF // data in it: a unit that is not encrypted
	units = probeDiskUnits("PhysicalDrive2", bytes.NewReader(img), size, 512, layout, nil, ProbeOptions{})
	if len(units) != 2 || units[0].Number != 1 || units[0].Info.Encryption != "" {
		t.Fatalf("written reserved partition: units %+v, want it judged", units)
	}
	// Larger than Windows makes one: judged whatever it holds.
	if !zeroAt(bytes.NewReader(make([]byte, 1024)), 0, 1024) {
		t.Fatal("zeroAt")
	}
	big := partitionEntry(partitionStyleGPT, 1<<20, maxReserved+512, 1, 0)
	copy(big[32:48], msrType[:])
	img[1<<20+100] = 0
	units = probeDiskUnits("PhysicalDrive2", bytes.NewReader(img), size, 512,
		driveLayout(partitionStyleGPT, big, partitionEntry(partitionStyleGPT, 2<<20, 6<<20, 2, 0xA2)), nil, ProbeOptions{})
	if len(units) != 2 {
		t.Fatalf("a reserved partition larger than %d bytes: units %+v, want it judged", maxReserved, units)
	}
	img[1<<20+100] = 0xFF
	copy(img[1<<20:], seeds["fat12.img"]) // a file system in it
	units = probeDiskUnits("PhysicalDrive2", bytes.NewReader(img), size, 512, layout, nil, ProbeOptions{})
	if len(units) != 2 || units[0].Info.FSType != FSVFAT {
		t.Fatalf("FAT in the reserved partition: units %+v, want it judged", units)
	}
}
