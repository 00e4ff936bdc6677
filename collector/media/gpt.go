package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The GUID Partition Table as the disk holds it (UEFI Specification 2.10,
// section 5.3 "GUID Partition Table (GPT) Disk Layout"), read the way the
// Linux kernel reads it (block/partitions/efi.c): LBA 0 a protective MBR,
// LBA 1 the GPT header, the partition entry array where the header says.
// Linux gives a GPT partition the number of its entry (index + 1) and
// shows it in sysfs as <partition>/partition, its first LBA and length in
// 512-byte units as start and size.

// ErrGPT is wrapped by every error of a GPT that is not valid.
var ErrGPT = errors.New("not a valid GUID partition table")

// GPT header fields (UEFI 2.10 table 5.5), offsets in bytes.
const (
	gptSignature      = "EFI PART"
	gptHeaderMin      = 92 // HeaderSize may not be smaller
	gptHeaderSizeOff  = 12 // HeaderSize, UINT32
	gptHeaderCRCOff   = 16 // HeaderCRC32, UINT32, zero while it is computed
	gptMyLBAOff       = 24 // MyLBA, EFI_LBA (UINT64)
	gptFirstUsableOff = 40 // FirstUsableLBA
	gptLastUsableOff  = 48 // LastUsableLBA
	gptEntryLBAOff    = 72 // PartitionEntryLBA
	gptEntryCountOff  = 80 // NumberOfPartitionEntries, UINT32
	gptEntrySizeOff   = 84 // SizeOfPartitionEntry, UINT32
	gptEntriesCRCOff  = 88 // PartitionEntryArrayCRC32, UINT32

	// gptEntrySize is the only SizeOfPartitionEntry Linux accepts (UEFI
	// allows 128 × 2^n; every tool writes 128).
	gptEntrySize = 128
	// maxGPTEntries bounds NumberOfPartitionEntries: tools write 128,
	// Linux lists at most 256 partitions of a disk. A larger array is not
	// read (the GPT is then not valid here: fail closed).
	maxGPTEntries = 1024
)

// gptHeader is what parseGPTHeader keeps of a GPT header: where its
// partition entry array lies (EntryLBA, in sectors of SectorSize bytes)
// and how long it is (EntryCount entries of gptEntrySize bytes).
type gptHeader struct {
	SectorSize              int
	FirstUsable, LastUsable uint64
	EntryLBA                uint64
	EntryCount              uint32
	EntriesCRC              uint32
	diskSectors             uint64
}

// EntriesOffset and EntriesLength are where the partition entry array
// lies on the disk and its length, in bytes.
func (h gptHeader) EntriesOffset() int64 { return int64(h.EntryLBA) * int64(h.SectorSize) }
func (h gptHeader) EntriesLength() int   { return int(h.EntryCount) * gptEntrySize }

// gptEntry is one used entry of a GPT partition entry array (UEFI 2.10
// table 5.6): Number is its index + 1 (the number Linux gives the
// partition), Type its PartitionTypeGUID as stored (mixed-endian, as
// msrType), FirstLBA and LastLBA its sectors, inclusive.
type gptEntry struct {
	Number            int
	Type              [16]byte
	FirstLBA, LastLBA uint64
}

// parseGPTHeader checks the first two sectors of a disk (head, at least
// 2 × sector bytes: LBA 0 and LBA 1) as the UEFI specification and Linux
// check a primary GPT, and returns its header:
//
//   - LBA 0 is a protective MBR: boot signature 0x55 0xAA, and an entry
//     of type 0xEE starting at LBA 1 (a hybrid MBR has others beside it);
//     without one Linux reads the MBR's partitions, not the GPT's;
//   - LBA 1 starts with "EFI PART"; HeaderSize is from 92 to the sector
//     size; HeaderCRC32 is the CRC32 of HeaderSize bytes with the field
//     itself zero; MyLBA is 1;
//   - FirstUsableLBA ≤ LastUsableLBA < the disk's sector count (disk, in
//     bytes, must be known);
//   - SizeOfPartitionEntry is 128 and NumberOfPartitionEntries at most
//     maxGPTEntries; the array starts at LBA 2 or later, lies on the disk
//     and outside the usable range.
//
// sector is the disk's logical sector size in bytes (a power of two from
// 512 to 65536). Errors wrap ErrGPT.
func parseGPTHeader(head []byte, sector int, disk int64) (gptHeader, error) {
	var h gptHeader
	if sector < 512 || sector > 65536 || sector&(sector-1) != 0 {
		return h, fmt.Errorf("gpt: sector size %d: %w", sector, ErrGPT)
	}
	if disk <= 0 || disk%int64(sector) != 0 {
		return h, fmt.Errorf("gpt: disk size %d is not a whole number of %d-byte sectors: %w", disk, sector, ErrGPT)
	}
	if len(head) < 2*sector {
		return h, fmt.Errorf("gpt: %d bytes, want LBA 0 and 1 (%d): %w", len(head), 2*sector, ErrGPT)
	}
	if !protectiveMBR(head[:512]) {
		return h, fmt.Errorf("gpt: LBA 0 holds no protective MBR (type 0xEE from LBA 1): %w", ErrGPT)
	}
	b := head[sector : 2*sector]
	if string(b[:8]) != gptSignature {
		return h, fmt.Errorf("gpt: LBA 1 does not start with %q: %w", gptSignature, ErrGPT)
	}
	hsize := binary.LittleEndian.Uint32(b[gptHeaderSizeOff:])
	if hsize < gptHeaderMin || hsize > uint32(sector) {
		return h, fmt.Errorf("gpt: header size %d, want %d to %d: %w", hsize, gptHeaderMin, sector, ErrGPT)
	}
	hdr := append([]byte(nil), b[:hsize]...)
	want := binary.LittleEndian.Uint32(hdr[gptHeaderCRCOff:])
	binary.LittleEndian.PutUint32(hdr[gptHeaderCRCOff:], 0)
	if got := crc32.ChecksumIEEE(hdr); got != want {
		return h, fmt.Errorf("gpt: header CRC32 %08x, the header holds %08x: %w", got, want, ErrGPT)
	}
	if my := binary.LittleEndian.Uint64(b[gptMyLBAOff:]); my != 1 {
		return h, fmt.Errorf("gpt: MyLBA %d, want 1: %w", my, ErrGPT)
	}
	h = gptHeader{
		SectorSize:  sector,
		FirstUsable: binary.LittleEndian.Uint64(b[gptFirstUsableOff:]),
		LastUsable:  binary.LittleEndian.Uint64(b[gptLastUsableOff:]),
		EntryLBA:    binary.LittleEndian.Uint64(b[gptEntryLBAOff:]),
		EntryCount:  binary.LittleEndian.Uint32(b[gptEntryCountOff:]),
		EntriesCRC:  binary.LittleEndian.Uint32(b[gptEntriesCRCOff:]),
		diskSectors: uint64(disk / int64(sector)),
	}
	if h.FirstUsable > h.LastUsable || h.LastUsable >= h.diskSectors {
		return gptHeader{}, fmt.Errorf("gpt: usable LBAs %d to %d on a disk of %d sectors: %w", h.FirstUsable, h.LastUsable, h.diskSectors, ErrGPT)
	}
	if es := binary.LittleEndian.Uint32(b[gptEntrySizeOff:]); es != gptEntrySize {
		return gptHeader{}, fmt.Errorf("gpt: partition entry size %d, want %d: %w", es, gptEntrySize, ErrGPT)
	}
	if h.EntryCount > maxGPTEntries {
		return gptHeader{}, fmt.Errorf("gpt: %d partition entries, more than %d: %w", h.EntryCount, maxGPTEntries, ErrGPT)
	}
	// The array's sectors, rounded up; EntryLBA ≥ 2 and the bounds keep
	// the sum far from overflow.
	n := (uint64(h.EntriesLength()) + uint64(sector) - 1) / uint64(sector)
	if h.EntryLBA < 2 || h.EntryLBA >= h.diskSectors || n > h.diskSectors-h.EntryLBA {
		return gptHeader{}, fmt.Errorf("gpt: partition entries at LBA %d (%d sectors) on a disk of %d sectors: %w", h.EntryLBA, n, h.diskSectors, ErrGPT)
	}
	if n > 0 && h.EntryLBA+n > h.FirstUsable && h.EntryLBA <= h.LastUsable {
		return gptHeader{}, fmt.Errorf("gpt: partition entries at LBA %d to %d overlap the usable LBAs %d to %d: %w", h.EntryLBA, h.EntryLBA+n-1, h.FirstUsable, h.LastUsable, ErrGPT)
	}
	return h, nil
}

// protectiveMBR reports whether mbr (LBA 0, 512 bytes or more) carries
// the boot signature and a partition record of type 0xEE starting at LBA
// 1 (UEFI 2.10 table 5.4; Linux's is_pmbr_valid).
func protectiveMBR(mbr []byte) bool {
	if len(mbr) < 512 || mbr[510] != 0x55 || mbr[511] != 0xAA {
		return false
	}
	for i := range 4 {
		rec := mbr[446+16*i:][:16]
		if rec[4] == 0xEE && binary.LittleEndian.Uint32(rec[8:]) == 1 {
			return true
		}
	}
	return false
}

// parseGPT parses a primary GPT: head is the disk's LBA 0 and 1 (see
// parseGPTHeader), entries the bytes read at the header's
// EntriesOffset, at least EntriesLength of them; sector the disk's
// logical sector size and disk its size, in bytes. The entry array's
// CRC32 must be the header's PartitionEntryArrayCRC32. It returns the used
// entries (a type GUID that is not all zero), in array order, each with
// FirstLBA ≤ LastLBA within the usable LBAs; an entry outside them is
// left out (Linux leaves out those past the disk's end). Errors wrap
// ErrGPT: a GPT that fails a check gives no entries at all.
func parseGPT(head, entries []byte, sector int, disk int64) ([]gptEntry, error) {
	h, err := parseGPTHeader(head, sector, disk)
	if err != nil {
		return nil, err
	}
	n := h.EntriesLength()
	if len(entries) < n {
		return nil, fmt.Errorf("gpt: %d bytes of partition entries, want %d: %w", len(entries), n, ErrGPT)
	}
	entries = entries[:n]
	if got := crc32.ChecksumIEEE(entries); got != h.EntriesCRC {
		return nil, fmt.Errorf("gpt: partition entry array CRC32 %08x, the header holds %08x: %w", got, h.EntriesCRC, ErrGPT)
	}
	var out []gptEntry
	for i := range int(h.EntryCount) {
		e := entries[i*gptEntrySize:][:gptEntrySize]
		typ := [16]byte(e[:16])
		if typ == ([16]byte{}) {
			continue
		}
		first, last := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
		if first > last || first < h.FirstUsable || last > h.LastUsable {
			continue
		}
		out = append(out, gptEntry{Number: i + 1, Type: typ, FirstLBA: first, LastLBA: last})
	}
	return out, nil
}
