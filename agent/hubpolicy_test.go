package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mamori-agent/mamori/agent/report"
	"github.com/mamori-agent/mamori/hub/hubtest"
	"github.com/mamori-agent/mamori/policy"
	"github.com/mamori-agent/mamori/wire"
)

// fingerPath is the bus path of the fingerprint reader (finger): its
// local entry, "Old fingerprint reader", ended on 2025-03-31.
const fingerPath = "1-9"

// hubApprovesFinger is the hub's lists: the fingerprint reader approved
// under the name of the local entry it replaces, and a LAN device.
const hubApprovesFinger = `usb:
  - name: Old fingerprint reader
    vendor_id: "1c7a"
    product_id: "0570"
    approved_by: 情報政策課
    valid_until: 2099-12-31
lan_devices:
  - name: Printer
    mac: "00:11:22:33:44:55"
`

// policyPull is one GET of the policy seen by pullProxy.
type policyPull struct {
	ifNoneMatch string
	status      int
}

// pullProxy stands between the agent and the hub and notes every policy
// pull: what the agent sent as If-None-Match, what the hub answered.
type pullProxy struct {
	mu    sync.Mutex
	pulls []policyPull
	srv   *httptest.Server
}

func newPullProxy(t *testing.T, hubURL string) *pullProxy {
	u, err := url.Parse(hubURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &pullProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodGet && resp.Request.URL.Path == wire.PathPolicy {
			p.mu.Lock()
			p.pulls = append(p.pulls, policyPull{resp.Request.Header.Get("If-None-Match"), resp.StatusCode})
			p.mu.Unlock()
		}
		return nil
	}
	p.srv = httptest.NewServer(rp)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *pullProxy) seen() []policyPull {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]policyPull(nil), p.pulls...)
}

