package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mamori-agent/mamori/internal/safe"
)

// Parsers of the structures Windows storage IOCTLs return (winioctl.h,
// ntddstor.h), kept apart from the calls so that they run on every OS and
// can be fuzzed. The bytes come from drivers, which a device can steer:
// every offset and count is checked against the buffer.

// ErrIOCTLData is wrapped by the errors of the parsers in this file.
var ErrIOCTLData = errors.New("malformed IOCTL output")

// storageDescriptor is what Drive keeps of a STORAGE_DEVICE_DESCRIPTOR.
type storageDescriptor struct {
	Bus            BusType
	RemovableMedia bool
	Vendor         string // sanitised, spaces trimmed
	Product        string
	Serial         string
}

// storageDescriptorMin is the fixed part of STORAGE_DEVICE_DESCRIPTOR up to
// and including RawPropertiesLength:
//
//	0 Version, 4 Size (ULONG), 8 DeviceType, 9 DeviceTypeModifier,
//	10 RemovableMedia, 11 CommandQueueing (BYTE/BOOLEAN), 12
//	VendorIdOffset, 16 ProductIdOffset, 20 ProductRevisionOffset, 24
//	SerialNumberOffset, 28 BusType, 32 RawPropertiesLength (ULONG).
const storageDescriptorMin = 36

// parseStorageDescriptor reads the STORAGE_DEVICE_DESCRIPTOR that
// IOCTL_STORAGE_QUERY_PROPERTY (StorageDeviceProperty) wrote into b. The
// string offsets count from the start; 0 means none. A string is read up
// to its NUL, within the descriptor's Size and the bytes returned.
func parseStorageDescriptor(b []byte) (storageDescriptor, error) {
	var d storageDescriptor
	if len(b) < storageDescriptorMin {
		return d, fmt.Errorf("storage descriptor: %d bytes, want at least %d: %w", len(b), storageDescriptorMin, ErrIOCTLData)
	}
	size := binary.LittleEndian.Uint32(b[4:])
	if size < storageDescriptorMin {
		return d, fmt.Errorf("storage descriptor: Size %d, want at least %d: %w", size, storageDescriptorMin, ErrIOCTLData)
	}
	if int64(size) < int64(len(b)) {
		b = b[:size]
	}
	d.RemovableMedia = b[10] != 0
	d.Bus = BusType(binary.LittleEndian.Uint32(b[28:]))
	str := func(at int) (string, error) {
		off := binary.LittleEndian.Uint32(b[at:])
		if off == 0 {
			return "", nil
		}
		if off < storageDescriptorMin || int64(off) >= int64(len(b)) {
			return "", fmt.Errorf("storage descriptor: string offset %d outside its %d bytes: %w", off, len(b), ErrIOCTLData)
		}
		s := b[off:]
		if i := bytes.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		return safe.String(string(bytes.TrimSpace(s))), nil
	}
	var errs []error
	var err error
	if d.Vendor, err = str(12); err != nil {
		errs = append(errs, err)
	}
	if d.Product, err = str(16); err != nil {
		errs = append(errs, err)
	}
	if d.Serial, err = str(24); err != nil {
		errs = append(errs, err)
	}
	return d, errors.Join(errs...)
}

// deviceNumber is a STORAGE_DEVICE_NUMBER (IOCTL_STORAGE_GET_DEVICE_NUMBER):
// 0 DeviceType (FILE_DEVICE_DISK is 7), 4 DeviceNumber, 8 PartitionNumber
// (ULONG each; PartitionNumber is 0 for a whole disk and 0xFFFFFFFF for a
// device that cannot be partitioned).
type deviceNumber struct {
	DeviceType uint32
	Number     int
	Partition  int
}

// fileDeviceDisk is FILE_DEVICE_DISK (devioctl.h).
const fileDeviceDisk = 7

