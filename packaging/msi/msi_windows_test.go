package msi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/mamori-agent/mamori/internal/fsguard"
	"github.com/mamori-agent/mamori/internal/wintest"
)

// TestWindowsMSI installs the MSI with msiexec, sees the service run the
// agent on the installed config (C:\Program Files\mamori\mamori.yaml)
// with its state in the folder the agent made private itself
// (C:\ProgramData\mamori, which the MSI does not make), upgrades to a
// newer MSI over a config the administrator edited, and uninstalls: the
// binary and the service go, the config (edited) and the audit log stay.
// TestMSIUnderWine
// (Linux) builds the two MSIs and runs this under Wine 8.0; it would
// change a real Windows, so it runs under Wine only. Wine's StopServices
// does not wait for the service to stop, so the test stops it before the
// upgrade and the uninstall; Windows waits (ServiceControl Wait).
func TestWindowsMSI(t *testing.T) {
	oldMSI, newMSI := os.Getenv("MAMORI_MSI_OLD"), os.Getenv("MAMORI_MSI_NEW")
	if oldMSI == "" || newMSI == "" {
		t.Skip("needs MAMORI_MSI_OLD and MAMORI_MSI_NEW: TestMSIUnderWine (Linux) builds the MSIs and runs this")
	}
	if !wintest.IsWine() {
		t.Skip("installs and removes mamori: under Wine only")
	}
	programFiles := cmpOr(os.Getenv("ProgramW6432"), `C:\Program Files`)
	programData := cmpOr(os.Getenv("ProgramData"), `C:\ProgramData`)
	exe := filepath.Join(programFiles, "mamori", "mamori.exe")
	state := filepath.Join(programData, "mamori")
	conf := filepath.Join(programFiles, "mamori", "mamori.yaml")
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s before the install: %v", state, err)
	}
	example, err := os.ReadFile("mamori.yaml")
	if err != nil {
		t.Fatal(err)
	}

	msiexec(t, "/i", oldMSI)
	if b, err := os.ReadFile(conf); err != nil || !bytes.Equal(b, example) {
		t.Fatalf("installed config %s: %v (want the example)", conf, err)
	}
	checkService(t, exe, conf)
	waitStarted(t, state, "1.2.3")
	if out := run(t, exe, "version"); !strings.HasPrefix(out, "mamori 1.2.3 ") {
		t.Errorf("mamori version: %q", out)
	}
	// The state folder is the agent's: made private, holding nothing of
	// the MSI.
	if err := fsguard.CheckDir(state); err != nil {
		t.Errorf("the state folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "mamori.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a config in the state folder: %v", err)
	}
	if err := fsguard.CheckFile(conf); err != nil {
		t.Errorf("the installed config: %v", err)
	}
	// The installed binary finds its config without --config.
	if out := run(t, exe, "config", "check", conf); !strings.Contains(out, ": ok") {
		t.Errorf("config check: %q", out)
	}
	if out := run(t, exe, "audit", "verify"); !strings.Contains(out, "chain intact") || !strings.Contains(strings.ToLower(out), strings.ToLower(state)) {
		t.Errorf("audit verify without --config (the default config's state folder): %q", out)
	}

	// The administrator edits the config; the upgrade keeps it.
	edited := append(append([]byte{}, example...), "# edited by the administrator\n"...)
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	// Wine 8.0's StopServices does not wait for the service to stop
	// (Windows waits up to 30 s), so the upgrade's StartServices would
	// find the old one still running: stop it first here.
	if out := run(t, exe, "service", "stop"); !strings.Contains(out, "mamori: stopped") {
		t.Fatalf("service stop before the upgrade: %s", out)
	}
	msiexec(t, "/i", newMSI)
	if b, _ := os.ReadFile(conf); !bytes.Equal(b, edited) {
		t.Errorf("the upgrade replaced the edited config:\n%s", b)
	}
	checkService(t, exe, conf)
	waitStarted(t, state, "1.2.4")
	if out := run(t, exe, "version"); !strings.HasPrefix(out, "mamori 1.2.4 ") {
		t.Errorf("mamori version after the upgrade: %q", out)
	}
	if out := run(t, exe, "audit", "verify", "--state-dir", state); !strings.Contains(out, "chain intact") {
		t.Errorf("audit verify: %s", out)
	}

	// Stopped first for the same reason: a binary still running when
	// RemoveFiles comes is left for the next reboot.
	if out := run(t, exe, "service", "stop"); !strings.Contains(out, "mamori: stopped") {
		t.Fatalf("service stop before the uninstall: %s", out)
	}
	msiexec(t, "/x", newMSI)
	if _, err := os.Stat(exe); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after the uninstall: %v", exe, err)
	}
	if b, _ := os.ReadFile(conf); !bytes.Equal(b, edited) {
		t.Errorf("the uninstall did not leave the edited config: %q", b)
	}
	// The service is removed; the audit log stays, ending with the
	// agent's stop.
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs := records(t, state)
		stopped := len(recs) > 0 && recs[len(recs)-1].Type == "agent_stopped"
		s, err := m.OpenService("mamori")
		if err == nil {
			s.Close()
		}
		if stopped && err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the uninstall: service still there %v; the audit log has %d records, the last %+v (want it kept, ending with agent_stopped)",
				err == nil, len(recs), last(recs))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// msiexec runs msiexec quietly with a log, and fails the test on a
