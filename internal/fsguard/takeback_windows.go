package fsguard

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// prepareExisting makes the existing state folder path fit to use, as
// the doc at the top of takeback.go says: it judges the folder through a
// handle opened without following a link (decideFolder) and keeps it,
// makes it private in place (adoptFolder), or renames it aside and makes
// a fresh private folder (takeBack), logging at Error what it moved and
// why. The directories on the way must pass CheckDir's rule for them
// first (nothing there is this program's to fix): else the error is
// CheckDir's.
func prepareExisting(path string, log *slog.Logger, now time.Time) error {
	t, err := trust()
	if err != nil {
		return fmt.Errorf("state dir %s: %w", path, err)
	}
	return prepareExistingAs(path, t, log, now)
}

// prepareExistingAs is prepareExisting for the trust set t.
func prepareExistingAs(path string, t trustSet, log *slog.Logger, now time.Time) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("state dir %s: %w", path, err)
	}
	parent := filepath.Dir(abs)
	if parent == abs {
		return fmt.Errorf("state dir %s: a volume's root cannot be the state directory", path)
	}
	if err := refuseLinks(parent, path); err != nil {
		return err
	}
	for p := parent; ; p = filepath.Dir(p) {
		if err := checkOne(p, path, t, kindAncestor); err != nil {
			return err
		}
		if filepath.Dir(p) == p {
			break
		}
	}
	h, f, err := openFolder(abs)
	if err != nil {
		return fmt.Errorf("state dir %s: %w", path, err)
	}
	defer windows.CloseHandle(h)
	action, why := decideFolder(f, t)
	switch action {
	case folderKeep:
		return nil
	case folderAdopt:
		return adoptFolder(abs, t, log, now, why)
	}
	dst, err := takeBack(h, abs, now)
	if err != nil {
		return fmt.Errorf("state dir %s %s; moving it aside failed: %w", path, why, err)
	}
	log.Error("state folder not trusted: moved aside unread and replaced by a new private folder; nothing that was in it (audit log, report queue, token) is used",
		"path", abs, "moved_to", dst, "why", "it "+why)
	if err := mkdirPrivateAs(abs, t); err != nil {
		return fmt.Errorf("state dir %s: create it anew after moving the untrusted one to %s: %w", path, dst, err)
	}
	return nil
}

// openFolder opens abs without following a link (FILE_FLAG_OPEN_REPARSE_POINT,
// FILE_FLAG_BACKUP_SEMANTICS for a directory), for reading its attributes
// and security descriptor, sharing everything (so that it can be opened
// again to be moved), and reads what decideFolder judges: the attributes
// (GetFileInformationByHandle) and the owner and DACL (GetSecurityInfo,
// as SDDL). A descriptor this process may not read is recorded in sdErr,
// not returned: such a folder is not trusted.
func openFolder(abs string) (windows.Handle, folderFacts, error) {
	var f folderFacts
	h, err := openUnfollowed(abs, windows.READ_CONTROL|windows.FILE_READ_ATTRIBUTES)
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		f.sdErr = err
		h, err = openUnfollowed(abs, windows.FILE_READ_ATTRIBUTES)
	}
	if err != nil {
		return 0, f, fmt.Errorf("open %s unfollowed: %w", abs, err)
	}
	var bhi windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &bhi); err != nil {
		windows.CloseHandle(h)
		return 0, f, fmt.Errorf("the attributes of %s: %w", abs, err)
	}
	f.link = bhi.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0
	f.dir = bhi.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY != 0
	if f.sdErr == nil {
		f.sd, f.sdErr = handleSD(h)
	}
	return h, f, nil
}

// openUnfollowed opens p with access, never following a link at p, and
// sharing read, write and delete.
func openUnfollowed(p string, access uint32) (windows.Handle, error) {
	name, err := windows.UTF16PtrFromString(p)
	if err != nil {
		return 0, err
	}
	return windows.CreateFile(name, access|windows.SYNCHRONIZE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil, windows.OPEN_EXISTING,
		windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
}

// handleSD reads the owner and DACL of the object h is open on (READ_CONTROL)
// and parses them.
func handleSD(h windows.Handle) (secDesc, error) {
	sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return secDesc{}, fmt.Errorf("GetSecurityInfo: %w", err)
	}
	text := sd.String()
	if text == "" {
		return secDesc{}, errors.New("the security descriptor does not convert to SDDL")
	}
	return parseSDDL(text, resolveSystemAlias)
}

