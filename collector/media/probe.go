package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Encryption schemes reported in Info.Encryption and Volume.Encryption.
const (
	EncryptionNone          = ""
	EncryptionLUKS1         = "luks1"
	EncryptionLUKS2         = "luks2"
	EncryptionBitLocker     = "bitlocker"
	EncryptionBitLockerToGo = "bitlocker-to-go"
)

// File-system types in Info.FSType, named as blkid names them.
const (
	FSVFAT      = "vfat"
	FSExFAT     = "exfat"
	FSNTFS      = "ntfs"
	FSExt2      = "ext2"
	FSExt3      = "ext3"
	FSExt4      = "ext4"
	FSLUKS      = "crypto_LUKS"
	FSBitLocker = "BitLocker"
	FSBtrfs     = "btrfs"
	FSXFS       = "xfs"
	FSF2FS      = "f2fs"
	FSISO9660   = "iso9660"
	FSUDF       = "udf"
	FSHFSPlus   = "hfsplus"
	FSSquashFS  = "squashfs"
	FSSquashFS3 = "squashfs3" // squashfs before version 4, as blkid names it
	FSSwap      = "swap"
)

// Kind says what Probe recognised, so that a caller can fail closed: only
// KindCrypto with Info.Encrypted() is a medium shown to be encrypted.
type Kind string

// Kinds of medium in Info.Kind, after blkid's USAGE.
const (
	// KindUnknown: no signature Probe knows. A wiped or random medium, a
	// header-less encryption (VeraCrypt, plain dm-crypt) and a format
	// Probe does not know all read the same: not shown to be encrypted.
	KindUnknown Kind = ""
	// KindFileSystem: a plain file system, named in Info.FSType.
	KindFileSystem Kind = "filesystem"
	// KindCrypto: an encryption container (LUKS, BitLocker). It counts as
	// encrypted only when Info.Encrypted() says so (a BitLocker volume with
	// a clear key or unreadable metadata does not).
	KindCrypto Kind = "crypto"
	// KindOther: a plain format that is not a file system (swap): its
	// data is readable without a key.
	KindOther Kind = "other"
	// KindPartitionTable: sector 0 holds a partition table (Info.
	// PartitionTable) and no file system: probe the partitions.
	KindPartitionTable Kind = "partition_table"
)

// Info is what the first sectors of a medium say about it.
//
// Signatures are claims made by the medium, not proofs: a forged LUKS or
// BitLocker header in front of plain data reads the same. VeraCrypt and
// other header-less schemes have no signature at all and read as a medium
// with no recognised file system (FSType ""), exactly like a wiped one.
type Info struct {
	// Kind says what was recognised; KindUnknown when nothing was.
	Kind Kind
	// Encryption is one of the Encryption* constants; "" for a plain
	// medium, and also for a BitLocker volume whose protection is
	// suspended (ClearKey) or whose metadata does not parse.
	Encryption string
	// FSType is the format found: one of the FS* constants, or "" when
	// nothing was recognised.
	FSType string
	// Label is the volume label, decoded from the medium's encoding (FAT:
	// ProbeOptions.CodePage) and sanitised with safe.String; bytes or
	// UTF-16 units that do not decode are kept as \xNN or \u{dNNN}
	// escapes, never replaced by U+FFFD.
	Label string
	// UUID is the volume serial or UUID as blkid shows it: "1234-ABCD" for
	// FAT and exFAT, 16 hex digits for NTFS, the UUID for ext, LUKS,
	// btrfs, xfs, f2fs, HFS+ and swap, the date for ISO 9660; "" for UDF
	// and squashfs.
	UUID string
	// ClearKey is set for a BitLocker volume whose protection is suspended:
	// its key is stored in the clear in the metadata, so anyone can read
	// it. Such a volume is not counted as encrypted.
	ClearKey bool
	// PartitionTable is "dos" or "gpt" when sector 0 holds a partition
	// table rather than a file system: probe the partitions instead.
	PartitionTable string
}

// Encrypted reports whether the medium counts as encrypted.
func (i Info) Encrypted() bool { return i.Encryption != EncryptionNone }

