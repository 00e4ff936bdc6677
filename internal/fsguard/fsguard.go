// Package fsguard opens and checks the files an agent running as root
// reads and writes in places other users might reach: the state
// directory, the config file, token files.
//
// Someone at the PC may be the adversary. If they can write the state
// directory, they can plant a symlink where root will write, a FIFO where
// root will read (and hang it), or /dev/zero (and exhaust its memory).
// ReadFile reads only regular files and only up to a bound; CheckDir and
// CheckFile refuse a path that someone other than root or the current
// user owns or can write, ancestors included, with an error that names
// the path and the fix; MkdirAll creates a private state directory and
// checks it; MkdirState also takes back, on Windows, a state folder that
// someone else made or could change (takeback.go).
//
// On Windows, CheckDir and CheckFile judge the owner and the DACL instead
// of the mode (acl.go, check_windows.go): only SYSTEM, Administrators,
// TrustedInstaller and the process's user may own or change what is
// checked, and a directory on the way may let others add entries but not
// delete or rename them (as %ProgramData% and C:\ let Users create
// folders).
package fsguard

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// ErrTooLarge is wrapped by ReadFile's error for a file over the bound.
var ErrTooLarge = errors.New("file too large")

// ErrNotRegular is wrapped by ReadFile's error for a path that is not a
// regular file (a FIFO, a device, a directory, a socket, or a symlink when
// symlinks are refused).
var ErrNotRegular = errors.New("not a regular file")

// ReadFile reads the regular file at path, at most max bytes of it. It
// opens the file without blocking (a FIFO does not hang it), checks with
// fstat that what it opened is a regular file (a device such as /dev/zero,
// a FIFO, a directory or a socket is refused unread) no larger than max,
// and then reads it. A final symlink is followed; see ReadFileNoFollow.
func ReadFile(path string, max int64) ([]byte, error) {
	return readFile(path, max, false)
}

// ReadFileNoFollow is ReadFile, except that it refuses a symlink at path
// (O_NOFOLLOW where the system has it): for files the agent itself wrote,
// where a symlink can only have been planted.
func ReadFileNoFollow(path string, max int64) ([]byte, error) {
	return readFile(path, max, true)
}

func readFile(path string, max int64, noFollow bool) ([]byte, error) {
	f, err := openNonblock(path, noFollow)
	if err != nil {
		return nil, err // an *os.PathError naming path
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: %s, %w", path, is(fi.Mode()), ErrNotRegular)
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("read %s: %w: %d bytes, more than %d", path, ErrTooLarge, fi.Size(), max)
	}
	// The file may grow between fstat and read: never read past max.
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("read %s: %w: grew past %d bytes while read", path, ErrTooLarge, max)
	}
	return b, nil
}

// CheckRegular checks with fstat that f, opened from path, is a regular
// file; the error wraps ErrNotRegular and says what it is instead.
func CheckRegular(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("open %s: is %s, %w", path, Describe(fi.Mode()), ErrNotRegular)
	}
	return nil
}

// Describe names a file type for an error message: "a FIFO", "a
// character device", "a directory".
func Describe(m fs.FileMode) string {
	switch t := m.Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		return "a symlink"
	case t&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a block device"
	default:
		return "a special file (" + t.String() + ")"
	}
}

// is says what m is: "is a FIFO".
func is(m fs.FileMode) string {
	return "is " + Describe(m)
}

// MkdirAll creates the state directory path, private, if it does not
// exist: mode 0700 on Unix (its missing parents 0755); on Windows with
// PrivateDirSDDL (its missing parents with what they inherit). Then it
// checks it with CheckDir. On Windows a directory that exists, owned by
// SYSTEM, Administrators, TrustedInstaller or this process's user, whose
// ACL lets others write (a folder an installer made under %ProgramData%
// inherits Users' right to add files) is made private first, when
// nothing in it belongs to anyone else (check_windows.go). It never moves
// anything: a directory someone else made, or holding what someone else
// put there, is refused; MkdirState takes such a directory back.
func MkdirAll(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := mkdirPrivate(path); err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
	} else if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	} else if err := adoptDir(path); err != nil {
		return err
	}
	return CheckDir(path)
}

// MkdirState creates or takes back the agent's state directory path and
// checks it with CheckDir. A directory that does not exist is created as
// MkdirAll creates it. On Windows one that exists is judged through a
// handle that does not follow a link: kept when private; made private in
// place when its owner is trusted and others may at most read it or add
// entries (what someone else put in it moved aside unread); and otherwise
// (made by someone else, a junction or link, an ACL that let others
// replace what is in it, or that cannot be read) renamed aside, unread, to
// NAME.untrusted-YYYYMMDDThhmmss (UTC) and replaced by a fresh private
// directory. takeback.go says why. What it moves is logged to log at
// Error (nil: discarded), naming the path, where it went and why. On Unix
// it is MkdirAll: /var/lib is root's, and a state directory someone else
// owns or can write is refused. Errors name the path; a directory on the
// way that is not safe is CheckDir's error (nothing there is taken back).
func MkdirState(path string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := mkdirPrivate(path); err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
	} else if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	} else if err := prepareExisting(path, log, time.Now()); err != nil {
		return err
	}
	return CheckDir(path)
}

// UnsafeError says why CheckDir or CheckFile refused a path and how to fix
// it.
type UnsafeError struct {
	// Path is the file or directory at fault: the one checked or one of
	// its ancestors.
	Path string
	// Problem says what is wrong, e.g. "is owned by uid 1000" or "is
	// writable by group and others (mode 0777)".
	Problem string
	// Fix is a command that repairs it, e.g. "chmod go-w /var/lib/mamori".
	Fix string
	// Checked is the path CheckDir or CheckFile was asked about.
	Checked string
	// Reads says the problem is who may read it (CheckUnreadable), not
	// who may change it.
	Reads bool
}

func (e *UnsafeError) Error() string {
	what := e.Path
	if e.Checked != "" && e.Checked != e.Path {
		what = fmt.Sprintf("%s (on the way to %s)", e.Path, e.Checked)
	}
	why := "anyone who can write it can tamper with what the program reads and writes as root"
	if e.Reads {
		why = "anyone who can read it learns the secret it holds"
	}
	return fmt.Sprintf("unsafe: %s %s: %s; fix: %s", what, e.Problem, why, e.Fix)
}

// errSymlink is the error for a symlink where ReadFileNoFollow wants a
// file.
var errSymlink = fmt.Errorf("is a symlink, %w", ErrNotRegular)
