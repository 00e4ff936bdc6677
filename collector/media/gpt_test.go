package media

import (
	"encoding/binary"
	"errors"
	"github.com/mamori-agent/mamori/internal/gztest"
	"hash/crc32"
	"path/filepath"
	"slices"
	"testing"
)

// gptHead returns testdata/gpt/<name>.head.gz unpacked: the first 34
// sectors of a disk sgdisk partitioned (see its README).
func gptHead(t testing.TB, name string) []byte {
	t.Helper()
	return gztest.Read(t, filepath.Join("testdata", "gpt", name+".head.gz"))
}

// The fixtures' disks.
const (
	msr16Disk  = 64 << 20
	msr130Disk = 256 << 20
)

// basicDataType is the GPT type of Windows' basic data partitions
// (EBD0A0A2-B9E5-4433-87C0-68B6B72699C7), as stored.
var basicDataType = [16]byte{0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7}

// splitHead cuts a 512-byte-sector disk head into LBA 0-1 and the entry
// array at LBA 2.
func splitHead(b []byte) (head, entries []byte) {
	return slices.Clone(b[:1024]), slices.Clone(b[1024:])
}

// fixHeaderCRC recomputes the CRC32 of the GPT header in LBA 1 of head
// (sector bytes each), so that a test changes one field at a time.
func fixHeaderCRC(head []byte, sector int) {
	h := head[sector:]
	n := binary.LittleEndian.Uint32(h[gptHeaderSizeOff:])
	binary.LittleEndian.PutUint32(h[gptHeaderCRCOff:], 0)
	binary.LittleEndian.PutUint32(h[gptHeaderCRCOff:], crc32.ChecksumIEEE(h[:n]))
}

// fixEntriesCRC sets the header's entry array CRC32 to that of entries
// and recomputes the header's own.
func fixEntriesCRC(head, entries []byte, sector int) {
	n := binary.LittleEndian.Uint32(head[sector+gptEntryCountOff:]) * gptEntrySize
	binary.LittleEndian.PutUint32(head[sector+gptEntriesCRCOff:], crc32.ChecksumIEEE(entries[:min(int(n), len(entries))]))
	fixHeaderCRC(head, sector)
}

func TestParseGPT(t *testing.T) {
	head, entries := splitHead(gptHead(t, "msr16"))
	got, err := parseGPT(head, entries, 512, msr16Disk)
	want := []gptEntry{
		{Number: 1, Type: msrType, FirstLBA: 2048, LastLBA: 34815},
		{Number: 2, Type: basicDataType, FirstLBA: 34816, LastLBA: 131038},
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("msr16: %+v, %v; want %+v", got, err, want)
	}
	head, entries = splitHead(gptHead(t, "msr130"))
	got, err = parseGPT(head, entries, 512, msr130Disk)
	if err != nil || len(got) != 2 || got[0].Type != msrType || got[0].LastLBA != 268287 || got[1].Number != 2 {
		t.Fatalf("msr130: %+v, %v", got, err)
	}
	// The same table on a disk of 4096-byte sectors: protective MBR in
	// the first 512 bytes of LBA 0, the header in LBA 1, the array in
	// LBA 2 to 5, partitions in 4096-byte LBAs.
	head, entries = splitHead(gptHead(t, "msr16"))
	head4k := make([]byte, 8192)
	copy(head4k, head[:512])
	copy(head4k[4096:], head[512:1024])
	h := head4k[4096:]
	binary.LittleEndian.PutUint64(h[gptMyLBAOff:], 1)
	binary.LittleEndian.PutUint64(h[32:], msr16Disk/4096-1) // AlternateLBA
	binary.LittleEndian.PutUint64(h[gptFirstUsableOff:], 6)
	binary.LittleEndian.PutUint64(h[gptLastUsableOff:], msr16Disk/4096-6)
	binary.LittleEndian.PutUint64(h[gptEntryLBAOff:], 2)
	binary.LittleEndian.PutUint64(entries[32:], 256)
	binary.LittleEndian.PutUint64(entries[40:], 4351)
	binary.LittleEndian.PutUint64(entries[128+32:], 4352)
	binary.LittleEndian.PutUint64(entries[128+40:], msr16Disk/4096-6)
	fixEntriesCRC(head4k, entries, 4096)
	got, err = parseGPT(head4k, entries, 4096, msr16Disk)
	if err != nil || len(got) != 2 || got[0] != (gptEntry{1, msrType, 256, 4351}) {
		t.Fatalf("4096-byte sectors: %+v, %v", got, err)
	}
	if _, err := parseGPT(head4k, entries, 512, msr16Disk); !errors.Is(err, ErrGPT) {
		t.Errorf("4096-byte-sector GPT read with 512-byte sectors: %v", err)
	}
}

