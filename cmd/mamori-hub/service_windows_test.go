package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"
	winsvc "golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// These run on Windows and under Wine 8.0 (scripts/wine/test.sh), where
// Wine's services.exe runs services. There is no Go toolchain under Wine
// to build mamori-hub.exe: the tests copy this test binary instead, which
// runs as mamori-hub when it is called mamori-hub.exe (TestMain).

// TestMain runs mamori-hub instead of the tests when this binary is
// called mamori-hub.exe (a copy hubExe made): not in init, since the
// service control dispatcher's callbacks, on other threads, would wait
// for package initialisation to end.
func TestMain(m *testing.M) {
	if exe, err := os.Executable(); err == nil && strings.EqualFold(filepath.Base(exe), "mamori-hub.exe") {
		main()
	}
	os.Exit(m.Run())
}

// hubExe copies this test binary into dir as mamori-hub.exe and returns
// its path.
func hubExe(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "mamori-hub.exe")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// runHub runs exe with args, at most 60 s, and returns its exit code and
// output.
func runHub(t *testing.T, exe string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("mamori-hub %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return code, stdout.String(), stderr.String()
}

// hubStatus is the service name's status from the service control
// manager.
func hubStatus(t *testing.T, name string) winsvc.Status {
	t.Helper()
	m, err := mgr.Connect()
	if err != nil {
		t.Fatalf("the service control manager: %v", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		t.Fatalf("the service %s: %v", name, err)
	}
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		t.Fatalf("the status of %s: %v", name, err)
	}
	return st
}

// healthz reports whether the hub at base answers /healthz with ok.
func healthz(base string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && string(b) == "ok\n"
}

// installHub installs the hub's service name on cfg: by "service
// install" on Windows; under Wine 8.0, whose ChangeServiceConfig2W has no
// SERVICE_CONFIG_DELAYED_AUTO_START_INFO ("Invalid level"), which
// install asks for, it creates the service itself with the command line
// install would give it (hubSpec), started on demand.
func installHub(t *testing.T, exe, name, cfg string) {
	t.Helper()
	if !wintest.IsWine() {
		if code, out, errOut := runHub(t, exe, "service", "install", "--name", name, "--config", cfg); code != 0 {
			t.Fatalf("service install: exit %d\n%s%s", code, out, errOut)
		}
		return
	}
	spec := hubSpec(name, cfg, exe)
	m, err := mgr.Connect()
	if err != nil {
		t.Fatalf("the service control manager: %v", err)
	}
	defer m.Disconnect()
	s, err := m.CreateService(name, exe, mgr.Config{DisplayName: spec.DisplayName, StartType: mgr.StartManual}, spec.Arguments...)
	if err != nil {
		t.Fatalf("CreateService %s: %v", name, err)
	}
	s.Close()
}

// TestWindowsHubServiceStartRefused: what the hub refuses when its
// service starts (a config that no longer loads, a config Everyone may
// change, a listen address another holds) is found in the service's
// start, after it connected to the service control manager: "service
// start" fails naming the exit code, and the service control manager
// holds the failed start (STOPPED, ERROR_SERVICE_SPECIFIC_ERROR, the
// hub's exit code 1), not a process that went away before it answered.
// "service install" still refuses such a config up front (under Wine the
// service is then made by installHub). With the
// config good again the service is RUNNING when "service start" returns,
// and by then the hub listens: /healthz answers at once.
func TestWindowsHubServiceStartRefused(t *testing.T) {
	if !wintest.IsWine() && !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("installs a Windows service: needs an elevated administrator (or Wine)")
	}
	dir := wintest.TempDir(t)
	exe := hubExe(t, dir)
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "hub.yaml")
	good := []byte(fmt.Sprintf("version: 1\nlisten: %s\ndatabase: sqlite://hub.db\n", addr))
	write := func(b []byte) {
		t.Helper()
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			t.Fatal(err)
		}
		wintest.PrivateFile(t, cfg)
	}
	write(good)

	name := fmt.Sprintf("mamori-hub-refuse-%d", os.Getpid())
	t.Cleanup(func() { runHub(t, exe, "service", "uninstall", "--name", name) })
	// Install refuses a config Everyone may change, up front.
	wintest.OpenToEveryone(t, cfg)
	code, out, errOut := runHub(t, exe, "service", "install", "--name", name, "--config", cfg)
	if code != exitError || !strings.Contains(errOut, "the service would not start") || !strings.Contains(errOut, "config: unsafe: ") {
		t.Fatalf("service install with a config Everyone may change: exit %d, want 1 and why\n%s%s", code, out, errOut)
	}
	write(good)
	installHub(t, exe, name, cfg)

	held, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		prepare func()
	}{
		{"config no longer loads", func() { write([]byte("version: 1\nlisten: nowhere\n")) }},
		{"config Everyone may change", func() { write(good); wintest.OpenToEveryone(t, cfg) }},
		{"listen address in use", func() { write(good) }},
	} {
		c.prepare()
		start := time.Now()
		code, out, errOut := runHub(t, exe, "service", "start", "--name", name)
		t.Logf("%s: service start after %v: exit %d: %s%s", c.name, time.Since(start).Round(time.Millisecond), code, out, errOut)
		if code != exitError || !strings.Contains(errOut, "service "+name+": start: it failed to start") ||
			!strings.Contains(errOut, fmt.Sprintf("its own exit code %d", exitError)) {
			t.Errorf("%s: service start: exit %d, want %d and the failed start with exit code %d:\n%s%s", c.name, code, exitError, exitError, out, errOut)
		}
		st := hubStatus(t, name)
		if st.State != winsvc.Stopped || st.Win32ExitCode != uint32(windows.ERROR_SERVICE_SPECIFIC_ERROR) || st.ServiceSpecificExitCode != exitError {
			t.Errorf("%s: the service control manager says state %d, Win32 exit code %d, service-specific %d; want STOPPED, %d, %d",
				c.name, st.State, st.Win32ExitCode, st.ServiceSpecificExitCode, windows.ERROR_SERVICE_SPECIFIC_ERROR, exitError)
		}
	}
	held.Close()

	if code, out, errOut := runHub(t, exe, "service", "start", "--name", name); code != 0 {
		t.Fatalf("service start with the config good again: exit %d\n%s%s", code, out, errOut)
	}
	if st := hubStatus(t, name); st.State != winsvc.Running {
		t.Errorf("service start returned with the service in state %d, want RUNNING", st.State)
	}
	if !healthz("http://" + addr) {
		t.Errorf("RUNNING before the hub listens: /healthz does not answer")
	}
	if code, out, errOut := runHub(t, exe, "service", "stop", "--name", name); code != 0 {
		t.Errorf("service stop: exit %d\n%s%s", code, out, errOut)
	}
	if healthz("http://" + addr) {
		t.Errorf("/healthz answers after service stop")
	}
}
