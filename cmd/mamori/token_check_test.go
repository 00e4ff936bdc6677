package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/config"
)

// reportConfig returns a config whose report: section uses a token file
// holding token with mode, and the file's path.
func reportConfig(t *testing.T, token string, mode os.FileMode) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	tok := filepath.Join(dir, "agent.token")
	must(t, os.WriteFile(tok, []byte(token), 0o600))
	must(t, os.Chmod(tok, mode))
	cfg := config.Default()
	cfg.Report.URL = "http://127.0.0.1:9"
	cfg.Report.TokenFile = tok
	return cfg, tok
}

func wantErr(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted", what)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error lacks %q:\n%v", what, p, err)
		}
	}
}

// TestCheckOwnershipSecrets: checkOwnership (run, config check, service
// install) refuses a token file group or others can read, an empty or
// invalid one and a missing one, naming report.token_file, the file and
// the fix, as the reporter itself would refuse it: the agent must not
// start with its reporting silently off.
func TestCheckOwnershipSecrets(t *testing.T) {
	cfg, _ := reportConfig(t, "tok-1\n", 0o600)
	if err := checkOwnership(cfg); err != nil {
		t.Fatalf("a good token file: %v", err)
	}

	for _, c := range []struct {
		name, token string
		parts       []string
	}{
		{"empty", "", []string{"is empty", "mamori-hub agent add NAME > ", "mamori-hub agent rotate NAME", "chmod 600 "}},
		{"blank lines", "\n\n", []string{"is empty"}},
		{"two tokens", "tok-1\ntok-2\n", []string{"alone on one line"}},
		{"a control character", "tok\x01\n", []string{"a character a token cannot have"}},
	} {
		cfg, tok := reportConfig(t, c.token, 0o600)
		wantErr(t, c.name, checkOwnership(cfg), append(c.parts, "report.token_file: ", tok)...)
	}

	cfg, tok := reportConfig(t, "tok-1\n", 0o600)
	must(t, os.Remove(tok))
	wantErr(t, "missing", checkOwnership(cfg), "report.token_file: ", tok+" does not exist",
		"mamori-hub agent add NAME > "+tok, "chmod 600 "+tok)

	if runtime.GOOS == "windows" {
		return // modes are not inspected there (internal/fsguard)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		cfg, tok := reportConfig(t, "tok-1\n", mode)
		wantErr(t, "mode "+mode.String(), checkOwnership(cfg),
			"report.token_file: unsafe: "+tok+" is readable by group or others", "chmod 600 "+tok)
	}
	// Readable and writable by others: both told at once.
	cfg, tok = reportConfig(t, "tok-1\n", 0o666)
	wantErr(t, "mode 0666", checkOwnership(cfg), "is writable by", "chmod go-w "+tok, "is readable by", "chmod 600 "+tok)

	// The TLS key is a secret too.
	cfg, _ = reportConfig(t, "tok-1\n", 0o600)
	dir := t.TempDir()
	cfg.Report.CertFile, cfg.Report.KeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(cfg.Report.CertFile, []byte("cert\n"), 0o644))
	must(t, os.WriteFile(cfg.Report.KeyFile, []byte("key\n"), 0o600))
	if err := checkOwnership(cfg); err != nil {
		t.Fatalf("a certificate 0644 and a key 0600: %v", err)
	}
	must(t, os.Chmod(cfg.Report.KeyFile, 0o640))
	wantErr(t, "key 0640", checkOwnership(cfg), "report.key_file: unsafe: "+cfg.Report.KeyFile+" is readable", "chmod 600 "+cfg.Report.KeyFile)
}

// TestRunRefusesReadableOrEmptyToken: the binary. A token file written
// by `mamori-hub agent add NAME > FILE` (mode 0644 under the usual umask)
// or left empty stops run and fails config check (exit 2) instead of an
// agent that records locally only and a hub that shows the PC as
// stopped for ever.
func TestRunRefusesReadableOrEmptyToken(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes are not inspected on Windows")
	}
	f := newFixture(t)
	tok := filepath.Join(t.TempDir(), "agent.token")
	must(t, os.WriteFile(tok, []byte("tok-1\n"), 0o600))
	cfg, err := os.ReadFile(f.config)
	must(t, err)
	must(t, os.WriteFile(f.config, append(cfg, "report:\n  url: http://127.0.0.1:9\n  token_file: "+tok+"\n"...), 0o600))
	if out, stderr, code := runBinary(t, "config", "check", f.config); code != 0 {
		t.Fatalf("config check with a token file 0600: exit %d\n%s%s", code, out, stderr)
	}
	for _, c := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"readable by others", "tok-1\n", 0o644, "readable by group or others"},
		{"empty", "", 0o600, "is empty"},
	} {
		must(t, os.WriteFile(tok, []byte(c.content), 0o600))
		must(t, os.Chmod(tok, c.mode))
		_, stderr, code := runBinary(t, "config", "check", f.config)
		if code != 2 || !strings.Contains(stderr, "report.token_file") || !strings.Contains(stderr, tok) || !strings.Contains(stderr, c.want) {
			t.Errorf("config check, token file %s: exit %d, want 2 naming the file\n%s", c.name, code, stderr)
		}
		stderr, code = runBounded(t, 20*time.Second, append(f.args("run"), "--state-dir", f.state)...)
		if code != 2 || !strings.Contains(stderr, "report.token_file") || !strings.Contains(stderr, c.want) ||
			!strings.Contains(stderr, "chmod 600 "+tok) {
			t.Errorf("run, token file %s: exit %d, want 2 naming the file and the fix\n%s", c.name, code, stderr)
		}
		if _, err := os.Stat(filepath.Join(f.state, "audit.jsonl")); err == nil {
			t.Fatalf("run with a token file %s started", c.name)
		}
	}
}

// runBounded runs the binary as runBinary does, killing it after d (an
// agent that started when it should have refused): code -1 then.
func runBounded(t *testing.T, d time.Duration, args ...string) (stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := isolate(exec.CommandContext(ctx, binary, args...))
	var e bytes.Buffer
	cmd.Stderr = &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return e.String() + "(still running after " + d.String() + ": killed)", -1
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	return e.String(), code
}