// MaxProbeRead is the most Probe reads from one medium, in bytes. Probe
// reads fixed structures at the start of the medium (the first 8 KiB, the
// LUKS2 secondary header candidates) and a few that the on-disk format
// points to (BitLocker FVE metadata, which Windows puts tens of MiB in; the
// NTFS $Volume record; the FAT or exFAT root directory), never whole areas.
const MaxProbeRead = 1 << 20

// headSize is how much of the start of the medium Probe reads first.
const headSize = 8192

// ProbeOptions tune how Probe reads what it finds.
type ProbeOptions struct {
	// CodePage is the DOS code page FAT labels are decoded in (437, 850,
	// 932, ...: see CodePageForLanguage); 0 or a code page not known here
	// reads them as UTF-8, escaping what is not.
	CodePage int
}

// Probe reads the first sectors of a medium (a partition, or a whole disk
// without a partition table) through r, read-only, and tells its format,
// label and whether it is encrypted. size is the medium's size in bytes, or
// 0 when unknown. Bytes that do not parse are never trusted: the returned
// error says what was wrong and Info holds what could be read before that.
// A medium with no recognised format gives Kind KindUnknown and no error.
// FAT labels are read as UTF-8: see ProbeWith.
func Probe(r io.ReaderAt, size int64) (Info, error) {
	return ProbeWith(r, size, ProbeOptions{})
}

// ProbeWith is Probe with options.
func ProbeWith(r io.ReaderAt, size int64, opts ProbeOptions) (Info, error) {
	p := &prober{r: r, size: size, budget: MaxProbeRead, codePage: opts.CodePage}
	info, err := p.probe()
	info.Kind = kindOf(info)
	return info, err
}

// kindOf classifies what probe found.
func kindOf(info Info) Kind {
	switch info.FSType {
	case "":
		if info.PartitionTable != "" {
			return KindPartitionTable
		}
		return KindUnknown
	case FSLUKS, FSBitLocker:
		return KindCrypto
	case FSSwap:
		return KindOther
	}
	return KindFileSystem
}

type prober struct {
	r        io.ReaderAt
	size     int64 // 0: unknown
	budget   int64
	head     []byte
	codePage int // for FAT labels
}

var errBudget = errors.New("probe read limit reached")