func parseDeviceNumber(b []byte) (deviceNumber, error) {
	if len(b) < 12 {
		return deviceNumber{}, fmt.Errorf("device number: %d bytes, want 12: %w", len(b), ErrIOCTLData)
	}
	n := deviceNumber{DeviceType: binary.LittleEndian.Uint32(b)}
	num, part := binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
	if num > 1<<20 {
		return deviceNumber{}, fmt.Errorf("device number %d out of range: %w", num, ErrIOCTLData)
	}
	n.Number = int(num)
	if part == 0xFFFFFFFF {
		part = 0
	}
	if part > 1<<16 {
		return deviceNumber{}, fmt.Errorf("partition number %d out of range: %w", part, ErrIOCTLData)
	}
	n.Partition = int(part)
	return n, nil
}

// diskExtent is one DISK_EXTENT: 0 DiskNumber (ULONG), 8 StartingOffset,
// 16 ExtentLength (LARGE_INTEGER), 24 bytes in all.
type diskExtent struct {
	Disk   int
	Offset int64
	Length int64
}

// maxExtents bounds the extents parseDiskExtents accepts: a volume spanning
// more disks than this is not a removable stick.
const maxExtents = 64

// parseDiskExtents reads a VOLUME_DISK_EXTENTS
// (IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS): 0 NumberOfDiskExtents (ULONG),
// padding, 8 the extents.
func parseDiskExtents(b []byte) ([]diskExtent, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("disk extents: %d bytes, want at least 8: %w", len(b), ErrIOCTLData)
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxExtents {
		return nil, fmt.Errorf("disk extents: %d extents, want at most %d: %w", n, maxExtents, ErrIOCTLData)
	}
	if int64(len(b)) < 8+24*int64(n) {
		return nil, fmt.Errorf("disk extents: %d extents in %d bytes: %w", n, len(b), ErrIOCTLData)
	}
	out := make([]diskExtent, 0, n)
	for i := range int(n) {
		e := b[8+24*i:]
		disk := binary.LittleEndian.Uint32(e)
		off := int64(binary.LittleEndian.Uint64(e[8:]))
		length := int64(binary.LittleEndian.Uint64(e[16:]))
		if disk > 1<<20 || off < 0 || length <= 0 || off > 1<<62-length {
			return nil, fmt.Errorf("disk extents: extent %d (disk %d, offset %d, length %d) out of range: %w", i, disk, off, length, ErrIOCTLData)
		}
		out = append(out, diskExtent{Disk: int(disk), Offset: off, Length: length})
	}
	return out, nil
}

// parseSectorSize reads BytesPerSector of a DISK_GEOMETRY
// (IOCTL_DISK_GET_DRIVE_GEOMETRY): 0 Cylinders (LARGE_INTEGER), 8
// MediaType, 12 TracksPerCylinder, 16 SectorsPerTrack, 20 BytesPerSector
// (ULONG). Only powers of two from 512 to 64 KiB are sector sizes.
func parseSectorSize(b []byte) (int, error) {
	if len(b) < 24 {
		return 0, fmt.Errorf("disk geometry: %d bytes, want 24: %w", len(b), ErrIOCTLData)
	}
	s := binary.LittleEndian.Uint32(b[20:])
	if s < 512 || s > 65536 || s&(s-1) != 0 {
		return 0, fmt.Errorf("disk geometry: %d bytes per sector: %w", s, ErrIOCTLData)
	}
	return int(s), nil
}

// parseLength reads a GET_LENGTH_INFORMATION (IOCTL_DISK_GET_LENGTH_INFO):
// one LARGE_INTEGER, the length in bytes.
func parseLength(b []byte) (int64, error) {
	if len(b) < 8 {
		return 0, fmt.Errorf("length: %d bytes, want 8: %w", len(b), ErrIOCTLData)
	}
	n := int64(binary.LittleEndian.Uint64(b))
	if n < 0 || n > 1<<60 {
		return 0, fmt.Errorf("length %d out of range: %w", n, ErrIOCTLData)
	}
	return n, nil
}
