package media

import (
	"encoding/binary"
	"errors"
	"slices"
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
