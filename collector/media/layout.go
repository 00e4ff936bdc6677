package media

import (
	"encoding/binary"
	"fmt"
	"io"
)

// DiskUnit is one partition of a Windows disk, or the whole disk when it
// has no partition table, and what its first sectors hold: the Windows
// counterpart of the partitions Linux lists as block devices of their
// own ("sdb1"), for judging each medium of a USB disk. Every partition of
// the layout is one, whether Windows gave it a volume (a drive letter, a
// folder) or not.
type DiskUnit struct {
	// Number is the partition number (PARTITION_INFORMATION_EX), 0 for a
	// whole disk probed as one unit.
	Number int
	// Offset and Length are the unit's place on the disk, in bytes.
	Offset int64
	Length int64
	// Info is what Probe found; Err why it could not probe (Info is then
	// what was read before the error: never take it for a plain medium).
	Info Info
	Err  error
}

// Partition styles (PARTITION_STYLE, winioctl.h).
const (
	partitionStyleMBR = 0
	partitionStyleGPT = 1
	partitionStyleRAW = 2
)

// DRIVE_LAYOUT_INFORMATION_EX (IOCTL_DISK_GET_DRIVE_LAYOUT_EX): 0
// PartitionStyle, 4 PartitionCount (ULONG), 8 the MBR or GPT header (a
// 40-byte union), 48 the PARTITION_INFORMATION_EX entries, 144 bytes
// each: 0 PartitionStyle, 8 StartingOffset, 16 PartitionLength
// (LARGE_INTEGER), 24 PartitionNumber (ULONG), 28 RewritePartition, 29
// IsServicePartition, 32 the MBR or GPT part (a 112-byte union; MBR: 32
// PartitionType BYTE; GPT: 32 PartitionType GUID).
const (
	driveLayoutHead  = 48
	partitionInfoLen = 144
	// maxPartitions bounds the entries read; Windows lists at most 128
	// GPT partitions and 4 per MBR (extended ones: 4 per link).
	maxPartitions = 256
)

// layoutPart is one partition parseDriveLayout keeps.
type layoutPart struct {
	Number         int
	Offset, Length int64
}

// mbrExtended reports whether an MBR partition type is an extended
// partition (a container of logical partitions, listed on their own).
func mbrExtended(t byte) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

