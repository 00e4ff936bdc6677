package media

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Formats other than the Windows ones and ext, recognised by the same
// on-disk magic and sanity checks as blkid (util-linux
// libblkid/src/superblocks/<fs>.c), so that Probe says what it saw.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// peek returns n bytes at off, or nil when they cannot be read (past the
// end, read error, read budget spent): a signature that cannot be read is
// not there.
func (p *prober) peek(off int64, n int) []byte {
	if off >= 0 && off+int64(n) <= int64(len(p.head)) {
		return p.head[off : off+int64(n)]
	}
	b, err := p.read(off, n)
	if err != nil {
		return nil
	}
	return b
}

// formatUUID formats 16 bytes as a UUID, as blkid_probe_set_uuid does.
func formatUUID(u []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// ---- btrfs -----------------------------------------------------------------

const (
	btrfsSuperOffset = 0x10000 // primary superblock, 64 KiB into the device
	btrfsSuperSize   = 0x1000
)

// btrfs reads the superblock at 64 KiB: magic "_BHRfS_M" at 0x40, fsid at
// 0x20, label at 0x12B (256 bytes), checksum type at 0xC4 and, for type 0,
// the CRC32C of bytes 0x20-0xFFF in the first 4 bytes.
func (p *prober) btrfs() (Info, bool, error) {
	sb := p.peek(btrfsSuperOffset, btrfsSuperSize)
	if sb == nil || string(sb[0x40:0x48]) != "_BHRfS_M" {
		return Info{}, false, nil
	}
	if binary.LittleEndian.Uint16(sb[0xC4:]) == 0 &&
		crc32.Checksum(sb[0x20:], castagnoli) != binary.LittleEndian.Uint32(sb[0:]) {
		return Info{}, false, nil // blkid: a stale or forged magic
	}
	return Info{FSType: FSBtrfs, UUID: formatUUID(sb[0x20:0x30]), Label: cString(sb[0x12B:0x22B])}, true, nil
}

// ---- xfs -------------------------------------------------------------------

// xfs reads the superblock at 0 (big-endian): magic "XFSB", the geometry
// blkid's xfs_verify_sb checks, uuid at 0x20, label at 0x6C (12 bytes), and
// for a version 5 superblock the CRC32C at 0xE0 over the sector.
func (p *prober) xfs() (Info, bool, error) {
	h := p.head
	if string(h[:4]) != "XFSB" {
		return Info{}, false, nil
	}
	be := binary.BigEndian
	blockSize := be.Uint32(h[4:])
	dblocks := be.Uint64(h[8:])
	agCount := be.Uint32(h[88:])
	version := be.Uint16(h[100:])
	sectSize := uint32(be.Uint16(h[102:]))
	inodeSize := uint32(be.Uint16(h[104:]))
	blockLog, sectLog, inodeLog, inopbLog := uint32(h[120]), uint32(h[121]), uint32(h[122]), uint32(h[123])
	if agCount == 0 || dblocks == 0 ||
		sectLog < 9 || sectLog > 15 || sectSize != 1<<sectLog ||
		blockLog < 9 || blockLog > 16 || blockSize != 1<<blockLog ||
		inodeLog < 8 || inodeLog > 11 || inodeSize != 1<<inodeLog ||
		blockLog-inodeLog != inopbLog || h[127] > 100 {
		return Info{}, false, nil
	}
	if version&0x0F == 5 {
		sect := p.peek(0, int(sectSize))
		if sect == nil {
			return Info{}, false, nil
		}
		c := crc32.Update(0, castagnoli, sect[:0xE0])
		c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
		c = crc32.Update(c, castagnoli, sect[0xE4:])
		if c != binary.LittleEndian.Uint32(sect[0xE0:]) {
			return Info{}, false, nil
		}
	}
	return Info{FSType: FSXFS, UUID: formatUUID(h[32:48]), Label: cString(h[0x6C:0x78])}, true, nil
}

// ---- f2fs ------------------------------------------------------------------

const f2fsMagic = 0xF2F52010

// f2fs reads the superblock at 0x400 (little-endian): magic 0xF2F52010,
// version at +4, checksum offset at +0x20 (0: none), uuid at +0x6C and the
// UTF-16 label at +0x7C (512 units).
func (p *prober) f2fs() (Info, bool, error) {
	h := p.head
	if len(h) < 0x400+0x47C || binary.LittleEndian.Uint32(h[0x400:]) != f2fsMagic {
		return Info{}, false, nil
	}
	sb := h[0x400 : 0x400+0x47C]
	info := Info{FSType: FSF2FS}
	if binary.LittleEndian.Uint16(sb[4:]) == 1 && binary.LittleEndian.Uint16(sb[6:]) == 0 {
		return info, true, nil // version 1.0: blkid cannot tell its layout either
	}
	if off := binary.LittleEndian.Uint32(sb[0x20:]); off != 0 {
		if off%4 != 0 || off+4 > 4096 || int(0x400+off+4) > len(h) {
			return Info{}, false, nil
		}
		// f2fs_crc32: CRC-32 (IEEE) seeded with the magic, no final xor.
		sum := ^crc32.Update(^uint32(f2fsMagic), crc32.IEEETable, h[0x400:0x400+off])
		if sum != binary.LittleEndian.Uint32(h[0x400+off:]) {
			return Info{}, false, nil
		}
	}
	info.UUID = formatUUID(sb[0x6C:0x7C])
	info.Label = utf16Label(cutUTF16(utf16Units(sb[0x7C:0x47C], false)))
	return info, true, nil
}

// cutUTF16 drops everything from the first NUL unit.
func cutUTF16(u []uint16) []uint16 {
	for i, c := range u {
		if c == 0 {
			return u[:i]
		}
	}
	return u
}

// ---- HFS+ ------------------------------------------------------------------

// hfsPlus reads the HFS+ volume header at 0x400 (big-endian): signature
// "H+" or "HX", block size at +0x28, and the Finder-info volume id at +0x68
// from which blkid derives the UUID. An HFS+ volume inside an HFS wrapper
// ("BD" at 0x400 with "H+" embedded at +0x7C) is followed to its header.
// The label lives in the catalog B-tree and is not read.
func (p *prober) hfsPlus() (Info, bool, error) {
	h := p.head
	if len(h) < 0x600 {
		return Info{}, false, nil
	}
	be := binary.BigEndian
	hdr := h[0x400:0x600]
	if string(hdr[:2]) == "BD" {
		embedSig := string(hdr[0x7C:0x7E])
		if embedSig != "H+" && embedSig != "HX" {
			return Info{}, false, nil // plain HFS: not probed
		}
		alBlkSize := int64(be.Uint32(hdr[0x14:]))
		if alBlkSize < 512 || !powerOfTwo(uint32(alBlkSize)) {
			return Info{}, false, nil
		}
		off := int64(be.Uint16(hdr[0x1C:]))*512 + int64(be.Uint16(hdr[0x7E:]))*alBlkSize
		if hdr = p.peek(off+0x400, 0x200); hdr == nil {
			return Info{}, false, nil
		}
	}
	if sig := string(hdr[:2]); sig != "H+" && sig != "HX" {
		return Info{}, false, nil
	}
	if bs := be.Uint32(hdr[0x28:]); bs < 512 || !powerOfTwo(bs) {
		return Info{}, false, nil
	}
	return Info{FSType: FSHFSPlus, UUID: hfsUUID(hdr[0x68:0x70])}, true, nil
}

// hfsUUID is blkid's hfs_set_uuid: an MD5 name-based UUID (version 3) of
// the 8-byte Finder-info id in Apple's namespace; "" when the id is zero.
func hfsUUID(id []byte) string {
	if bytes.Equal(id, make([]byte, len(id))) {
		return ""
	}
	ns := []byte{0xb3, 0xe2, 0x0f, 0x39, 0xf2, 0x92, 0x11, 0xd6, 0x97, 0xa4, 0x00, 0x30, 0x65, 0x43, 0xec, 0xac}
	u := md5.Sum(append(ns, id...))
	u[6] = 0x30 | u[6]&0x0F
	u[8] = 0x80 | u[8]&0x3F
	return formatUUID(u[:])
}

// ---- squashfs --------------------------------------------------------------

// squashfs reads the magic at 0: "hsqs" (little-endian) with the major
// version at 28, or "sqsh" (big-endian, versions before 4). blkid names
// versions below 4 "squashfs3". squashfs has no label or UUID.
func (p *prober) squashfs() (Info, bool, error) {
	h := p.head
	var major uint16
	switch string(h[:4]) {
	case "hsqs":
		major = binary.LittleEndian.Uint16(h[28:])
	case "sqsh":
		major = binary.BigEndian.Uint16(h[28:])
		if major > 3 {
			return Info{}, false, nil
		}
	default:
		return Info{}, false, nil
	}
	if major < 4 {
		return Info{FSType: FSSquashFS3}, true, nil
	}
	return Info{FSType: FSSquashFS}, true, nil
}

// ---- swap ------------------------------------------------------------------

// swap finds "SWAPSPACE2" (or the old "SWAP-SPACE") in the last 10 bytes
// of the first page, for pages of 4 to 64 KiB. The v1 header at 1024 has
// the version (1) at +0, the last page at +4, the uuid at +12 and the
// label at +28 (16 bytes), trusted only when padding words 32 and 33
// (+172) are zero, as blkid does.
func (p *prober) swap() (Info, bool, error) {
	for page := int64(4096); page <= 65536; page *= 2 {
		m := p.peek(page-10, 10)
		if m == nil {
			break
		}
		switch string(m) {
		case "SWAP-SPACE":
			return Info{FSType: FSSwap}, true, nil
		case "SWAPSPACE2":
		default:
			continue
		}
		hdr := p.head[1024:1232]
		if v := binary.LittleEndian.Uint32(hdr); v != 1 && v != 0x01000000 {
			return Info{}, false, nil
		}
		if binary.LittleEndian.Uint32(hdr[4:]) == 0 {
			return Info{}, false, nil
		}
		info := Info{FSType: FSSwap}
		if binary.LittleEndian.Uint64(hdr[44+128:]) == 0 {
			info.UUID = formatUUID(hdr[12:28])
			info.Label = cString(hdr[28:44])
		}
		return info, true, nil
	}
	return Info{}, false, nil
}