// reportTo points e's agent at the hub at url with a token of name's.
func (e *testEnv) reportTo(url, token string) {
	e.t.Helper()
	tok := filepath.Join(e.t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(token+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.cfg.Report.URL = url
	e.cfg.Report.TokenFile = tok
	e.cfg.Report.HeartbeatInterval = 100 * time.Millisecond
}

// decisionOf returns the verdict on the device at path now.
func decisionOf(t *testing.T, r *running, path string) policy.USBDecision {
	t.Helper()
	r.agent.mu.Lock()
	defer r.agent.mu.Unlock()
	ap := r.agent.present[path]
	if ap == nil {
		t.Fatalf("no device at %s", path)
	}
	return ap.decision
}

// policyEvents returns the policy_changed records of the audit log.
func (e *testEnv) policyEvents() []wire.Event {
	e.t.Helper()
	var out []wire.Event
	for _, ev := range readAuditLog[wire.Event](e.t, e.state) {
		if ev.Type == wire.TypePolicyChanged {
			out = append(out, ev)
		}
	}
	return out
}

func countTrigger(recs []record, typ, trigger string) int {
	n := 0
	for _, r := range recs {
		if r.Type == typ && r.Trigger == trigger {
			n++
		}
	}
	return n
}

// TestHubPolicyPulledAndPutInForce: lists set at the hub while the agent
// runs are pulled (the hub's answer names the new version), recorded as
// policy_changed, merged (the hub's entry replaces the local one of the
// same name) and put in force without a restart: the fingerprint reader,
// a violation by the local list, is approved on re-judging. The pulls
// after it send the version's ETag and get 304.
func TestHubPolicyPulledAndPutInForce(t *testing.T) {
	h := hubtest.New(t)
	proxy := newPullProxy(t, h.URL)
	e := newEnv(t, testConfig, kbd, finger)
	e.reportTo(proxy.srv.URL, h.AddAgent("PC-TEST"))
	r := e.start(Options{})
	e.waitFor("the reader's violation by the local list", func(rs []record) bool {
		return count(rs, TypeViolation, fingerPath, KindApprovalExpired) == 1
	})
	if got := testutil.ToFloat64(r.agent.metrics.policyVersion); got != 0 {
		t.Errorf("mamori_policy_version %v before the hub has lists", got)
	}

	for deadline := time.Now().Add(10 * time.Second); len(proxy.seen()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no pull at start")
		}
	}
	pol := h.SetPolicy(hubApprovesFinger)
	e.waitFor("policy_changed", func(rs []record) bool { return countTrigger(rs, wire.TypePolicyChanged, "policy") == 1 })
	deadline := time.Now().Add(10 * time.Second)
	for !decisionOf(t, r, fingerPath).Approved {
		if time.Now().After(deadline) {
			t.Fatal("the reader is not approved by the hub's list")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := decisionOf(t, r, fingerPath); d.Entry == nil || d.Entry.File != "hub policy v1" {
		t.Errorf("the reader approved by %+v, want the hub's entry", d.Entry)
	}
	evs := e.policyEvents()
	if len(evs) != 1 {
		t.Fatalf("%d policy_changed records", len(evs))
	}
	p := evs[0].Policy
	if p == nil || p.Version != pol.Version || p.Digest != pol.Digest || p.USBEntries != 1 || p.LANDevices != 1 || p.FromDisk ||
		len(p.Replaced) != 1 || p.Replaced[0] != "usb:Old fingerprint reader" {
		t.Errorf("policy_changed carries %+v", p)
	}
	if a := evs[0].Agent; a == nil || a.Entries != 4 || a.LANDevices != 1 {
		t.Errorf("policy_changed's lists in force %+v", a)
	}
	if got := testutil.ToFloat64(r.agent.metrics.policyVersion); got != float64(pol.Version) {
		t.Errorf("mamori_policy_version %v", got)
	}
	if _, err := os.Stat(filepath.Join(e.state, report.PolicyFile)); err != nil {
		t.Errorf("no copy on disk: %v", err)
	}

	// The safety-net pulls that follow ask with the version's ETag.
	var pulls []policyPull
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pulls = proxy.seen()
		n := 0
		for _, p := range pulls {
			if p.ifNoneMatch == `"1"` && p.status == http.StatusNotModified {
				n++
			}
		}
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 304 to the ETag of v1; pulls %+v", pulls)
		}
	}
	if pulls[0].ifNoneMatch != "" || pulls[0].status != http.StatusNotFound {
		t.Errorf("first pull %+v, want no ETag and 404 (no lists at the hub yet)", pulls[0])
	}
	ok := 0
	for _, p := range pulls {
		if p.status == http.StatusOK {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d pulls answered 200: %+v", ok, pulls)
	}

	// A version the hub takes but the agent's parser refuses (the hub
	// checks the lists' shape only): recorded once, v1 stays in force.
	h.SetPolicy("usb:\n  - name: Bad\n    vendor_id: \"12x4\"\n")
	e.waitFor("v2 refused", func(rs []record) bool { return countTrigger(rs, TypeConfigReloadFailed, "policy") == 1 })
	if d := decisionOf(t, r, fingerPath); !d.Approved {
		t.Errorf("a refused version took v1 out of force: %+v", d)
	}
	if got := testutil.ToFloat64(r.agent.metrics.policyVersion); got != 1 {
		t.Errorf("mamori_policy_version %v after v2 was refused", got)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := 0
		for _, p := range proxy.seen() {
			if p.ifNoneMatch == `"2"` && p.status == http.StatusNotModified {
				n++
			}
		}
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("v2 is fetched again; pulls %+v", proxy.seen())
		}
	}
	r.stop(t)
	recs := e.records()
	if got := countTrigger(recs, TypeConfigReloadFailed, "policy"); got != 1 {
		t.Errorf("v2 refused %d times", got)
	}
	if got := countTrigger(recs, wire.TypePolicyChanged, "policy"); got != 1 {
		t.Errorf("%d policy_changed after the stop", got)
	}
}

// TestHubPolicyFromDiskWhenHubDown: the last good copy kept on disk is in
// force from the start when the hub does not answer; a copy damaged or
// changed on disk is refused, and the agent runs with the config file's
// lists alone.
func TestHubPolicyFromDiskWhenHubDown(t *testing.T) {
	h := hubtest.New(t)
	h.SetPolicy(hubApprovesFinger)
	e := newEnv(t, testConfig, kbd, finger)
	e.reportTo(h.URL, h.AddAgent("PC-TEST"))
	r := e.start(Options{})
	e.waitFor("policy_changed", func(rs []record) bool { return countTrigger(rs, wire.TypePolicyChanged, "policy") == 1 })
	r.stop(t)
	h.Server.Close() // the hub is down from here on

	// A new boot: every device is a new appearance, judged at start.
	e.setBootID("5d1c2a9e-0000-4000-8000-000000000002")
	r = e.start(Options{})
	recs := e.records()
	if got := countTrigger(recs, wire.TypePolicyChanged, "start"); got != 1 {
		t.Fatalf("%d policy_changed at start:\n%s", got, dump(recs))
	}
	if evs := e.policyEvents(); !evs[len(evs)-1].Policy.FromDisk || evs[len(evs)-1].Policy.Version != 1 {
		t.Errorf("policy_changed at start %+v", evs[len(evs)-1].Policy)
	}
	if d := decisionOf(t, r, fingerPath); !d.Approved {
		t.Errorf("the reader is not approved by the copy on disk: %+v", d)
	}
	if got := testutil.ToFloat64(r.agent.metrics.policyVersion); got != 1 {
		t.Errorf("mamori_policy_version %v", got)
	}
	r.stop(t)
	violations := count(e.records(), TypeViolation, fingerPath, "")

	// The lists on disk changed (an entry's date moved), the digest not.
	path := filepath.Join(e.state, report.PolicyFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, bad := range [][]byte{
		bytes.Replace(good, []byte("2099-12-31"), []byte("2199-12-31"), 1),
		good[:len(good)/2],
	} {
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		e.setBootID("5d1c2a9e-0000-4000-8000-00000000001" + string(rune('0'+i)))
		r = e.start(Options{})
		recs = e.records()
		last := recs[len(recs)-1]
		for _, rc := range recs {
			if rc.Type == TypeConfigReloadFailed && rc.Trigger == "start" {
				last = rc
			}
		}
		if last.Type != TypeConfigReloadFailed {
			t.Errorf("copy %d: not refused:\n%s", i, dump(recs))
		}
		if d := decisionOf(t, r, fingerPath); d.Approved {
			t.Errorf("copy %d: the reader approved by a refused copy", i)
		}
		if got := testutil.ToFloat64(r.agent.metrics.policyVersion); got != 0 {
			t.Errorf("copy %d: mamori_policy_version %v", i, got)
		}
		r.stop(t)
		if n := count(e.records(), TypeViolation, fingerPath, KindApprovalExpired); n != violations+1 {
			t.Errorf("copy %d: %d violations for the reader, want %d", i, n, violations+1)
		}
		violations++
	}
	if _, err := report.CheckBundle(&wire.PolicyBundle{Version: 1, Approved: "usb: []\n", Digest: strings.Repeat("0", 64)}); err == nil ||
		!strings.Contains(err.Error(), "digest") {
		t.Errorf("CheckBundle with a wrong digest: %v", err)
	}
}

// TestTrustedTime: once the hub's time is known, approvals are judged by
// it: the PC's clock set back two days does not revive an approval that
// ended yesterday by the hub's time, in the running agent and after a
// restart while the hub is down (the offset kept on disk). Records keep
// the PC's clock. Without a hub, the PC's clock is all there is.
func TestTrustedTime(t *testing.T) {
	hubDay := time.Date(2026, 6, 15, 12, 0, 0, 0, time.Local)
	t0 := time.Now()
	h := hubtest.NewWithClock(t, func() time.Time { return hubDay.Add(time.Since(t0)) })
	var pcBack atomic.Int64 // how far the PC's clock is behind the hub's
	pcNow := func() time.Time { return hubDay.Add(time.Since(t0) - time.Duration(pcBack.Load())) }
	cfgText := strings.Replace(testConfig, "valid_until: 2025-03-31", "valid_until: 2026-06-14", 1)

	e := newEnv(t, cfgText, kbd, finger)
	e.reportTo(h.URL, h.AddAgent("PC-TEST"))
	r := e.start(Options{Now: pcNow})
	e.waitFor("the reader's approval ended", func(rs []record) bool {
		return count(rs, TypeViolation, fingerPath, KindApprovalExpired) == 1
	})
	// The PC's clock set back two days: the hub's time judges.
	pcBack.Store(int64(48 * time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if off, ok := clockOffset(r); ok && off > 47*time.Hour {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the offset never followed the PC's clock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.agent.Reload(e.cfg, nil)
	e.waitFor("config_reloaded", func(rs []record) bool { return count(rs, TypeConfigReloaded, "", "") == 1 })
	if d := decisionOf(t, r, fingerPath); d.Approved || d.Violation == nil || d.Violation.Kind != KindApprovalExpired {
		t.Errorf("the PC's clock set back revived the approval: %+v", d)
	}
	if n, err := testutil.GatherAndCount(r.agent.Metrics().Registry, "mamori_clock_offset_seconds"); err != nil || n != 1 {
		t.Errorf("mamori_clock_offset_seconds exposed %d times: %v", n, err)
	}
	r.stop(t)
	h.Server.Close()
	if tm := lastRecordTime(t, e); tm.After(hubDay.Add(-24 * time.Hour)) {
		t.Errorf("the last record's time %v is not the PC's clock", tm)
	}

	// A restart in a new boot while the hub is down: the offset kept on
	// disk corrects the PC's clock from the start.
	e.setBootID("5d1c2a9e-0000-4000-8000-000000000020")
	r = e.start(Options{Now: pcNow})
	if d := decisionOf(t, r, fingerPath); d.Approved {
		t.Errorf("after a restart without the hub, the approval is revived: %+v", d)
	}
	r.stop(t)
	if n := count(e.records(), TypeViolation, fingerPath, KindApprovalExpired); n != 2 {
		t.Errorf("%d expired-approval violations, want 2:\n%s", n, dump(e.records()))
	}

	// Without a hub the PC's clock judges: set back, it approves.
	e2 := newEnv(t, cfgText, kbd, finger)
	r = e2.start(Options{Now: pcNow})
	if d := decisionOf(t, r, fingerPath); !d.Approved {
		t.Errorf("without a hub, the PC's clock (two days back) does not approve: %+v", d)
	}
	r.stop(t)
}

// clockOffset reads the reporter's offset from the agent's registry.
func clockOffset(r *running) (time.Duration, bool) {
	mfs, err := r.agent.Metrics().Registry.Gather()
	if err != nil {
		return 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() == "mamori_clock_offset_seconds" && len(mf.GetMetric()) == 1 {
			return time.Duration(mf.GetMetric()[0].GetGauge().GetValue() * float64(time.Second)), true
		}
	}
	return 0, false
}

// lastRecordTime is the time of the audit log's last record.
func lastRecordTime(t *testing.T, e *testEnv) time.Time {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.state, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	var ev wire.Event
	if err := json.Unmarshal(lines[len(lines)-1], &ev); err != nil {
		t.Fatal(err)
	}
	return ev.Time
}
