//go:build linux

package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelp: a first-time user's hour. Every command answers --help on
// stdout with its flags and exit codes, and exits 0.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}} {
		out, _, code := runBinary(t, args...)
		if code != 0 || !strings.Contains(out, "Commands:") || !strings.Contains(out, "policy suggest") {
			t.Errorf("mamori %v: exit %d\n%s", args, code, out)
		}
	}
	for _, c := range commands {
		args := append(strings.Fields(c.name), "--help")
		out, stderr, code := runBinary(t, args...)
		if code != 0 || !strings.Contains(out, "Usage: mamori "+c.name) || !strings.Contains(out, "Exit") {
			t.Errorf("mamori %s --help: exit %d, want usage with exit codes on stdout\n%s%s", c.name, code, out, stderr)
		}
	}
	out, _, code := runBinary(t, "scan", "--help")
	for _, flag := range []string{"-config", "-sysfs", "-procfs", "-devfs", "-format", "-log-format", "-log-level"} {
		if !strings.Contains(out, flag) {
			t.Errorf("scan --help lacks %s (exit %d):\n%s", flag, code, out)
		}
	}
	out, _, code = runBinary(t, "policy")
	if code != 0 || !strings.Contains(out, "policy suggest") {
		t.Errorf("mamori policy: exit %d, want its subcommands\n%s", code, out)
	}
	if _, _, code := runBinary(t, "policy", "frob"); code != 2 {
		t.Errorf("mamori policy frob: exit %d, want 2", code)
	}
}

// TestConfigCheckPositional: config check FILE works, and so does --config.
func TestConfigCheckPositional(t *testing.T) {
	out, stderr, code := runBinary(t, "config", "check", "../../packaging/mamori.yaml")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("config check FILE: exit %d\n%s%s", code, out, stderr)
	}
	tabbed := filepath.Join(t.TempDir(), "tab.yaml")
	must(t, os.WriteFile(tabbed, []byte("version: 1\nagent:\n\tasset_id: PC-1\n"), 0o644))
	_, stderr, code = runBinary(t, "config", "check", tabbed)
	if code != 2 || !strings.Contains(stderr, tabbed+":3:1:") || !strings.Contains(stderr, "tab") {
		t.Errorf("a tab must be named as a tab with its column: exit %d\n%s", code, stderr)
	}
}

// TestHostileConfigFiles: a FIFO, /dev/zero or a directory in place of the
// config is a clear error at once, never a hang or an unbounded read.
func TestHostileConfigFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	must(t, syscall.Mkfifo(fifo, 0o600))
	for _, p := range []string{fifo, "/dev/zero", dir} {
		start := time.Now()
		_, stderr, code := runBinary(t, "config", "check", p)
		if code != 2 || !strings.Contains(stderr, p) || time.Since(start) > 5*time.Second {
			t.Errorf("config %s: exit %d after %v, want 2 at once naming the file\n%s", p, code, time.Since(start), stderr)
		}
	}
}

// TestRunRefusesUnsafeStateDir: a state dir that others can write, or
// that another user owns, is refused with the file and the fix named.
func TestRunRefusesUnsafeStateDir(t *testing.T) {
	f := newFixture(t)
	open := filepath.Join(t.TempDir(), "state")
	must(t, os.Mkdir(open, 0o777))
	must(t, os.Chmod(open, 0o777))
	_, stderr, code := runBinary(t, append(f.args("run"), "--state-dir", open)...)
	if code != 2 || !strings.Contains(stderr, open) || !strings.Contains(stderr, "chmod") {
		t.Errorf("world-writable state dir: exit %d, want 2 naming it and the fix\n%s", code, stderr)
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(t.TempDir(), "state")
		must(t, os.Mkdir(other, 0o700))
		must(t, os.Chown(other, 65534, 65534))
		_, stderr, code := runBinary(t, append(f.args("run"), "--state-dir", other)...)
		if code != 2 || !strings.Contains(stderr, other) || !strings.Contains(stderr, "chown") {
			t.Errorf("state dir owned by nobody: exit %d, want 2 naming it and the fix\n%s", code, stderr)
		}
		// A config another user can write decides what is approved.
		must(t, os.Chmod(f.config, 0o666))
		_, stderr, code = runBinary(t, append(f.args("run"), "--state-dir", f.state)...)
		if code != 2 || !strings.Contains(stderr, f.config) {
			t.Errorf("world-writable config: exit %d, want 2 naming it\n%s", code, stderr)
		}
	}
}

