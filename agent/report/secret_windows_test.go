package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/wintest"
)

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
	c := config.Report{URL: "https://hub.example", TokenFile: tok}

	wintest.SetDACL(t, tok, wintest.EveryoneSDDL(t, "FR"))
	err := CheckFiles(c)
	for _, want := range []string{"report.token_file: unsafe: " + tok + " is readable by S-1-1-0 (Everyone) (access mask ",
		"anyone who reads it can speak for this PC", `fix: icacls "` + tok + `" /inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F`, "/remove:g *S-1-1-0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckFiles(token Everyone may read) = %v, want it to say %q", err, want)
		}
	}
	if _, newErr := New(Options{Config: c, StateDir: wintest.TempDir(t)}); newErr == nil || err == nil || newErr.Error() != err.Error() {
		t.Errorf("New(token Everyone may read) = %v, want CheckFiles' %v", newErr, err)
	}

	wintest.SetDACL(t, tok, wintest.EveryoneSDDL(t, "FA"))
	if err := CheckFiles(c); err == nil || !strings.Contains(err.Error(), "S-1-1-0 (Everyone) write it") || !strings.Contains(err.Error(), "is readable by S-1-1-0 (Everyone)") {
		t.Errorf("CheckFiles(token Everyone may change) = %v, want both problems", err)
	}

	wintest.PrivateFile(t, tok)
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
	wintest.SetDACL(t, key, wintest.EveryoneSDDL(t, "FR"))
	c.KeyFile, c.CertFile = key, key
	if err := CheckFiles(c); err == nil || !strings.Contains(err.Error(), "report.key_file: unsafe: "+key+" is readable by S-1-1-0 (Everyone)") {
		t.Errorf("CheckFiles(key Everyone may read) = %v", err)
	}

	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wintest.PrivateFile(t, empty)
	if err := CheckFiles(config.Report{URL: "https://hub.example", TokenFile: empty}); err == nil ||
		!strings.Contains(err.Error(), "is empty") || !strings.Contains(err.Error(), `icacls "`+empty+`"`) {
		t.Errorf("CheckFiles(empty token) = %v, want the Windows fix", err)
	}
}