// non-zero exit, showing the log's errors.
func msiexec(t *testing.T, action, msi string) {
	t.Helper()
	log := filepath.Join(wintest.TempDir(t), "msiexec.log")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "msiexec", action, msi, "/qn", "/l*v", log)
	out, err := cmd.CombinedOutput()
	t.Logf("msiexec %s %s: %s", action, filepath.Base(msi), time.Since(start).Round(time.Millisecond))
	if err != nil {
		b, _ := os.ReadFile(log)
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "Return value 0") || strings.Contains(l, "rror") {
				lines = append(lines, l)
			}
		}
		t.Fatalf("msiexec %s %s: %v\n%s\n%s", action, msi, err, out, strings.Join(lines, "\n"))
	}
}

// checkService checks that the service mamori runs exe on conf, as
// LocalSystem, started automatically.
func checkService(t *testing.T, exe, conf string) {
	t.Helper()
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	s, err := m.OpenService("mamori")
	if err != nil {
		t.Fatalf("the service mamori: %v", err)
	}
	defer s.Close()
	var need uint32
	b := make([]byte, 8192)
	c := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&b[0]))
	if err := windows.QueryServiceConfig(s.Handle, c, uint32(len(b)), &need); err != nil {
		t.Fatalf("QueryServiceConfig: %v", err)
	}
	cmd, account := windows.UTF16PtrToString(c.BinaryPathName), windows.UTF16PtrToString(c.ServiceStartName)
	want := fmt.Sprintf(`service run --name mamori --config "%s"`, conf)
	if !strings.Contains(strings.ToLower(cmd), strings.ToLower(exe)) || !strings.Contains(cmd, want) ||
		c.StartType != windows.SERVICE_AUTO_START || account != "LocalSystem" {
		t.Errorf("service: command line %q (want %s ... %s), start type %d, account %q", cmd, exe, want, c.StartType, account)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := s.Query()
		if err == nil && st.State == svc.Running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service does not run: %+v, %v", st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// record is what the test reads of an audit record.
type record struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func records(t *testing.T, state string) []record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "audit.jsonl"))
	if err != nil {
		return nil
	}
	var out []record
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r record
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

func last(recs []record) *record {
	if len(recs) == 0 {
		return nil
	}
	return &recs[len(recs)-1]
}

// waitStarted waits for the agent of version ver to record its start in
// state.
func waitStarted(t *testing.T, state, ver string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, r := range records(t, state) {
			if r.Type == "agent_started" && strings.HasPrefix(r.Message, "mamori "+ver+" started") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agent_started of mamori %s in %s: %+v", ver, state, records(t, state))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// run runs the installed mamori.exe and returns what it printed.
func run(t *testing.T, exe string, args ...string) string {
	t.Helper()
	out, err := exec.Command(exe, args...).CombinedOutput()
	if err != nil {
		t.Errorf("%s %s: %v\n%s", exe, strings.Join(args, " "), err, out)
	}
	return string(out)
}
