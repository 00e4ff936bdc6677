package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamori-agent/mamori/internal/svc/svctest"
)

// reportFixture adds a report: section to the fixture's config whose
// token, CA, certificate and key files are in a directory of their own,
// each 0600; it returns the files by config key.
func reportFixture(t *testing.T, f fixture) map[string]string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	var section strings.Builder
	section.WriteString("report:\n  url: http://127.0.0.1:9\n")
	for _, key := range []string{"token_file", "ca_file", "cert_file", "key_file"} {
		p := filepath.Join(dir, strings.TrimSuffix(key, "_file"))
		content := "not read: refused before\n"
		if key == "token_file" {
			content = "tok-fixture\n" // a token: an invalid one is refused too
		}
		must(t, os.WriteFile(p, []byte(content), 0o600))
		files[key] = p
		fmt.Fprintf(&section, "  %s: %s\n", key, p)
	}
	cfg, err := os.ReadFile(f.config)
	must(t, err)
	must(t, os.WriteFile(f.config, append(cfg, section.String()...), 0o600))
	return files
}

// TestRunRefusesUnsafeReportFiles: the hub token and the TLS files of
// report: decide whom the agent talks to and as whom; run refuses to start
// when others can write one (or it is missing, or another user owns it),
// naming the config key, the file and the fix, and so do config check and
// service install.
func TestRunRefusesUnsafeReportFiles(t *testing.T) {
	f := newFixture(t)
	files := reportFixture(t, f)
	if out, stderr, code := runBinary(t, "config", "check", f.config); code != 0 {
		t.Fatalf("config check of safe files: exit %d\n%s%s", code, out, stderr)
	}
	name := svctest.Name(t, "mamori-test")
	for _, key := range []string{"token_file", "ca_file", "cert_file", "key_file"} {
		p := files[key]
		for _, mode := range []os.FileMode{0o666, 0o620} {
			must(t, os.Chmod(p, mode))
			_, stderr, code := runBinary(t, append(f.args("run"), "--state-dir", f.state)...)
			if code != 2 || !strings.Contains(stderr, "report."+key+": unsafe: "+p+" is writable by") || !strings.Contains(stderr, "chmod go-w "+p) {
				t.Errorf("run with %s mode %04o: exit %d, want 2 naming report.%s, the file and the fix\n%s", key, mode, code, key, stderr)
			}
			if _, stderr, code := runBinary(t, "config", "check", f.config); code != 2 || !strings.Contains(stderr, "report."+key) {
				t.Errorf("config check with %s mode %04o: exit %d\n%s", key, mode, code, stderr)
			}
			_, stderr, code = runBinaryPlain(t, "service", "install", "--name", name, "--config", f.config)
			if code != 2 || !strings.Contains(stderr, "would refuse to start") || !strings.Contains(stderr, "report."+key) {
				t.Errorf("service install with %s mode %04o: exit %d\n%s", key, mode, code, stderr)
			}
		}
		must(t, os.Chmod(p, 0o600))
		if os.Geteuid() == 0 {
			must(t, os.Chown(p, 65534, 65534))
			_, stderr, code := runBinary(t, append(f.args("run"), "--state-dir", f.state)...)
			if code != 2 || !strings.Contains(stderr, "report."+key) || !strings.Contains(stderr, "chown") {
				t.Errorf("run with %s owned by nobody: exit %d\n%s", key, code, stderr)
			}
			must(t, os.Chown(p, 0, 0))
		}
	}
	must(t, os.Remove(files["token_file"]))
	_, stderr, code := runBinary(t, append(f.args("run"), "--state-dir", f.state)...)
	if code != 2 || !strings.Contains(stderr, "report.token_file") || !strings.Contains(stderr, files["token_file"]) {
		t.Errorf("run without its token file: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(f.state, "audit.jsonl")); err == nil {
		t.Error("a refused run wrote an audit log")
	}
}

// TestServiceInstallRefuses: install checks what the service would run
// before it writes anything: a config that does not load (FILE:LINE:COL),
// a missing one, a name the service managers cannot take.
func TestServiceInstallRefuses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("service install needs root to check a config (TestServiceInstallNeedsRoot)")
	}
	name := svctest.Name(t, "mamori-test")
	dir := t.TempDir()
	tabbed := filepath.Join(dir, "tab.yaml")
	must(t, os.WriteFile(tabbed, []byte("version: 1\nagent:\n\tasset_id: PC-1\n"), 0o600))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", tabbed}, tabbed + ":3:1:"},
		{[]string{"--config", filepath.Join(dir, "none.yaml")}, "config file " + filepath.Join(dir, "none.yaml") + " does not exist"},
		{[]string{"--config", "../../packaging/mamori.yaml", "--name", "a b"}, "service name"},
		{[]string{"--config", "../../packaging/mamori.yaml", "--name", "../x"}, "service name"},
		{[]string{"--config", "../../packaging/mamori.yaml", "--log-level", "loud"}, "--log-level"},
	} {
		args := append([]string{"service", "install", "--name", name}, c.args...)
		_, stderr, code := runBinaryPlain(t, args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("mamori %s: exit %d, want 2 and %q\n%s", strings.Join(args, " "), code, c.want, stderr)
		}
	}
	if _, err := os.Stat("/etc/init.d/" + name); err == nil {
		t.Errorf("a refused install wrote /etc/init.d/%s", name)
	}
	if out, _, code := runBinaryPlain(t, "service"); code != 0 || !strings.Contains(out, "service install") || !strings.Contains(out, "service status") {
		t.Errorf("mamori service: exit %d, want the list of subcommands\n%s", code, out)
	}
	if _, _, code := runBinaryPlain(t, "service", "frob"); code != 2 {
		t.Errorf("mamori service frob: exit %d, want 2", code)
	}
}

// TestServiceInstallNeedsRoot: service install run by someone other than
// root says first that installing a service needs root, not that the
// config (which only root may read) does not load; nothing is installed.
func TestServiceInstallNeedsRoot(t *testing.T) {
	name := svctest.Name(t, "mamori-test")
	cfg := filepath.Join(t.TempDir(), "mamori.yaml")
	must(t, os.WriteFile(cfg, []byte("version: 1\n"), 0o600))
	args := []string{"service", "install", "--name", name, "--config", cfg}
	cmd := exec.Command(binary, args...)
	if os.Geteuid() == 0 {
		// A copy everyone may run, run as nobody.
		dir, err := os.MkdirTemp("", "mamori-nobody")
		must(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
		b, err := os.ReadFile(binary)
		must(t, err)
		exe := filepath.Join(dir, "mamori")
		must(t, os.WriteFile(exe, b, 0o755))
		must(t, os.Chmod(dir, 0o755))
		cmd = exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", exe}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "install: needs root") || strings.Contains(string(out), "does not load") {
		t.Errorf("service install by a user other than root: %v, want exit 2 saying it needs root:\n%s", err, out)
	}
	if _, err := os.Lstat("/etc/init.d/" + name); err == nil {
		t.Errorf("a refused install wrote /etc/init.d/%s", name)
	}
}
