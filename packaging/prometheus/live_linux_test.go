package prometheus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/internal/sysfstest"
)

// Addresses inside the test's own network namespace: nothing else
// listens there, so the ports are free.
const (
	hubAddr     = "127.0.0.1:8443"
	agentAddr   = "127.0.0.1:9868"
	promAddr    = "127.0.0.1:9090"
	scrapeEvery = time.Second
)

// Recordings of real USB devices (origins in collector/usb/testdata).
// The agent starts with a keyboard, a camera, a phone, a security key and
// a fingerprint reader; the card reader (storage, unapproved) is plugged
// while Prometheus watches.
const rec = "../../collector/usb/testdata/"

var (
	startDevices = []string{
		rec + "umockdev/usbkbd.umockdev",
		rec + "umockdev/canon-powershot-sx200.umockdev",
		rec + "umockdev/sony-xperia-mini-pro.umockdev",
		rec + "umockdev/fido2.umockdev",
		rec + "libfprint/egis0570.device.umockdev",
	}
	plugged = rec + "fwupd/algoltek-au84612-setup.json"
)

// agentConfig is the agent's config: hubs and keyboards approved, the
// camera approved until 2099, the fingerprint reader's approval expired;
// reporting to the hub. %s: the token file.
const agentConfig = `version: 1
agent:
  asset_id: PC-PROMETHEUS-TEST
  language: en
  rescan_interval: 1s
  contact: "IT desk, extension 1234"
metrics:
  listen: "` + agentAddr + `"
report:
  url: http://` + hubAddr + `
  token_file: %s
  heartbeat_interval: 5s
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

// hubPolicy is the approved lists the hub hands out (version 1).
const hubPolicy = `usb:
  - name: Keyboards
    classes: [hid]
    approved_by: IT
`

// promConfig scrapes the agent and the hub every second under the job
// names the rules expect, and evaluates the rules every second.
const promConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
%s
scrape_configs:
  - job_name: mamori
    static_configs: [{targets: ["` + agentAddr + `"]}]
  - job_name: mamori-hub
    static_configs: [{targets: ["` + hubAddr + `"]}]
`