// TestParseGPTChecks: each check the UEFI specification and Linux make
// of a primary GPT, one broken at a time on the sgdisk disk (the CRCs
// recomputed unless the CRC is what is broken).
func TestParseGPTChecks(t *testing.T) {
	mbr := gptHead(t, "mbr16")
	for _, tc := range []struct {
		name   string
		sector int
		disk   int64
		edit   func(head, entries []byte) (h, e []byte)
	}{
		{name: "header CRC", edit: func(h, e []byte) ([]byte, []byte) {
			h[512+56] ^= 1 // a byte of the disk GUID
			return h, e
		}},
		{name: "entry array CRC", edit: func(h, e []byte) ([]byte, []byte) {
			e[56] ^= 1 // a letter of partition 1's name
			return h, e
		}},
		{name: "entry array CRC of an unused entry", edit: func(h, e []byte) ([]byte, []byte) {
			e[127*128+100] = 1
			return h, e
		}},
		{name: "type changed, CRC kept", edit: func(h, e []byte) ([]byte, []byte) {
			copy(e[:16], basicDataType[:])
			return h, e
		}},
		{name: "no boot signature", edit: func(h, e []byte) ([]byte, []byte) {
			h[510] = 0
			return h, e
		}},
		{name: "MBR, not protective", edit: func(h, e []byte) ([]byte, []byte) {
			// A GPT left behind on a disk that now has an MBR: Linux
			// reads the MBR.
			copy(h[:512], mbr[:512])
			return h, e
		}},
		{name: "protective entry not from LBA 1", edit: func(h, e []byte) ([]byte, []byte) {
			binary.LittleEndian.PutUint32(h[446+8:], 2)
			return h, e
		}},
		{name: "signature", edit: func(h, e []byte) ([]byte, []byte) {
			h[512] = 'e'
			fixHeaderCRC(h, 512)
			return h, e
		}},
		{name: "header size 91", edit: func(h, e []byte) ([]byte, []byte) {
			binary.LittleEndian.PutUint32(h[512+gptHeaderSizeOff:], 91)
			fixHeaderCRC(h, 512)
			return h, e
		}},
		{name: "header size over the sector", edit: func(h, e []byte) ([]byte, []byte) {
			binary.LittleEndian.PutUint32(h[512+gptHeaderSizeOff:], 513)
			return h, e
		}},
		{name: "MyLBA", edit: func(h, e []byte) ([]byte, []byte) {
			binary.LittleEndian.PutUint64(h[512+gptMyLBAOff:], 2)
			fixHeaderCRC(h, 512)
			return h, e
		}},
		{name: "usable past the disk", disk: 32 << 20},
		{name: "usable reversed", edit: func(h, e []byte) ([]byte, []byte) {
			binary.LittleEndian.PutUint64(h[512+gptFirstUsableOff:], 131039)
			fixHeaderCRC(h, 512)
			return h, e
		}},
		{name: "entry size 256", edit: func(h, e []byte) ([]byte, []byte) {
			binary.LittleEndian.PutUint32(h[512+gptEntrySizeOff:], 256)
			fixHeaderCRC(h, 512)
			return h, e
		}},
		{name: "too many entries", edit: func(h, e []byte) ([]byte, []byte) {
			binary.LittleEndian.PutUint32(h[512+gptEntryCountOff:], maxGPTEntries+1)
			e = append(e, make([]byte, (maxGPTEntries+1-128)*128)...)
			fixEntriesCRC(h, e, 512)
			return h, e
		}},
		{name: "entries at LBA 1", edit: func(h, e []byte) ([]byte, []byte) {
			binary.LittleEndian.PutUint64(h[512+gptEntryLBAOff:], 1)
			fixHeaderCRC(h, 512)
			return h, e
		}},
		{name: "entries past the disk", edit: func(h, e []byte) ([]byte, []byte) {
			binary.LittleEndian.PutUint64(h[512+gptEntryLBAOff:], 131070)
			fixHeaderCRC(h, 512)
			return h, e
		}},
		{name: "entries in the usable LBAs", edit: func(h, e []byte) ([]byte, []byte) {
			binary.LittleEndian.PutUint64(h[512+gptEntryLBAOff:], 100)
			fixHeaderCRC(h, 512)
			return h, e
		}},
		{name: "entries short", edit: func(h, e []byte) ([]byte, []byte) {
			return h, e[:len(e)-1]
		}},
		{name: "head short", edit: func(h, e []byte) ([]byte, []byte) {
			return h[:1023], e
		}},
		{name: "disk size unknown", disk: -1},
		{name: "disk size not whole sectors", disk: msr16Disk + 100},
		{name: "sector size 1000", sector: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, entries := splitHead(gptHead(t, "msr16"))
			if tc.edit != nil {
				head, entries = tc.edit(head, entries)
			}
			sector, disk := 512, int64(msr16Disk)
			if tc.sector != 0 {
				sector = tc.sector
			}
			if tc.disk != 0 {
				disk = max(tc.disk, 0)
			}
			got, err := parseGPT(head, entries, sector, disk)
			if !errors.Is(err, ErrGPT) || got != nil {
				t.Fatalf("got %+v, %v; want no entries and ErrGPT", got, err)
			}
		})
	}
	// Control of "type changed, CRC kept": with the CRCs recomputed, the
	// changed entry parses.
	head, entries := splitHead(gptHead(t, "msr16"))
	copy(entries[:16], basicDataType[:])
	fixEntriesCRC(head, entries, 512)
	if got, err := parseGPT(head, entries, 512, msr16Disk); err != nil || len(got) != 2 || got[0].Type != basicDataType {
		t.Errorf("type changed, CRCs recomputed: %+v, %v", got, err)
	}
	// Entries outside the usable LBAs, or reversed, are left out alone.
	head, entries = splitHead(gptHead(t, "msr16"))
	binary.LittleEndian.PutUint64(entries[40:], 131039)       // partition 1 past LastUsableLBA
	binary.LittleEndian.PutUint64(entries[128+32:], 131038)   // partition 2 reversed
	binary.LittleEndian.PutUint64(entries[128+40:], 34816)    //
	copy(entries[2*128:], entries[:128])                      // partition 3: a copy of 1 ...
	binary.LittleEndian.PutUint64(entries[2*128+32:], 33)     // ... before FirstUsableLBA
	copy(entries[3*128:], gptHead(t, "msr16")[1024:1024+128]) // partition 4: 1 as it was
	fixEntriesCRC(head, entries, 512)
	got, err := parseGPT(head, entries, 512, msr16Disk)
	if err != nil || !slices.Equal(got, []gptEntry{{4, msrType, 2048, 34815}}) {
		t.Errorf("entries out of bounds: %+v, %v", got, err)
	}
}