// sameObject reports whether a and b are open on the same file: the same
// volume serial number and file index (GetFileInformationByHandle).
func sameObject(a, b windows.Handle) (bool, error) {
	var ia, ib windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(a, &ia); err != nil {
		return false, err
	}
	if err := windows.GetFileInformationByHandle(b, &ib); err != nil {
		return false, err
	}
	return ia.VolumeSerialNumber == ib.VolumeSerialNumber && ia.FileIndexHigh == ib.FileIndexHigh && ia.FileIndexLow == ib.FileIndexLow, nil
}

// takeBack renames the folder (or link, or file) at abs, which judged is
// open on, to NAME.untrusted-YYYYMMDDThhmmss beside it and returns the
// new path. It opens abs again, unfollowed, with DELETE, checks that this
// is the object judged (not one swapped in meanwhile), and renames that
// handle (SetFileInformationByHandle, FileRenameInfo): a junction or link
// is renamed itself, never its target, and nothing in a folder is opened.
// Someone who holds the folder open without sharing delete, or a file in
// it open, makes the rename fail (ERROR_SHARING_VIOLATION,
// ERROR_ACCESS_DENIED): the error says so and nothing is changed.
func takeBack(judged windows.Handle, abs string, now time.Time) (string, error) {
	h, err := openUnfollowed(abs, windows.DELETE|windows.FILE_READ_ATTRIBUTES)
	if err != nil {
		return "", fmt.Errorf("open %s to move it (someone may hold it or a file in it open): %w", abs, err)
	}
	defer windows.CloseHandle(h)
	if same, err := sameObject(judged, h); err != nil {
		return "", fmt.Errorf("compare %s with what was judged: %w", abs, err)
	} else if !same {
		return "", fmt.Errorf("%s was replaced while it was judged", abs)
	}
	return renameAside(h, filepath.Dir(abs), func(try int) string { return untrustedName(filepath.Base(abs), now, try) })
}

// renameAside renames the object h is open on (with DELETE) into dir as
// name(1), or name(2), ... for a name taken (at most 20 tries), and
// returns its new path.
func renameAside(h windows.Handle, dir string, name func(try int) string) (string, error) {
	var err error
	for try := 1; try <= 20; try++ {
		dst := filepath.Join(dir, name(try))
		if err = renameHandle(h, dst); err == nil {
			return dst, nil
		}
		if !errors.Is(err, windows.ERROR_ALREADY_EXISTS) && !errors.Is(err, windows.ERROR_FILE_EXISTS) {
			return "", fmt.Errorf("rename to %s: %w", dst, err)
		}
	}
	return "", fmt.Errorf("rename into %s: every name tried is taken: %w", dir, err)
}

// numbered names the tries of renameAside: name, name-2, name-3, ...
func numbered(name string) func(int) string {
	return func(try int) string {
		if try == 1 {
			return name
		}
		return fmt.Sprintf("%s-%d", name, try)
	}
}

