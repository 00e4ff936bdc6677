//go:build unix

package fsguard

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// CheckDir refuses the directory path unless only root and the current
// effective user can change it: it must be a directory owned by root or
// the euid and not writable by group or others, and so must every
// ancestor directory, of the path as given and of the path with its
// symlinks resolved, except that an ancestor writable by others is
// accepted when its sticky bit is set (as /tmp). The error, an
// *UnsafeError for a permission problem, names the path at fault, the
// problem and the fix.
func CheckDir(path string) error {
	return check(path, true)
}

// CheckFile is CheckDir for a file (a config or token file): it must be a
// regular file owned by root or the euid and not writable by group or
// others, in directories that pass CheckDir's ancestor rule.
func CheckFile(path string) error {
	return check(path, false)
}

func check(path string, wantDir bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	switch {
	case wantDir && !fi.IsDir():
		return fmt.Errorf("check %s: %s, not a directory", path, is(fi.Mode()))
	case !wantDir && !fi.Mode().IsRegular():
		return fmt.Errorf("check %s: %s, not a regular file", path, is(fi.Mode()))
	}
	euid := os.Geteuid()
	// A symlink on the way (the path itself or an ancestor as written)
	// is only as trustworthy as its owner: in a sticky directory such as
	// /tmp anyone may plant one, and its own mode means nothing.
	for p := abs; ; p = filepath.Dir(p) {
		if lfi, err := os.Lstat(p); err == nil && lfi.Mode()&fs.ModeSymlink != 0 {
			if st, ok := lfi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != 0 && int(st.Uid) != euid {
				return &UnsafeError{Path: p, Checked: path,
					Problem: fmt.Sprintf("is owned by uid %d, not by root or this process's user (uid %d), and is a symlink anyone could have planted", st.Uid, euid),
					Fix:     "remove it and use a path root owns: rm " + p}
			}
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	name := path
	if resolved != abs {
		name = fmt.Sprintf("%s (%s)", path, resolved)
	}
	if err := checkOwnerMode(name, resolved, fi, euid, false); err != nil {
		err.Checked = path
		return err
	}
	// Ancestors: those of the path as written (a symlink is only as safe
	// as the directory holding it) and those of its target.
	seen := map[string]bool{}
	for _, p := range []string{abs, resolved} {
		for d := filepath.Dir(p); !seen[d]; d = filepath.Dir(d) {
			seen[d] = true
			dfi, err := os.Stat(d)
			if err != nil {
				return fmt.Errorf("check %s: %w", path, err)
			}
			if err := checkOwnerMode(d, d, dfi, euid, true); err != nil {
				err.Checked = path
				return err
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return nil
}

// CheckUnreadable refuses the file path (a token, a private key) when
// group or others may read it (mode bits 0044): the error, an
// *UnsafeError with Reads set, gives the mode and the chmod that fixes
// it. Who owns it and who may change it are CheckFile's: call both. The
// file is judged through a final symlink (os.Stat).
func CheckUnreadable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if perm := fi.Mode().Perm(); perm&0o044 != 0 {
		return &UnsafeError{Path: path, Checked: path, Reads: true,
			Problem: fmt.Sprintf("is readable by group or others (mode %04o)", perm),
			Fix:     "chmod go-rwx " + path}
	}
	return nil
}

// checkOwnerMode checks one object's owner and mode. name is how to call
// it in the message, fixPath the path to give chmod/chown.
func checkOwnerMode(name, fixPath string, fi fs.FileInfo, euid int, ancestor bool) *UnsafeError {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &UnsafeError{Path: name, Problem: "cannot be inspected (no owner information)", Fix: "check it by hand"}
	}
	uid := int(st.Uid)
	if uid != 0 && uid != euid {
		owner := "root"
		if euid != 0 {
			owner = strconv.Itoa(euid)
		}
		return &UnsafeError{Path: name,
			Problem: fmt.Sprintf("is owned by uid %d, not by root or this process's user (uid %d)", uid, euid),
			Fix:     fmt.Sprintf("chown %s %s", owner, fixPath)}
	}
	perm := fi.Mode().Perm()
	w := perm & 0o022
	if w == 0 {
		return nil
	}
	if ancestor && fi.Mode()&fs.ModeSticky != 0 {
		// Writable but sticky, like /tmp (1777): others may add entries
		// but not rename or remove ours.
		return nil
	}
	who := map[fs.FileMode]string{0o020: "group", 0o002: "others", 0o022: "group and others"}[w]
	return &UnsafeError{Path: name,
		Problem: fmt.Sprintf("is writable by %s (mode %04o)", who, perm|stickyBits(fi.Mode())),
		Fix:     "chmod go-w " + fixPath}
}

// stickyBits returns the setuid, setgid and sticky bits of m in their
// octal places, for showing a mode as chmod takes it.
func stickyBits(m fs.FileMode) fs.FileMode {
	var b fs.FileMode
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}
