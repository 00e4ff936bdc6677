package fsguard

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
	if err := checkAncestors(parent, path, t); err != nil {
		return err
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
		_, _, err := adoptFolder(abs, t, log, now, why)
		return err
	}
	dst, err := takeBack(h, abs, now)
	if err != nil {
		return fmt.Errorf("state dir %s %s; moving it aside failed: %w", path, why, err)
	}
	logTakenBack(log, abs, dst, why)
	if err := mkdirPrivateAs(abs, t); err != nil {
		return fmt.Errorf("state dir %s: create it anew after moving the untrusted one to %s: %w", path, dst, err)
	}
	return nil
}

// checkAncestors checks parent and every directory above it, the way to
// the state directory path (as given, for errors), with CheckDir's rule
// for directories on the way: no link on the way (refuseLinks), each
// owned by the trusted and letting no one else delete or rename what is
// in it or change its ACL (checkOne, kindAncestor). Nothing there is this
// program's to fix: the error is CheckDir's.
func checkAncestors(parent, path string, t trustSet) error {
	if err := refuseLinks(parent, path); err != nil {
		return err
	}
	for p := parent; ; p = filepath.Dir(p) {
		if err := checkOne(p, path, t, kindAncestor); err != nil {
			return err
		}
		if filepath.Dir(p) == p {
			return nil
		}
	}
}

// logTakenBack logs at Error that the state folder abs, not trusted for
// why, was moved aside to dst.
func logTakenBack(log *slog.Logger, abs, dst, why string) {
	log.Error("state folder not trusted: moved aside unread and replaced by a new private folder; nothing that was in it (audit log, report queue, token) is used",
		"path", abs, "moved_to", dst, "why", "it "+why)
}

// prepareState is PrepareState on Windows, for this process's trust set.
func prepareState(path string, log *slog.Logger, now time.Time) (StateDir, error) {
	t, err := trust()
	if err != nil {
		return StateDir{Configured: path}, fmt.Errorf("state dir %s: %w", path, err)
	}
	return prepareStateAs(path, t, log, now, rand.Read)
}

// prepareStateAs is prepareState for the trust set t, drawing the random
// part of a new alternate folder's name from random (crypto/rand.Read).
// The directories on the way are made or checked first (an error there is
// returned: a folder beside it would be no safer); then the alternate
// folder an earlier start made, if any, is found (findAlternate); then
// the configured folder is made fit (settle). When it cannot be, the
// agent records in that alternate, or in a new one (mkdirAlternate), and
// the finding says why, logged at Error. On error Path is "".
func prepareStateAs(path string, t trustSet, log *slog.Logger, now time.Time, random func([]byte) (int, error)) (StateDir, error) {
	sd := StateDir{Configured: path}
	abs, err := filepath.Abs(path)
	if err != nil {
		return sd, fmt.Errorf("state dir %s: %w", path, err)
	}
	parent, base := filepath.Dir(abs), filepath.Base(abs)
	if parent == abs {
		return sd, fmt.Errorf("state dir %s: a volume's root cannot be the state directory", path)
	}
	if _, err := os.Lstat(parent); errors.Is(err, fs.ErrNotExist) {
		// Nothing was made here yet, no alternate either: the way is
		// made one element at a time, each judged first.
		if err := mkdirPrivateAs(abs, t); err != nil {
			return sd, fmt.Errorf("create %s: %w", path, err)
		}
	} else if err != nil {
		return sd, fmt.Errorf("state dir %s: %w", path, err)
	}
	if err := checkAncestors(parent, path, t); err != nil {
		return sd, err
	}
	alt := findAlternate(parent, base, t, log)
	use, findings, problem, err := settle(abs, t, log, now, alt)
	sd.Findings = findings
	if err == nil {
		sd.Path = path
		if use != abs {
			sd.Path, sd.Alternate = use, true
			remember(abs, use, t, log)
		} else if ferr := forgetAlternate(abs); ferr != nil {
			log.Warn("state folder: the alternate folder remembered in the registry cannot be forgotten", "path", abs, "err", ferr)
		}
		return sd, nil
	}
	// use is the alternate still in its place ("" when there was none
	// or it went back in place before the folder failed).
	if alt = use; alt == "" {
		var merr error
		if alt, merr = mkdirAlternateOr(parent, base, t, now, random, err); merr != nil {
			return sd, fmt.Errorf("state dir %s %s: %w", path, problem, merr)
		}
	}
	if cerr := CheckDir(alt); cerr != nil {
		return sd, fmt.Errorf("state dir %s %s (%v), and its alternate folder: %w", path, problem, err, cerr)
	}
	log.Error("state folder not trusted and cannot be made fit: the agent records in an alternate private folder beside it, and tries the state folder again at every start",
		"path", abs, "alternate", alt, "why", "it "+problem, "err", err)
	sd.Path, sd.Alternate = alt, true
	remember(abs, alt, t, log)
	sd.Findings = append(sd.Findings, Finding{Path: abs, Problem: problem,
		Done: fmt.Sprintf("it cannot be made fit (%v): the agent records in the alternate folder %s, and tries again at every start", err, alt)})
	return sd, nil
}

