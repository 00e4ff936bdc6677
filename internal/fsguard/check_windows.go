package fsguard

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// CheckDir refuses the directory path unless only SYSTEM, Administrators,
// TrustedInstaller and this process's user can change it: it must be a
// directory owned by one of them whose DACL grants no one else the right
// to write it, delete or rename it or what is in it, or change its ACL or
// owner, and whose inheritable entries (OI, CI) give no one else those
// rights on the files and folders created in it (an inherit-only entry,
// IO, grants nothing on the directory itself but is judged there); every
// directory on the way (of the path as given and of the
// path with its links resolved) must be owned by one of them and grant
// no one else the right to delete or rename what is in it or to change
// its ACL or owner (adding entries is allowed). Denied entries are not
// subtracted, so a grant they would cancel is still refused. The error,
// an *UnsafeError for an ACL problem, names the path at fault, the
// problem and an icacls command that fixes it.
func CheckDir(path string) error { return check(path, true) }

// CheckFile is CheckDir for a file (a config, token or the binary a
// service runs): a regular file whose owner and DACL pass CheckDir's
// rule, in directories that pass the rule for directories on the way.
func CheckFile(path string) error { return check(path, false) }

func check(path string, wantDir bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if err := refuseLinks(abs, path); err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	switch {
	case wantDir && !fi.IsDir():
		return fmt.Errorf("check %s: %s, not a directory", path, is(fi.Mode()))
	case !wantDir && !fi.Mode().IsRegular():
		return fmt.Errorf("check %s: %s, not a regular file", path, is(fi.Mode()))
	}
	t, err := trust()
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	chains := []string{abs}
	if r, err := filepath.EvalSymlinks(abs); err == nil && !strings.EqualFold(r, abs) {
		chains = append(chains, r)
	}
	kind := kindFile
	if wantDir {
		kind = kindDir
	}
	seen := map[string]bool{}
	for _, p := range chains {
		for k := kind; ; k = kindAncestor {
			key := strings.ToLower(p)
			if !seen[key] {
				seen[key] = true
				if err := checkOne(p, path, t, k); err != nil {
					return err
				}
			}
			parent := filepath.Dir(p)
			if parent == p {
				break
			}
			p = parent
		}
	}
	return nil
}

// CheckUnreadable refuses the file path (a token, a private key) when its
// DACL lets anyone but SYSTEM, Administrators, TrustedInstaller and this
// process's user read it (FILE_READ_DATA, FILE_READ_EA, GENERIC_READ or
// GENERIC_ALL in an allowed entry that applies to the file; denied
// entries are not subtracted), as mode 0600 does on Unix: an
// *UnsafeError with Reads set, naming who may read it and an icacls
// command that fixes it. A junction or symbolic link on the way is
// refused unfollowed, as by CheckFile; who owns the file and who may
// change it are CheckFile's: call both. The descriptor is read with
// GetNamedSecurityInfo (OWNER and DACL) and judged from its SDDL.
func CheckUnreadable(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if err := refuseLinks(abs, path); err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("check %s: %s, not a regular file", path, is(fi.Mode()))
	}
	t, err := trust()
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	sd, err := readSD(abs)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if problem := judgeRead(sd, t, kindFile); problem != "" {
		return &UnsafeError{Path: path, Checked: path, Reads: true, Problem: problem,
			Fix: icaclsFix(abs, sd, t, kindFile, readRights)}
	}
	return nil
}

