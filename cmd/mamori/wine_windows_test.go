package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/mamori-agent/mamori/internal/gztest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/mamori-agent/mamori/internal/fsguard"
	"github.com/mamori-agent/mamori/internal/svc"
	"github.com/mamori-agent/mamori/internal/wintest"
)

// The agent on Windows end to end: the service's life through the service
// control manager and an agent run, by mamori.exe itself. They run on
// Windows and under Wine 8.0 (make wine-test): Wine's services.exe runs
// services, SetupAPI answers with no USB devices, CM_Register_Notification
// is missing (the agent rescans), and drive letters can be mapped as
// removable drives through Wine's mount manager.
//
// Under Wine there is no Go toolchain to build mamori.exe: TestMain takes
// a copy of this test binary instead (selfBinary), which runs as mamori
// when it is called mamori.exe (asMamori).

// asMamori reports whether this test binary runs as mamori: it is called
// mamori.exe (a copy selfBinary made). TestMain then runs mamori instead
// of the tests: not init, since callbacks from other threads (the service
// control dispatcher's) wait for package initialisation to end.
func asMamori() bool {
	exe, err := os.Executable()
	return err == nil && strings.EqualFold(filepath.Base(exe), "mamori.exe")
}

// selfBinary copies this test binary to path, where TestMain would build
// mamori, when there is no Go toolchain to build it with (Wine). The copy
// runs as mamori (asMamori).
func selfBinary(path string) bool {
	if _, err := exec.LookPath("go"); err == nil {
		return false
	}
	exe, err := os.Executable()
	if err != nil {
		return false
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		return false
	}
	return os.WriteFile(path, b, 0o755) == nil
}

// needAdmin skips where services cannot be installed: real Windows
// without an elevated token. Wine's user is an administrator.
func needAdmin(t *testing.T) {
	t.Helper()
	if wintest.IsWine() {
		return
	}
	if !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("installs a Windows service: needs an elevated administrator (or Wine)")
	}
}

