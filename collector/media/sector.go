package media

import (
	"fmt"
	"io"
)

// sectorReader reads a window of a raw device whose reads must start and
// end on sector boundaries (a Windows disk or volume opened without
// buffering: an unaligned ReadAt fails with ERROR_INVALID_PARAMETER).
// ReadAt(p, off) reads the sectors covering [off, off+len(p)) of the
// window into a scratch buffer and copies the part asked for. Probe reads
// small, unaligned pieces; this makes them sector reads.
type sectorReader struct {
	r      io.ReaderAt
	base   int64 // the window's start on r, a multiple of sector
	size   int64 // the window's length in bytes; 0 when unknown
	sector int64 // a power of two, 512 or more
}

// maxSectorRead bounds one ReadAt, in bytes: Probe never asks for more
// than MaxProbeRead in all.
const maxSectorRead = MaxProbeRead + 64<<10

// newSectorReader returns a reader of size bytes of r from base. sector
// must be a power of two from 512 to 64 KiB and base a multiple of it.
func newSectorReader(r io.ReaderAt, base, size int64, sector int) (*sectorReader, error) {
	if sector < 512 || sector > 65536 || sector&(sector-1) != 0 {
		return nil, fmt.Errorf("sector size %d is not a power of two from 512 to 65536", sector)
	}
	if base < 0 || base%int64(sector) != 0 {
		return nil, fmt.Errorf("window offset %d is not a multiple of the sector size %d", base, sector)
	}
	if size < 0 {
		return nil, fmt.Errorf("window length %d", size)
	}
	return &sectorReader{r: r, base: base, size: size, sector: int64(sector)}, nil
}

// ReadAt reads len(p) bytes at off within the window. Past the window's
// end (when its size is known) it reads what there is and returns io.EOF.
func (s *sectorReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	want := int64(len(p))
	if s.size > 0 {
		if off >= s.size {
			return 0, io.EOF
		}
		want = min(want, s.size-off)
	}
	if want == 0 {
		return 0, nil
	}
	if want > maxSectorRead {
		return 0, fmt.Errorf("read of %d bytes, more than %d", want, maxSectorRead)
	}
	start := off &^ (s.sector - 1)
	end := (off + want + s.sector - 1) &^ (s.sector - 1)
	buf := make([]byte, end-start)
	n, err := s.r.ReadAt(buf, s.base+start)
	got := max(0, min(int64(n)-(off-start), want))
	copy(p, buf[off-start:off-start+got])
	if got == int64(len(p)) {
		return int(got), nil
	}
	if err == nil {
		err = io.EOF
	}
	return int(got), err
}
