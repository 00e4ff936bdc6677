package media

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mamori-agent/mamori/internal/safe"
)

// ReservedUnused reports whether the block device name, a partition the
// kernel lists ("sdb1"), is a Microsoft Reserved partition as Windows
// leaves it, which a medium is judged without (the rule of
// reservedLeftOut, the one the Windows disk probe uses). sysfsRoot and
// devRoot are as in Options. The partition's GPT type is not in sysfs; it
// is read from its disk:
//
//   - the partition's <sysfsRoot>/class/block/<name>/partition (its
//     number), start and size (in 512-byte units whatever the sector
//     size), and its disk: the block device whose sysfs directory holds
//     the partition's;
//   - the disk's logical sector size, <disk>/queue/logical_block_size
//     (512 when sysfs has none), and its primary GPT read from
//     <devRoot>/<disk>: LBA 0 and 1, then the partition entry array, each
//     checked as parseGPTHeader and parseGPT say (protective MBR, header
//     and array CRC32s, bounds);
//   - the entry of that number must be the partition: its type the
//     Microsoft Reserved GUID, its first LBA and length those of start and
//     size;
//   - the partition itself, <devRoot>/<name>, is then probed and its first
//     bytes read (reservedLeftOut).
//
// It fails closed: false, with an error that says why, whenever anything
// could not be read or did not check (an MBR disk has no GPT; a GPT whose
// primary copy is damaged is not read from its backup); false and nil
// when the partition was read and is not an unused reserved partition.
func ReservedUnused(sysfsRoot, devRoot, name string) (bool, error) {
	if validBlockName(name) == "" {
		return false, fmt.Errorf("reserved partition: %q is not a block device name", truncate(name))
	}
	dir := filepath.Join(sysfsRoot, "class", "block", name)
	number, err := sysfsUint(dir, "partition", maxGPTEntries)
	if err != nil {
		return false, fmt.Errorf("reserved partition %s: %w", name, err)
	}
	start, err := sysfsUint(dir, "start", 1<<53)
	if err != nil {
		return false, fmt.Errorf("reserved partition %s: %w", name, err)
	}
	sectors, err := sysfsUint(dir, "size", 1<<53)
	if err != nil {
		return false, fmt.Errorf("reserved partition %s: %w", name, err)
	}
	length := int64(sectors) * 512
	if length == 0 || length > maxReserved {
		return false, nil // not a reserved partition left out: no need to read its disk
	}
	disk, err := diskOfPartition(sysfsRoot, name)
	if err != nil {
		return false, fmt.Errorf("reserved partition %s: %w", name, err)
	}
	sector := 512
	if n, err := sysfsUint(filepath.Join(sysfsRoot, "class", "block", disk), "queue/logical_block_size", 65536); err == nil {
		sector = int(n)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("reserved partition %s: disk %s: %w", name, disk, err)
	}
	entries, err := readGPT(filepath.Join(devRoot, disk), sector)
	if err != nil {
		return false, fmt.Errorf("reserved partition %s: %w", name, err)
	}
	var entry *gptEntry
	for i := range entries {
		if entries[i].Number == int(number) {
			entry = &entries[i]
			break
		}
	}
	switch {
	case entry == nil:
		return false, fmt.Errorf("reserved partition %s: the GPT of %s has no partition %d", name, disk, number)
	case entry.Type != msrType:
		return false, nil
	case entry.FirstLBA*uint64(sector) != start*512 || (entry.LastLBA-entry.FirstLBA+1)*uint64(sector) != sectors*512:
		return false, fmt.Errorf("reserved partition %s: sysfs places it at sector %d for %d sectors of 512 bytes, the GPT of %s at LBA %d to %d of %d bytes",
			name, start, sectors, disk, entry.FirstLBA, entry.LastLBA, sector)
	}
	path := filepath.Join(devRoot, name)
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("reserved partition: %w", dropPathOf(path, err))
	}
	defer f.Close()
	if size, err := f.Seek(0, io.SeekEnd); err != nil || size != length {
		return false, fmt.Errorf("reserved partition %s: %d bytes, sysfs says %d (%v)", safe.String(path), size, length, err)
	}
	info, err := ProbeWith(f, length, ProbeOptions{})
	if err != nil {
		return false, fmt.Errorf("reserved partition: probe %s: %w", safe.String(path), err)
	}
	return reservedLeftOut(true, length, info, f, 0), nil
}

// readGPT reads the primary GPT of the disk at path (its LBA 0 and 1, then
// the partition entry array) and parses it (parseGPT). sector is the
// disk's logical sector size in bytes.
func readGPT(path string, sector int) ([]gptEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read gpt: %w", dropPathOf(path, err))
	}
	defer f.Close()
	// Block devices report size 0 to stat; seeking to the end tells.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("read gpt of %s: size: %w", safe.String(path), err)
	}
	head := make([]byte, 2*max(sector, 0))
	if _, err := f.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("read gpt of %s: LBA 0 and 1: %w", safe.String(path), err)
	}
	h, err := parseGPTHeader(head, sector, size)
	if err != nil {
		return nil, fmt.Errorf("read gpt of %s: %w", safe.String(path), err)
	}
	entries := make([]byte, h.EntriesLength())
	if _, err := f.ReadAt(entries, h.EntriesOffset()); err != nil {
		return nil, fmt.Errorf("read gpt of %s: partition entries at byte %d: %w", safe.String(path), h.EntriesOffset(), err)
	}
	out, err := parseGPT(head, entries, sector, size)
	if err != nil {
		return nil, fmt.Errorf("read gpt of %s: %w", safe.String(path), err)
	}
	return out, nil
}

// diskOfPartition returns the kernel name of the disk that holds
// partition name: the block device whose sysfs directory is the one above
// the partition's (<sysfsRoot>/class/block/<name> resolved), itself
// listed in class/block and not a partition.
func diskOfPartition(sysfsRoot, name string) (string, error) {
	dir, err := filepath.EvalSymlinks(filepath.Join(sysfsRoot, "class", "block", name))
	if err != nil {
		return "", fmt.Errorf("its sysfs directory: %w", dropPath(err))
	}
	disk := validBlockName(filepath.Base(filepath.Dir(dir)))
	if disk == "" || !isBlock(sysfsRoot, disk) {
		return "", fmt.Errorf("no disk above it in sysfs (%s)", safe.String(filepath.Dir(dir)))
	}
	if _, err := os.Stat(filepath.Join(sysfsRoot, "class", "block", disk, "partition")); err == nil {
		return "", fmt.Errorf("the device above it, %s, is a partition itself", safe.String(disk))
	}
	return disk, nil
}

// sysfsUint reads the sysfs attribute dir/attr, a decimal number from 0
// to limit followed by a newline or not. The error wraps fs.ErrNotExist
// when the attribute is missing.
func sysfsUint(dir, attr string, limit uint64) (uint64, error) {
	path := filepath.Join(dir, attr)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", safe.String(path), dropPath(err))
	}
	s := strings.TrimSuffix(string(b), "\n")
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > limit || s == "" || s[0] == '+' {
		return 0, fmt.Errorf("parse %s: %q is not a number from 0 to %d", safe.String(path), truncate(string(b)), limit)
	}
	return n, nil
}

// dropPathOf is dropPath with the path said once, escaped.
func dropPathOf(path string, err error) error {
	return fmt.Errorf("%s: %w", safe.String(path), dropPath(err))
}
