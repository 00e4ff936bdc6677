package wintest

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/windows"
)

// SetDACL replaces the DACL of the file or directory path with the one
// sddl holds (a security descriptor string, "D:P(A;;FA;;;SY)..."), and
// protects it from inheritance whether or not sddl says P: the entries
// of sddl are then all path has (SecurityDescriptorFromString, which is
// ConvertStringSecurityDescriptorToSecurityDescriptorW, and
// SetNamedSecurityInfoW with DACL_SECURITY_INFORMATION |
// PROTECTED_DACL_SECURITY_INFORMATION). An sddl that does not parse or
// holds no DACL fails the test: setting a missing DACL would give path
// a NULL DACL, which lets everyone do anything. Owner, group and SACL
// stay as they are.
//
// Under Wine 8.0 the DACL is not kept: Wine turns it into the Unix mode
// of the file (entries for Everyone become the "others" bits) and makes
// a descriptor from the mode when asked (see PrivateSDDL).
func SetDACL(t testing.TB, path, sddl string) {
	t.Helper()
	if err := setDACL(path, sddl); err != nil {
		t.Fatalf("wintest.SetDACL: %v", err)
	}
}

// setDACL is SetDACL's work; its error names path and sddl.
func setDACL(path, sddl string) error {
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return fmt.Errorf("%s: SecurityDescriptorFromString(%q): %w", path, sddl, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("%s: the DACL of %q: %w", path, sddl, err)
	}
	if dacl == nil {
		return fmt.Errorf("%s: %q holds no DACL (a NULL DACL would let everyone do anything)", path, sddl)
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("%s: SetNamedSecurityInfo(DACL %q): %w", path, sddl, err)
	}
	return nil
}

// SelfSID returns the SID of the user this process runs as, in string
// form ("S-1-5-21-...-1000"; "S-1-5-18" for SYSTEM), from the user of
// the process token (GetTokenInformation with TokenUser). Failing to
// read it fails the test.
func SelfSID(t testing.TB) string {
	t.Helper()
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatalf("wintest.SelfSID: the process token's user (GetTokenInformation TokenUser): %v", err)
	}
	return u.User.Sid.String()
}

// ownerGrants are the entries of a private file: full control (FA,
// FILE_ALL_ACCESS) for SYSTEM, Administrators and self, not inherited.
func ownerGrants(self string) string {
	return "(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;" + self + ")"
}

// PrivateSDDL returns the DACL of a private file, the Windows form of
// mode 0600 that the agent wants of a token or key file: protected, full
// control for SYSTEM (SY), Administrators (BA) and this process's user
// (SelfSID), no one else anything, and last a denial of reading (FR) to
// Everyone (WD):
//
//	D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;<self>)(D;;FR;;;WD)
//
// The denial is for Wine 8.0, which keeps a DACL as a Unix mode and
// clears the file's "others" bits only for an entry for Everyone:
// without it a file written 0644 stays readable by others there, and
// Wine's descriptor for it still grants Everyone reading. On Windows the
// denial takes nothing from the three: it comes after their grants,
// which have given them all they ask for by the time it is reached
// (access checks walk the entries in order and stop once every right
// asked for is granted). It is a directory's DACL too, but inherits
// nothing to what is made in it.
func PrivateSDDL(t testing.TB) string {
	t.Helper()
	return "D:P" + ownerGrants(SelfSID(t)) + "(D;;FR;;;WD)"
}

// EveryoneSDDL returns the DACL of a file that Everyone (WD) may use as
// rights say, beside the full control of SYSTEM, Administrators and this
// process's user:
//
//	D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;<self>)(A;;<rights>;;;WD)
//
// rights is an SDDL access string: "FR" (FILE_GENERIC_READ), "FW", "FA",
// or a mask such as "0x1200a9". Wine 8.0 shows such an entry as the
// file's "others" bits.
func EveryoneSDDL(t testing.TB, rights string) string {
	t.Helper()
	return "D:P" + ownerGrants(SelfSID(t)) + "(A;;" + rights + ";;;WD)"
}

func privateFile(t testing.TB, path string) {
	t.Helper()
	SetDACL(t, path, PrivateSDDL(t))
}

func openToEveryone(t testing.TB, path string) {
	t.Helper()
	// Chmod clears the read-only attribute, the only part of a mode
	// Windows keeps; Everyone's access is the DACL's.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatalf("wintest.OpenToEveryone: %v", err)
	}
	SetDACL(t, path, EveryoneSDDL(t, "FA"))
}