// remember writes alt to the registry as the alternate folder in use for
// abs (rememberAlternate); a failure is logged at Warn: the alternate is
// then found by its name, as before.
func remember(abs, alt string, t trustSet, log *slog.Logger) {
	if err := rememberAlternate(abs, alt, t); err != nil {
		log.Warn("state folder: the alternate folder in use cannot be remembered in the registry; it is found by its name at the next start", "path", abs, "alternate", alt, "err", err)
	}
}

// mkdirAlternateOr makes a new alternate folder (mkdirAlternate); its
// error says also why one was needed, cause.
func mkdirAlternateOr(parent, base string, t trustSet, now time.Time, random func([]byte) (int, error), cause error) (string, error) {
	alt, err := mkdirAlternate(parent, base, t, now, random)
	if err != nil {
		return "", fmt.Errorf("it cannot be made fit (%v), and no alternate folder can be made beside it: %w", cause, err)
	}
	return alt, nil
}

// settle makes the configured state folder abs fit to use, and returns
// the folder to use: abs, or the alternate alt ("": none) when alt could
// not be moved back in place. A folder that exists is judged through a
// handle that does not follow a link (decideFolder): kept; made private
// in place with what others put in it moved aside (adoptFolder); or moved
// aside (takeBack). A free place (nothing there, or the untrusted folder
// moved aside) gets alt back (moveBack), or a new private folder. The
// findings say what untrusted was found and what was done. The error is
// for a configured folder that cannot be made fit; problem then says why
// it is not trusted, as decideFolder words it ("cannot be used" when it
// was not judged so), and use is alt when alt is still in its place, ""
// when there was none or it went back in place before the folder failed.
func settle(abs string, t trustSet, log *slog.Logger, now time.Time, alt string) (use string, findings []Finding, problem string, err error) {
	problem = "cannot be used"
	if _, err := os.Lstat(abs); err == nil {
		h, f, err := openFolder(abs)
		if err != nil {
			return alt, nil, problem, err
		}
		action, why := decideFolder(f, t)
		switch action {
		case folderKeep:
			windows.CloseHandle(h)
			if alt != "" {
				log.Warn("state folder: an alternate folder is left beside it, not used: it holds the audit log of runs that could not use the state folder",
					"path", abs, "alternate", alt)
			}
			if err := CheckDir(abs); err != nil {
				return alt, nil, problem, err
			}
			return abs, nil, problem, nil
		case folderAdopt:
			windows.CloseHandle(h)
			planted, q, err := adoptFolder(abs, t, log, now, why)
			if len(planted) > 0 {
				findings = append(findings, Finding{Path: abs, Problem: "holds entries someone else put there: " + quotedIn(abs, planted),
					Done: "moved aside unread to " + q})
			}
			if err != nil {
				return alt, findings, why, err
			}
			if alt != "" {
				log.Warn("state folder: an alternate folder is left beside it, not used: it holds the audit log of runs that could not use the state folder",
					"path", abs, "alternate", alt)
			}
			if err := CheckDir(abs); err != nil {
				return alt, findings, problem, err
			}
			return abs, findings, problem, nil
		}
		dst, err := takeBack(h, abs, now)
		windows.CloseHandle(h)
		if err != nil {
			return alt, nil, why, fmt.Errorf("moving it aside failed: %w", err)
		}
		logTakenBack(log, abs, dst, why)
		findings = append(findings, Finding{Path: abs, Problem: why, Done: "moved aside unread to " + dst})
	} else if !errors.Is(err, fs.ErrNotExist) {
		return alt, nil, problem, err
	}
	if alt != "" {
		err := moveBack(alt, abs, t)
		if err != nil {
			log.Warn("state folder: the alternate folder cannot be moved back in its place; the agent records in it again",
				"path", abs, "alternate", alt, "err", err)
			return alt, findings, problem, nil
		}
		log.Warn("state folder: the alternate folder the agent recorded in is back in its place; its audit log goes on there",
			"path", abs, "alternate", alt)
	} else if err := mkdirPrivateAs(abs, t); err != nil {
		return "", findings, problem, fmt.Errorf("create it anew: %w", err)
	}
	if err := CheckDir(abs); err != nil {
		return "", findings, problem, err
	}
	return abs, findings, problem, nil
}