// renameHandle renames the object h is open on (with DELETE) to the full
// path dst, never replacing what is there: SetFileInformationByHandle
// with a FILE_RENAME_INFO (ReplaceIfExists FALSE, RootDirectory NULL, the
// name as an NT path, \??\C:\... or \??\UNC\server\share\..., which
// Windows and Wine both take).
func renameHandle(h windows.Handle, dst string) error {
	nt := dst
	switch {
	case strings.HasPrefix(nt, `\\?\`):
		nt = `\??\` + nt[4:]
	case strings.HasPrefix(nt, `\\`):
		nt = `\??\UNC\` + nt[2:]
	default:
		nt = `\??\` + nt
	}
	name, err := windows.UTF16FromString(nt)
	if err != nil {
		return err
	}
	// FILE_RENAME_INFO on 64-bit Windows: Flags (ReplaceIfExists) at 0,
	// RootDirectory at 8, FileNameLength (bytes, no NUL) at 16, FileName
	// at 20; on 32-bit: 0, 4, 8, 12.
	var hdr, lenOff uintptr = 20, 16
	if unsafe.Sizeof(uintptr(0)) == 4 {
		hdr, lenOff = 12, 8
	}
	buf := make([]byte, hdr+uintptr(len(name))*2)
	*(*uint32)(unsafe.Pointer(&buf[lenOff])) = uint32((len(name) - 1) * 2)
	copy(unsafe.Slice((*uint16)(unsafe.Pointer(&buf[hdr])), len(name)), name)
	return windows.SetFileInformationByHandle(h, windows.FileRenameInfo, &buf[0], uint32(len(buf)))
}

// adoptFolder makes the trusted folder abs, which others may read or add
// entries to (why says how), private in place: its DACL becomes
// privateSDDL(t), protected, which what is in it inherits; then what
// someone else put in it (plantedIn) is moved aside, unread, into a new
// private folder NAME.untrusted-YYYYMMDDThhmmss beside it. Both are
// logged: the first at Warn, the second at Error.
func adoptFolder(abs string, t trustSet, log *slog.Logger, now time.Time, why string) error {
	if err := setPrivateDACL(abs, t); err != nil {
		return fmt.Errorf("make %s private (it %s): %w", abs, why, err)
	}
	log.Warn("state folder made private: SYSTEM and Administrators only", "path", abs, "why", "it "+why)
	planted, err := plantedIn(abs, t)
	if err != nil {
		return err
	}
	if len(planted) == 0 {
		return nil
	}
	q, err := mkdirAside(filepath.Dir(abs), filepath.Base(abs), t, now)
	if err != nil {
		return fmt.Errorf("state dir %s: %d entries someone else put in it: %w", abs, len(planted), err)
	}
	for _, p := range planted {
		rel, _ := filepath.Rel(abs, p)
		h, err := openUnfollowed(p, windows.DELETE|windows.FILE_READ_ATTRIBUTES)
		if err == nil {
			_, err = renameAside(h, q, numbered(strings.ReplaceAll(rel, string(filepath.Separator), "_")))
			windows.CloseHandle(h)
		}
		if err != nil {
			return fmt.Errorf("state dir %s: move %s, which someone else put there, aside to %s: %w", abs, p, q, err)
		}
	}
	log.Error("state folder: what someone else put in it was moved aside unread", "path", abs, "moved_to", q,
		"entries", strings.Join(planted, ", "))
	return nil
}

// setPrivateDACL gives the directory p the DACL of privateSDDL(t),
// protected from inheritance (SetNamedSecurityInfo, which makes what is
// in it inherit it anew).
func setPrivateDACL(p string, t trustSet) error {
	priv, err := windows.SecurityDescriptorFromString(privateSDDL(t))
	if err != nil {
		return fmt.Errorf("the private ACL: %w", err)
	}
	dacl, _, err := priv.DACL()
	if err != nil {
		return fmt.Errorf("the private ACL: %w", err)
	}
	return windows.SetNamedSecurityInfo(p, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
}

// mkdirAside creates the private folder NAME.untrusted-YYYYMMDDThhmmss in
// dir (the first name free) and returns its path.
func mkdirAside(dir, base string, t trustSet, now time.Time) (string, error) {
	sd, err := windows.SecurityDescriptorFromString(privateSDDL(t))
	if err != nil {
		return "", fmt.Errorf("the private ACL: %w", err)
	}
	sa := &windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd}
	for try := 1; try <= 20; try++ {
		q := filepath.Join(dir, untrustedName(base, now, try))
		name, err := windows.UTF16PtrFromString(q)
		if err != nil {
			return "", err
		}
		err = windows.CreateDirectory(name, sa)
		if err == nil {
			return q, nil
		}
		if !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
			return "", fmt.Errorf("create %s: %w", q, err)
		}
	}
	return "", fmt.Errorf("create a folder beside %s: every name tried is taken", base)
}

// plantedIn lists what in the folder dir someone else put there, at any
// depth, without following a link or reading a file: an entry that is a
// junction, symbolic link or other reparse point (isLinkElement), one
// owned by someone untrusted, or one whose owner cannot be read. A
// planted folder is listed, not entered. More than maxAdopt entries is an
// error.
func plantedIn(dir string, t trustSet) ([]string, error) {
	var planted []string
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("state dir %s: %w", dir, err)
		}
		if p == dir {
			return nil
		}
		if n++; n > maxAdopt {
			return fmt.Errorf("state dir %s: more than %d entries; not a state directory", dir, maxAdopt)
		}
		if refuseLink(p, dir) != nil {
			planted = append(planted, p)
			return skipDir(d)
		}
		if sd, err := readSD(p); err != nil || !t.trusted(sd.owner) {
			planted = append(planted, p)
			return skipDir(d)
		}
		return nil
	})
	return planted, err
}

// skipDir is what a WalkDir function returns for an entry it listed and
// will not enter.
func skipDir(d fs.DirEntry) error {
	if d.IsDir() {
		return filepath.SkipDir
	}
	return nil
}