// mamoriExe runs mamori.exe with args and returns its exit code, stdout
// and stderr.
func mamoriExe(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("mamori %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return code, stdout.String(), stderr.String()
}

// windowsConfig writes an agent config with its state under dir and
// returns the config's path and the state dir.
func windowsConfig(t *testing.T, dir string) (cfg, state string) {
	t.Helper()
	state = filepath.Join(dir, "state")
	cfg = filepath.Join(dir, "mamori.yaml")
	body := fmt.Sprintf(`version: 1
agent:
  asset_id: PC-WINE-TEST
  state_dir: '%s'
  language: en
  rescan_interval: 2s
  contact: "IT desk, extension 1234"
metrics:
  listen: ""
approved:
  usb:
    - name: Hubs
      classes: [hub]
`, state)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, state
}

// auditRecord is what the tests read of a record.
type auditRecord struct {
	Seq     int64  `json:"seq"`
	Type    string `json:"type"`
	Trigger string `json:"trigger"`
	Path    string `json:"path"`
	Volume  *struct {
		Device     string `json:"device"`
		MountPoint string `json:"mount_point"`
		FSType     string `json:"fs_type"`
		Label      string `json:"label"`
	} `json:"volume"`
	Warning *struct {
		Reason string `json:"reason"`
	} `json:"warning"`
	Violation *struct {
		Kind string `json:"kind"`
	} `json:"violation"`
}

// readAudit reads the records of the state dir's current audit log.
func readAudit(t *testing.T, state string) []auditRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "audit.jsonl"))
	if err != nil {
		return nil
	}
	var out []auditRecord
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r auditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// waitRecord waits up to d for a record that match accepts.
func waitRecord(t *testing.T, state string, d time.Duration, what string, match func(auditRecord) bool) auditRecord {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, r := range readAudit(t, state) {
			if match(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %s within %s; records: %+v", what, state, d, readAudit(t, state))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func ofType(typ string) func(auditRecord) bool {
	return func(r auditRecord) bool { return r.Type == typ }
}

// TestWindowsServiceLifecycle installs mamori.exe as a service, starts it
// through the service control manager, sees it run and record
// agent_started, stops it (agent_stopped), and removes it; the installed
// service is LocalSystem, automatic, restarted on failure, and runs
// "service run" explicitly.
func TestWindowsServiceLifecycle(t *testing.T) {
	needAdmin(t)
	dir := wintest.TempDir(t)
	cfg, state := windowsConfig(t, dir)
	name := fmt.Sprintf("mamori-test-%d", os.Getpid())
	t.Cleanup(func() { mamoriExe(t, "service", "uninstall", "--name", name) })

	code, out, errOut := mamoriExe(t, "service", "install", "--name", name, "--config", cfg)
	if code != 0 || !strings.Contains(out, "installed (Windows service "+name+")") {
		t.Fatalf("service install: exit %d\n%s%s", code, out, errOut)
	}
	// What the service control manager was told.
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.OpenService(name)
	if err != nil {
		m.Disconnect()
		t.Fatal(err)
	}
	// QueryServiceConfig itself: mgr's Config also asks
	// QueryServiceConfig2 for levels Wine 8.0 does not have.
	c, err := queryServiceConfig(s.Handle)
	if err != nil {
		t.Fatal(err)
	}
	binPath, account := windows.UTF16PtrToString(c.BinaryPathName), windows.UTF16PtrToString(c.ServiceStartName)
	wantCmd := fmt.Sprintf(`service run --name %s --config %s`, name, cfg)
	if !strings.Contains(binPath, wantCmd) || c.StartType != mgr.StartAutomatic || (account != "LocalSystem" && account != "") {
		t.Errorf("service config: command line %q (want it to hold %q), start type %d, account %q", binPath, wantCmd, c.StartType, account)
	}
	if actions, err := s.RecoveryActions(); err != nil {
		t.Logf("recovery actions not readable here: %v", err)
	} else if len(actions) == 0 || actions[0].Type != mgr.ServiceRestart || actions[0].Delay != svc.RestartSec*time.Second {
		t.Errorf("recovery actions %+v, want a restart after %ds", actions, svc.RestartSec)
	}
	s.Close()
	m.Disconnect()

	if code, out, errOut := mamoriExe(t, "service", "start", "--name", name); code != 0 {
		t.Fatalf("service start: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := mamoriExe(t, "service", "status", "--name", name); code != 0 || !strings.Contains(out, name+": running") {
		t.Errorf("service status: exit %d: %s", code, out)
	}
	waitRecord(t, state, 30*time.Second, "agent_started", ofType("agent_started"))
	if err := fsguard.CheckDir(state); err != nil {
		t.Errorf("the service's state dir: %v", err)
	}

	if code, out, errOut := mamoriExe(t, "service", "stop", "--name", name); code != 0 || !strings.Contains(out, name+": stopped") {
		t.Fatalf("service stop: exit %d\n%s%s", code, out, errOut)
	}
	recs := readAudit(t, state)
	if len(recs) == 0 || recs[len(recs)-1].Type != "agent_stopped" {
		t.Errorf("last record after stop: %+v, want agent_stopped", recs)
	}
	if code, out, _ := mamoriExe(t, "service", "status", "--name", name); code != svc.ExitNotRunning || !strings.Contains(out, "stopped") {
		t.Errorf("service status after stop: exit %d: %s", code, out)
	}
	if code, out, errOut := mamoriExe(t, "service", "uninstall", "--name", name); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("service uninstall: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := mamoriExe(t, "service", "status", "--name", name); code != svc.ExitNotInstalled {
		t.Errorf("service status after uninstall: exit %d: %s", code, out)
	}
	if code, out, errOut := mamoriExe(t, "audit", "verify", "--state-dir", state); code != 0 || !strings.Contains(out, "chain intact") {
		t.Errorf("audit verify: exit %d\n%s%s", code, out, errOut)
	}
}

// TestWindowsAgentRun runs "mamori.exe run" for a few seconds: it
// records to its audit log in a state dir it makes private, says in its
// log which event sources work, and records a removable drive mapped
// while it runs (a FAT image labelled "MY STICK", mapped by Wine's mount
// manager), which it sees through its drive-letter watch. Then "mamori.exe
// audit verify" checks the chain.
func TestWindowsAgentRun(t *testing.T) {
	dir := wintest.TempDir(t)
	cfg, state := windowsConfig(t, dir)

	r := startAgent(t, cfg)
	if !strings.Contains(r.ready, state) {
		t.Errorf("ready line %q does not name the state dir", r.ready)
	}
	stop := r.stop
	waitRecord(t, state, 10*time.Second, "agent_started", ofType("agent_started"))
	if err := fsguard.CheckDir(state); err != nil {
		t.Errorf("state dir made by the agent: %v", err)
	}
	log := r.stderr.String()
	for _, want := range []string{`source="device notifications"`, `source="drive letters" state=polling`} {
		if !strings.Contains(log, want) {
			t.Errorf("the self-test in the log lacks %s:\n%s", want, log)
		}
	}
	if wintest.IsWine() && !strings.Contains(log, `source="device notifications" state=rescans detail="device notifications: unsupported operation`) {
		t.Errorf("under Wine the device notifications fall back to rescans (no CM_Register_Notification); log:\n%s", log)
	}

	// A violation (the host's network, which Wine shows, is on no
	// approved network) is warned by WTSSendMessageW, which Wine 8.0 only
	// stubs: recorded as not shown, with why.
	if slices.ContainsFunc(readAudit(t, state), ofType("violation")) {
		r := waitRecord(t, state, 15*time.Second, "warning_shown or warning_not_shown", func(r auditRecord) bool {
			return r.Type == "warning_shown" || r.Type == "warning_not_shown"
		})
		if wintest.IsWine() && (r.Type != "warning_not_shown" || r.Warning == nil || !strings.Contains(r.Warning.Reason, "WTSSendMessageW")) {
			t.Errorf("under Wine the warning is not shown (WTSSendMessageW is a stub): %+v %+v", r, r.Warning)
		}
	} else {
		t.Logf("no violation in this run (no network Wine shows is on a network): the warning path not exercised")
	}

	if wintest.IsWine() {
		letter := mapFATDrive(t)
		r := waitRecord(t, state, 15*time.Second, "volume_mounted of "+string(letter)+":", func(r auditRecord) bool {
			return r.Type == "volume_mounted" && r.Volume != nil && r.Volume.MountPoint == string(letter)+`:\`
		})
		if r.Volume.Label != "MY STICK" || r.Volume.FSType != "vfat" || r.Volume.Device == "" || r.Trigger != "mount" {
			t.Errorf("volume_mounted %+v (trigger %s), want label MY STICK, vfat, a device, seen by the drive-letter watch", *r.Volume, r.Trigger)
		}
		// On no USB device Wine lists: USB storage whose device is
		// unknown, unapproved.
		if !strings.HasPrefix(r.Path, "unknown:") {
			t.Errorf("volume_mounted of %c: on device %q, want an unknown: one", letter, r.Path)
		} else {
			waitRecord(t, state, 5*time.Second, "usb_storage_unapproved of "+r.Path, func(v auditRecord) bool {
				return v.Type == "violation" && v.Path == r.Path && v.Violation != nil && v.Violation.Kind == "usb_storage_unapproved"
			})
		}
	}
	stop()

	if code, out, errOut := mamoriExe(t, "audit", "verify", "--state-dir", state); code != 0 || !strings.Contains(out, "chain intact") {
		t.Errorf("audit verify: exit %d\n%s%s", code, out, errOut)
	}
}

// lockedBuffer is a bytes.Buffer safe to write from exec's copying
// goroutine while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mapFATDrive maps a new drive letter as a removable drive ("floppy")
// whose device is collector/media's FAT12 image (mkfs.vfat -n "MY
// STICK") and whose root is an empty directory, through Wine's mount
// manager (wintest.MapImage), and removes it when the test ends.
func mapFATDrive(t *testing.T) byte {
	t.Helper()
	img := gztest.Read(t, filepath.Join("..", "..", "collector", "media", "testdata", "images", "fat12.img.gz"))
	return wintest.MapImage(t, wintest.DriveRemovable, img)
}

// queryServiceConfig returns the service's QUERY_SERVICE_CONFIG.
func queryServiceConfig(h windows.Handle) (*windows.QUERY_SERVICE_CONFIG, error) {
	var need uint32
	b := make([]byte, 1024)
	for {
		c := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&b[0]))
		err := windows.QueryServiceConfig(h, c, uint32(len(b)), &need)
		if err == windows.ERROR_INSUFFICIENT_BUFFER && int(need) > len(b) {
			b = make([]byte, need)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("QueryServiceConfig: %w", err)
		}
		return c, nil
	}
}
