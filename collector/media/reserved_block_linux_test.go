package media

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// gptPart is a partition of a fixture disk as sysfs shows it: its number
// and its start and length in 512-byte sectors.
type gptPart struct {
	number        int
	start, length int64
}

// The partitions of the sgdisk fixtures (testdata/gpt/README.md).
var (
	msr16Parts  = []gptPart{{1, 2048, 32768}, {2, 34816, 131038 - 34816 + 1}}
	msr130Parts = []gptPart{{1, 2048, 268288 - 2048}, {2, 268288, 524254 - 268288 + 1}}
)

// gptStick makes USB disk sdb in a fake sysfs and dev tree: dev/sdb a
// sparse file of size bytes holding head (a testdata/gpt fixture) at 0
// and each of writes (disk byte offset → bytes), sysfs's sdb1, sdb2 ...
// the partitions of parts, with their partition, start and size
// attributes, and dev/sdbN each partition's bytes, as the kernel shows
// them.
func gptStick(t *testing.T, head string, size int64, parts []gptPart, writes map[int64][]byte) *fakeSys {
	t.Helper()
	s := newFakeSys(t)
	const disk = "pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host0/target0:0:0/0:0:0:0/block/sdb"
	s.block(disk, "8:16", int(size/512), false, nil)
	img := s.devImage("sdb", size)
	sparse(t, img, map[int64][]byte{0: gptHead(t, head)})
	sparse(t, img, writes) // over the head
	for _, p := range parts {
		name := "sdb" + strconv.Itoa(p.number)
		s.block(disk+"/"+name, "8:"+strconv.Itoa(16+p.number), int(p.length), true, nil)
		dir := filepath.Join(s.sysfs, "devices", disk, name)
		s.write(filepath.Join(dir, "partition"), []byte(strconv.Itoa(p.number)+"\n"))
		s.write(filepath.Join(dir, "start"), []byte(strconv.FormatInt(p.start, 10)+"\n"))
		off, end := p.start*512, (p.start+p.length)*512
		// The partition's bytes, as the disk holds them.
		b := make([]byte, min(p.length*512, 1<<20))
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.ReadAt(b, off)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		pw := map[int64][]byte{0: b}
		for at, w := range writes {
			if at+int64(len(w)) > off+int64(len(b)) && at < end {
				lo, hi := max(at, off+int64(len(b))), min(at+int64(len(w)), end)
				pw[lo-off] = w[lo-at : hi-at]
			}
		}
		sparse(t, s.devImage(name, p.length*512), pw)
	}
	return s
}

// sparse writes each of writes (offset → bytes) into the file at path.
func sparse(t *testing.T, path string, writes map[int64][]byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for at, b := range writes {
		if _, err := f.WriteAt(b, at); err != nil {
			t.Fatal(err)
		}
	}
}

var luks2Magic = []byte("LUKS\xba\xbe\x00\x02")