// refuseLinks refuses abs when it or any directory on its way is a
// junction, a symbolic link or another reparse point (isLinkElement),
// judged without following it: Stat and readSD would see the target's
// type, owner and ACL, not those of the link, which a standard user may
// have made (mklink /J) and can re-point.
func refuseLinks(abs, checked string) error {
	for p := abs; ; {
		if err := refuseLink(p, checked); err != nil {
			return err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}

// refuseLink refuses the one element p (on the way to checked) when it is
// a link (isLinkElement), judged by Lstat and GetFileAttributes, neither
// of which follows it. An element that cannot be judged is refused too.
func refuseLink(p, checked string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("check %s: %w", checked, err)
	}
	name, err := windows.UTF16PtrFromString(p)
	if err != nil {
		return fmt.Errorf("check %s: %w", checked, err)
	}
	attrs, err := windows.GetFileAttributes(name)
	if err != nil {
		return fmt.Errorf("check %s: the attributes of %s: %w", checked, p, err)
	}
	if isLinkElement(fi.Mode(), attrs) {
		return linkError(p, checked)
	}
	return nil
}

// checkOne judges one object on the way to checked, as kind.
func checkOne(p, checked string, t trustSet, kind sdKind) error {
	sd, err := readSD(p)
	if err != nil {
		return fmt.Errorf("check %s: %w", checked, err)
	}
	problem := judgeSD(sd, t, kind)
	if problem == "" {
		return nil
	}
	mask := uint32(unsafeSelf)
	if kind == kindAncestor {
		mask = unsafeAncestor
	}
	fix := icaclsFix(p, sd, t, kind, mask)
	if !t.trusted(sd.owner) {
		fix = fmt.Sprintf(`remove it and let mamori create it, or take it over: icacls "%s" /setowner *%s, then %s`, p, sidAdministrators, fix)
	}
	return &UnsafeError{Path: p, Checked: checked, Problem: problem, Fix: fix}
}

// icaclsFix is the command that makes p, judged as kind, private to
// SYSTEM, Administrators (and this process's user when it is neither):
// the inherited entries cut off, full control for them (Users may read and
// traverse a directory on the way), and the entries that grant anyone else
// any of mask removed.
func icaclsFix(p string, sd secDesc, t trustSet, kind sdKind, mask uint32) string {
	inherit := ""
	if kind != kindFile {
		inherit = "(OI)(CI)"
	}
	grant := fmt.Sprintf("*%s:%sF *%s:%sF", sidSystem, inherit, sidAdministrators, inherit)
	if t.self != "" && t.self != sidSystem && t.self != sidAdministrators {
		grant += fmt.Sprintf(" *%s:%sF", t.self, inherit)
	}
	if kind == kindAncestor {
		grant += " *S-1-5-32-545:(OI)(CI)RX"
	}
	fix := fmt.Sprintf(`icacls "%s" /inheritance:r /grant:r %s`, p, grant)
	if o := offenders(sd, t, kind, mask); len(o) > 0 {
		fix += fmt.Sprintf(` && icacls "%s" /remove:g *%s`, p, strings.Join(o, " *"))
	}
	return fix
}

// readSD reads the owner and DACL of the file or directory p (following
// links) as SDDL and parses it.
func readSD(p string) (secDesc, error) {
	sd, err := windows.GetNamedSecurityInfo(p, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return secDesc{}, fmt.Errorf("read the ACL of %s: %w", p, err)
	}
	text := sd.String()
	if text == "" {
		return secDesc{}, fmt.Errorf("read the ACL of %s: it does not convert to SDDL", p)
	}
	parsed, err := parseSDDL(text, resolveSystemAlias)
	if err != nil {
		return secDesc{}, fmt.Errorf("the ACL of %s: %w", p, err)
	}
	return parsed, nil
}

// resolveSystemAlias asks the system for the SID of an SDDL alias that depends
// on the machine or domain ("LA", "DA").
func resolveSystemAlias(alias string) (string, bool) {
	sid, err := windows.StringToSid(alias)
	if err != nil {
		return "", false
	}
	return sid.String(), true
}

// trust is who may own and change what the agent trusts, with this
// process's user.
var trust = sync.OnceValues(func() (trustSet, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return trustSet{}, fmt.Errorf("this process's user: %w", err)
	}
	return trustSet{self: u.User.Sid.String()}, nil
})

// privateSDDL is PrivateDirSDDL, with full control for this process's
// user when that is not SYSTEM (a "mamori run" by an administrator).
func privateSDDL(t trustSet) string {
	if t.self == "" || t.self == sidSystem {
		return PrivateDirSDDL
	}
	return PrivateDirSDDL + "(A;OICI;FA;;;" + t.self + ")"
}

// mkdirPrivate creates path with the private DACL in the same call (no
// moment when others could open it), its missing parents with what they
// inherit.
func mkdirPrivate(path string) error {
	t, err := trust()
	if err != nil {
		return err
	}
	return mkdirPrivateAs(path, t)
}

