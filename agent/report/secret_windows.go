package report

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/mamori-agent/mamori/internal/fsguard"
)

// superuser is who the agent reads its secrets as: the service runs as
// LocalSystem.
const superuser = "SYSTEM"

// privateFix is the command that makes the file path readable by SYSTEM
// and Administrators alone: its inherited entries cut off and full
// control for the two, the Windows counterpart of chmod 600.
func privateFix(path string) string {
	return fmt.Sprintf("make it private: `icacls \"%s\" /inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F` "+
		"(the chmod 600 of Windows; a file made in the agent's state folder is private already)", path)
}

// checkSecret refuses a secret file (a token, a private key) whose DACL
// lets anyone but SYSTEM, Administrators, TrustedInstaller and this
// process's user read it (fsguard.CheckUnreadable, from the owner and
// DACL GetNamedSecurityInfo reads): anyone who reads the token can speak
// for this PC. The error has the words of the Unix one: the file, who may
// read it (the SID and its name, the access mask) and the icacls command
// that fixes it. fi is unused: Windows keeps no mode bits worth reading.
func checkSecret(path string, _ fs.FileInfo) error {
	err := fsguard.CheckUnreadable(path)
	var u *fsguard.UnsafeError
	switch {
	case errors.As(err, &u) && u.Reads:
		return fmt.Errorf("unsafe: %s %s: anyone who reads it can speak for this PC; fix: %s", u.Path, u.Problem, u.Fix)
	case errors.As(err, &u):
		return nil // a link on the way: fsguard.CheckFile, beside it in checkSecretFile, refuses it in the same words
	}
	return err // not judged (the ACL unreadable, say): refused
}