// TestReservedUnused: the Microsoft Reserved partition of a disk sgdisk
// partitioned as Windows does is left out of the medium on Linux when it
// is as Windows leaves it, and judged otherwise; anything that cannot be
// read, or does not check, leaves it judged.
func TestReservedUnused(t *testing.T) {
	dataAt := msr16Parts[1].start * 512
	msrAt := msr16Parts[0].start * 512
	for _, tc := range []struct {
		name   string
		head   string
		size   int64
		parts  []gptPart
		writes map[int64][]byte
		// edit changes the fixture after it is made.
		edit    func(s *fakeSys)
		part    string
		want    bool
		wantErr string // "" for none; ErrGPT's text for errors.Is(ErrGPT)
	}{
		{name: "zeroed reserved partition", head: "msr16", part: "sdb1", want: true},
		{name: "the LUKS data partition is no reserved one", head: "msr16", part: "sdb2"},
		{name: "data at the start of the reserved partition", head: "msr16", part: "sdb1",
			writes: map[int64][]byte{msrAt + 100: []byte("exfiltrated")}},
		{name: "a byte written at the end of the checked bytes", head: "msr16", part: "sdb1",
			writes: map[int64][]byte{msrAt + reservedCheck - 1: {1}}},
		{name: "a byte written past the checked bytes", head: "msr16", part: "sdb1", want: true,
			writes: map[int64][]byte{msrAt + reservedCheck: {1}}},
		{name: "a file system in the reserved partition", head: "msr16", part: "sdb1",
			writes: map[int64][]byte{msrAt: testImage(t, "fat12")}},
		{name: "a file system whose first 64 KiB are zero (btrfs)", head: "msr16", part: "sdb1",
			writes: map[int64][]byte{msrAt: testImage(t, "btrfs")}},
		{name: "reserved partition of 130 MiB", head: "msr130", size: msr130Disk, parts: msr130Parts, part: "sdb1"},
		{name: "header CRC broken", head: "msr16", part: "sdb1", wantErr: ErrGPT.Error(),
			writes: map[int64][]byte{512 + 56: {0xFF}}},
		{name: "entry array CRC broken", head: "msr16", part: "sdb1", wantErr: ErrGPT.Error(),
			writes: map[int64][]byte{1024 + 127*128: {1}}},
		{name: "MBR disk", head: "mbr16", part: "sdb1", wantErr: "no protective MBR"},
		{name: "GPT left behind under an MBR", head: "mbr16", part: "sdb1", wantErr: "no protective MBR",
			writes: map[int64][]byte{512: gptHead(t, "msr16")[512:]}},
		{name: "whole disk unreadable", head: "msr16", part: "sdb1", wantErr: "read gpt",
			edit: func(s *fakeSys) { os.Remove(filepath.Join(s.dev, "sdb")) }},
		{name: "whole disk a directory", head: "msr16", part: "sdb1", wantErr: "read gpt",
			edit: func(s *fakeSys) {
				os.Remove(filepath.Join(s.dev, "sdb"))
				s.mkdir(filepath.Join(s.dev, "sdb"))
			}},
		{name: "whole disk shorter than its GPT says", head: "msr16", part: "sdb1", wantErr: "usable LBAs",
			edit: func(s *fakeSys) { os.Truncate(filepath.Join(s.dev, "sdb"), 32<<20) }},
		{name: "partition unreadable", head: "msr16", part: "sdb1", wantErr: "sdb1",
			edit: func(s *fakeSys) { os.Remove(filepath.Join(s.dev, "sdb1")) }},
		{name: "partition shorter than sysfs says", head: "msr16", part: "sdb1", wantErr: "sysfs says",
			edit: func(s *fakeSys) { os.Truncate(filepath.Join(s.dev, "sdb1"), 1<<20) }},
		{name: "sysfs start not the entry's", head: "msr16", part: "sdb1", wantErr: "sysfs places it",
			edit: func(s *fakeSys) { s.write(filepath.Join(s.sysfs, "class/block/sdb1/start"), []byte("4096\n")) }},
		{name: "sysfs size not the entry's", head: "msr16", part: "sdb1", wantErr: "sysfs places it",
			edit: func(s *fakeSys) { s.write(filepath.Join(s.sysfs, "class/block/sdb1/size"), []byte("30720\n")) }},
		{name: "sysfs number not in the GPT", head: "msr16", part: "sdb1", wantErr: "has no partition 3",
			edit: func(s *fakeSys) { s.write(filepath.Join(s.sysfs, "class/block/sdb1/partition"), []byte("3\n")) }},
		{name: "sysfs number of the data partition", head: "msr16", part: "sdb1",
			edit: func(s *fakeSys) { s.write(filepath.Join(s.sysfs, "class/block/sdb1/partition"), []byte("2\n")) }},
		{name: "sysfs number garbled", head: "msr16", part: "sdb1", wantErr: "not a number",
			edit: func(s *fakeSys) { s.write(filepath.Join(s.sysfs, "class/block/sdb1/partition"), []byte("+1\n")) }},
		{name: "no partition attribute", head: "msr16", part: "sdb1", wantErr: "partition",
			edit: func(s *fakeSys) { os.Remove(filepath.Join(s.sysfs, "class/block/sdb1/partition")) }},
		{name: "sectors of 4096 bytes", head: "msr16", part: "sdb1", wantErr: ErrGPT.Error(),
			edit: func(s *fakeSys) {
				s.write(filepath.Join(s.sysfs, "class/block/sdb/queue/logical_block_size"), []byte("4096\n"))
			}},
		{name: "sectors of 512 bytes said", head: "msr16", part: "sdb1", want: true,
			edit: func(s *fakeSys) {
				s.write(filepath.Join(s.sysfs, "class/block/sdb/queue/logical_block_size"), []byte("512\n"))
			}},
		{name: "sector size garbled", head: "msr16", part: "sdb1", wantErr: "logical_block_size",
			edit: func(s *fakeSys) {
				s.write(filepath.Join(s.sysfs, "class/block/sdb/queue/logical_block_size"), []byte("lots\n"))
			}},
		{name: "not a block name", head: "msr16", part: "../sdb1", wantErr: "not a block device name"},
		{name: "the disk itself", head: "msr16", part: "sdb", wantErr: "partition"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size, parts, writes := tc.size, tc.parts, tc.writes
			if size == 0 {
				size, parts = msr16Disk, msr16Parts
			}
			if writes == nil {
				writes = map[int64][]byte{}
			}
			if _, ok := writes[dataAt]; !ok && tc.head != "msr130" {
				writes[dataAt] = luks2Magic // a LUKS2 data partition
			}
			s := gptStick(t, tc.head, size, parts, writes)
			if tc.edit != nil {
				tc.edit(s)
			}
			got, err := ReservedUnused(s.sysfs, s.dev, tc.part)
			if got != tc.want {
				t.Errorf("got %v (%v), want %v", got, err, tc.want)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.wantErr == ErrGPT.Error() && !errors.Is(err, ErrGPT):
				t.Errorf("error %v, want ErrGPT", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one with %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), s.dev+"/../") {
				t.Errorf("error names a path outside dev: %v", err)
			}
		})
	}
}
