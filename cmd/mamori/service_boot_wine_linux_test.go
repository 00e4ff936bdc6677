package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestWineServiceAutoStart installs mamori.exe as the Windows service
// mamori in a throw-away Wine 8.0 prefix and starts that prefix's Wine
// three times as a boot would (a new wineserver, `wine cmd /c ver`: Wine's
// services.exe starts the automatic service), stopping the service
// cleanly (service stop) and Wine after each. Every boot must record
// agent_started and agent_stopped and no audit_damaged: the service's
// start at boot is a start like any other.
//
// It guards against a false dir_replaced (then file_replaced) at every
// automatic start: early in a Wine boot the volume serial number of C:
// reads 0 (GetFileInformationByHandle; Wine's mount manager does not
// answer yet) and the real one a moment later, so an identity of the state
// folder or audit.jsonl kept from the log's opening differed from the one
// read at the next check although the folder never changed (same file
// index). `mamori service start` on a Wine already running, or
// `mamori run`, never showed it: the serial is known by then.
//
// The prefix is made by scripts/wine/test.sh (the ProcessPrng shim Go
// binaries need under Wine 8.0) and kept for this test, which removes it.
// It takes about a minute and a half, so it runs only with
// MAMORI_WINE_BOOT=1:
//
//	MAMORI_WINE_BOOT=1 go test -count=1 -run TestWineServiceAutoStart -v ./cmd/mamori/
func TestWineServiceAutoStart(t *testing.T) {
	if os.Getenv("MAMORI_WINE_BOOT") != "1" {
		t.Skip("set MAMORI_WINE_BOOT=1 to boot a throw-away Wine prefix with the service installed (Wine 8.0 and mingw: scripts/test-deps.sh)")
	}
	for _, tool := range []string{"wine", "wineserver", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("MAMORI_WINE_BOOT=1 but %s is not installed (scripts/test-deps.sh): %v", tool, err)
		}
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	w := newWinePrefix(t, repo)

	progDir := filepath.Join(w.prefix, "drive_c", "Program Files", "mamori")
	if err := os.MkdirAll(progDir, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(progDir, "mamori.exe"), "./cmd/mamori")
	build.Dir = repo
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build mamori.exe: %v\n%s", err, out)
	}
	// rescan_interval 2s: the state folder is checked every 2 s, not
	// only at the first scan.
	cfg := `version: 1
agent:
  asset_id: PC-WINE-BOOT
  state_dir: 'C:\ProgramData\mamori'
  language: en
  rescan_interval: 2s
  contact: "IT desk, extension 1234"
metrics:
  listen: ""
approved:
  usb:
    - name: Hubs
      classes: [hub]
`
	if err := os.WriteFile(filepath.Join(progDir, "mamori.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	const exe, conf = `C:\Program Files\mamori\mamori.exe`, `C:\Program Files\mamori\mamori.yaml`
	state := filepath.Join(w.prefix, "drive_c", "ProgramData", "mamori")

	w.start(t, "install")
	if code, out := w.run(t, "install", exe, "service", "install", "--config", conf); code != 0 {
		t.Fatalf("mamori.exe service install: exit %d\n%s", code, out)
	}
	w.stop(t)
	if recs := readBootAudit(t, state); len(recs) != 0 {
		t.Fatalf("service install started the agent: %+v", recs)
	}

	const boots = 3
	for boot := 1; boot <= boots; boot++ {
		name := fmt.Sprintf("boot%d", boot)
		w.start(t, name)
		// The service is RUNNING once the agent's first scan is done
		// (Program.Ready): then two more rescans check the folder.
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, out := w.run(t, name+"-status", exe, "service", "status")
			if code == 0 && strings.Contains(out, "mamori: running") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the service is not running 60 s after Wine started: exit %d\n%s\nWine's output:\n%s", name, code, out, w.output(t, name))
			}
			time.Sleep(500 * time.Millisecond)
		}
		time.Sleep(5 * time.Second)
		if code, out := w.run(t, name+"-stop", exe, "service", "stop"); code != 0 {
			t.Errorf("%s: service stop: exit %d\n%s", name, code, out)
		}
		w.stop(t)
		started, stopped := 0, 0
		for _, r := range readBootAudit(t, state) {
			switch r.Type {
			case "agent_started":
				started++
			case "agent_stopped":
				stopped++
			case "audit_damaged":
				t.Errorf("%s: seq %d audit_damaged: %s", name, r.Seq, r.Message)
			}
		}
		if started != boot || stopped != boot {
			t.Errorf("after %s: %d agent_started and %d agent_stopped, want %d of each", name, started, stopped, boot)
		}
		// The agent's log lines (the Event Log, traced by WINEDEBUG).
		if lines := grepLines(w.output(t, name), "audit log damaged", "cannot lock"); lines != "" {
			t.Errorf("%s: the agent logged damage to its own log:\n%s", name, lines)
		}
		if t.Failed() {
			t.Fatalf("%s failed; the audit log:\n%s", name, dumpBootAudit(t, state))
		}
	}
}

