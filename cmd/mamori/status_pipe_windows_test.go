package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/internal/wintest"
)

// pipeConfig writes an agent config (windowsConfig's) that serves the
// local API on a pipe of its own, and returns the config, the state dir
// and the pipe.
func pipeConfig(t *testing.T, dir string) (cfg, state, pipe string) {
	t.Helper()
	cfg, state = windowsConfig(t, dir)
	var b [6]byte
	rand.Read(b[:])
	pipe = `\\.\pipe\mamori-test-` + hex.EncodeToString(b[:])
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	with := strings.Replace(string(body), "agent:\n", "agent:\n  local_socket: '"+pipe+"'\n", 1)
	if with == string(body) {
		t.Fatal("windowsConfig has no agent: section")
	}
	if err := os.WriteFile(cfg, []byte(with), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, state, pipe
}

// runningExe is a "mamori.exe run" startAgent started: the line it said
// it runs with (naming its state folder), its log (standard error), and
// the function that ends it (also called when the test ends).
type runningExe struct {
	ready  string
	stderr *lockedBuffer
	stop   func()
}

// startAgent starts mamori.exe run --config cfg and waits (45 s at most)
// for it to say it runs.
func startAgent(t *testing.T, cfg string) *runningExe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, binary, "run", "--config", cfg)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &runningExe{stderr: &lockedBuffer{}}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
			cancel()
		})
	}
	t.Cleanup(r.stop)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "running") {
				select {
				case ready <- sc.Text():
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case r.ready = <-ready:
	case <-time.After(45 * time.Second):
		t.Fatalf("mamori run did not get ready\n%s", r.stderr.String())
	}
	return r
}

// TestWindowsStatusPipe: mamori.exe run serves its local API on the
// named pipe agent.local_socket names; mamori.exe status reads it there
// and shows what it shows on Linux, the self-test of the event sources
// included (under Wine: device notifications fallen back to rescans);
// --json carries the same. A second agent on the same pipe does not
// serve it (the first instance holds the name) and says so.
func TestWindowsStatusPipe(t *testing.T) {
	dir := wintest.TempDir(t)
	cfg, state, pipe := pipeConfig(t, dir)
	log := startAgent(t, cfg).stderr
	waitRecord(t, state, 10*time.Second, "agent_started", ofType("agent_started"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "local API serving") {
		if time.Now().After(deadline) || strings.Contains(log.String(), "local API not served") {
			t.Fatalf("the agent does not serve %s:\n%s", pipe, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	code, out, errOut := mamoriExe(t, "status", "--socket", pipe)
	if code != statusClear && code != statusViolations {
		t.Fatalf("mamori status: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"mamori ", "running (pid ", "asset PC-WINE-TEST", "Hub: not reporting",
		"Audit log: last seq ", "Event sources / イベント源: ", "device notifications ", "drive letters polling", "Desktop notifiers: "} {
		if !strings.Contains(out, want) {
			t.Errorf("mamori status lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "USB devices / USB 機器: none") && !strings.Contains(out, "USB DEVICE ") {
		t.Errorf("mamori status shows no USB devices, not even none:\n%s", out)
	}
	// Wine lists no USB device, but its Z: (the host's /) is a fixed
	// drive whose bus type cannot be read: storage whose USB device is
	// unknown, unapproved.
	if wintest.IsWine() && (!strings.Contains(out, "drive Z: (USB device not determined") || !strings.Contains(out, "usb_storage_unapproved (unknown:")) {
		t.Errorf("under Wine, Z: is shown as USB storage whose device is unknown:\n%s", out)
	}
	if wintest.IsWine() && !strings.Contains(out, "device notifications: seen at rescans only (device notifications: unsupported operation") {
		t.Errorf("under Wine the device notifications are shown fallen back to rescans:\n%s", out)
	}
	if (code == statusViolations) != strings.Contains(out, "open violation(s)") {
		t.Errorf("exit %d does not match the violations shown:\n%s", code, out)
	}
	t.Logf("mamori status:\n%s", out)

	code, out, errOut = mamoriExe(t, "status", "--json", "--socket", pipe)
	var st localapi.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || (code != statusClear && code != statusViolations) {
		t.Fatalf("mamori status --json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if st.Agent.AssetID != "PC-WINE-TEST" || st.Audit.LastSeq < 1 || len(st.Sources) == 0 || st.Notifiers == nil {
		t.Errorf("status %+v", st)
	}
	names := map[string]string{}
	for _, s := range st.Sources {
		names[s.Name] = s.State
	}
	if names["device notifications"] == "" || names["drive letters"] != localapi.SourcePolling {
		t.Errorf("sources %+v", st.Sources)
	}

	// A second agent, the same pipe: refused the name, the first serves on.
	dir2 := wintest.TempDir(t)
	cfg2, _ := windowsConfig(t, dir2)
	body, _ := os.ReadFile(cfg2)
	os.WriteFile(cfg2, []byte(strings.Replace(string(body), "agent:\n", "agent:\n  local_socket: '"+pipe+"'\n", 1)), 0o600)
	log2 := startAgent(t, cfg2).stderr
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(log2.String(), "local API not served") {
		if time.Now().After(deadline) || strings.Contains(log2.String(), "local API serving") {
			t.Fatalf("a second agent on %s:\n%s", pipe, log2.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(log2.String(), "the pipe exists already") {
		t.Errorf("the second agent's log does not say why:\n%s", log2.String())
	}
	if code, out, errOut := mamoriExe(t, "status", "--json", "--socket", pipe); code != statusClear && code != statusViolations || !strings.Contains(out, `"PC-WINE-TEST"`) {
		t.Errorf("status after the second agent: exit %d\n%s%s", code, out, errOut)
	}
}

// TestWindowsStatusNoAgent: mamori status on a pipe nobody serves exits
// 2 and says no agent serves it; on a path that is not a pipe, that it
// is not one.
func TestWindowsStatusNoAgent(t *testing.T) {
	code, _, errOut := mamoriExe(t, "status", "--socket", `\\.\pipe\mamori-test-nobody-here`)
	if code != statusUnreachable || !strings.Contains(errOut, "No agent is serving") {
		t.Errorf("no agent: exit %d\n%s", code, errOut)
	}
	code, _, errOut = mamoriExe(t, "status", "--socket", `C:\ProgramData\mamori\agent.sock`)
	if code != statusUnreachable || !strings.Contains(errOut, "is not a socket") {
		t.Errorf("not a pipe: exit %d\n%s", code, errOut)
	}
}
