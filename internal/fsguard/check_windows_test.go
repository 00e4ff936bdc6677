package fsguard

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// These run on Windows and under Wine 8.0 (scripts/wine/test.sh). Wine
// keeps no ACLs of its own: it makes a descriptor from the Unix mode
// (owner: the prefix's user; Everyone: the "others" bits) and turns a
// DACL it is given into a mode, so what a DACL grants Everyone is seen
// again, and what it grants Users is not.

// everyoneWrites reports whether p's DACL lets Everyone write or delete.
func everyoneWrites(t *testing.T, p string) bool {
	t.Helper()
	sd, err := readSD(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range sd.aces {
		if a.allows() && a.sid == "S-1-1-0" && a.mask&(unsafeSelf) != 0 {
			return true
		}
	}
	return false
}

func TestWindowsCheckDirAndFile(t *testing.T) {
	dir := wintest.TempDir(t)
	if err := CheckDir(dir); err != nil {
		t.Fatalf("CheckDir(own temp dir): %v", err)
	}
	f := filepath.Join(dir, "mamori.yaml")
	if err := os.WriteFile(f, []byte("version: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckFile(f); err != nil {
		t.Fatalf("CheckFile: %v", err)
	}
	if err := CheckFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("CheckFile(dir): %v", err)
	}
	if err := CheckDir(f); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("CheckDir(file): %v", err)
	}

	// Everyone may write the file: refused, naming it.
	wintest.SetDACL(t, f, "D:P(A;;FA;;;WD)")
	var ue *UnsafeError
	if err := CheckFile(f); !errors.As(err, &ue) || !strings.EqualFold(ue.Path, f) || !strings.Contains(ue.Problem, "Everyone") ||
		!strings.Contains(ue.Fix, "icacls") {
		t.Errorf("CheckFile(Everyone may write): %v", err)
	}
	// Everyone may delete what is in the directory: the file is refused
	// for the directory on the way, the directory itself as well.
	wintest.SetDACL(t, f, "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;"+mustTrust(t).self+")")
	if err := CheckFile(f); err != nil {
		t.Fatalf("CheckFile after the file was made private: %v", err)
	}
	wintest.SetDACL(t, dir, "D:P(A;OICI;FA;;;WD)")
	if err := CheckFile(f); !errors.As(err, &ue) || !strings.EqualFold(ue.Path, dir) || !strings.Contains(ue.Problem, "delete or rename what is in it") {
		t.Errorf("CheckFile(in a directory Everyone controls): %v", err)
	}
	if err := CheckDir(dir); !errors.As(err, &ue) || !strings.EqualFold(ue.Path, dir) {
		t.Errorf("CheckDir(Everyone controls it): %v", err)
	}
}

