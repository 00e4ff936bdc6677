package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/wintest"
)

// setFileDACL gives p the DACL of sddl, not inherited.
func setFileDACL(t *testing.T, p, sddl string) {
	t.Helper()
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	if err := windows.SetNamedSecurityInfo(p, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		t.Fatalf("SetNamedSecurityInfo %s: %v", p, err)
	}
}

// TestWindowsSecretFileACL: on Windows the token and key files' own DACL
// is judged: one that lets Everyone read the token is refused by
// CheckFiles and New alike, in the words of the Unix refusal (the file,
// who may read it, the fix); one that lets Everyone write it is refused
// too; a private one passes. Run on Windows and under Wine 8.0, which
// keeps a DACL as a Unix mode: Everyone's entry is what it can show.
func TestWindowsSecretFileACL(t *testing.T) {
	dir := wintest.TempDir(t)
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	self := u.User.Sid.String()
	grants := "(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;" + self + ")"
	// Wine clears the "others" bits only for an entry for Everyone: the
	// trailing denial (after the grants, so it takes nothing from them on
	// Windows) makes the file 0600 there.
	private := "D:P" + grants + "(D;;FR;;;WD)"
	c := config.Report{URL: "https://hub.example", TokenFile: tok}

	setFileDACL(t, tok, "D:P"+grants+"(A;;FR;;;WD)")
	err = CheckFiles(c)
	for _, want := range []string{"report.token_file: unsafe: " + tok + " is readable by S-1-1-0 (Everyone) (access mask ",
		"anyone who reads it can speak for this PC", `fix: icacls "` + tok + `" /inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F`, "/remove:g *S-1-1-0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckFiles(token Everyone may read) = %v, want it to say %q", err, want)
		}
	}
	if _, newErr := New(Options{Config: c, StateDir: wintest.TempDir(t)}); newErr == nil || err == nil || newErr.Error() != err.Error() {
		t.Errorf("New(token Everyone may read) = %v, want CheckFiles' %v", newErr, err)
	}

	setFileDACL(t, tok, "D:P"+grants+"(A;;FA;;;WD)")
	if err := CheckFiles(c); err == nil || !strings.Contains(err.Error(), "S-1-1-0 (Everyone) write it") || !strings.Contains(err.Error(), "is readable by S-1-1-0 (Everyone)") {
		t.Errorf("CheckFiles(token Everyone may change) = %v, want both problems", err)
	}

	setFileDACL(t, tok, private)
	if err := CheckFiles(c); err != nil {
		t.Errorf("CheckFiles(private token) = %v", err)
	}
	if got, err := readToken(tok); err != nil || got != "tok-1" {
		t.Errorf("readToken(private token) = %q, %v", got, err)
	}

	key := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(key, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	setFileDACL(t, key, "D:P"+grants+"(A;;FR;;;WD)")
	c.KeyFile, c.CertFile = key, key
	if err := CheckFiles(c); err == nil || !strings.Contains(err.Error(), "report.key_file: unsafe: "+key+" is readable by S-1-1-0 (Everyone)") {
		t.Errorf("CheckFiles(key Everyone may read) = %v", err)
	}

	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	setFileDACL(t, empty, private)
	if err := CheckFiles(config.Report{URL: "https://hub.example", TokenFile: empty}); err == nil ||
		!strings.Contains(err.Error(), "is empty") || !strings.Contains(err.Error(), `icacls "`+empty+`"`) {
		t.Errorf("CheckFiles(empty token) = %v, want the Windows fix", err)
	}
}
