package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/wire"
)

// hubCmd runs one mamori-hub command line.
func hubCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestCLIWhileServing runs serve, then adds an agent and sets the lists
// from the command line on the same database: the hub takes them at once.
func TestCLIWhileServing(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfgFile := filepath.Join(dir, "hub.yaml")
	os.WriteFile(cfgFile, []byte(fmt.Sprintf("version: 1\nlisten: %s\ndatabase: sqlite://hub.db\nsilent_after: 1m\nretention: 0\n", addr)), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var serveErr bytes.Buffer
	go func() { done <- run(ctx, []string{"serve", "--config", cfgFile}, io.Discard, &serveErr) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, serveErr.String())
		}
	}()
	base := "http://" + addr
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatal("serve did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}

	code, out, errOut := hubCmd(t, "agent", "add", "pc-01", "--config", cfgFile)
	if code != 0 || strings.Count(out, "\n") != 1 || len(strings.TrimSpace(out)) != 43 {
		t.Fatalf("agent add: %d %q %q", code, out, errOut)
	}
	tok := strings.TrimSpace(out)
	if code, _, errOut := hubCmd(t, "agent", "add", "pc-01", "--config", cfgFile); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("second add: %d %s", code, errOut)
	}
	// The database holds the hash only.
	db, _ := os.ReadFile(filepath.Join(dir, "hub.db"))
	wal, _ := os.ReadFile(filepath.Join(dir, "hub.db-wal"))
	if bytes.Contains(db, []byte(tok)) || bytes.Contains(wal, []byte(tok)) {
		t.Fatal("the token is stored in clear")
	}

	get := func(path, token string, hdr ...string) *http.Response {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get(wire.PathPolicy, tok); resp.StatusCode != 404 {
		t.Fatalf("policy before set: %d", resp.StatusCode)
	}
	lists := filepath.Join(dir, "approved.yaml")
	os.WriteFile(lists, []byte("usb:\n  - name: stick\n    vendor_id: \"0781\"\n"), 0o600)
	if code, _, errOut := hubCmd(t, "policy", "set", lists, "--config", cfgFile, "--by", "alice"); code != 0 {
		t.Fatalf("policy set: %s", errOut)
	}
	resp := get(wire.PathPolicy, tok)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"1"` {
		t.Fatalf("policy: %d %s", resp.StatusCode, resp.Header.Get("ETag"))
	}
	if code, _, errOut := hubCmd(t, "policy", "set", lists, "--config", cfgFile); code != 0 || !strings.Contains(errOut, "unchanged: version 1") {
		t.Fatalf("the same lists again: %d %s", code, errOut)
	}
	code, out, errOut = hubCmd(t, "policy", "get", "--config", cfgFile)
	if code != 0 || !strings.Contains(out, "name: stick") || !strings.Contains(errOut, "by alice") {
		t.Fatalf("policy get: %d %q %q", code, out, errOut)
	}

	code, out, _ = hubCmd(t, "admin", "token", "--config", cfgFile)
	admin := strings.TrimSpace(out)
	if code != 0 || get(wire.PathAgents, admin).StatusCode != 200 || get(wire.PathAgents, tok).StatusCode != 403 {
		t.Fatal("admin token")
	}
	// Rotation: the old token stops working at once, the new one works.
	code, out, errOut = hubCmd(t, "agent", "rotate", "pc-01", "--config", cfgFile)
	if code != 0 || strings.Count(out, "\n") != 1 || strings.TrimSpace(out) == tok {
		t.Fatalf("rotate: %d %q %q", code, out, errOut)
	}
	old := tok
	tok = strings.TrimSpace(out)
	if get(wire.PathPolicy, old).StatusCode != 401 || get(wire.PathPolicy, tok).StatusCode != 200 {
		t.Fatal("after rotate: the old token works or the new one does not")
	}
	if code, _, _ := hubCmd(t, "agent", "rotate", "nobody", "--config", cfgFile); code != 1 {
		t.Fatal("rotate unknown")
	}
	if code, _, errOut := hubCmd(t, "agent", "revoke", "pc-01", "--config", cfgFile); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	if code, _, errOut := hubCmd(t, "agent", "rotate", "pc-01", "--config", cfgFile); code != 1 || !strings.Contains(errOut, "revoked") {
		t.Fatalf("rotate revoked: %d %s", code, errOut)
	}
	if resp := get(wire.PathPolicy, tok); resp.StatusCode != 401 {
		t.Fatalf("revoked token: %d", resp.StatusCode)
	}
	if code, _, _ := hubCmd(t, "agent", "revoke", "nobody", "--config", cfgFile); code != 1 {
		t.Fatal("revoke unknown")
	}
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "hub.yaml")
	os.WriteFile(cfgFile, []byte("version: 1\ndatabase: sqlite://hub.db\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("usb:\n  - name: x\n    name: y\nprinters: []\n"), 0o600)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"agent", "add"}, 2, "wrong number"},
		{[]string{"agent", "add", "a b", "--config", cfgFile}, 2, "no spaces"},
		{[]string{"serve", "--config", filepath.Join(dir, "none.yaml")}, 1, "no config file"},
		{[]string{"policy", "set", bad, "--config", cfgFile}, 1, bad + ":3:5: usb[0]: key \"name\" is given twice"},
		{[]string{"policy", "set", bad, "--config", cfgFile}, 1, bad + ":4:1: approved: unknown key \"printers\""},
		{[]string{"policy", "get", "--config", cfgFile}, 1, "no approved lists"},
	}
	for _, c := range cases {
		code, _, errOut := hubCmd(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: %d %q, want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

// TestCLIHelpAndUnsafeConfig: help and version on stdout with exit 0, a
// group alone lists its commands, and the commands that open the database
// refuse a config others can write (it names the database they write to).
func TestCLIHelpAndUnsafeConfig(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"agent"}, {"policy", "--help"}} {
		if code, out, _ := hubCmd(t, args...); code != 0 || !strings.Contains(out, "mamori-hub") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	if code, out, _ := hubCmd(t, "version"); code != 0 || !strings.HasPrefix(out, "mamori-hub ") {
		t.Errorf("version: exit %d %q", code, out)
	}
	if code, _, _ := hubCmd(t, "agent", "frob"); code != 2 {
		t.Errorf("agent frob: exit %d, want 2", code)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hub.yaml")
	os.WriteFile(cfg, []byte("version: 1\ndatabase: sqlite://hub.db\n"), 0o600)
	os.Chmod(cfg, 0o666)
	for _, args := range [][]string{{"agent", "add", "pc-1"}, {"admin", "token"}, {"policy", "get"}} {
		code, _, errOut := hubCmd(t, append(args, "--config", cfg)...)
		if code != 1 || !strings.Contains(errOut, "unsafe") {
			t.Errorf("%v with a config others can write: exit %d\n%s", args, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "hub.db")); err == nil {
		t.Error("a database was made through an unsafe config")
	}
}
