package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ISO 9660 and UDF: both start with a volume recognition sequence at
// 32 KiB (ECMA-119, ECMA-167), read as blkid does
// (libblkid/src/superblocks/iso9660.c, udf.c).

const (
	vrsOffset   = 0x8000 // sector 16 of 2048 bytes
	isoSector   = 2048
	isoMaxVDs   = 16 // blkid's ISO_VD_MAX
	udfMaxVSDs  = 64
	udfMaxVDS   = 64 // descriptors read from the main volume descriptor sequence
	udfTagAVDP  = 2
	udfTagLVD   = 6
	udfTagTerm  = 8
	udfAnchorAt = 256 // sector of the anchor volume descriptor pointer
)

// udf finds "NSR02" or "NSR03" in the volume recognition sequence (each
// descriptor 2048 bytes, or one block when blocks are larger), then the
// anchor at sector 256 for the block size, then the logical volume
// descriptor, whose identifier (offset 84, a 128-byte dstring) is the
// label.
func (p *prober) udf() (Info, bool, error) {
	nsr := false
	for _, vsdLen := range []int64{2048, 4096} {
		for b := int64(0); b < udfMaxVSDs && !nsr; b++ {
			d := p.peek(vrsOffset+b*vsdLen, 6)
			if d == nil || d[1] == 0 {
				break
			}
			switch id := string(d[1:6]); id {
			case "NSR02", "NSR03":
				nsr = true
			case "BEA01", "BOOT2", "CD001", "CDW02", "TEA01":
				continue
			}
			if !nsr {
				break
			}
		}
		if nsr {
			break
		}
	}
	if !nsr {
		return Info{}, false, nil
	}
	info := Info{FSType: FSUDF}
	for _, bs := range []int64{512, 1024, 2048, 4096} {
		a := p.peek(udfAnchorAt*bs, 24)
		if a == nil || binary.LittleEndian.Uint16(a) != udfTagAVDP || binary.LittleEndian.Uint32(a[12:]) != udfAnchorAt {
			continue
		}
		vdsLen, vdsLoc := binary.LittleEndian.Uint32(a[16:]), binary.LittleEndian.Uint32(a[20:])
		label, err := p.udfLabel(bs, int64(vdsLoc), int64(vdsLen)/bs)
		info.Label = label
		if err != nil {
			err = fmt.Errorf("UDF volume descriptors: %w", err)
		}
		return info, true, err
	}
	return info, true, errors.New("UDF: no anchor volume descriptor at sector 256")
}

func (p *prober) udfLabel(bs, loc, count int64) (string, error) {
	if count > udfMaxVDS {
		count = udfMaxVDS
	}
	for i := int64(0); i < count; i++ {
		d, err := p.read((loc+i)*bs, 212)
		if err != nil {
			return "", err
		}
		if binary.LittleEndian.Uint32(d[12:]) != uint32(loc+i) {
			return "", fmt.Errorf("descriptor at sector %d says it is at %d", loc+i, binary.LittleEndian.Uint32(d[12:]))
		}
		switch binary.LittleEndian.Uint16(d) {
		case udfTagLVD:
			return dstring(d[84:212]), nil
		case udfTagTerm:
			return "", nil
		}
	}
	return "", nil
}

// dstring decodes an OSTA compressed-Unicode dstring (UDF 2.1.1, 2.1.3):
// byte 0 is the compression id (8: one byte a character, Latin-1; 16:
// UTF-16BE; 254 and 255 the same for UDF 2.50), the last byte the length
// used, compression id included.
func dstring(d []byte) string {
	n := int(d[len(d)-1])
	if n <= 1 {
		return ""
	}
	if n > len(d)-1 {
		n = len(d) - 1
	}
	data := d[1:n]
	switch d[0] {
	case 8, 254:
		var l labelBuilder
		for _, c := range data {
			l.addRune(rune(c))
		}
		return l.String()
	case 16, 255:
		return utf16BELabel(data)
	}
	return utf8Label(data)
}

// iso9660 reads the volume descriptors from 32 KiB: the primary one (type
// 1, "CD001" at +1) with the volume id at +40 (0x8028 for the first one),
// and a Joliet supplementary one (type 2, escape "%/@", "%/C" or "%/E" at
// +88) whose UTF-16BE volume id wins when it is not a prefix of the
// primary's. Like blkid, it checks that the root directory record (+156)
// points at a "." entry that points back at itself, and makes the UUID
// from the modification date (+830), else the creation date (+813).
func (p *prober) iso9660() (Info, bool, error) {
	var pvd, joliet []byte
	for i := int64(0); i < isoMaxVDs; i++ {
		d := p.peek(vrsOffset+i*isoSector, 884)
		if d == nil || d[0] == 255 || string(d[1:6]) != "CD001" {
			break
		}
		switch {
		case d[0] == 1 && pvd == nil:
			pvd = d
		case d[0] == 2 && joliet == nil:
			if e := string(d[88:91]); e == "%/@" || e == "%/C" || e == "%/E" {
				joliet = d
			}
		}
	}
	if pvd == nil {
		return Info{}, false, nil
	}
	lbs := int64(binary.LittleEndian.Uint16(pvd[128:]))
	rootLBA := binary.LittleEndian.Uint32(pvd[156+2:])
	if lbs == 0 || binary.LittleEndian.Uint32(pvd[156+10:]) < 34 {
		return Info{}, false, nil
	}
	rd := p.peek(int64(rootLBA)*lbs, 34)
	if rd == nil || rd[0] < 34 || rd[32] != 1 || rd[33] != 0 || binary.LittleEndian.Uint32(rd[2:]) != rootLBA {
		return Info{}, false, nil // "CD001" in data, not a file system
	}
	info := Info{FSType: FSISO9660}
	info.UUID = isoDateUUID(pvd[830:847])
	if info.UUID == "" {
		info.UUID = isoDateUUID(pvd[813:830])
	}
	plain := bytes.TrimRight(pvd[40:72], " \x00")
	info.Label = utf8Label(plain)
	if joliet != nil {
		u := utf16Units(joliet[40:72], true)
		for len(u) > 0 && (u[len(u)-1] == ' ' || u[len(u)-1] == 0) {
			u = u[:len(u)-1]
		}
		if j := utf16Label(u); j != "" && !(len(info.Label) > len(j) && bytes.HasPrefix(plain, []byte(j))) {
			info.Label = j
		}
	}
	return info, true, nil
}

// isoDateUUID formats a 17-byte ISO 9660 date (16 digits and a time-zone
// offset) as blkid's UUID "YYYY-MM-DD-HH-mm-ss-cc"; "" for an unset date
// (all '0' and offset 0).
func isoDateUUID(d []byte) string {
	if string(d[:16]) == "0000000000000000" && d[16] == 0 || bytes.Equal(d[:16], make([]byte, 16)) {
		return ""
	}
	s := fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", d[0:4], d[4:6], d[6:8], d[8:10], d[10:12], d[12:14], d[14:16])
	return utf8Label([]byte(s))
}
