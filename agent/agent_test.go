package agent

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/collector/uevent"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/sysfstest"
)

// Recordings of real devices (see collector/usb/testdata/README.md for
// their origins and licences).
const rec = "../collector/usb/testdata/"

var (
	kbd    = rec + "umockdev/usbkbd.umockdev"                // 05f3:0007 behind hubs, no serial
	camera = rec + "umockdev/canon-powershot-sx200.umockdev" // 04a9:31c0 still-image, serial
	phone  = rec + "umockdev/sony-xperia-mini-pro.umockdev"  // 0fce:0166 MTP, no interface dirs
	fido   = rec + "umockdev/fido2.umockdev"                 // 1050:0120 hid behind a hub
	reader = rec + "fwupd/algoltek-au84612-setup.json"       // 058f:8468 card reader with sda1
	finger = rec + "libfprint/egis0570.device.umockdev"      // 1c7a:0570 vendor class
)

const testConfig = `version: 1
agent:
  asset_id: PC-TEST
  language: en
  rescan_interval: 1h
metrics:
  listen: ""
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
      owner: 作業責任者
      approved_by: 情報政策課
      valid_from: 2026-04-01
      valid_until: 2027-03-31
    - name: Old fingerprint reader
      vendor_id: "1c7a"
      product_id: "0570"
      valid_until: 2025-03-31
`

// testEnv is a fixture system: a sysfs tree, a procfs with a boot id and a
// mountinfo, and a state directory.
type testEnv struct {
	t      testing.TB
	dev    string // device nodes: regular files holding media images
	sysfs  string
	procfs string
	state  string
	cfg    *config.Config
}

func newEnv(t *testing.T, cfgText string, recordings ...string) *testEnv {
	return newEnvTB(t, cfgText, recordings...)
}

// newEnvB is newEnv for benchmarks, with the test config and no log.
func newEnvB(b *testing.B, recordings ...string) *testEnv {
	return newEnvTB(b, testConfig, recordings...)
}