// maxAlternates bounds the folders named like alternates that are judged
// at a start (the newest names first): anyone may make such names in
// %ProgramData%, and each costs an open and a read of its security
// descriptor.
const maxAlternates = 64

// findAlternate returns the newest alternate folder of the state folder
// base in parent that is this agent's: of the names isAlternateName takes
// (at most maxAlternates, the newest), the first that is a directory, no
// link, owned by the trusted, with a private DACL (decideFolder keeps
// it): no one else can make such a folder, whatever its name. "" when
// there is none. Folders so named that are someone else's, older
// alternates of the agent's, and a parent that cannot be listed are
// logged at Warn and not used.
func findAlternate(parent, base string, t trustSet, log *slog.Logger) string {
	names, more, err := alternateNames(parent, base)
	if err != nil {
		log.Warn("state folder: the folder it is in cannot be listed to find an alternate folder of earlier runs", "parent", parent, "err", err)
	}
	// The alternate remembered in the registry is judged first, wherever
	// its name sorts among those beside it (remember_windows.go).
	remembered, rerr := rememberedAlternate(filepath.Join(parent, base), base, t)
	if rerr != nil {
		log.Warn("state folder: the alternate folder remembered in the registry is not used", "parent", parent, "err", rerr)
	}
	if remembered != "" {
		rb := filepath.Base(remembered)
		names = append([]string{rb}, slices.DeleteFunc(names, func(n string) bool { return strings.EqualFold(n, rb) })...)
	}
	if more {
		log.Warn("state folder: more folders named like alternate folders than are judged; only the newest names are", "parent", parent, "judged", maxAlternates)
	}
	var found string
	var foreign, older []string
	for _, n := range names {
		p := filepath.Join(parent, n)
		h, f, err := openFolder(p)
		if err != nil {
			foreign = append(foreign, p)
			continue
		}
		windows.CloseHandle(h)
		switch a, _ := decideFolder(f, t); {
		case a != folderKeep:
			foreign = append(foreign, p)
		case found == "":
			found = p
		default:
			older = append(older, p)
		}
	}
	if len(foreign) > 0 {
		log.Warn("state folder: folders named like its alternate folder that the agent did not make or that are not private are beside it: not used, not read",
			"parent", parent, "folders", strings.Join(foreign, ", "))
	}
	if len(older) > 0 {
		log.Warn("state folder: older alternate folders are left beside it, not used", "in_use", found, "folders", strings.Join(older, ", "))
	}
	return found
}

