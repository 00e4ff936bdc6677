package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/sysfstest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// binary is the mamori binary built once for the tests that run it.
var binary string

func TestMain(m *testing.M) {
	if asMamori() {
		// This test binary, copied as mamori.exe where there is no Go
		// toolchain (Wine: see selfBinary), run as mamori.
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	flag.Parse()
	dir, err := os.MkdirTemp("", "mamori-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binary = filepath.Join(dir, "mamori")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	// Under Wine there is no Go toolchain: a copy of this test binary
	// is mamori (wine_windows_test.go).
	if !selfBinary(binary) {
		cmd := exec.Command("go", "build", "-o", binary, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build mamori: %v\n%s", err, out)
			os.Exit(2)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Recordings of real devices; origins and licences in
// collector/usb/testdata/README.md.
const rec = "../../collector/usb/testdata/"

var recordings = []string{
	rec + "umockdev/usbkbd.umockdev",
	rec + "umockdev/canon-powershot-sx200.umockdev",
	rec + "umockdev/sony-xperia-mini-pro.umockdev",
	rec + "umockdev/fido2.umockdev",
	rec + "fwupd/algoltek-au84612-setup.json",
	rec + "libfprint/egis0570.device.umockdev",
}

const fixtureConfig = `version: 1
agent:
  asset_id: PC-GOLDEN
  language: en
  rescan_interval: 1h
metrics:
  listen: "127.0.0.1:0"
approved:
  usb:
    - name: Hubs
      classes: [hub]
    - name: Keyboards
      classes: [hid]
    - name: Camera of the work lead
      vendor_id: "04a9"
      product_id: "31c0"
      serial: "C767F1C714174C309255F70E4A7B2EE2"
      valid_from: 2026-04-01
      valid_until: 2099-03-31
    - name: Old fingerprint reader
      vendor_id: "1c7a"
      product_id: "0570"
      valid_until: 2025-03-31
`

type fixture struct {
	sysfs, procfs, dev, state, config string
	// run is an empty run-time directory (--rundir): the agents these
	// tests run find no desktop session of this machine's users.
	run string
}

// newFixture builds a whole system under a temporary directory: sysfs from
// the recordings, a procfs with a boot id and a mountinfo where the card
// reader's partition is mounted, and a dev directory whose sda1 is a real
// FAT file system made by mkfs.vfat.
func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{sysfs: filepath.Join(dir, "sys"), procfs: filepath.Join(dir, "proc"), dev: filepath.Join(dir, "dev"),
		state: filepath.Join(dir, "state"), config: filepath.Join(dir, "mamori.yaml"), run: filepath.Join(dir, "run")}
	must(t, os.MkdirAll(f.run, 0o755))
	sysfstest.Build(t, f.sysfs, recordings...)
	must(t, os.MkdirAll(filepath.Join(f.procfs, "self"), 0o755))
	must(t, os.MkdirAll(filepath.Join(f.procfs, "sys/kernel/random"), 0o755))
	must(t, os.WriteFile(filepath.Join(f.procfs, "sys/kernel/random/boot_id"), []byte("0e6b8bd4-5a4a-4b0e-8f43-97c0b5d7e0a1\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(f.procfs, "self/mountinfo"), []byte(
		"22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"+
			"95 22 8:1 / /media/user/CARD\\040READER rw,nosuid,nodev,relatime shared:50 - vfat /dev/sda1 rw,fmask=0022\n"), 0o644))
	must(t, os.MkdirAll(f.dev, 0o755))
	img := filepath.Join(f.dev, "sda1")
	mkfs, err := exec.LookPath("mkfs.vfat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mkfs.vfat missing (dosfstools); scripts/test-deps.sh installs it")
		}
		t.Skip("mkfs.vfat not installed")
	}
	must(t, os.WriteFile(img, make([]byte, 4<<20), 0o644))
	if out, err := exec.Command(mkfs, "-n", "CARD", "-i", "1234ABCD", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	must(t, os.WriteFile(f.config, []byte(fixtureConfig), 0o644))
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f fixture) args(cmd ...string) []string {
	args := append(cmd, "--config", f.config, "--sysfs", f.sysfs, "--procfs", f.procfs, "--devfs", f.dev)
	if len(cmd) > 0 && cmd[0] == "run" {
		args = append(args, "--rundir", f.run)
	}
	return args
}

func runBinary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := isolate(exec.Command(binary, args...))
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		must(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, got)
	}
}

var timeRe = regexp.MustCompile(`"time": "[^"]+"`)

func TestScanJSONGolden(t *testing.T) {
	f := newFixture(t)
	out, stderr, code := runBinary(t, f.args("scan", "--format", "json")...)
	if code != 1 {
		t.Fatalf("scan exit %d, want 1 (violations); stderr:\n%s", code, stderr)
	}
	var rep struct {
		Devices    []map[string]any `json:"usb_devices"`
		Volumes    []map[string]any `json:"volumes"`
		Violations []map[string]any `json:"violations"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("scan output is not JSON: %v", err)
	}
	if len(rep.Devices) != 12 || len(rep.Volumes) != 1 || len(rep.Violations) != 3 {
		t.Errorf("got %d devices, %d volumes, %d violations; want 12, 1, 3", len(rep.Devices), len(rep.Volumes), len(rep.Violations))
	}
	golden(t, "scan.json", timeRe.ReplaceAll([]byte(out), []byte(`"time": "TIME"`)))
}

func TestScanTable(t *testing.T) {
	f := newFixture(t)
	out, _, code := runBinary(t, f.args("scan")...)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"8-1.4", "058f:8468", "usb_storage_unapproved", "usb_approval_expired", "/media/user/CARD READER"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestScanExitCodes(t *testing.T) {
	f := newFixture(t)
	// A sysfs without a USB bus: nothing attached, exit 0, and it says so.
	empty := t.TempDir()
	for _, d := range []string{"devices", "class", "bus/pci"} {
		must(t, os.MkdirAll(filepath.Join(empty, d), 0o755))
	}
	if out, stderr, code := runBinary(t, "scan", "--config", f.config, "--sysfs", empty, "--procfs", f.procfs); code != 0 || !strings.Contains(out, "no USB bus") {
		t.Errorf("sysfs without USB: exit %d, want 0 and a note; stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if out, _, _ := runBinary(t, "scan", "--format", "json", "--config", f.config, "--sysfs", empty, "--procfs", f.procfs); !strings.Contains(out, `"usb_bus": false`) {
		t.Errorf("JSON lacks usb_bus false:\n%s", out)
	}
	// Could not see is never all clear.
	if _, stderr, code := runBinary(t, "scan", "--config", f.config, "--sysfs", "/etc", "--procfs", f.procfs); code != 2 || !strings.Contains(stderr, "sysfs") {
		t.Errorf("--sysfs /etc: exit %d, want 2 naming the sysfs; stderr:\n%s", code, stderr)
	}
	if _, stderr, code := runBinary(t, "scan", "--config", f.config, "--sysfs", f.sysfs, "--procfs", filepath.Join(empty, "nonexistent")); code != 2 || !strings.Contains(stderr, "procfs") {
		t.Errorf("--procfs nonexistent: exit %d, want 2 naming the procfs; stderr:\n%s", code, stderr)
	}
	if _, _, code := runBinary(t, "scan", "--config", f.config, "--sysfs", filepath.Join(empty, "no-such-root")); code != 2 {
		t.Errorf("missing sysfs root: exit %d, want 2", code)
	}
	if _, _, code := runBinary(t, "scan", "--config", filepath.Join(empty, "nope.yaml")); code != 2 {
		t.Errorf("missing config: exit %d, want 2", code)
	}
	if _, _, code := runBinary(t, "scan", "--format", "xml"); code != 2 {
		t.Errorf("bad format: exit %d, want 2", code)
	}
	if _, _, code := runBinary(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

func TestConfigCheck(t *testing.T) {
	if out, stderr, code := runBinary(t, "config", "check", "--config", "../../packaging/mamori.yaml"); code != 0 {
		t.Fatalf("packaging/mamori.yaml: exit %d\n%s%s", code, out, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	must(t, os.WriteFile(bad, []byte("version: 1\nagent:\n  asset_id: PC-1\n  colour: blue\napproved:\n  usb:\n    - name: x\n      vendor_id: \"12345\"\n"), 0o644))
	_, stderr, code := runBinary(t, "config", "check", "--config", bad)
	if code != 2 {
		t.Fatalf("bad config: exit %d, want 2", code)
	}
	for _, want := range []string{bad + ":4:3:", bad + ":8:18:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error output lacks %q:\n%s", want, stderr)
		}
	}
}

func TestPolicySuggestRoundTrip(t *testing.T) {
	f := newFixture(t)
	// By default only what is not approved yet: the reader (unapproved),
	// the fingerprint reader (expired) and the phone.
	unapproved, _, code := runBinary(t, "policy", "suggest", "--sysfs", f.sysfs, "--config", f.config)
	if code != 0 || strings.Contains(unapproved, "04a9") || !strings.Contains(unapproved, "058f") {
		t.Errorf("default suggestion must leave out approved devices (the camera) and hold the reader:\n%s", unapproved)
	}
	entries, _, _ := runBinary(t, "policy", "suggest", "--entries-only", "--sysfs", f.sysfs, "--config", f.config)
	merged := "version: 1\napproved:\n  usb:\n    - name: existing\n      classes: [hub]\n" + strings.ReplaceAll(strings.ReplaceAll(entries, `owner: ""`, `owner: x`), `approved_by: ""`, `approved_by: y`)
	if _, err := config.Parse("merged.yaml", []byte(merged)); err != nil {
		t.Errorf("--entries-only output does not merge under an existing list: %v\n%s", err, merged)
	}
	out, stderr, code := runBinary(t, "policy", "suggest", "--all", "--sysfs", f.sysfs, "--config", f.config)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// As it comes, it is not yet a valid list: IT must say who is
	// responsible and who approved each entry.
	if _, err := config.Parse("suggested.yaml", []byte("version: 1\n"+out)); err == nil || !strings.Contains(err.Error(), "owner") {
		t.Errorf("an unreviewed suggestion must not load as a config: %v", err)
	}
	out = strings.ReplaceAll(out, `owner: ""`, `owner: 委託先作業責任者`)
	out = strings.ReplaceAll(out, `approved_by: ""`, `approved_by: 情報政策課`)
	cfg, err := config.Parse("suggested.yaml", []byte("version: 1\n"+out))
	if err != nil {
		t.Fatalf("suggestion is not a valid config: %v\n%s", err, out)
	}
	if n := len(cfg.Approved.USB); n != 11 {
		t.Errorf("%d suggested entries, want 11 (every device but the root hub):\n%s", n, out)
	}
	// With the suggestion as the approved list, nothing is a violation.
	approved := filepath.Join(t.TempDir(), "approved.yaml")
	must(t, os.WriteFile(approved, []byte("version: 1\n"+out), 0o644))
	if _, stderr, code := runBinary(t, "scan", "--config", approved, "--sysfs", f.sysfs, "--procfs", f.procfs, "--devfs", f.dev); code != 0 {
		t.Errorf("scan against the suggested list: exit %d; %s", code, stderr)
	}
}

// TestRunMetricsIdleAndStop runs the agent binary against the fixture,
// checks /metrics against a golden file and promtool, measures its memory
// and CPU while idle, then stops it with SIGTERM.
func TestRunMetricsIdleAndStop(t *testing.T) {
	f := newFixture(t)
	cmd := exec.Command(binary, append(f.args("run"), "--state-dir", f.state)...) // its metrics are read from here: not isolated
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	defer cmd.Process.Kill()

	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), "http://"); i >= 0 {
				urlc <- strings.TrimRight(strings.Fields(sc.Text()[i:])[0], ",")
			}
		}
		close(urlc)
	}()
	var url string
	select {
	case url = <-urlc:
	case <-time.After(15 * time.Second):
		t.Fatalf("no metrics URL printed; stderr:\n%s", stderr.String())
	}
	if url == "" {
		t.Fatalf("agent exited; stderr:\n%s", stderr.String())
	}
	body := get(t, url)
	golden(t, "metrics.txt", filterMetrics(body))

	if promtool, err := exec.LookPath("promtool"); err == nil {
		c := exec.Command(promtool, "check", "metrics")
		c.Stdin = bytes.NewReader(body)
		if out, err := c.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else if os.Getenv("CI") == "true" {
		t.Error("promtool missing in CI (scripts/test-deps.sh installs it)")
	}

	// Idle: no CPU between events, small memory.
	pid := cmd.Process.Pid
	time.Sleep(500 * time.Millisecond)
	cpu0 := cpuTicks(t, pid)
	time.Sleep(3 * time.Second)
	cpu1 := cpuTicks(t, pid)
	rss := rssKB(t, pid)
	t.Logf("idle: %d CPU ticks in 3s, RSS %d kB", cpu1-cpu0, rss)
	if cpu1-cpu0 > 1 {
		t.Errorf("agent used %d clock ticks of CPU in 3 s of idle; want none (busy polling?)", cpu1-cpu0)
	}
	if rss > 20*1024 {
		t.Errorf("idle RSS %d kB, want below 20 MB", rss)
	}

	must(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop on SIGTERM")
	}
	out, _, code := runBinary(t, "audit", "verify", "--state-dir", f.state)
	if code != 0 || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("audit verify: exit %d: %s", code, out)
	}
	log, err := os.ReadFile(filepath.Join(f.state, "audit.jsonl"))
	must(t, err)
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if !strings.Contains(lines[len(lines)-1], `"type":"agent_stopped"`) {
		t.Errorf("last record is not the stop event: %s", lines[len(lines)-1])
	}

	// An edit of the last record is caught.
	edited := bytes.Replace(log, []byte(`"type":"agent_stopped"`), []byte(`"type":"agent_stoppex"`), 1)
	must(t, os.WriteFile(filepath.Join(f.state, "audit.jsonl"), edited, 0o600))
	out, _, code = runBinary(t, "audit", "verify", "--state-dir", f.state)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("line %d", len(lines))) {
		t.Errorf("edited last record: exit %d, output %q", code, out)
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return b
}

// filterMetrics keeps mamori's own metrics, with the build labels that
// change from build to build blanked, and the counts of the host's real
// uevent socket (the machine's own kernel events while the test runs).
func filterMetrics(b []byte) []byte {
	var out bytes.Buffer
	buildLabels := regexp.MustCompile(`mamori_build_info\{.*\}`)
	hostEvents := regexp.MustCompile(`^(mamori_uevents_(total|dropped_total)(\{[^}]*\})?|mamori_audit_records_total) \d+$`)
	// The network the test machine is on is the host's: its counts are
	// not part of the golden file (the network tests assert on them).
	hostNetwork := regexp.MustCompile(`^(mamori_network_interfaces\{|mamori_events_total\{action="[a-z_]+",source="(network|lan)"\}|mamori_collect_errors_total\{collector="network"\}|mamori_lan_neighbors\{)`)
	netKinds := regexp.MustCompile(`^(mamori_violations_(total|open)\{kind="(network_[a-z_]+|lan_device_unregistered)"\}) \d+$`)
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if hostNetwork.MatchString(line) {
			continue
		}
		line = netKinds.ReplaceAllString(strings.TrimSuffix(line, "\n"), "$1 N") + "\n"
		if strings.Contains(line, "mamori_") {
			line = buildLabels.ReplaceAllString(line, `mamori_build_info{...}`)
			line = hostEvents.ReplaceAllString(strings.TrimSuffix(line, "\n"), "$1 N") + "\n"
			out.WriteString(line)
		}
	}
	return out.Bytes()
}

func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(t, err)
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.Atoi(fields[11])
	k, _ := strconv.Atoi(fields[12])
	return u + k
}

func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