func newEnvTB(t testing.TB, cfgText string, recordings ...string) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{t: t, sysfs: filepath.Join(dir, "sys"), procfs: filepath.Join(dir, "proc"), state: filepath.Join(dir, "state"), dev: filepath.Join(dir, "dev")}
	os.MkdirAll(e.dev, 0o755)
	os.MkdirAll(e.sysfs, 0o755)
	sysfstest.Build(t, e.sysfs, recordings...)
	e.setBootID("3f8c1f0e-8a3c-4e35-9d2b-6a0c8e2b1a01")
	os.MkdirAll(filepath.Join(e.procfs, "self"), 0o755)
	os.WriteFile(filepath.Join(e.procfs, "self/mountinfo"), []byte("22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"), 0o644)
	// The config refuses rescan intervals under 1s; tests that want fast
	// rescans say 20ms and get it set behind the parser's back.
	fast := strings.Contains(cfgText, "rescan_interval: 20ms")
	cfg, err := config.Parse("test.yaml", []byte(strings.Replace(cfgText, "rescan_interval: 20ms", "rescan_interval: 1s", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if fast {
		cfg.Agent.RescanInterval = 20 * time.Millisecond
	}
	cfg.Agent.StateDir = e.state
	// No local socket at the default path (/run/mamori) from tests; the
	// desktop tests set one of their own.
	cfg.Agent.LocalSocket = ""
	e.cfg = cfg
	return e
}

func (e *testEnv) setBootID(id string) {
	p := filepath.Join(e.procfs, "sys/kernel/random")
	os.MkdirAll(p, 0o755)
	os.WriteFile(filepath.Join(p, "boot_id"), []byte(id+"\n"), 0o644)
}

func (e *testEnv) roots() Roots {
	return Roots{Sysfs: e.sysfs, Procfs: e.procfs, Dev: e.dev}
}

// running is an agent started in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
	agent  *Agent
}

func (e *testEnv) start(opts Options) *running {
	e.t.Helper()
	opts.Config = e.cfg
	opts.Roots = e.roots()
	opts.NoMountWatch = true
	if opts.Logger == nil {
		if _, bench := e.t.(*testing.B); bench {
			opts.Logger = slog.New(slog.DiscardHandler)
		} else {
			opts.Logger = slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	if opts.Uevents == nil {
		opts.NoUevents = true
	}
	if opts.Network == nil {
		// The host's own network is not part of these tests.
		opts.NoNetwork = true
	}
	if opts.Desktop.RunUserDir == "" {
		// Nor are the host's desktop sessions: no notifier is started
		// in a session of someone using this machine.
		opts.Desktop.RunUserDir = filepath.Join(e.t.TempDir(), "no-run-user")
		if opts.Desktop.Utmp == "" {
			opts.Desktop.Utmp = "-"
		}
	}
	ready := make(chan struct{})
	opts.Ready = func(string) { close(ready) }
	a, err := New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), agent: a}
	go func() { r.done <- a.Run(ctx) }()
	select {
	case <-ready:
	case err := <-r.done:
		e.t.Fatalf("agent ended before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		e.t.Fatal("agent not ready after 10s")
	}
	return r
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop")
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// record is the part of an audit record the tests look at.
type record struct {
	Seq          uint64     `json:"seq"`
	Type         string     `json:"type"`
	Trigger      string     `json:"trigger"`
	Count        int        `json:"count"`
	Kind         string     `json:"kind"`
	Path         string     `json:"path"`
	VendorID     string     `json:"vendor_id"`
	Serial       *string    `json:"serial"`
	AssetID      string     `json:"asset_id"`
	UeventSeqnum uint64     `json:"uevent_seqnum"`
	UeventTime   *time.Time `json:"uevent_time"`
	Violation    *Violation `json:"violation"`
	Message      string     `json:"message"`
}

func (e *testEnv) records() []record {
	e.t.Helper()
	return readAuditLog[record](e.t, e.state)
}

// waitFor polls the audit log until cond holds for its records.
func (e *testEnv) waitFor(what string, cond func([]record) bool) []record {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := e.records()
		if cond(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; audit log has:\n%s", what, dump(recs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dump(recs []record) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.Type + " " + r.Trigger + " " + r.Path + " " + r.Kind + "\n")
	}
	return b.String()
}

func count(recs []record, typ, path, kind string) int {
	n := 0
	for _, r := range recs {
		if r.Type == typ && (path == "" || r.Path == path) && (kind == "" || r.Kind == kind) {
			n++
		}
	}
	return n
}

func TestRunStartDecidesEachDevice(t *testing.T) {
	e := newEnv(t, testConfig, kbd, camera, phone, fido, reader, finger)
	r := e.start(Options{})
	r.stop(t)
	recs := e.records()
	for _, tc := range []struct {
		path, kind string
	}{
		{"1-1.5.4.2", ""},                   // keyboard: approved by class hid
		{"1-2.3", ""},                       // FIDO key: hid only
		{"1-1.5.2.3", ""},                   // camera: approved by serial
		{"1-1.5.2.4", KindDeviceUnapproved}, // phone, interfaces from descriptors
		{"8-1.4", KindStorageUnapproved},    // card reader
		{"1-9", KindApprovalExpired},        // fingerprint reader, approval ended
		{"1-1", ""},                         // hub
		{"usb1", ""},                        // root hub
	} {
		if count(recs, TypeDeviceAdded, tc.path, "") != 1 {
			t.Errorf("%s: want one device_added, log:\n%s", tc.path, dump(recs))
		}
		n := count(recs, TypeViolation, tc.path, "")
		if tc.kind == "" && n != 0 || tc.kind != "" && (n != 1 || count(recs, TypeViolation, tc.path, tc.kind) != 1) {
			t.Errorf("%s: want violation %q, log:\n%s", tc.path, tc.kind, dump(recs))
		}
	}
	if recs[0].Type != TypeAgentStarted || recs[len(recs)-1].Type != TypeAgentStopped {
		t.Errorf("log must start with agent_started and end with agent_stopped:\n%s", dump(recs))
	}
	for _, r := range recs {
		if r.AssetID != "PC-TEST" {
			t.Errorf("record %d without asset id", r.Seq)
		}
		if r.Type == TypeViolation && (r.Violation == nil || r.Violation.MessageJA == "" || r.Violation.MessageEN == "" || r.Violation.RemedyJA == "") {
			t.Errorf("violation %d without bilingual message: %+v", r.Seq, r.Violation)
		}
	}
	rep, err := audit.Verify(e.state)
	if err != nil || rep.Problem != nil {
		t.Fatalf("audit log does not verify: %v %+v", err, rep.Problem)
	}
}

func TestRunRescanSeesPlugAndUnplug(t *testing.T) {
	e := newEnv(t, testConfig, kbd)
	e.cfg.Agent.RescanInterval = 20 * time.Millisecond
	r := e.start(Options{})
	defer r.stop(t)
	e.waitFor("keyboard", func(rs []record) bool { return count(rs, TypeDeviceAdded, "1-1.5.4.2", "") == 1 })

	sysfstest.Build(t, e.sysfs, reader)
	e.waitFor("card reader violation", func(rs []record) bool {
		return count(rs, TypeViolation, "8-1.4", KindStorageUnapproved) == 1
	})
	// Several more rescans must not record it again.
	time.Sleep(100 * time.Millisecond)
	if recs := e.records(); count(recs, TypeViolation, "8-1.4", "") != 1 {
		t.Fatalf("violation recorded more than once per appearance:\n%s", dump(recs))
	}
	if err := sysfstest.Remove(e.sysfs, "8-1.4"); err != nil {
		t.Fatal(err)
	}
	e.waitFor("card reader removal", func(rs []record) bool { return count(rs, TypeDeviceRemoved, "8-1.4", "") == 1 })

	// Plugged again: a new appearance, a new violation.
	sysfstest.Build(t, e.sysfs, reader)
	e.waitFor("second violation", func(rs []record) bool {
		return count(rs, TypeViolation, "8-1.4", KindStorageUnapproved) == 2
	})
}

func TestRestartKeepsAppearancesRebootDoesNot(t *testing.T) {
	e := newEnv(t, testConfig, reader, kbd)
	e.start(Options{}).stop(t)
	first := e.records()
	if count(first, TypeViolation, "8-1.4", "") != 1 {
		t.Fatalf("first run: want one violation:\n%s", dump(first))
	}
	// Restart, same boot: no new appearance, no new violation.
	e.start(Options{}).stop(t)
	second := e.records()[len(first):]
	if n := count(second, TypeDeviceAdded, "", "") + count(second, TypeViolation, "", ""); n != 0 {
		t.Fatalf("restart recorded %d device events again:\n%s", n, dump(second))
	}
	// The reader leaves while the agent is down: recorded at start.
	sysfstest.Remove(e.sysfs, "8-1.4")
	e.start(Options{}).stop(t)
	third := e.records()[len(first)+len(second):]
	if count(third, TypeDeviceRemoved, "8-1.4", "") != 1 {
		t.Fatalf("removal while down not recorded:\n%s", dump(third))
	}
	// A reboot: everything attached is a new appearance.
	sysfstest.Build(t, e.sysfs, reader)
	e.setBootID("11111111-2222-3333-4444-555555555555")
	e.start(Options{}).stop(t)
	all := e.records()
	fourth := all[len(first)+len(second)+len(third):]
	if count(fourth, TypeViolation, "8-1.4", KindStorageUnapproved) != 1 || count(fourth, TypeDeviceAdded, "1-1.5.4.2", "") != 1 {
		t.Fatalf("after reboot the devices must be new appearances:\n%s", dump(fourth))
	}
	if rep, err := audit.Verify(e.state); err != nil || rep.Problem != nil {
		t.Fatalf("audit log across restarts: %v %+v", err, rep.Problem)
	}
}

func TestWarnerGetsViolations(t *testing.T) {
	e := newEnv(t, testConfig, reader)
	var mu sync.Mutex
	var buf bytes.Buffer
	w := &ConsoleWarner{W: lockedWriter{&mu, &buf}}
	e.start(Options{Warner: w}).stop(t)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{"usb_storage_unapproved", "許可されていない USB 記憶媒体", "Unapproved USB storage", "第6条", "permission", "8-1.4"} {
		if !strings.Contains(strings.ToLower(out), strings.ToLower(want)) {
			t.Errorf("warning lacks %q:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// scriptedSource is a uevent.Source that returns scripted results, for the
// overrun path that a socket pair cannot produce (the real ENOBUFS is
// tested in package uevent).
type scriptedSource struct {
	results chan error
	closed  chan struct{}
	once    sync.Once
}

func (s *scriptedSource) Receive() (uevent.Event, error) {
	select {
	case err := <-s.results:
		return uevent.Event{}, err
	case <-s.closed:
		return uevent.Event{}, uevent.ErrClosed
	}
}

func (s *scriptedSource) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func TestOverrunTriggersCountedRescan(t *testing.T) {
	e := newEnv(t, testConfig, kbd)
	src := &scriptedSource{results: make(chan error), closed: make(chan struct{})}
	r := e.start(Options{Uevents: src})
	defer r.stop(t)
	// A device arrives while the kernel's events about it are lost.
	sysfstest.Build(t, e.sysfs, reader)
	src.results <- uevent.ErrOverrun
	e.waitFor("violation found by the overrun's rescan", func(rs []record) bool {
		return count(rs, TypeViolation, "8-1.4", KindStorageUnapproved) == 1
	})
	m := r.agent.Metrics()
	if got := testutil.ToFloat64(m.overruns); got != 1 {
		t.Errorf("mamori_uevent_overruns_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.rescans); got != 2 {
		t.Errorf("mamori_rescans_total = %v, want 2 (start and overrun)", got)
	}
}

func testutilRescans(r *running) float64 { return testutil.ToFloat64(r.agent.Metrics().rescans) }

// TestAuditDamageIsRecorded: an edit of the last record while the agent
// was down is caught at start and recorded in the log itself.
func TestAuditDamageIsRecorded(t *testing.T) {
	e := newEnv(t, testConfig, kbd)
	e.start(Options{}).stop(t)
	p := filepath.Join(e.state, "audit.jsonl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`"mamori stopped"`), []byte(`"mamori stoppex"`), 1)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.start(Options{}).stop(t)
	if n := count(e.records(), TypeAuditDamaged, "", ""); n == 0 {
		t.Fatalf("no audit_damaged record after an edit:\n%s", dump(e.records()))
	}
}
