package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"
	winsvc "golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// These run on Windows and under Wine 8.0 (make wine-test), with
// mamori.exe as TestMain made it (wine_windows_test.go).

// TestWindowsDefaultConfig: without --config, mamori reads
// %ProgramFiles%\mamori\mamori.yaml (the known folder, which the MSI
// installs into), where a standard user can create nothing; the help
// says so. Under Wine a config put there is the one "audit verify"
// reads its state folder from.
func TestWindowsDefaultConfig(t *testing.T) {
	pf, err := windows.KnownFolderPath(windows.FOLDERID_ProgramFiles, windows.KF_FLAG_DEFAULT)
	if err != nil {
		t.Fatalf("KnownFolderPath(FOLDERID_ProgramFiles): %v", err)
	}
	want := filepath.Join(pf, "mamori", "mamori.yaml")
	if !strings.EqualFold(defaultConfig, want) {
		t.Errorf("defaultConfig %q, want %q", defaultConfig, want)
	}
	if wintest.IsWine() && !strings.EqualFold(defaultConfig, `C:\Program Files\mamori\mamori.yaml`) {
		t.Errorf("defaultConfig under Wine %q", defaultConfig)
	}
	_, out, errOut := mamoriExe(t, "run", "--help")
	if !strings.Contains(out+errOut, "(default "+defaultConfig+" when it exists)") {
		t.Errorf("mamori run --help does not name the default config %s:\n%s%s", defaultConfig, out, errOut)
	}

	if !wintest.IsWine() {
		return // the rest writes into Program Files
	}
	if _, err := os.Stat(defaultConfig); err == nil {
		t.Fatalf("%s exists already", defaultConfig)
	}
	state := filepath.Join(wintest.TempDir(t), "state")
	if err := os.MkdirAll(filepath.Dir(defaultConfig), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(defaultConfig); os.Remove(filepath.Dir(defaultConfig)) })
	if err := os.WriteFile(defaultConfig, []byte(fmt.Sprintf("version: 1\nagent:\n  state_dir: '%s'\n", state)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := mamoriExe(t, "audit", "verify")
	if code != exitError || !strings.Contains(out+errOut, state) {
		t.Errorf("audit verify without --config: exit %d, want 2 naming the default config's state dir %s (no log there yet):\n%s%s", code, state, out, errOut)
	}
}

// serviceStatus is the service name's status from the service control
// manager.
func serviceStatus(t *testing.T, name string) winsvc.Status {
	t.Helper()
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		t.Fatalf("the service %s: %v", name, err)
	}
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestWindowsServiceStartRefused: what the agent refuses when the service
// starts (a config that no longer loads, a token file others may read, a
// state folder that cannot be made) is checked in the service's start,
// after it connected to the service control manager: "service start"
// fails naming the exit code, and the service control manager holds the
// failed start (STOPPED, ERROR_SERVICE_SPECIFIC_ERROR, exit code 2), not
// a process that went away before it answered. "service install" still
// refuses such a config up front. With the config good again the
// service is RUNNING when "service start" returns, and by then the agent
// has started for real: agent_started is in its audit log.
func TestWindowsServiceStartRefused(t *testing.T) {
	needAdmin(t)
	dir := wintest.TempDir(t)
	cfg, state := windowsConfig(t, dir)
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "agent.token")
	if err := os.WriteFile(tok, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wintest.SetDACL(t, tok, wintest.EveryoneSDDL(t, "FR"))
	withToken := append(append([]byte{}, good...), "report:\n  url: http://127.0.0.1:9\n  token_file: '"+tok+"'\n"...)

	name := fmt.Sprintf("mamori-refuse-%d", os.Getpid())
	t.Cleanup(func() { mamoriExe(t, "service", "uninstall", "--name", name) })
	// Install refuses the token others may read, up front.
	if err := os.WriteFile(cfg, withToken, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := mamoriExe(t, "service", "install", "--name", name, "--config", cfg)
	if code != exitError || !strings.Contains(errOut, "the service would refuse to start") || !strings.Contains(errOut, "report.token_file: unsafe: "+tok) {
		t.Fatalf("service install with a token Everyone may read: exit %d\n%s%s", code, out, errOut)
	}
	if err := os.WriteFile(cfg, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := mamoriExe(t, "service", "install", "--name", name, "--config", cfg); code != 0 {
		t.Fatalf("service install: exit %d\n%s%s", code, out, errOut)
	}

	afile := filepath.Join(dir, "afile")
	if err := os.WriteFile(afile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  []byte
	}{
		{"config no longer loads", []byte("version: 1\nagent: [\n")},
		{"token others may read", withToken},
		{"state folder cannot be made", []byte(strings.Replace(string(good), state, filepath.Join(afile, "state"), 1))},
	} {
		if err := os.WriteFile(cfg, c.cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		code, out, errOut := mamoriExe(t, "service", "start", "--name", name)
		t.Logf("%s: service start after %v: exit %d: %s%s", c.name, time.Since(start).Round(time.Millisecond), code, out, errOut)
		if code != exitError || !strings.Contains(errOut, "service "+name+": start: it failed to start") ||
			!strings.Contains(errOut, "its own exit code 2") {
			t.Errorf("%s: service start: exit %d, want 2 and the failed start with exit code 2:\n%s%s", c.name, code, out, errOut)
		}
		st := serviceStatus(t, name)
		if st.State != winsvc.Stopped || st.Win32ExitCode != uint32(windows.ERROR_SERVICE_SPECIFIC_ERROR) || st.ServiceSpecificExitCode != exitError {
			t.Errorf("%s: the service control manager says state %d, Win32 exit code %d, service-specific %d; want STOPPED, %d, %d",
				c.name, st.State, st.Win32ExitCode, st.ServiceSpecificExitCode, windows.ERROR_SERVICE_SPECIFIC_ERROR, exitError)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "audit.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start wrote an audit log: %v", err)
	}

	if err := os.WriteFile(cfg, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := mamoriExe(t, "service", "start", "--name", name); code != 0 {
		t.Fatalf("service start with the config good again: exit %d\n%s%s", code, out, errOut)
	}
	if st := serviceStatus(t, name); st.State != winsvc.Running {
		t.Errorf("service start returned with the service in state %d, want RUNNING", st.State)
	}
	recs := readAudit(t, state)
	if len(recs) == 0 || recs[0].Type != "agent_started" {
		t.Errorf("RUNNING before the agent started: its audit log holds %+v", recs)
	}
	if code, out, errOut := mamoriExe(t, "service", "stop", "--name", name); code != 0 {
		t.Errorf("service stop: exit %d\n%s%s", code, out, errOut)
	}
}
