package report

import (
	"testing"

	"golang.org/x/sys/windows"
)

// privateFile makes the file p private as a token file must be on
// Windows (the 0600 of Unix): a protected DACL granting SYSTEM,
// Administrators and this process's user full control and no one else
// anything (SetNamedSecurityInfo). Wine 8.0 keeps a DACL as a Unix mode
// and clears the "others" bits only for an entry for Everyone: the
// trailing denial of reading to Everyone, after the grants so that on
// Windows it takes nothing from them, makes the file 0600 there.
func privateFile(t *testing.T, p string) {
	t.Helper()
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatalf("this process's user: %v", err)
	}
	setFileDACL(t, p, "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;"+u.User.Sid.String()+")(D;;FR;;;WD)")
}