// alternateNames lists the names in parent that isAlternateName takes
// for base, newest first, at most maxAlternates (more: some left out),
// reading the folder in parts so that a folder full of names costs no
// more memory than a part.
func alternateNames(parent, base string) (names []string, more bool, err error) {
	d, err := os.Open(parent)
	if err != nil {
		return nil, false, err
	}
	defer d.Close()
	for {
		part, err := d.Readdirnames(1024)
		var m bool
		names, m = newestAlternates(base, append(names, part...), maxAlternates)
		more = more || m
		if errors.Is(err, io.EOF) {
			return names, more, nil
		}
		if err != nil {
			return names, more, err
		}
	}
}

// moveBack renames the alternate folder alt to abs, the configured state
// folder's path, which must be free: it is opened unfollowed with DELETE,
// judged again through that handle (decideFolder must keep it), and
// renamed through it, never replacing what is at abs (renameHandle).
func moveBack(alt, abs string, t trustSet) error {
	h, f, err := openFolderWith(alt, windows.DELETE)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	if a, why := decideFolder(f, t); a != folderKeep {
		return fmt.Errorf("%s %s", alt, why)
	}
	if err := renameHandle(h, abs); err != nil {
		return fmt.Errorf("rename %s to %s: %w", alt, abs, err)
	}
	return nil
}

// mkdirAlternate creates a new alternate folder in parent for the state
// folder base, private from its creation (CreateDirectory with
// privateSDDL(t)), named alternateName(base, now, 8 bytes of random); a
// name taken already (anyone may make names there) is drawn again, at
// most 8 times. It returns its path.
func mkdirAlternate(parent, base string, t trustSet, now time.Time, random func([]byte) (int, error)) (string, error) {
	for range 8 {
		var rnd [8]byte
		if _, err := random(rnd[:]); err != nil {
			return "", fmt.Errorf("draw a random name: %w", err)
		}
		p := filepath.Join(parent, alternateName(base, now, rnd))
		err := createPrivateDir(p, t)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
			return "", fmt.Errorf("create %s: %w", p, err)
		}
	}
	return "", fmt.Errorf("create an alternate folder in %s: 8 random names were all taken", parent)
}

// createPrivateDir creates the directory p (its parent must exist) with
// privateSDDL(t), in one call: there is no moment when others could open
// it. A p that exists is ERROR_ALREADY_EXISTS.
func createPrivateDir(p string, t trustSet) error {
	sd, err := windows.SecurityDescriptorFromString(privateSDDL(t))
	if err != nil {
		return fmt.Errorf("the private ACL: %w", err)
	}
	sa := &windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd}
	name, err := windows.UTF16PtrFromString(p)
	if err != nil {
		return err
	}
	return windows.CreateDirectory(name, sa)
}

// findState is FindState on Windows, for this process's trust set.
func findState(path string) (StateDir, error) {
	t, err := trust()
	if err != nil {
		return StateDir{Configured: path}, fmt.Errorf("state dir %s: %w", path, err)
	}
	return findStateAs(path, t)
}

// findStateAs is findState for the trust set t: what the agent's next
// start would use, as settle decides it, changing nothing. A missing
// folder with an alternate beside it, or one that would be taken back,
// is the alternate (findAlternate); one that is kept or made private in
// place is itself.
func findStateAs(path string, t trustSet) (StateDir, error) {
	sd := StateDir{Configured: path}
	abs, err := filepath.Abs(path)
	if err != nil {
		return sd, fmt.Errorf("state dir %s: %w", path, err)
	}
	parent, base := filepath.Dir(abs), filepath.Base(abs)
	discard := slog.New(slog.DiscardHandler)
	if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
		sd.Path = path
		if alt := findAlternate(parent, base, t, discard); alt != "" {
			sd.Path, sd.Alternate = alt, true
			sd.Findings = []Finding{{Path: abs, Problem: "does not exist", Done: "the agent recorded last in the alternate folder " + alt}}
		}
		return sd, nil
	} else if err != nil {
		return sd, fmt.Errorf("state dir %s: %w", path, err)
	}
	h, f, err := openFolder(abs)
	if err != nil {
		return sd, fmt.Errorf("state dir %s: %w", path, err)
	}
	windows.CloseHandle(h)
	action, why := decideFolder(f, t)
	if action != folderTakeBack {
		sd.Path = path
		return sd, nil
	}
	alt := findAlternate(parent, base, t, discard)
	if alt == "" {
		return sd, fmt.Errorf("state dir %s %s, and no alternate folder the agent made is beside it: nothing in it was recorded by the agent (its next start moves it aside)", path, why)
	}
	sd.Path, sd.Alternate = alt, true
	sd.Findings = []Finding{{Path: abs, Problem: why, Done: "not used: the agent records in the alternate folder " + alt}}
	return sd, nil
}

