package usb

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysDir is an open sysfs directory. Attributes are read relative to its
// file descriptor (openat, readlinkat), with raw system calls: a full
// rescan reads several files per device, and os.Open's extra fstat and
// poller registration per file doubled its cost.
type sysDir struct {
	fd   int
	path string
}

func openDir(path string) (sysDir, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return sysDir{fd: -1}, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return sysDir{fd: fd, path: path}, nil
	}
}

// ino returns the inode number of the directory: a kernfs node's
// identity, new for every device the kernel adds.
func (d sysDir) ino() (uint64, bool) {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return 0, false
	}
	return st.Ino, true
}

// isSysfsMount reports whether path lies on a sysfs mount: statfs gives
// SYSFS_MAGIC (0x62656572), which nothing but the kernel's sysfs has.
func isSysfsMount(path string) (bool, error) {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(path, &st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, &fs.PathError{Op: "statfs", Path: path, Err: err}
		}
		return st.Type == unix.SYSFS_MAGIC, nil
	}
}

func (d sysDir) close() {
	if d.fd >= 0 {
		syscall.Close(d.fd)
	}
}

// readAttr reads attribute name into buf and returns the bytes read. It
// fails with errTooLarge when the file does not fit in buf (the caller
// keeps one byte of buf spare to tell). A read that returns fewer bytes
// than asked ends the file: sysfs hands out an attribute in one read,
// and so does a regular file short of its end.
func (d sysDir) readAttr(name string, buf []byte) ([]byte, error) {
	fd, err := openat(d.fd, name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.path + "/" + name, Err: err}
	}
	defer syscall.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: d.path + "/" + name, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
		if n < len(buf) {
			break
		}
	}
	if n == len(buf) {
		return buf[:n], fmt.Errorf("read %s/%s: %w", d.path, name, errTooLarge)
	}
	return buf[:n], nil
}

func openat(dirfd int, name string) (int, error) {
	for {
		fd, err := syscall.Openat(dirfd, name, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// readlink returns the target of symlink name in d.
func (d sysDir) readlink(name string, buf []byte) (string, error) {
	n, err := readlinkat(d.fd, name, buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: d.path + "/" + name, Err: err}
	}
	if n >= len(buf) {
		return "", &fs.PathError{Op: "readlink", Path: d.path + "/" + name, Err: errTooLarge}
	}
	return string(buf[:n]), nil
}

func readlinkat(dirfd int, name string, buf []byte) (int, error) {
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// entries lists d, once (it reads from the directory's current offset):
// names and whether each is a directory (symlinks are not); with
// dirsOnly, directories only. buf is scratch space for getdents.
func (d sysDir) entries(buf []byte, dirsOnly bool) ([]dirEntry, error) {
	var out []dirEntry
	for {
		n, err := unix.Getdents(d.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return out, &fs.PathError{Op: "getdents", Path: d.path, Err: err}
		}
		if n <= 0 {
			break
		}
		out = parseDirents(buf[:n], out, dirsOnly)
	}
	for i := range out {
		if out[i].typ == unix.DT_UNKNOWN {
			// A file system without d_type: ask.
			var st unix.Stat_t
			if err := fstatat(d.fd, out[i].name, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				out[i].typ = unix.DT_DIR
			}
		}
	}
	if dirsOnly {
		out = slices.DeleteFunc(out, func(e dirEntry) bool { return !e.isDir() })
	}
	return out, nil
}

// dirEntry is one name in a directory.
type dirEntry struct {
	name string
	typ  uint8 // DT_*
}

func (e dirEntry) isDir() bool { return e.typ == unix.DT_DIR }

// parseDirents appends the entries of a getdents64 buffer (struct
// linux_dirent64: ino u64, off s64, reclen u16, type u8, name NUL-ended)
// to out, without "." and "..", and with dirsOnly only directories (and
// entries of unknown type). A malformed record ends the parse.
func parseDirents(b []byte, out []dirEntry, dirsOnly bool) []dirEntry {
	for len(b) >= 19 {
		reclen := int(binary.NativeEndian.Uint16(b[16:]))
		if reclen < 19 || reclen > len(b) {
			break
		}
		typ := b[18]
		if dirsOnly && typ != unix.DT_DIR && typ != unix.DT_UNKNOWN {
			b = b[reclen:]
			continue
		}
		name := b[19:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if s := string(name); s != "." && s != ".." && s != "" {
			out = append(out, dirEntry{name: s, typ: typ})
		}
		b = b[reclen:]
	}
	return out
}

func fstatat(dirfd int, name string, st *unix.Stat_t) error {
	return unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
}