// TestDashboardQueriesLive runs a real mamori-hub (SQLite) and a real
// agent reporting to it, against a fixture sysfs, in a network namespace
// of their own with Debian's Prometheus scraping both; makes things
// happen (an unapproved card reader plugged, the audit log written to
// from outside); then runs every dashboard query, every variable query
// and every alert expression through Prometheus's HTTP API. Each
// dashboard query must return data with a finite value; each alert
// expression must evaluate; the rules loaded into Prometheus must be
// healthy, the alerts this situation calls for active and those it does
// not inactive.
func TestDashboardQueriesLive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the agent, hub and Prometheus run in a network namespace of their own (unshare --net, ip link add)")
	}
	promBin := tool(t, "prometheus")
	for _, c := range []string{"unshare", "nsenter", "ip"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s not installed (util-linux, iproute2: scripts/test-deps.sh)", c)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	dir := t.TempDir()
	bin := build(t, dir)

	// The hub: config, two PCs (one never reports: silent), approved lists.
	hubDir := filepath.Join(dir, "hub")
	mkdir(t, hubDir)
	hubConf := filepath.Join(hubDir, "hub.yaml")
	writeFile(t, hubConf, fmt.Sprintf("version: 1\nlisten: %s\ndatabase: sqlite://%s\nsilent_after: 10m\n", hubAddr, filepath.Join(hubDir, "hub.db")), 0o600)
	token := run(t, bin["mamori-hub"], "agent", "add", "pc-prometheus-test", "--config", hubConf)
	run(t, bin["mamori-hub"], "agent", "add", "pc-never-installed", "--config", hubConf)
	policy := filepath.Join(hubDir, "approved.yaml")
	writeFile(t, policy, hubPolicy, 0o600)
	run(t, bin["mamori-hub"], "policy", "set", policy, "--config", hubConf, "--by", "test")

	// The agent's fixture system.
	agentDir := filepath.Join(dir, "agent")
	state := filepath.Join(agentDir, "state")
	sysfs, procfs, devfs := filepath.Join(agentDir, "sys"), filepath.Join(agentDir, "proc"), filepath.Join(agentDir, "dev")
	for _, d := range []string{agentDir, state, devfs, filepath.Join(procfs, "self"), filepath.Join(procfs, "sys/kernel/random")} {
		mkdir(t, d)
	}
	sysfstest.Build(t, sysfs, startDevices...)
	writeFile(t, filepath.Join(procfs, "sys/kernel/random/boot_id"), "0e6b8bd4-5a4a-4b0e-8f43-97c0b5d7e0a1\n", 0o644)
	writeFile(t, filepath.Join(procfs, "self/mountinfo"), "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n", 0o644)
	tokenFile := filepath.Join(agentDir, "token")
	writeFile(t, tokenFile, token+"\n", 0o600)
	agentConf := filepath.Join(agentDir, "mamori.yaml")
	writeFile(t, agentConf, fmt.Sprintf(agentConfig, tokenFile), 0o600)

	// Prometheus with the rules.
	promDir := filepath.Join(dir, "prometheus")
	mkdir(t, promDir)
	var rf strings.Builder
	for _, f := range ruleFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&rf, "  - %q\n", abs)
	}
	promConf := filepath.Join(promDir, "prometheus.yml")
	writeFile(t, promConf, fmt.Sprintf(promConfig, rf.String()), 0o644)

	ns := newNetns(t)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: ns.dialer(t).DialContext}}
	hub := ns.start(t, dir, "mamori-hub", bin["mamori-hub"], "serve", "--config", hubConf)
	waitHTTP(ctx, t, hc, "http://"+hubAddr+"/healthz", hub)
	agent := ns.start(t, dir, "mamori", bin["mamori"], "run", "--config", agentConf, "--state-dir", state,
		"--sysfs", sysfs, "--procfs", procfs, "--devfs", devfs, "--rundir", filepath.Join(dir, "run"))
	waitHTTP(ctx, t, hc, "http://"+agentAddr+"/metrics", agent)
	prom := ns.start(t, dir, "prometheus", promBin, "--config.file="+promConf, "--storage.tsdb.path="+filepath.Join(promDir, "data"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	waitHTTP(ctx, t, hc, "http://"+promAddr+"/-/ready", prom)
	api := &promAPI{hc: hc, base: "http://" + promAddr}

	// Both targets up, and a few scrapes in the database before anything
	// happens, so that rates and increases have a before.
	api.waitFor(ctx, t, `count(up{job=~"mamori|mamori-hub"} == 1) == 2`)
	api.waitFor(ctx, t, `count_over_time(up{job="mamori"}[1m]) >= 3`)

	// Things happen: an unapproved card reader is plugged (a storage
	// violation, on the agent and at the hub), and someone appends to the
	// audit log behind the agent's back (audit_damaged).
	r, err := sysfstest.Load(plugged)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(sysfs); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(state, "audit.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":1,"type":"forged"}` + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	api.waitFor(ctx, t, `mamori_violations_total{kind="usb_storage_unapproved"} > 0`)
	api.waitFor(ctx, t, `mamori_events_total{action="audit_damaged"} > 0`)
	api.waitFor(ctx, t, `mamori_hub_violations_ingested_total{kind="usb_storage_unapproved"} > 0`)
	api.waitFor(ctx, t, `mamori_policy_version > 0`)
	// Two more scrapes and rule evaluations.
	time.Sleep(3 * scrapeEvery)

	t.Run("dashboards", func(t *testing.T) {
		n := 0
		for _, d := range loadDashboards(t) {
			vars := d.values()
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				q, label, err := variableQuery(v.Definition)
				if err != nil {
					t.Errorf("%s: variable %s: %v", d.file, v.Name, err)
					continue
				}
				expr, err := expand(q, vars)
				if err != nil {
					t.Errorf("%s: variable %s: %v", d.file, v.Name, err)
					continue
				}
				res, err := api.query(ctx, expr)
				switch {
				case err != nil:
					t.Errorf("%s: variable %s: %s: %v", d.file, v.Name, expr, err)
				case len(res) == 0 || res[0].Metric[label] == "":
					t.Errorf("%s: variable %s: %s: no values of %s", d.file, v.Name, expr, label)
				}
			}
			for _, q := range d.queries() {
				n++
				expr, err := expand(q.expr, vars)
				if err != nil {
					t.Errorf("%s: %v", q.where, err)
					continue
				}
				res, err := api.query(ctx, expr)
				if err != nil {
					t.Errorf("%s: %s: %v", q.where, expr, err)
					continue
				}
				if len(res) == 0 {
					t.Errorf("%s: %s: no data", q.where, expr)
					continue
				}
				finite := false
				for _, s := range res {
					finite = finite || !math.IsNaN(s.value) && !math.IsInf(s.value, 0)
				}
				if !finite {
					t.Errorf("%s: %s: no finite value in %v", q.where, expr, res)
				}
			}
		}
		t.Logf("%d dashboard queries run", n)
	})

	t.Run("rules", func(t *testing.T) {
		rules := loadRules(t)
		for _, r := range rules {
			if _, err := api.query(ctx, r.Expr); err != nil {
				t.Errorf("%s: %s: %v", r.file, r.Alert, err)
			}
		}
		// Prometheus evaluates the rules itself every second: all loaded
		// and healthy.
		var body struct {
			Groups []struct {
				File  string `json:"file"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
					State     string `json:"state"`
				} `json:"rules"`
			} `json:"groups"`
		}
		api.get(ctx, t, "/api/v1/rules", &body)
		loaded := 0
		for _, g := range body.Groups {
			for _, r := range g.Rules {
				loaded++
				if r.Health != "ok" || r.LastError != "" {
					t.Errorf("%s: %s: health %s %s", g.File, r.Name, r.Health, r.LastError)
				}
			}
		}
		if loaded != len(rules) {
			t.Errorf("Prometheus loaded %d rules, the files hold %d", loaded, len(rules))
		}

		var alerts struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		api.get(ctx, t, "/api/v1/alerts", &alerts)
		active := map[string]string{}
		for _, a := range alerts.Alerts {
			k := a.Labels["alertname"]
			for _, l := range []string{"kind", "action"} {
				if v := a.Labels[l]; v != "" {
					k += " " + l + "=" + v
				}
			}
			active[k] = a.State
			t.Logf("%s: %s", a.State, k)
		}
		for _, want := range []string{
			"MamoriViolation kind=usb_storage_unapproved", // plugged while watched
			"MamoriViolation kind=network_unapproved",     // found at the start scan
			"MamoriViolation kind=usb_approval_expired",
			"MamoriHubViolation kind=usb_storage_unapproved",
			"MamoriAuditChainBroken action=audit_damaged",
			"MamoriHubAgentsSilent", // the PC never installed; pending (for: 10m)
		} {
			if active[want] == "" {
				t.Errorf("alert %s not active", want)
			}
		}
		for _, never := range []string{"MamoriAgentDown", "MamoriAgentTargetsMissing", "MamoriHubDown", "MamoriHubTargetMissing",
			"MamoriHubStoreUnreadable", "MamoriHubIngestFailing", "MamoriAgentReportRefused", "MamoriAgentReportsDropped",
			"MamoriHubAuditChainBroken", "MamoriAgentRestarting"} {
			for k, st := range active {
				if k == never || strings.HasPrefix(k, never+" ") {
					t.Errorf("alert %s is %s; nothing here calls for it", k, st)
				}
			}
		}
	})
}