// mkdirPrivateAs is mkdirPrivate for the trust set t. It goes down from
// the volume's root one element at a time and creates nothing below an
// element it has not judged first: each element that exists (or that
// appeared meanwhile: CreateDirectory's ERROR_ALREADY_EXISTS) must be no
// junction, symbolic link or other reparse point, judged unfollowed
// (refuseLink), and, as a directory on the way, be owned by the trusted
// and let no one else delete or rename what is in it or change its ACL
// (checkOne, kindAncestor); only then is the next element created in it,
// so that nothing is ever created through a link or in a directory where
// someone else could swap the next element for one. The last element is
// created with privateSDDL(t); CheckDir judges it after.
func mkdirPrivateAs(path string, t trustSet) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	var elems []string // the volume's root first
	for p := abs; ; p = filepath.Dir(p) {
		elems = append(elems, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	slices.Reverse(elems)
	sd, err := windows.SecurityDescriptorFromString(privateSDDL(t))
	if err != nil {
		return fmt.Errorf("the private ACL: %w", err)
	}
	private := &windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd}
	for i, p := range elems {
		last := i == len(elems)-1
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			name, err := windows.UTF16PtrFromString(p)
			if err != nil {
				return err
			}
			var sa *windows.SecurityAttributes // a parent: what it inherits
			if last {
				sa = private
			}
			err = windows.CreateDirectory(name, sa)
			switch {
			case err == nil && last:
				return nil
			case err != nil && !errors.Is(err, windows.ERROR_ALREADY_EXISTS):
				return fmt.Errorf("create %s: %w", p, err)
			}
		} else if err != nil {
			return fmt.Errorf("check %s: %w", path, err)
		}
		if err := refuseLink(p, path); err != nil {
			return err
		}
		if last {
			return nil // it appeared meanwhile: CheckDir judges it
		}
		if err := checkOne(p, path, t, kindAncestor); err != nil {
			return err
		}
	}
	return nil
}

// maxAdopt bounds the entries adoptDir looks at: a state directory holds
// a few dozen files.
const maxAdopt = 10000

// adoptDir makes the existing directory path private when decideFolder
// says its owner is trusted and others may at most read it or add
// entries (an installer's folder under %ProgramData%, where Users may add
// files; an earlier version's state folder Users could read), after
// checking that everything in it is owned by the trusted (nothing was
// planted) and is no link; and again after, for what was added
// meanwhile. A directory decideFolder would take back (made by someone
// else, a link, an ACL that let others replace what is in it) is refused
// with an *UnsafeError: MkdirAll never moves anything (MkdirState does).
// One that is private already is left for CheckDir to judge.
func adoptDir(path string) error {
	t, err := trust()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := refuseLinks(abs, path); err != nil {
		return err // nothing changed through a junction or link
	}
	h, f, err := openFolder(abs)
	if err != nil {
		return fmt.Errorf("state dir %s: %w", path, err)
	}
	windows.CloseHandle(h)
	switch action, why := decideFolder(f, t); action {
	case folderKeep:
		return nil
	case folderTakeBack:
		return &UnsafeError{Path: path, Checked: path, Problem: why,
			Fix: fmt.Sprintf(`move it aside (ren "%s" %s) and let mamori make a new one; nothing in it can be trusted`, abs, untrustedName(filepath.Base(abs), time.Now(), 1))}
	}
	if err := checkPlanted(path, t); err != nil {
		return err
	}
	if err := setPrivateDACL(abs, t); err != nil {
		return fmt.Errorf("make %s private (others could read it or add to it): %w", path, err)
	}
	return checkPlanted(path, t)
}

// checkPlanted refuses a directory holding anything owned by someone
// untrusted, or a link (a symlink or junction planted to lead the agent
// elsewhere).
func checkPlanted(dir string, t trustSet) error {
	n := 0
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("check %s: %w", dir, err)
		}
		if p == dir {
			return nil
		}
		if n++; n > maxAdopt {
			return fmt.Errorf("check %s: more than %d entries; not a state directory", dir, maxAdopt)
		}
		if d.Type()&(fs.ModeSymlink|fs.ModeIrregular) != 0 {
			return &UnsafeError{Path: p, Checked: dir, Problem: "is a link in a directory others could write",
				Fix: fmt.Sprintf(`remove it: rmdir "%s" (or del)`, p)}
		}
		sd, err := readSD(p)
		if err != nil {
			return fmt.Errorf("check %s: %w", dir, err)
		}
		if !t.trusted(sd.owner) {
			return &UnsafeError{Path: p, Checked: dir,
				Problem: fmt.Sprintf("is owned by %s and was put in a directory others could write", describeSID(sd.owner)),
				Fix:     fmt.Sprintf(`remove it: del "%s"`, p)}
		}
		return nil
	})
}
