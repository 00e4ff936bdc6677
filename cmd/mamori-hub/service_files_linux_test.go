package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/internal/svc/svctest"
)

// TestServeRefusesUnsafeFiles: serve refuses (exit 1, before it listens)
// a config, TLS certificate or key, SQLite database or database directory
// that others can write or another user owns, naming the file and the
// fix; service install and service run refuse the same.
func TestServeRefusesUnsafeFiles(t *testing.T) {
	binary(t) // built before the clock runs
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "hub.yaml")
	cert, key := filepath.Join(dir, "hub.crt"), filepath.Join(dir, "hub.key")
	for _, p := range []string{cert, key, filepath.Join(db, "hub.db")} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("version: 1\nlisten: %s\ntls: {cert_file: hub.crt, key_file: hub.key}\ndatabase: sqlite://db/hub.db\n", freeAddr(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	name := svctest.Name(t, "mamori-hub-test")
	for _, c := range []struct {
		key, path string
		mode      os.FileMode
	}{
		{"config", cfg, 0o666},
		{"config", cfg, 0o620},
		{"tls.cert_file", cert, 0o666},
		{"tls.key_file", key, 0o660},
		{"database (its directory)", db, 0o777},
		{"database", filepath.Join(db, "hub.db"), 0o666},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(c.path, c.mode); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		code, _, stderr := hubCmd(t, "serve", "--config", cfg)
		if code != 1 || !strings.Contains(stderr, c.key+": unsafe: "+c.path) || !strings.Contains(stderr, "chmod go-w "+c.path) || time.Since(start) > 5*time.Second {
			t.Errorf("serve with %s mode %04o: exit %d after %v, want 1 at once naming %s, the file and the fix\n%s", c.key, c.mode, code, time.Since(start), c.key, stderr)
		}
		if code, _, stderr := hubCmd(t, "service", "install", "--name", name, "--config", cfg); code != 1 || !strings.Contains(stderr, c.key+": unsafe") {
			t.Errorf("service install with %s mode %04o: exit %d\n%s", c.key, c.mode, code, stderr)
		}
		// service run checks in the program's start, which ends the
		// process: it runs as one.
		start = time.Now()
		if code, _, stderr := hubExe(t, "service", "run", "--name", name, "--config", cfg); code != 1 || !strings.Contains(stderr, c.key+": unsafe") || time.Since(start) > 10*time.Second {
			t.Errorf("service run with %s mode %04o: exit %d after %v, want 1 at once\n%s", c.key, c.mode, code, time.Since(start), stderr)
		}
		if err := os.Chmod(c.path, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{cfg, key} {
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			if code, _, stderr := hubCmd(t, "serve", "--config", cfg); code != 1 || !strings.Contains(stderr, p) || !strings.Contains(stderr, "chown") {
				t.Errorf("serve with %s owned by nobody: exit %d\n%s", p, code, stderr)
			}
			os.Chown(p, 0, 0)
		}
	}
	if _, err := os.Stat("/etc/init.d/" + name); err == nil {
		t.Errorf("a refused install wrote /etc/init.d/%s", name)
	}
}

// hubExe runs the mamori-hub binary (built once) with args, at most 30 s,
// and returns its exit status and output.
func hubExe(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("mamori-hub %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("mamori-hub %v did not end within 30 s:\n%s%s", args, o.String(), e.String())
	}
	return code, o.String(), e.String()
}

// TestServiceRunForeground: "service run" outside a service manager (as
// systemd and SysV init run it) serves the config until SIGTERM, then
// exits 0; a config that does not load, or a listen address in use, ends
// it with exit 1 and the reason on stderr, the checks being made in the
// program's start since they moved there for Windows.
func TestServiceRunForeground(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("version: 1\nlisten: %s\ndatabase: sqlite://hub.db\n", addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	name := svctest.Name(t, "mamori-hub-test")

	cmd := exec.Command(binary(t), "service", "run", "--name", name, "--config", cfg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for !healthy("http://" + addr) {
		select {
		case err := <-exited:
			t.Fatalf("service run ended (%v) before it served:\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			t.Fatalf("service run does not serve /healthz after 15 s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Another on the same address: the listen fails in the start.
	if code, _, stderr := hubExe(t, "service", "run", "--name", name+"-2", "--config", cfg); code != 1 {
		t.Errorf("a second service run on %s: exit %d, want 1\n%s", addr, code, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nlisten: nowhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := hubExe(t, "service", "run", "--name", name, "--config", bad); code != 1 || !strings.Contains(stderr, "mamori-hub service run: "+bad+":2:") {
		t.Errorf("service run of a config that does not load: exit %d, want 1 naming %s:2:\n%s", code, bad, stderr)
	}
	if code, _, stderr := hubExe(t, "service", "run", "--name", name, "--config", filepath.Join(dir, "none.yaml")); code != 1 || !strings.Contains(stderr, "config file "+filepath.Join(dir, "none.yaml")+" does not exist") {
		t.Errorf("service run without its config: exit %d, want 1\n%s", code, stderr)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("service run after SIGTERM: %v, want exit 0\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("service run did not stop on SIGTERM:\n%s", out.String())
	}
	if healthy("http://" + addr) {
		t.Error("/healthz answers after service run ended")
	}
}

// TestServiceUsage: "mamori-hub service" alone lists the actions (exit 2),
// --help shows them (exit 0), an unknown action or a bad name is a usage
// error, and a config that does not load is named with its line.
func TestServiceUsage(t *testing.T) {
	if code, _, stderr := hubCmd(t, "service"); code != 2 || !strings.Contains(stderr, "install --config FILE") {
		t.Errorf("service: exit %d\n%s", code, stderr)
	}
	if code, out, _ := hubCmd(t, "service", "--help"); code != 0 || !strings.Contains(out, "status [--name NAME]") || !strings.Contains(out, "4 not installed") {
		t.Errorf("service --help: exit %d\n%s", code, out)
	}
	if code, _, _ := hubCmd(t, "service", "frob"); code != 2 {
		t.Errorf("service frob: exit %d, want 2", code)
	}
	if code, _, stderr := hubCmd(t, "service", "status", "--name", "a/b"); code != 2 || !strings.Contains(stderr, "service name") {
		t.Errorf("service status --name a/b: exit %d\n%s", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "hub.yaml")
	os.WriteFile(bad, []byte("version: 1\nlisten: nowhere\n"), 0o600)
	name := svctest.Name(t, "mamori-hub-test")
	if os.Geteuid() != 0 {
		t.Skip("service install needs root to check a config")
	}
	if code, _, stderr := hubCmd(t, "service", "install", "--name", name, "--config", bad); code != 1 || !strings.Contains(stderr, bad+":2:") {
		t.Errorf("service install of a bad config: exit %d, want 1 naming %s:2:\n%s", code, bad, stderr)
	}
	if code, stdout, _ := hubCmd(t, "serve", "--help"); code != 0 || !strings.Contains(stdout, "mamori-hub service install") {
		t.Errorf("serve --help: exit %d, want the usage on stdout naming the service commands:\n%s", code, stdout)
	}
}

// TestServiceInstallChecks: install refuses up front what would make the
// service fail at start, saying what to do: a --config file that does not
// exist (named as missing, not as not given), a SQLite database directory
// that does not exist (mkdir -m 700 DIR) or is a file; and, run by someone other than root, it says first that
// installing a service needs root (not that the config, which only root
// may read, does not load). Nothing is installed.
func TestServiceInstallChecks(t *testing.T) {
	bin := binary(t)
	name := svctest.Name(t, "mamori-hub-test")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("version: 1\nlisten: %s\ndatabase: sqlite://db/hub.db\n", freeAddr(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		db := filepath.Join(dir, "db")
		none := filepath.Join(dir, "none.yaml")
		for _, c := range []struct {
			args []string
			want string
			prep func()
		}{
			{[]string{"--config", none}, "config file " + none + " does not exist", nil},
			{[]string{"--config", cfg}, "database directory " + db + " does not exist: create it (mkdir -m 700 " + db + ")", nil},
			{[]string{"--config", cfg}, "database (its directory): check " + db + ": is a regular file, not a directory", func() { os.WriteFile(db, nil, 0o600) }},
		} {
			if c.prep != nil {
				c.prep()
			}
			args := append([]string{"service", "install", "--name", name}, c.args...)
			if code, _, stderr := hubCmd(t, args...); code != 1 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "give one with --config") {
				t.Errorf("%s: exit %d, want 1 and %q:\n%s", strings.Join(args, " "), code, c.want, stderr)
			}
		}
	}
	code, stderr := asNobody(t, bin, "service", "install", "--name", name, "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "install: needs root") || strings.Contains(stderr, "does not load") {
		t.Errorf("service install by a user other than root: exit %d, want 1 saying it needs root:\n%s", code, stderr)
	}
	if _, err := os.Lstat("/etc/init.d/" + name); err == nil {
		t.Errorf("a refused install wrote /etc/init.d/%s", name)
	}
}

// asNobody runs a copy of bin (in a directory everyone may read) with
// args as the user nobody (65534) when this test runs as root, as itself
// otherwise, and returns its exit code and stderr.
func asNobody(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "mamori-hub-nobody")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		exe := filepath.Join(dir, "mamori-hub")
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", exe}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	var e bytes.Buffer
	cmd.Stderr = &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), e.String()
	case err != nil:
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return 0, e.String()
}