// build compiles mamori and mamori-hub into dir.
func build(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, name := range []string{"mamori", "mamori-hub"} {
		path := filepath.Join(dir, name)
		out[name] = path
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("go", "build", "-o", path, "github.com/mamori-agent/mamori/cmd/"+name)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				mu.Lock()
				defer mu.Unlock()
				t.Errorf("build %s: %v\n%s", name, err, b)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// run runs a command to its end and returns its stdout, trimmed.
func run(t *testing.T, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func mkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// waitHTTP waits until url answers 200, failing early when p exits.
func waitHTTP(ctx context.Context, t *testing.T, hc *http.Client, url string, p *proc) {
	t.Helper()
	for {
		resp, err := hc.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p.exited() {
			t.Fatalf("%s exited before %s answered (log in the test output)", p.name, url)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: no answer from %s: %v", p.name, url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// promAPI is a client of Prometheus's HTTP API.
type promAPI struct {
	hc   *http.Client
	base string
}

// sample is one element of an instant query's result.
type sample struct {
	Metric map[string]string
	value  float64
}

func (s sample) String() string { return fmt.Sprintf("%v=%g", s.Metric, s.value) }

// query runs an instant query now. A scalar result is one sample
// without labels.
func (a *promAPI) query(ctx context.Context, expr string) ([]sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/api/v1/query",
		strings.NewReader(url.Values{"query": {expr}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s: %s", body.ErrorType, body.Error)
	}
	switch body.Data.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return nil, err
		}
		out := make([]sample, 0, len(v))
		for _, e := range v {
			f, err := parseValue(e.Value[1])
			if err != nil {
				return nil, err
			}
			out = append(out, sample{Metric: e.Metric, value: f})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return nil, err
		}
		f, err := parseValue(v[1])
		return []sample{{value: f}}, err
	}
	return nil, fmt.Errorf("result type %s, want vector or scalar", body.Data.ResultType)
}

func parseValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}

// waitFor waits until expr returns data.
func (a *promAPI) waitFor(ctx context.Context, t *testing.T, expr string) {
	t.Helper()
	var (
		res []sample
		err error
	)
	for {
		res, err = a.query(ctx, expr)
		if err == nil && len(res) > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v %v", expr, res, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// get decodes the data of a GET of the API path into v.
func (a *promAPI) get(ctx context.Context, t *testing.T, path string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("GET %s: HTTP %d %s %v", path, resp.StatusCode, body.Status, err)
	}
	if err := json.Unmarshal(body.Data, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}