// startRun starts `mamori run` on the fixture and waits until it is ready.
func startRun(t *testing.T, f fixture, extra ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := isolate(exec.Command(binary, append(append(f.args("run"), "--state-dir", f.state), extra...)...))
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "running") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("mamori run ended before it was ready:\n%s", stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("mamori run not ready:\n%s", stderr.String())
	}
	return cmd, &stderr
}

func waitLog(t *testing.T, dir, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit log never had %s:\n%s", want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKilledRunIsRecorded: a run killed with SIGKILL leaves no
// agent_stopped; the next start records that it ended uncleanly. SIGHUP
// reloads the config and records it.
func TestKilledRunIsRecorded(t *testing.T) {
	f := newFixture(t)
	cmd, _ := startRun(t, f)
	must(t, cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, f.state, `"type":"config_reloaded"`)
	must(t, cmd.Process.Kill())
	cmd.Wait()
	cmd, _ = startRun(t, f)
	log := waitLog(t, f.state, `"type":"agent_unclean_stop"`)
	if strings.Count(log, `"type":"agent_unclean_stop"`) != 1 {
		t.Errorf("want one agent_unclean_stop:\n%s", log)
	}
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	cmd.Wait()
	if out, _, code := runBinary(t, "audit", "verify", "--state-dir", f.state); code != 0 {
		t.Errorf("audit verify after kill -9 and restart: exit %d\n%s", code, out)
	}
}

// TestAuditVerifyFindsStateDirOfConfig: audit verify --config reads the
// state dir the config names.
func TestAuditVerifyFindsStateDirOfConfig(t *testing.T) {
	f := newFixture(t)
	cfg, err := os.ReadFile(f.config)
	must(t, err)
	withState := strings.Replace(string(cfg), "agent:\n", "agent:\n  state_dir: "+f.state+"\n", 1)
	must(t, os.WriteFile(f.config, []byte(withState), 0o644))
	cmd, _ := startRun(t, f)
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	cmd.Wait()
	out, stderr, code := runBinary(t, "audit", "verify", "--config", f.config)
	if code != 0 || !strings.Contains(out, f.state) {
		t.Errorf("audit verify --config: exit %d\n%s%s", code, out, stderr)
	}
}

// TestRunAndSuggestRefuseWhatTheyCannotDo: run with no procfs cannot
// watch anything (exit 2, like scan); --entries-only with --all would
// paste entries the config already has.
func TestRunAndSuggestRefuseWhatTheyCannotDo(t *testing.T) {
	f := newFixture(t)
	_, stderr, code := runBinary(t, "run", "--config", f.config, "--sysfs", f.sysfs, "--procfs", filepath.Join(t.TempDir(), "none"), "--devfs", f.dev, "--state-dir", f.state)
	if code != 2 || !strings.Contains(stderr, "procfs") {
		t.Errorf("run without procfs: exit %d, want 2 naming the procfs\n%s", code, stderr)
	}
	if _, _, code := runBinary(t, "policy", "suggest", "--all", "--entries-only", "--config", f.config, "--sysfs", f.sysfs); code != 2 {
		t.Errorf("suggest --all --entries-only: exit %d, want 2", code)
	}
}

// TestVerifyAnchorPastTheEnd: an anchor after the last record says so,
// and does not call an intact log emptied.
func TestVerifyAnchorPastTheEnd(t *testing.T) {
	f := newFixture(t)
	cmd, _ := startRun(t, f)
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	cmd.Wait()
	out, _, code := runBinary(t, "audit", "verify", "--state-dir", f.state, "--from", "999:"+strings.Repeat("ab", 32))
	if code != 1 || strings.Contains(out, "emptied") || !strings.Contains(out, "before the anchor") {
		t.Errorf("anchor past the end: exit %d\n%s", code, out)
	}
}
