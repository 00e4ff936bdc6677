package media

import "io"

// The Microsoft Reserved partition: Windows makes one on every GPT disk
// it partitions (16 MiB, 128 MiB on older versions). It has no file
// system and no volume, and it is not data a user stores, so a medium is
// judged without it when it is as Windows leaves it. One rule, for the
// Windows disk probe (probeDiskUnits, the partition type from
// IOCTL_DISK_GET_DRIVE_LAYOUT_EX) and the Linux one (ReservedUnused, the
// partition type from the disk's own GPT): reservedLeftOut.

// msrType is the GPT partition type GUID of a Microsoft Reserved partition
// (E3C9E316-0B5C-4DB8-817D-F92DF00215AE) as PARTITION_INFORMATION_GPT
// holds it and a GPT partition entry stores it (the first three fields
// little-endian).
var msrType = [16]byte{0x16, 0xE3, 0xC9, 0xE3, 0x5C, 0x0B, 0xB8, 0x4D, 0x81, 0x7D, 0xF9, 0x2D, 0xF0, 0x02, 0x15, 0xAE}

// maxReserved is the largest Microsoft Reserved partition left out of a
// medium (Windows makes 16 or 128 MiB); a larger one is judged.
const maxReserved = 128 << 20

// reservedCheck is how many bytes of a Microsoft Reserved partition must
// read zero for it to be left out of a medium's units.
const reservedCheck = 64 << 10

// reservedLeftOut is the one judgement of a Microsoft Reserved partition:
// it is left out of its medium's units when it is one (msr: its GPT type
// is msrType), at most maxReserved bytes long (length), Probe found no
// signature in it (info), and its first reservedCheck bytes (fewer when
// it is shorter) read zero from r at off, where it starts. One someone
// wrote into, a larger one, or one that cannot be read is judged.
func reservedLeftOut(msr bool, length int64, info Info, r io.ReaderAt, off int64) bool {
	return msr && length > 0 && length <= maxReserved && info.Kind == KindUnknown &&
		zeroAt(r, off, min(length, reservedCheck))
}

// zeroAt reports whether the n bytes of r at off read as zero (false when
// they cannot be read).
func zeroAt(r io.ReaderAt, off, n int64) bool {
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil {
		return false
	}
	return isZeroBytes(b)
}

func isZeroBytes(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