// read returns n bytes at off. A read past the end of the medium or of
// the read budget is an error.
func (p *prober) read(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off > 1<<62 {
		return nil, fmt.Errorf("offset %d out of range", off)
	}
	if p.size > 0 && off+int64(n) > p.size {
		return nil, fmt.Errorf("%d bytes at offset %d are past the end (%d bytes)", n, off, p.size)
	}
	if int64(n) > p.budget {
		return nil, errBudget
	}
	p.budget -= int64(n)
	b := make([]byte, n)
	got, err := p.r.ReadAt(b, off)
	if got == n {
		return b, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("read %d bytes at offset %d: %w", n, off, err)
}

func (p *prober) probe() (Info, error) {
	n := int64(headSize)
	if p.size > 0 && p.size < n {
		n = p.size
	}
	head := make([]byte, n)
	got, err := p.r.ReadAt(head, 0)
	if got < 512 {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Info{}, fmt.Errorf("read first sector: %w", err)
	}
	p.budget -= int64(got)
	p.head = head[:got]

	// BitLocker before FAT: a BitLocker To Go volume starts with a genuine
	// FAT32 boot sector.
	if info, ok, err := p.bitLocker(); ok {
		return info, err
	}
	if info, ok, err := p.luks(p.head, lukSig1); ok {
		return info, err
	}
	switch string(p.head[3:11]) {
	case "EXFAT   ":
		return p.exFAT()
	case "NTFS    ":
		return p.ntfs()
	}
	if info, ok, err := p.fat(); ok {
		return info, err
	}
	if info, ok := p.ext(); ok {
		return info, nil
	}
	for _, probe := range []func() (Info, bool, error){
		p.xfs, p.squashfs, p.f2fs, p.hfsPlus, p.swap, p.btrfs, p.udf, p.iso9660,
	} {
		if info, ok, err := probe(); ok {
			return info, err
		}
	}
	if info, ok, err := p.luksSecondary(); ok {
		return info, err
	}
	// Only now, with no file system in sector 0, read it as a partition
	// table: an exFAT, NTFS or FAT boot sector also ends in 55 AA.
	return Info{PartitionTable: p.partitionTable()}, nil
}

// ---- LUKS ----------------------------------------------------------------

var (
	lukSig1 = []byte("LUKS\xba\xbe")
	lukSig2 = []byte("SKUL\xba\xbe")
)

// luks reads a LUKS header from hdr (at least 512 bytes) whose magic is sig.
// LUKS header fields are big-endian.
func (p *prober) luks(hdr, sig []byte) (Info, bool, error) {
	if len(hdr) < 512 || !bytes.Equal(hdr[:6], sig) {
		return Info{}, false, nil
	}
	info := Info{FSType: FSLUKS, UUID: cString(hdr[168:208])}
	switch v := binary.BigEndian.Uint16(hdr[6:8]); v {
	case 1:
		info.Encryption = EncryptionLUKS1
	case 2:
		info.Encryption = EncryptionLUKS2
		info.Label = cString(hdr[24:72])
	default:
		return info, true, fmt.Errorf("LUKS header: unknown version %d", v)
	}
	return info, true, nil
}

// luks2SecondaryOffsets are where a LUKS2 secondary header may start: the
// allowed sizes of the primary header area (LUKS2 on-disk format, 2.1).
var luks2SecondaryOffsets = []int64{0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000}

// luksSecondary finds a LUKS2 volume whose primary header was wiped or
// damaged: cryptsetup restores it from the secondary one, so the medium is
// still encrypted.
func (p *prober) luksSecondary() (Info, bool, error) {
	for _, off := range luks2SecondaryOffsets {
		if p.size > 0 && off+512 > p.size {
			break
		}
		hdr, err := p.read(off, 512)
		if err != nil {
			return Info{}, false, nil // a short medium simply has no secondary header
		}
		if info, ok, err := p.luks(hdr, lukSig2); ok {
			if err == nil && info.Encryption != EncryptionLUKS2 {
				return Info{FSType: FSLUKS}, true, fmt.Errorf("LUKS secondary header at %#x: version is not 2", off)
			}
			if err == nil && binary.BigEndian.Uint64(hdr[256:264]) != uint64(off) {
				return Info{FSType: FSLUKS}, true, fmt.Errorf("LUKS secondary header at %#x: says it is at %#x", off, binary.BigEndian.Uint64(hdr[256:264]))
			}
			return info, true, err
		}
	}
	return Info{}, false, nil
}

// ---- BitLocker -------------------------------------------------------------

var (
	bitLockerGUID    = []byte{0x3b, 0xd6, 0x67, 0x49, 0x29, 0x2e, 0xd8, 0x4a, 0x83, 0x99, 0xf6, 0xa3, 0x39, 0xe3, 0xd0, 0x01}
	bitLockerEOWGUID = []byte{0x3b, 0x4d, 0xa8, 0x92, 0x80, 0xdd, 0x0e, 0x4d, 0x9e, 0x4e, 0xb1, 0xe3, 0x28, 0x4e, 0xae, 0xd8}
)

const (
	fveBlockHeaderLen    = 64
	fveHeaderLen         = 48
	fveMaxMetadata       = 64 << 10
	fveEntryHeaderLen    = 8
	fveEntryVMK          = 0x0002
	fveProtectionClear   = 0x0000
	fveVMKProtectionAt   = fveEntryHeaderLen + 16 + 8 + 2 // GUID, modified time, unknown
	fveMinVMKEntryLength = fveVMKProtectionAt + 2
)

// bitLocker recognises a BitLocker volume (-FVE-FS- at offset 3, the GUID
// at 0xA0, metadata offsets at 0xB0) or a BitLocker To Go volume (a FAT32
// boot sector with the GUID at 0x1A8 and the offsets at 0x1B8), then reads
// the FVE metadata to tell whether the protection is suspended.
func (p *prober) bitLocker() (Info, bool, error) {
	h := p.head
	var enc string
	var at int
	switch {
	case string(h[3:11]) == "-FVE-FS-":
		enc, at = EncryptionBitLocker, 0xA0
	case string(h[3:11]) == "MSWIN4.1" && (bytes.Equal(h[0x1A8:0x1B8], bitLockerGUID) || bytes.Equal(h[0x1A8:0x1B8], bitLockerEOWGUID)):
		enc, at = EncryptionBitLockerToGo, 0x1A8
	default:
		return Info{}, false, nil
	}
	info := Info{FSType: FSBitLocker}
	if !bytes.Equal(h[at:at+16], bitLockerGUID) && !bytes.Equal(h[at:at+16], bitLockerEOWGUID) {
		// Windows Vista put the metadata elsewhere; Vista could not
		// encrypt removable media, so this is more likely forged.
		return info, true, fmt.Errorf("BitLocker: unknown volume GUID at %#x", at)
	}
	var errs []error
	for i := range 3 {
		off := int64(binary.LittleEndian.Uint64(h[at+16+8*i:]))
		clear, err := p.fveMetadata(off)
		if err != nil {
			errs = append(errs, fmt.Errorf("BitLocker metadata block %d at %#x: %w", i, off, err))
			if errors.Is(err, errBudget) {
				break
			}
			continue
		}
		// One good block decides; the copies are for damaged media.
		info.ClearKey = clear
		if !clear {
			info.Encryption = enc
		}
		return info, true, nil
	}
	// A BitLocker header whose metadata cannot be read cannot be unlocked
	// by Windows either: it does not count as encrypted.
	return info, true, errors.Join(errs...)
}

// fveMetadata reads the FVE metadata block at off and reports whether a
// volume master key is stored in the clear (protection suspended).
func (p *prober) fveMetadata(off int64) (clearKey bool, err error) {
	if off <= 0 {
		return false, errors.New("no offset")
	}
	hdr, err := p.read(off, fveBlockHeaderLen+fveHeaderLen)
	if err != nil {
		return false, err
	}
	if string(hdr[:8]) != "-FVE-FS-" {
		return false, errors.New("no -FVE-FS- signature")
	}
	if v := binary.LittleEndian.Uint16(hdr[10:12]); v != 2 {
		return false, fmt.Errorf("block version %d, want 2", v)
	}
	size := binary.LittleEndian.Uint32(hdr[fveBlockHeaderLen:])
	if size < fveHeaderLen+fveEntryHeaderLen || size > fveMaxMetadata {
		return false, fmt.Errorf("metadata size %d out of range", size)
	}
	if hs := binary.LittleEndian.Uint32(hdr[fveBlockHeaderLen+8:]); hs != fveHeaderLen {
		return false, fmt.Errorf("metadata header size %d, want %d", hs, fveHeaderLen)
	}
	if m := binary.LittleEndian.Uint16(hdr[fveBlockHeaderLen+36:]); m < 0x8000 || m > 0x8005 {
		return false, fmt.Errorf("unknown encryption method %#04x", m)
	}
	entries, err := p.read(off+fveBlockHeaderLen+fveHeaderLen, int(size)-fveHeaderLen)
	if err != nil {
		return false, err
	}
	return parseFVEEntries(entries)
}

// parseFVEEntries walks the metadata entries (u16 size, u16 type, u16 value
// type, u16 version, data) and reports whether a VMK entry has protection
// type 0 (clear key).
func parseFVEEntries(b []byte) (clearKey bool, err error) {
	vmks := 0
	for off := 0; off+fveEntryHeaderLen <= len(b); {
		n := int(binary.LittleEndian.Uint16(b[off:]))
		if n == 0 {
			break // the rest is padding
		}
		if n < fveEntryHeaderLen || off+n > len(b) {
			return false, fmt.Errorf("entry at %d: size %d out of range", off, n)
		}
		if binary.LittleEndian.Uint16(b[off+2:]) == fveEntryVMK {
			if n < fveMinVMKEntryLength {
				return false, fmt.Errorf("VMK entry at %d: size %d too small", off, n)
			}
			vmks++
			if binary.LittleEndian.Uint16(b[off+fveVMKProtectionAt:]) == fveProtectionClear {
				clearKey = true
			}
		}
		off += n
	}
	if vmks == 0 {
		return false, errors.New("no volume master key entry")
	}
	return clearKey, nil
}

// ---- FAT -------------------------------------------------------------------

type fatBPB struct {
	bps, spc, reserved, fats, rootEntries uint32
	fatSize, totalSectors, rootCluster    uint32
	fat32                                 bool
}

// fat recognises a FAT12/16/32 boot sector by a sane BIOS parameter block.
func (p *prober) fat() (Info, bool, error) {
	h := p.head
	if !(h[0] == 0xEB && h[2] == 0x90) && h[0] != 0xE9 {
		return Info{}, false, nil
	}
	b := fatBPB{
		bps:         uint32(binary.LittleEndian.Uint16(h[0x0B:])),
		spc:         uint32(h[0x0D]),
		reserved:    uint32(binary.LittleEndian.Uint16(h[0x0E:])),
		fats:        uint32(h[0x10]),
		rootEntries: uint32(binary.LittleEndian.Uint16(h[0x11:])),
		fatSize:     uint32(binary.LittleEndian.Uint16(h[0x16:])),
	}
	b.totalSectors = uint32(binary.LittleEndian.Uint16(h[0x13:]))
	if b.totalSectors == 0 {
		b.totalSectors = binary.LittleEndian.Uint32(h[0x20:])
	}
	media := h[0x15]
	if !powerOfTwo(b.bps) || b.bps < 512 || b.bps > 4096 || !powerOfTwo(b.spc) ||
		b.reserved == 0 || b.fats == 0 || b.fats > 4 || (media != 0xF0 && media < 0xF8) || b.totalSectors == 0 {
		return Info{}, false, nil
	}
	info := Info{FSType: FSVFAT}
	// Serial as blkid reads it: FAT12/16 at 0x27 when the extended boot
	// signature (0x26) is 0x28 or 0x29; FAT32 at 0x43 always.
	if b.fatSize == 0 {
		b.fat32 = true
		b.fatSize = binary.LittleEndian.Uint32(h[0x24:])
		b.rootCluster = binary.LittleEndian.Uint32(h[0x2C:])
		info.UUID = serial32(binary.LittleEndian.Uint32(h[0x43:]))
	} else if h[0x26] == 0x28 || h[0x26] == 0x29 {
		info.UUID = serial32(binary.LittleEndian.Uint32(h[0x27:]))
	}
	if b.fatSize == 0 {
		return info, true, errors.New("FAT: FAT size is 0")
	}
	// The label is the volume-label entry of the root directory only, as
	// MS-DOS, Windows and blkid (util-linux 2.32 and later) read it: the
	// boot-sector copy (0x2B, FAT32 0x47) is stale once Windows relabels
	// or removes the label, and blkid reports it apart (LABEL_FATBOOT).
	label, found, err := p.fatRootLabel(b)
	if err != nil {
		return info, true, fmt.Errorf("FAT root directory: %w", err)
	}
	if found {
		info.Label = label
	}
	return info, true, nil
}

func powerOfTwo(n uint32) bool { return n != 0 && n&(n-1) == 0 }

// maxDirRead caps how much of a root directory is scanned for a label.
const maxDirRead = 256 << 10

func (p *prober) fatRootLabel(b fatBPB) (string, bool, error) {
	bps := int64(b.bps)
	fatStart := int64(b.reserved) * bps
	dataStart := fatStart + int64(b.fats)*int64(b.fatSize)*bps
	if !b.fat32 {
		n := int(b.rootEntries) * 32
		if n > maxDirRead {
			n = maxDirRead
		}
		if n == 0 {
			return "", false, nil
		}
		dir, err := p.read(dataStart, n)
		if err != nil {
			return "", false, err
		}
		label, found, _ := scanFATDir(dir, p.codePage)
		return label, found, nil
	}
	clusterSize := int64(b.spc) * bps
	if clusterSize > maxDirRead {
		return "", false, fmt.Errorf("cluster size %d too large", clusterSize)
	}
	totalClusters := (int64(b.totalSectors)*bps - dataStart) / clusterSize
	c := int64(b.rootCluster)
	for read := int64(0); read+clusterSize <= maxDirRead; read += clusterSize {
		if c < 2 || c >= totalClusters+2 {
			return "", false, fmt.Errorf("cluster %d out of range", c)
		}
		dir, err := p.read(dataStart+(c-2)*clusterSize, int(clusterSize))
		if err != nil {
			return "", false, err
		}
		label, found, end := scanFATDir(dir, p.codePage)
		if found || end {
			return label, found, nil
		}
		next, err := p.read(fatStart+c*4, 4)
		if err != nil {
			return "", false, err
		}
		c = int64(binary.LittleEndian.Uint32(next) & 0x0FFFFFFF)
		if c >= 0x0FFFFFF8 {
			return "", false, nil
		}
	}
	return "", false, nil
}

// scanFATDir looks for the volume-label entry in a directory area, with
// blkid's rules (libblkid vfat.c, search_fat_label): a first byte 0x00 ends
// the directory; deleted entries (0xE5), entries with a start cluster
// (bytes 20-21 and 26-27) and long-name entries (attributes & 0x3F ==
// 0x0F) are skipped; the first entry with the volume-ID attribute (0x08)
// and not the directory one (0x10) is the label. end reports that the
// end-of-directory marker was seen.
func scanFATDir(dir []byte, codePage int) (label string, found, end bool) {
	for off := 0; off+32 <= len(dir); off += 32 {
		e := dir[off : off+32]
		switch e[0] {
		case 0x00:
			return "", false, true
		case 0xE5:
			continue
		}
		attr := e[11]
		if attr&0x3F == 0x0F || binary.LittleEndian.Uint16(e[20:]) != 0 || binary.LittleEndian.Uint16(e[26:]) != 0 {
			continue
		}
		if attr&(0x08|0x10) == 0x08 {
			return fatLabel(e[:11], codePage), true, false
		}
	}
	return "", false, false
}

// fatLabel turns an 11-byte FAT name into a label: a first byte 0x05
// stands for 0xE5 (a valid lead byte in Shift-JIS), trailing spaces are
// padding, and the bytes are in the DOS code page of the machine that
// wrote them (see codePageLabel).
func fatLabel(b []byte, codePage int) string {
	l := bytes.Clone(b)
	if len(l) > 0 && l[0] == 0x05 {
		l[0] = 0xE5
	}
	return codePageLabel(trimFATName(l), codePage)
}

func serial32(v uint32) string { return fmt.Sprintf("%04X-%04X", v>>16, v&0xFFFF) }

// ---- exFAT -----------------------------------------------------------------

func (p *prober) exFAT() (Info, error) {
	h := p.head
	info := Info{FSType: FSExFAT, UUID: serial32(binary.LittleEndian.Uint32(h[0x64:]))}
	bpsShift, spcShift := uint(h[0x6C]), uint(h[0x6D])
	if bpsShift < 9 || bpsShift > 12 || spcShift > 25-bpsShift {
		return info, fmt.Errorf("exFAT: sector shift %d, cluster shift %d out of range", bpsShift, spcShift)
	}
	bps := int64(1) << bpsShift
	clusterSize := bps << spcShift
	fatOff := int64(binary.LittleEndian.Uint32(h[0x50:])) * bps
	heapOff := int64(binary.LittleEndian.Uint32(h[0x58:])) * bps
	clusters := int64(binary.LittleEndian.Uint32(h[0x5C:]))
	c := int64(binary.LittleEndian.Uint32(h[0x60:]))
	readSize := clusterSize
	if readSize > maxDirRead {
		readSize = maxDirRead // a label sits near the start of the directory
	}
	for read := int64(0); read+readSize <= maxDirRead; read += readSize {
		if c < 2 || c >= clusters+2 {
			return info, fmt.Errorf("exFAT root directory: cluster %d out of range", c)
		}
		dir, err := p.read(heapOff+(c-2)*clusterSize, int(readSize))
		if err != nil {
			return info, fmt.Errorf("exFAT root directory: %w", err)
		}
		for off := 0; off+32 <= len(dir); off += 32 {
			e := dir[off : off+32]
			switch e[0] {
			case 0x00:
				return info, nil
			case 0x83:
				n := int(e[1])
				if n > 11 {
					return info, fmt.Errorf("exFAT label entry: %d characters, at most 11", n)
				}
				info.Label = utf16LELabel(e[2 : 2+2*n])
				return info, nil
			}
		}
		if readSize < clusterSize {
			return info, nil
		}
		next, err := p.read(fatOff+c*4, 4)
		if err != nil {
			return info, fmt.Errorf("exFAT FAT: %w", err)
		}
		c = int64(binary.LittleEndian.Uint32(next))
		if c == 0xFFFFFFFF {
			return info, nil
		}
	}
	return info, nil
}

// ---- NTFS ------------------------------------------------------------------

const (
	ntfsVolumeRecord = 3    // $Volume is MFT record 3
	ntfsAttrName     = 0x60 // $VOLUME_NAME
	ntfsAttrEnd      = 0xFFFFFFFF
	ntfsFixupStride  = 512
)

func (p *prober) ntfs() (Info, error) {
	h := p.head
	info := Info{FSType: FSNTFS, UUID: fmt.Sprintf("%016X", binary.LittleEndian.Uint64(h[0x48:]))}
	bps := int64(binary.LittleEndian.Uint16(h[0x0B:]))
	if !powerOfTwo(uint32(bps)) || bps < 256 || bps > 4096 {
		return info, fmt.Errorf("NTFS: %d bytes per sector", bps)
	}
	spc := int64(h[0x0D])
	if spc > 0x80 { // 2^(256-n) sectors: clusters of 128 KiB and more
		if 256-spc > 12 {
			return info, fmt.Errorf("NTFS: sectors per cluster code %#x", spc)
		}
		spc = 1 << (256 - spc)
	}
	if !powerOfTwo(uint32(spc)) {
		return info, fmt.Errorf("NTFS: %d sectors per cluster", spc)
	}
	clusterSize := bps * spc
	recSize := int64(int8(h[0x40]))
	if recSize > 0 {
		recSize *= clusterSize
	} else if recSize < 0 && recSize >= -31 {
		recSize = 1 << -recSize
	}
	if recSize < ntfsFixupStride || recSize > 64<<10 || !powerOfTwo(uint32(recSize)) {
		return info, fmt.Errorf("NTFS: MFT record size %d", recSize)
	}
	mft := binary.LittleEndian.Uint64(h[0x30:])
	if mft == 0 || mft > uint64(1<<62)/uint64(clusterSize) {
		return info, fmt.Errorf("NTFS: MFT cluster %d", mft)
	}
	rec, err := p.read(int64(mft)*clusterSize+ntfsVolumeRecord*recSize, int(recSize))
	if err != nil {
		return info, fmt.Errorf("NTFS $Volume: %w", err)
	}
	label, err := ntfsVolumeName(rec)
	if err != nil {
		return info, fmt.Errorf("NTFS $Volume: %w", err)
	}
	info.Label = label
	return info, nil
}

// ntfsVolumeName applies the update-sequence fix-up to an MFT record and
// returns the value of its $VOLUME_NAME attribute.
func ntfsVolumeName(rec []byte) (string, error) {
	if string(rec[:4]) != "FILE" {
		return "", errors.New("no FILE signature")
	}
	usaOff := int(binary.LittleEndian.Uint16(rec[4:]))
	usaCount := int(binary.LittleEndian.Uint16(rec[6:]))
	if usaCount != len(rec)/ntfsFixupStride+1 || usaOff < 0x28 || usaOff%2 != 0 || usaOff+2*usaCount > len(rec) {
		return "", fmt.Errorf("update sequence at %d, %d entries: out of range", usaOff, usaCount)
	}
	usn := rec[usaOff : usaOff+2]
	for i := 1; i < usaCount; i++ {
		end := i*ntfsFixupStride - 2
		if !bytes.Equal(rec[end:end+2], usn) {
			return "", fmt.Errorf("sector %d: update sequence mismatch (torn write)", i-1)
		}
		copy(rec[end:end+2], rec[usaOff+2*i:usaOff+2*i+2])
	}
	off := int(binary.LittleEndian.Uint16(rec[0x14:]))
	used := int(binary.LittleEndian.Uint32(rec[0x18:]))
	if used > len(rec) || used < 0 {
		used = len(rec)
	}
	for off+8 <= used {
		typ := binary.LittleEndian.Uint32(rec[off:])
		if typ == ntfsAttrEnd {
			return "", nil // a volume without a name
		}
		n := int(binary.LittleEndian.Uint32(rec[off+4:]))
		if n < 24 || n%8 != 0 || off+n > used {
			return "", fmt.Errorf("attribute at %d: length %d out of range", off, n)
		}
		if typ == ntfsAttrName {
			if rec[off+8] != 0 {
				return "", errors.New("$VOLUME_NAME is not resident")
			}
			vlen := int(binary.LittleEndian.Uint32(rec[off+0x10:]))
			voff := int(binary.LittleEndian.Uint16(rec[off+0x14:]))
			if vlen > 2*128 || voff+vlen > n {
				return "", fmt.Errorf("$VOLUME_NAME value %d bytes at %d out of range", vlen, voff)
			}
			return utf16LELabel(rec[off+voff : off+voff+vlen]), nil
		}
		off += n
	}
	return "", errors.New("no end-of-attributes marker")
}

// ---- ext2/3/4 --------------------------------------------------------------

func (p *prober) ext() (Info, bool) {
	if len(p.head) < 2048 {
		return Info{}, false
	}
	sb := p.head[1024:2048]
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return Info{}, false
	}
	compat := binary.LittleEndian.Uint32(sb[0x5C:])
	incompat := binary.LittleEndian.Uint32(sb[0x60:])
	roCompat := binary.LittleEndian.Uint32(sb[0x64:])
	const (
		compatJournal    = 0x4
		incompatJournDev = 0x8
		ext3Incompat     = 0x2 | 0x4 | 0x10 // filetype, recover, meta_bg
		ext3ROCompat     = 0x1 | 0x2 | 0x4  // sparse_super, large_file, btree_dir
	)
	if incompat&incompatJournDev != 0 {
		return Info{}, false // an external journal, not a file system
	}
	info := Info{FSType: FSExt2}
	switch {
	case incompat&^ext3Incompat != 0 || roCompat&^ext3ROCompat != 0:
		info.FSType = FSExt4
	case compat&compatJournal != 0:
		info.FSType = FSExt3
	}
	u := sb[0x68:0x78]
	info.UUID = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	info.Label = cString(sb[0x78:0x88])
	return info, true
}

// ---- partition tables ------------------------------------------------------

func (p *prober) partitionTable() string {
	h := p.head
	if len(h) >= 520 && string(h[512:520]) == "EFI PART" {
		return "gpt"
	}
	if len(h) >= 4104 && string(h[4096:4104]) == "EFI PART" {
		return "gpt"
	}
	if h[510] != 0x55 || h[511] != 0xAA {
		return ""
	}
	used := false
	for i := range 4 {
		e := h[0x1BE+16*i : 0x1BE+16*i+16]
		if e[0] != 0x00 && e[0] != 0x80 {
			return ""
		}
		if e[4] != 0 {
			used = true
		}
	}
	if used {
		return "dos"
	}
	return ""
}

// cString returns the NUL-terminated string at the start of b, read as
// UTF-8 losslessly (see utf8Label) and sanitised.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return utf8Label(b)
}