func TestWindowsMkdirAllPrivate(t *testing.T) {
	base := wintest.TempDir(t)
	state := filepath.Join(base, "ProgramData", "mamori")
	if err := MkdirAll(state); err != nil {
		t.Fatalf("MkdirAll: %v", err)
	}
	if fi, err := os.Stat(state); err != nil || !fi.IsDir() {
		t.Fatalf("state dir: %v, %v", fi, err)
	}
	if everyoneWrites(t, state) {
		t.Errorf("a new state dir lets Everyone write")
	}
	if !wintest.IsWine() {
		// Windows keeps the DACL as given.
		sd, _ := windows.GetNamedSecurityInfo(state, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
		if s := sd.String(); !strings.Contains(s, "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)") {
			t.Errorf("state dir DACL %s, want %s", s, PrivateDirSDDL)
		}
	}
	if err := MkdirAll(state); err != nil {
		t.Errorf("MkdirAll again: %v", err)
	}

	// A folder an installer made, with a config in it, that lets others
	// read it (Wine shows no "add only" grant: its Everyone entries are
	// the "others" bits, where write brings delete): made private, the
	// config kept.
	self := mustTrust(t).self
	wintest.SetDACL(t, state, "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;"+self+")(A;OICI;0x1200a9;;;WD)")
	conf := filepath.Join(state, "mamori.yaml")
	if err := os.WriteFile(conf, []byte("version: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(state); err != nil {
		t.Fatalf("MkdirAll(installer's folder): %v", err)
	}
	if b, err := os.ReadFile(conf); err != nil || string(b) != "version: 1\n" {
		t.Errorf("config after: %q, %v", b, err)
	}
	if err := CheckDir(state); err != nil {
		t.Errorf("CheckDir after: %v", err)
	}

	// One that let Everyone do anything may hold anything: MkdirAll,
	// which never moves anything, refuses it (MkdirState moves it aside).
	wintest.SetDACL(t, state, "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;WD)")
	if !everyoneWrites(t, state) {
		t.Fatalf("setup: Everyone cannot write %s", state)
	}
	var ue *UnsafeError
	if err := MkdirAll(state); !errors.As(err, &ue) || !strings.Contains(ue.Problem, "S-1-1-0 (Everyone)") || !strings.Contains(ue.Fix, "move it aside") {
		t.Fatalf("MkdirAll(Everyone controls it) = %v", err)
	}
	wintest.SetDACL(t, state, "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;"+self+")(D;OICI;FR;;;WD)")

	// A file somebody else owns in it is refused: seen as SYSTEM, the
	// prefix's user is somebody else.
	if err := checkPlanted(state, trustSet{self: sidSystem}); err == nil || !strings.Contains(err.Error(), "was put in a directory others could write") {
		if !wintest.IsWine() && mustTrust(t).self == sidSystem {
			t.Skip("running as SYSTEM: everything here is SYSTEM's")
		}
		t.Errorf("checkPlanted(as SYSTEM): %v", err)
	}
	if err := checkPlanted(state, mustTrust(t)); err != nil {
		t.Errorf("checkPlanted(as this user): %v", err)
	}
}

func TestWindowsReadSDMatchesSDDL(t *testing.T) {
	dir := wintest.TempDir(t)
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readSD(dir)
	if err != nil {
		t.Fatal(err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		t.Fatal(err)
	}
	if got.owner != owner.String() {
		t.Errorf("owner %s, want %s (SDDL %s)", got.owner, owner, sd)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	if int(dacl.AceCount) != len(got.aces) {
		t.Errorf("%d entries parsed, the DACL has %d (SDDL %s)", len(got.aces), dacl.AceCount, sd)
	}
	for i := range got.aces {
		var e *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, uint32(i), &e); err != nil {
			t.Fatal(err)
		}
		sid := (*windows.SID)(unsafe.Pointer(&e.SidStart))
		if got.aces[i].mask != uint32(e.Mask) || got.aces[i].sid != sid.String() {
			t.Errorf("entry %d parsed %+v, is mask %#x sid %s", i, got.aces[i], e.Mask, sid)
		}
	}
}

func mustTrust(t *testing.T) trustSet {
	t.Helper()
	ts, err := trust()
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// A link on the way to the state directory or to a checked file, or the
// state directory itself as a link, is refused without being followed:
// its target's owner and ACL are not its own.
func TestWindowsRefusesLinks(t *testing.T) {
	dir := wintest.TempDir(t)
	target := filepath.Join(dir, "target")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "mamori.yaml"), []byte("version: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(target); err != nil {
		t.Fatalf("CheckDir(target): %v", err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	fi, err := os.Lstat(link)
	if err != nil {
		// Wine 8.0 makes the link but cannot stat it; refuseLinks fails
		// closed on it, but the refusal is not the one this test checks.
		if err := CheckDir(link); err == nil {
			t.Errorf("CheckDir(link) passed a link it cannot stat")
		}
		t.Skipf("symbolic links cannot be read back here (%v); isLinkElement is tested on every OS", err)
	}
	t.Logf("Lstat(link).Mode() = %v", fi.Mode())
	var u *UnsafeError
	for name, err := range map[string]error{
		"CheckDir(link)":              CheckDir(link),
		"CheckFile(link/mamori.yaml)": CheckFile(filepath.Join(link, "mamori.yaml")),
		"MkdirAll(link)":              MkdirAll(link),
		"MkdirAll(link/state)":        MkdirAll(filepath.Join(link, "state")),
	} {
		if !errors.As(err, &u) || !strings.EqualFold(u.Path, link) || !strings.Contains(err.Error(), "junction or symbolic link") {
			t.Errorf("%s = %v, want the link refused", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(target, "state")); err == nil {
		t.Error("MkdirAll(link/state) created state in the link's target")
	}
}

// TestWindowsCheckUnreadable: a token file whose DACL lets Everyone read
// it is refused, naming the file, who may read it and an icacls fix; made
// private (SYSTEM, Administrators and this user) it passes. Under Wine a
// DACL becomes a Unix mode, so Everyone is what can be shown there.
func TestWindowsCheckUnreadable(t *testing.T) {
	dir := wintest.TempDir(t)
	f := filepath.Join(dir, "token")
	if err := os.WriteFile(f, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wintest.SetDACL(t, f, wintest.EveryoneSDDL(t, "FR"))
	err := CheckUnreadable(f)
	var ue *UnsafeError
	if !errors.As(err, &ue) || !ue.Reads || !strings.EqualFold(ue.Path, f) || !strings.Contains(ue.Problem, "is readable by S-1-1-0 (Everyone)") ||
		!strings.Contains(ue.Fix, `icacls "`) || !strings.Contains(ue.Fix, "/remove:g *S-1-1-0") {
		t.Errorf("CheckUnreadable(Everyone may read) = %v", err)
	}
	if err != nil && !strings.Contains(err.Error(), "anyone who can read it learns the secret it holds") {
		t.Errorf("message %q", err)
	}
	// Reading is no write: CheckFile lets it pass, the two are separate.
	if err := CheckFile(f); err != nil {
		t.Errorf("CheckFile(Everyone may only read) = %v", err)
	}

	// Private: wintest.PrivateSDDL, whose trailing denial for Everyone
	// is what Wine 8.0 needs to clear the "others" bits.
	wintest.PrivateFile(t, f)
	if err := CheckUnreadable(f); err != nil {
		t.Errorf("CheckUnreadable(private) = %v", err)
	}
	if err := CheckUnreadable(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("CheckUnreadable(dir) = %v", err)
	}
	if err := CheckUnreadable(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CheckUnreadable(missing) = %v", err)
	}
}

// TestWindowsMkdirJudgesBeforeCreating: MkdirAll creates nothing below a
// directory it has not judged. Seen as SYSTEM, the temp dir (this user's)
// belongs to someone else: the state dir two levels below it is refused
// before its parents are made. A link on the way is refused before
// anything is created through it.
func TestWindowsMkdirJudgesBeforeCreating(t *testing.T) {
	if mustTrust(t).self == sidSystem {
		t.Skip("running as SYSTEM: the temp dir is SYSTEM's")
	}
	base := wintest.TempDir(t)
	state := filepath.Join(base, "a", "b", "state")
	err := mkdirPrivateAs(state, trustSet{self: sidSystem})
	var ue *UnsafeError
	if !errors.As(err, &ue) || !strings.Contains(ue.Problem, "is owned by "+mustTrust(t).self) || ue.Checked != state {
		t.Errorf("mkdirPrivateAs(as SYSTEM) = %v, want an ancestor owned by this user refused", err)
	}
	if _, err := os.Lstat(filepath.Join(base, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a parent was created before its ancestors were judged: %v", err)
	}
	if err := mkdirPrivateAs(state, mustTrust(t)); err != nil {
		t.Fatalf("mkdirPrivateAs(as this user) = %v", err)
	}
	if err := CheckDir(state); err != nil {
		t.Errorf("CheckDir(made) = %v", err)
	}

	target := filepath.Join(base, "target")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
		// Wine 8.0: CreateSymbolicLink succeeds and makes nothing, and
		// FSCTL_SET_REPARSE_POINT (a junction) is "not supported".
		t.Skipf("the link was not made (%v): links are judged by isLinkElement, tested on every OS", err)
	}
	err = MkdirAll(filepath.Join(link, "x", "state"))
	if err == nil {
		t.Errorf("MkdirAll through a link: no error")
	}
	if _, serr := os.Lstat(link); serr == nil && (!errors.As(err, &ue) || !strings.EqualFold(ue.Path, link)) {
		t.Errorf("MkdirAll through a link = %v, want the link refused", err)
	}
	if _, err := os.Stat(filepath.Join(target, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("MkdirAll created %s through the link: %v", filepath.Join(target, "x"), err)
	}
}