// winePrefix is a throw-away Wine prefix and the output of the Wine
// started in it.
type winePrefix struct {
	prefix string
	env    []string
	logs   string // directory of the output files, one per step
}

// keptPrefix is the line scripts/wine/test.sh prints with MAMORI_WINE_KEEP.
var keptPrefix = regexp.MustCompile(`(?m)^wine-test: kept the run's prefix: (.+)$`)

// newWinePrefix has scripts/wine/test.sh make a prefix (a copy of its
// template, with the ProcessPrng shim), run no test in it and keep it;
// the prefix is removed when t ends, its wineserver killed first.
func newWinePrefix(t *testing.T, repo string) *winePrefix {
	t.Helper()
	cmd := exec.Command(filepath.Join(repo, "scripts", "wine", "test.sh"), "-count=1", "-run", "^$", "./internal/wintest/")
	cmd.Dir = repo
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "MAMORI_WINE_QUIET=") && !strings.HasPrefix(e, "WINEPREFIX=") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, "MAMORI_WINE_KEEP=1", "MAMORI_WINE_NO_OVERLAY=1")
	out, err := cmd.CombinedOutput()
	m := keptPrefix.FindSubmatch(out)
	if m == nil {
		t.Fatalf("scripts/wine/test.sh kept no prefix (%v):\n%s", err, out)
	}
	prefix := string(m[1])
	run := filepath.Dir(prefix)
	if filepath.Base(prefix) != "prefix" || !strings.HasPrefix(filepath.Base(run), "run.") {
		t.Fatalf("scripts/wine/test.sh kept %s, not CACHE/run.*/prefix", prefix)
	}
	if err != nil {
		os.RemoveAll(run)
		t.Fatalf("scripts/wine/test.sh: %v\n%s", err, out)
	}
	w := &winePrefix{prefix: prefix, logs: t.TempDir(),
		env: append(env, "WINEPREFIX="+prefix, "WINEARCH=win64", "WINEDEBUG=-all,+eventlog",
			"WINEDLLOVERRIDES=mscoree,mshtml=;winemenubuilder.exe=d")}
	t.Cleanup(func() {
		w.stop(t)
		if err := os.RemoveAll(run); err != nil {
			t.Errorf("remove the throw-away prefix: %v", err)
		}
	})
	return w
}

// start starts Wine in the prefix as a boot does: a wineserver that stays
// (-p, so that it does not end with the first program) and
// `wine cmd /c ver`, whose wineboot starts services.exe and with it the
// automatic services. Wine's helpers and the services keep the first
// program's stdout and stderr: they go to the file of step name, never to
// a pipe the test would wait on.
func (w *winePrefix) start(t *testing.T, name string) {
	t.Helper()
	// No pipe: the wineserver it forks would hold it open.
	if err := w.command(context.Background(), "wineserver", "-p").Run(); err != nil {
		t.Fatalf("wineserver -p: %v", err)
	}
	if code, out := w.run(t, name, "cmd", "/c", "ver"); code != 0 {
		t.Fatalf("%s: wine cmd /c ver: exit %d\n%s", name, code, out)
	}
}

// stop ends every process of the prefix (wineserver -k) and waits for its
// wineserver to end: the prefix's own processes only.
func (w *winePrefix) stop(t *testing.T) {
	t.Helper()
	w.command(context.Background(), "wineserver", "-k").Run()
	if err := w.command(context.Background(), "wineserver", "-w").Run(); err != nil {
		t.Errorf("wineserver -w: %v", err)
	}
}

func (w *winePrefix) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = w.env
	return cmd
}

// run runs `wine args...` (at most 2 minutes) with its output in the file
// of step name, and returns its exit code and what that file holds.
func (w *winePrefix) run(t *testing.T, name string, args ...string) (int, string) {
	t.Helper()
	f, err := os.Create(filepath.Join(w.logs, name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := w.command(ctx, "wine", args...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			t.Fatalf("wine %s: %v", strings.Join(args, " "), err)
		}
	}
	return code, w.output(t, name)
}

// output is what the file of step name holds so far (Wine's helpers and
// the services started then write there until wineserver -k).
func (w *winePrefix) output(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.logs, name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// bootRecord is what TestWineServiceAutoStart reads of a record.
type bootRecord struct {
	Seq     int64  `json:"seq"`
	Type    string `json:"type"`
	Message string `json:"message"`
}

// readBootAudit reads the records of audit.jsonl in the state folder
// (none when there is no log yet); a line that is no record fails t.
func readBootAudit(t *testing.T, state string) []bootRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "audit.jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []bootRecord
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r bootRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit.jsonl: a line that is no record (%v): %s", err, sc.Bytes())
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// dumpBootAudit is the audit log, one record a line, for a failure.
func dumpBootAudit(t *testing.T, state string) string {
	var b strings.Builder
	for _, r := range readBootAudit(t, state) {
		fmt.Fprintf(&b, "%d %s %.200s\n", r.Seq, r.Type, r.Message)
	}
	return b.String()
}

// grepLines is the lines of s that contain one of subs.
func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
