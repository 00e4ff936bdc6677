package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/internal/svc/svctest"
)

// TestServeRefusesUnsafeFiles: serve refuses (exit 1, before it listens)
// a config, TLS certificate or key, SQLite database or database directory
// that others can write or another user owns, naming the file and the
// fix; service install and service run refuse the same.
func TestServeRefusesUnsafeFiles(t *testing.T) {
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
		if code, _, stderr := hubCmd(t, "service", "run", "--name", name, "--config", cfg); code != 1 || !strings.Contains(stderr, c.key+": unsafe") {
			t.Errorf("service run with %s mode %04o: exit %d\n%s", c.key, c.mode, code, stderr)
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
	if code, _, stderr := hubCmd(t, "service", "install", "--name", name, "--config", bad); code != 1 || !strings.Contains(stderr, bad+":2:") {
		t.Errorf("service install of a bad config: exit %d, want 1 naming %s:2:\n%s", code, bad, stderr)
	}
	if code, stdout, _ := hubCmd(t, "serve", "--help"); code != 0 || !strings.Contains(stdout, "mamori-hub service install") {
		t.Errorf("serve --help: exit %d, want the usage on stdout naming the service commands:\n%s", code, stdout)
	}
}