// parseDriveLayout reads a DRIVE_LAYOUT_INFORMATION_EX and returns the
// partitions that hold data, in table order: entries with a length, an
// MBR type other than 0 (unused) and extended, or a GPT type GUID that is
// not all zero. A RAW disk has none.
func parseDriveLayout(b []byte) (style int, parts []layoutPart, err error) {
	if len(b) < driveLayoutHead {
		return 0, nil, fmt.Errorf("drive layout: %d bytes, want at least %d: %w", len(b), driveLayoutHead, ErrIOCTLData)
	}
	style = int(binary.LittleEndian.Uint32(b))
	if style != partitionStyleMBR && style != partitionStyleGPT && style != partitionStyleRAW {
		return 0, nil, fmt.Errorf("drive layout: partition style %d: %w", style, ErrIOCTLData)
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if n > maxPartitions || int64(n)*partitionInfoLen > int64(len(b)-driveLayoutHead) {
		return 0, nil, fmt.Errorf("drive layout: %d partitions in %d bytes: %w", n, len(b), ErrIOCTLData)
	}
	if style == partitionStyleRAW {
		return style, nil, nil
	}
	for i := range int(n) {
		e := b[driveLayoutHead+i*partitionInfoLen:][:partitionInfoLen]
		off := int64(binary.LittleEndian.Uint64(e[8:]))
		length := int64(binary.LittleEndian.Uint64(e[16:]))
		num := binary.LittleEndian.Uint32(e[24:])
		if length == 0 {
			continue
		}
		if off < 0 || length < 0 || off > 1<<62-length || num > 1<<16 {
			return style, parts, fmt.Errorf("drive layout: partition %d (offset %d, length %d, number %d) out of range: %w", i, off, length, num, ErrIOCTLData)
		}
		switch binary.LittleEndian.Uint32(e) {
		case partitionStyleMBR:
			if t := e[32]; t == 0 || mbrExtended(t) {
				continue
			}
		case partitionStyleGPT:
			if isZeroBytes(e[32:48]) {
				continue
			}
		default:
			continue
		}
		parts = append(parts, layoutPart{Number: int(num), Offset: off, Length: length})
	}
	return style, parts, nil
}

// reservedPartitions returns the numbers of the layout's Microsoft
// Reserved partitions (GPT): Windows makes one on every GPT disk it
// partitions, it has no file system and no volume, and it is not data a
// user stores. A layout that does not parse has none.
func reservedPartitions(b []byte) map[int]bool {
	style, _, err := parseDriveLayout(b)
	if err != nil || style != partitionStyleGPT {
		return nil
	}
	out := map[int]bool{}
	n := int(binary.LittleEndian.Uint32(b[4:]))
	for i := range n {
		e := b[driveLayoutHead+i*partitionInfoLen:][:partitionInfoLen]
		if [16]byte(e[32:48]) == msrType {
			out[int(binary.LittleEndian.Uint32(e[24:]))] = true
		}
	}
	return out
}

// probeDiskUnits probes each partition of a disk's layout through r (the
// disk, read from its first byte; size its length in bytes, 0 when
// unknown; sector its sector size): layout is the
// DRIVE_LAYOUT_INFORMATION_EX Windows gave (parseDriveLayout), or
// layoutErr why it gave none. name ("PhysicalDrive2") is for the errors.
// It fails closed, so that no part of the disk goes unjudged unsaid:
//
//   - a layout that does not parse gives the partitions read before the
//     fault and a unit, the whole disk, whose Err says why;
//   - a disk without a layout, or whose layout lists no partition that
//     holds data (RAW, or every entry unused), is one unit, the whole
//     disk; when Windows gave no layout and the whole disk holds a
//     partition table, its Err says that the partitions cannot be listed.
//
// A partition that cannot be read has its Err set. Pure but for r, so
// that it runs on every OS.
func probeDiskUnits(name string, r io.ReaderAt, size int64, sector int, layout []byte, layoutErr error, opts ProbeOptions) []DiskUnit {
	var parts []layoutPart
	var units []DiskUnit
	if layoutErr == nil {
		var perr error
		_, parts, perr = parseDriveLayout(layout)
		if perr != nil {
			units = append(units, DiskUnit{Length: size, Err: fmt.Errorf("probe disk %s: partition layout: %w", name, perr)})
		}
	}
	reserved := reservedPartitions(layout)
	whole := len(parts) == 0 && len(units) == 0
	if whole {
		parts = []layoutPart{{Number: 0, Offset: 0, Length: size}}
	}
	for _, pt := range parts {
		u := DiskUnit{Number: pt.Number, Offset: pt.Offset, Length: pt.Length}
		what := fmt.Sprintf("partition %d", pt.Number)
		if pt.Number == 0 {
			what = "whole disk"
		}
		sr, err := newSectorReader(r, pt.Offset, pt.Length, sector)
		if err == nil {
			u.Info, err = ProbeWith(sr, pt.Length, opts)
		}
		if err != nil {
			u.Err = fmt.Errorf("probe disk %s %s: %w", name, what, err)
		} else if whole && layoutErr != nil && u.Info.Kind == KindPartitionTable {
			u.Err = fmt.Errorf("probe disk %s: it holds a %s partition table, but Windows gave no partition layout to judge its partitions by (%w)", name, u.Info.PartitionTable, layoutErr)
		} else if reservedLeftOut(reserved[pt.Number], pt.Length, u.Info, r, pt.Offset) {
			// A Microsoft Reserved partition as Windows leaves it (no
			// signature, its first bytes zero) is no unit; one someone
			// wrote into is judged.
			continue
		}
		units = append(units, u)
	}
	return units
}