// FuzzParseGPT: whatever the bytes, parseGPT does not panic, and what it
// returns lies on the disk, numbered as Linux numbers partitions. The
// seeds are the sgdisk fixtures (testdata/fuzz/FuzzParseGPT and f.Add).
func FuzzParseGPT(f *testing.F) {
	for _, name := range []string{"msr16", "msr130", "mbr16"} {
		head, entries := splitHead(gptHead(f, name))
		f.Add(head, entries, uint8(9), int64(msr16Disk))
	}
	f.Fuzz(func(t *testing.T, head, entries []byte, shift uint8, disk int64) {
		sector := 1 << min(shift, 20)
		got, err := parseGPT(head, entries, sector, disk)
		if err != nil {
			if !errors.Is(err, ErrGPT) || got != nil {
				t.Fatalf("error %v with entries %+v", err, got)
			}
			return
		}
		h, err := parseGPTHeader(head, sector, disk)
		if err != nil {
			t.Fatalf("parseGPT accepted a header parseGPTHeader refuses: %v", err)
		}
		if h.EntriesOffset() < 2*int64(sector) || h.EntriesOffset()+int64(h.EntriesLength()) > disk {
			t.Fatalf("entry array at %d (%d bytes) on a disk of %d", h.EntriesOffset(), h.EntriesLength(), disk)
		}
		last := 0
		for _, e := range got {
			if e.Number <= last || e.Number > int(h.EntryCount) || e.Type == ([16]byte{}) ||
				e.FirstLBA > e.LastLBA || e.LastLBA >= uint64(disk)/uint64(sector) {
				t.Fatalf("entry %+v of %d on a disk of %d sectors", e, h.EntryCount, disk/int64(sector))
			}
			last = e.Number
		}
	})
}
