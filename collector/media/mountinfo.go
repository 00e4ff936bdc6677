package media

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mamori-agent/mamori/internal/safe"
)

// Mount is one line of /proc/<pid>/mountinfo (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//
// Paths have the kernel's octal escapes (\040 space, \011 tab, \012 newline,
// \134 backslash) undone, so they are the real bytes of the path. They are
// not sanitised: a mount point made from a medium's label holds whatever the
// label held. Pass them through safe.String before showing or logging them.
type Mount struct {
	ID       int // (1) unique mount ID
	ParentID int // (2) parent mount ID
	// MajorMinor is the st_dev of files on the mount, "8:1" (3). For block
	// file systems it names the block device; btrfs and overlay report an
	// anonymous 0:N instead.
	MajorMinor string
	Root       string   // (4) directory of the file system that is mounted here
	MountPoint string   // (5) relative to the reader's root
	Options    []string // (6) per-mount options, "rw", "nosuid", ...
	Optional   []string // (7) optional fields, "shared:1", "master:2", ...
	FSType     string   // (9) "vfat", "ext4", "fuse.sshfs"
	Source     string   // (10) "/dev/sda1", or whatever the mounter passed
	// SuperOptions are the per-superblock options (11).
	SuperOptions []string
}

// ReadOnly reports whether the mount is read-only, either by its per-mount
// options or by the superblock's.
func (m Mount) ReadOnly() bool {
	return hasOption(m.Options, "ro") || hasOption(m.SuperOptions, "ro")
}

// CodePage returns the DOS code page of a FAT mount, from its
// "codepage=" super option ("codepage=932"), or 0 when it has none.
func (m Mount) CodePage() int {
	for _, o := range m.SuperOptions {
		if v, ok := strings.CutPrefix(o, "codepage="); ok {
			return parseCodePage(v)
		}
	}
	return 0
}

func hasOption(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// ReadMountInfo reads <procfs>/self/mountinfo once and parses it. Malformed
// lines are skipped: it returns the mounts from the good lines together with
// an error naming each bad line. An unreadable file gives no mounts and an
// error.
func ReadMountInfo(procfs string) ([]Mount, error) {
	path := filepath.Join(procfs, "self", "mountinfo")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", safe.String(path), dropPath(err))
	}
	mounts, err := parseMountInfo(b)
	if err != nil {
		err = fmt.Errorf("parse %s: %w", safe.String(path), err)
	}
	return mounts, err
}

// maxMountInfoErrors caps the errors kept from one file; a file that is not
// mountinfo at all would otherwise give one error per line.
const maxMountInfoErrors = 10

// parseMountInfo parses the text of a mountinfo file. It keeps the good lines
// and returns an error joining one error per bad line (at most
// maxMountInfoErrors of them, then a count).
func parseMountInfo(b []byte) ([]Mount, error) {
	var (
		mounts []Mount
		errs   []error
		bad    int
	)
	for n, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseMountInfoLine(line)
		if err != nil {
			bad++
			if len(errs) < maxMountInfoErrors {
				errs = append(errs, fmt.Errorf("line %d: %w", n+1, err))
			}
			continue
		}
		mounts = append(mounts, m)
	}
	if bad > len(errs) {
		errs = append(errs, fmt.Errorf("%d more bad lines", bad-len(errs)))
	}
	return mounts, errors.Join(errs...)
}

func parseMountInfoLine(line string) (Mount, error) {
	var m Mount
	f := strings.Split(line, " ")
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 6 {
		return m, fmt.Errorf("%d fields, want at least 10", len(f))
	}
	if sep < 0 {
		return m, errors.New(`no "-" separator after field 6`)
	}
	if len(f)-sep-1 != 3 {
		return m, fmt.Errorf("%d fields after the separator, want 3", len(f)-sep-1)
	}
	var err error
	if m.ID, err = parseMountID(f[0]); err != nil {
		return m, fmt.Errorf("mount ID: %w", err)
	}
	if m.ParentID, err = parseMountID(f[1]); err != nil {
		return m, fmt.Errorf("parent ID: %w", err)
	}
	if !validMajorMinor(f[2]) {
		return m, fmt.Errorf("major:minor %q", truncate(f[2]))
	}
	m.MajorMinor = f[2]
	if f[3] == "" || f[4] == "" {
		return m, errors.New("empty root or mount point")
	}
	m.Root = unescapeOctal(f[3])
	m.MountPoint = unescapeOctal(f[4])
	m.Options = splitOptions(f[5])
	for _, o := range f[6:sep] {
		if o == "" {
			return m, errors.New("empty optional field")
		}
		m.Optional = append(m.Optional, o)
	}
	if f[sep+1] == "" {
		return m, errors.New("empty file-system type")
	}
	m.FSType = unescapeOctal(f[sep+1])
	m.Source = unescapeOctal(f[sep+2])
	m.SuperOptions = splitOptions(f[sep+3])
	return m, nil
}

func parseMountID(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("%q is not a small non-negative integer", truncate(s))
	}
	return int(n), nil
}

// validMajorMinor reports whether s is "MAJOR:MINOR" in decimal.
func validMajorMinor(s string) bool {
	maj, min, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(maj, 10, 32)
	_, err2 := strconv.ParseUint(min, 10, 32)
	return err1 == nil && err2 == nil
}

func splitOptions(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = unescapeOctal(p)
	}
	return parts
}

// unescapeOctal undoes the kernel's mangling of paths in mountinfo (and of
// fstab): a backslash followed by three octal digits stands for that byte.
// A backslash not followed by a valid escape is kept as it is: the kernel
// always escapes a backslash itself, so that only happens in files the
// kernel did not write, and keeping it loses nothing.
func unescapeOctal(s string) string {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+3 < len(s) && isOctal3(s[i+1:i+4]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isOctal3 reports whether s is three octal digits of a value below 0400.
func isOctal3(s string) bool {
	return len(s) == 3 && s[0] >= '0' && s[0] <= '3' &&
		s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7'
}

// truncate shortens hostile input quoted in an error message.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// dropPath returns an *fs.PathError's operation and cause without its
// path: the caller's message names the path already, escaped, and the
// path in a PathError is raw. errors.Is still sees the cause.
func dropPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err != nil {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