// openFolder opens abs without following a link (FILE_FLAG_OPEN_REPARSE_POINT,
// FILE_FLAG_BACKUP_SEMANTICS for a directory), for reading its attributes
// and security descriptor, sharing everything (so that it can be opened
// again to be moved), and reads what decideFolder judges: the attributes
// (GetFileInformationByHandle) and the owner and DACL (GetSecurityInfo,
// as SDDL). A descriptor this process may not read is recorded in sdErr,
// not returned: such a folder is not trusted.
func openFolder(abs string) (windows.Handle, folderFacts, error) {
	return openFolderWith(abs, 0)
}

// openFolderWith is openFolder, the handle opened with access too (DELETE
// to rename it); without READ_CONTROL when that is denied.
func openFolderWith(abs string, access uint32) (windows.Handle, folderFacts, error) {
	var f folderFacts
	h, err := openUnfollowed(abs, access|windows.READ_CONTROL|windows.FILE_READ_ATTRIBUTES)
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		f.sdErr = err
		h, err = openUnfollowed(abs, access|windows.FILE_READ_ATTRIBUTES)
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
// logged: the first at Warn, the second at Error. It returns what was
// planted (full paths) and the folder it goes to (also when moving one
// failed: the error says which).
func adoptFolder(abs string, t trustSet, log *slog.Logger, now time.Time, why string) (planted []string, to string, err error) {
	if err := setPrivateDACL(abs, t); err != nil {
		return nil, "", fmt.Errorf("make %s private (it %s): %w", abs, why, err)
	}
	log.Warn("state folder made private: SYSTEM and Administrators only", "path", abs, "why", "it "+why)
	planted, err = plantedIn(abs, t)
	if err != nil {
		return nil, "", err
	}
	if len(planted) == 0 {
		return nil, "", nil
	}
	q, err := mkdirAside(filepath.Dir(abs), filepath.Base(abs), t, now)
	if err != nil {
		return planted, "", fmt.Errorf("state dir %s: %d entries someone else put in it: %w", abs, len(planted), err)
	}
	for _, p := range planted {
		rel, _ := filepath.Rel(abs, p)
		h, err := openUnfollowed(p, windows.DELETE|windows.FILE_READ_ATTRIBUTES)
		if err == nil {
			_, err = renameAside(h, q, numbered(strings.ReplaceAll(rel, string(filepath.Separator), "_")))
			windows.CloseHandle(h)
		}
		if err != nil {
			return planted, q, fmt.Errorf("state dir %s: move %s, which someone else put there, aside to %s: %w", abs, quotedIn(abs, []string{p}), q, err)
		}
	}
	log.Error("state folder: what someone else put in it was moved aside unread", "path", abs, "moved_to", q,
		"entries", strings.Join(planted, ", "))
	return planted, q, nil
}

// quotedIn names the entries paths in the folder dir for a message: each
// relative to dir, quoted as Go quotes a string (strconv.Quote: a control
// character, invalid UTF-8, a quote or a backslash escaped), joined by
// ", ". Their names are someone else's text.
func quotedIn(dir string, paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			rel = p
		}
		q[i] = strconv.Quote(rel)
	}
	return strings.Join(q, ", ")
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
	for try := 1; try <= 20; try++ {
		q := filepath.Join(dir, untrustedName(base, now, try))
		err := createPrivateDir(q, t)
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
			// The path is of an entry someone else may have named.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return fmt.Errorf("state dir %s: %s %s: %w", dir, pe.Op, quotedIn(dir, []string{pe.Path}), pe.Err)
			}
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
