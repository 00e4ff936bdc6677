package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub/api"
	"github.com/mamori-agent/mamori/hub/store/sqlstore"
	"github.com/mamori-agent/mamori/internal/sysfstest"
	"github.com/mamori-agent/mamori/wire"
)

// fido is a recording of a FIDO2 key behind a hub (HID, not approved by
// agentConfig): each copy gives a device_added and a violation.
const fido = "../../collector/usb/testdata/umockdev/fido2.umockdev"

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// hubProc is a mamori-hub serve process on loopback over SQLite.
type hubProc struct {
	t           *testing.T
	dir, config string
	addr        string
	cmd         *exec.Cmd
	stderr      *bytes.Buffer
}

func newHubProc(t *testing.T) *hubProc {
	t.Helper()
	h := &hubProc{t: t, dir: t.TempDir(), addr: freeAddr(t)}
	h.config = filepath.Join(h.dir, "hub.yaml")
	cfg := fmt.Sprintf("version: 1\nlisten: %s\ndatabase: sqlite://hub.db\nsilent_after: 10m\nretention: 0\n", h.addr)
	if err := os.WriteFile(h.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.kill)
	return h
}

func (h *hubProc) url() string { return "http://" + h.addr }

// cli runs a mamori-hub command on the hub's config; its stdout.
func (h *hubProc) cli(args ...string) string {
	h.t.Helper()
	out, err := exec.Command(hubBin, append(args, "--config", h.config)...).Output()
	if err != nil {
		h.t.Fatalf("mamori-hub %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// start starts serve and waits until /healthz answers.
func (h *hubProc) start() {
	h.t.Helper()
	h.cmd = exec.Command(hubBin, "serve", "--config", h.config)
	h.stderr = &bytes.Buffer{}
	h.cmd.Stderr = h.stderr
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	for i := 0; ; i++ {
		if resp, err := http.Get(h.url() + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		if i > 200 {
			h.t.Fatalf("mamori-hub serve did not come up:\n%s", h.stderr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kill kills serve with SIGKILL.
func (h *hubProc) kill() {
	if h.cmd != nil {
		h.cmd.Process.Kill()
		h.cmd.Wait()
		h.cmd = nil
	}
}

// store opens the hub's database beside the running hub (WAL: a reader
// does not stop it).
func (h *hubProc) store() *sqlstore.Store {
	h.t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(h.dir, "hub.db"))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { st.Close() })
	return st
}

// count is how many events of agent the hub stored.
func count(t *testing.T, st *sqlstore.Store, agent string) int {
	t.Helper()
	var n int
	if err := st.DB().QueryRow(`SELECT count(*) FROM events WHERE agent = ?`, agent).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// agentProc is a mamori run process on fixture roots (sysfs with copies
// of a recorded device, procfs, dev), reporting to a hub URL on loopback.
type agentProc struct {
	t                                 *testing.T
	sysfs, procfs, dev, state, config string
	copies                            []string // bus paths of the device's copies
	cmd                               *exec.Cmd
	stderr                            *syncBuffer
}

const agentConfig = `version: 1
agent:
  asset_id: PC-SYSTEST
  language: en
  rescan_interval: 1h
metrics:
  listen: ""
report:
  url: %s
  token_file: token
  batch_size: %d
  heartbeat_interval: 1h
approved:
  usb:
    - name: Hubs
      classes: [hub]
`

// newAgentProc builds the fixture with devices USB devices in all.
func newAgentProc(t *testing.T, hubURL, token string, devices, batch int) *agentProc {
	t.Helper()
	dir := t.TempDir()
	a := &agentProc{t: t, sysfs: filepath.Join(dir, "sys"), procfs: filepath.Join(dir, "proc"), dev: filepath.Join(dir, "dev"),
		state: filepath.Join(dir, "state"), config: filepath.Join(dir, "mamori.yaml")}
	rec, err := sysfstest.Load(fido)
	if err != nil {
		t.Fatal(err)
	}
	if a.copies, err = sysfstest.Replicate(a.sysfs, rec, "1-2.3", devices); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(a.procfs, "self"), filepath.Join(a.procfs, "sys/kernel/random"), a.dev} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(a.procfs, "sys/kernel/random/boot_id"), []byte("0e6b8bd4-5a4a-4b0e-8f43-97c0b5d7e0a1\n"), 0o644)
	os.WriteFile(filepath.Join(a.procfs, "self/mountinfo"), []byte("22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"), 0o644)
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.config, []byte(fmt.Sprintf(agentConfig, hubURL, batch)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.kill)
	return a
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNoWait starts mamori run.
func (a *agentProc) startNoWait() {
	a.t.Helper()
	a.cmd = exec.Command(agentBin, "run", "--config", a.config, "--sysfs", a.sysfs, "--procfs", a.procfs,
		"--devfs", a.dev, "--state-dir", a.state, "--rundir", a.state+".run")
	a.stderr = &syncBuffer{}
	a.cmd.Stderr = a.stderr
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
}

// start starts mamori run and waits until its first scan is recorded.
func (a *agentProc) start() {
	a.t.Helper()
	a.cmd = exec.Command(agentBin, "run", "--config", a.config, "--sysfs", a.sysfs, "--procfs", a.procfs,
		"--devfs", a.dev, "--state-dir", a.state, "--rundir", a.state+".run")
	stdout, err := a.cmd.StdoutPipe()
	if err != nil {
		a.t.Fatal(err)
	}
	a.stderr = &syncBuffer{}
	a.cmd.Stderr = a.stderr
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "running") {
				select {
				case ready <- true:
				default:
				}
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			a.t.Fatalf("mamori run ended before it was ready:\n%s", a.stderr)
		}
	case <-time.After(60 * time.Second):
		a.t.Fatalf("mamori run not ready:\n%s", a.stderr)
	}
}

func (a *agentProc) kill() {
	if a.cmd != nil {
		a.cmd.Process.Kill()
		a.cmd.Wait()
		a.cmd = nil
	}
}

// term stops mamori run with SIGTERM (agent_stopped recorded first).
func (a *agentProc) term() {
	a.t.Helper()
	if a.cmd != nil {
		a.cmd.Process.Signal(os.Interrupt)
		a.cmd.Wait()
		a.cmd = nil
	}
}

// auditRecord is the part of an audit record the tests compare.
type auditRecord struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	Type string `json:"type"`
}

// records reads the agent's audit log, rotated files first.
func (a *agentProc) records() []auditRecord {
	a.t.Helper()
	files, _ := filepath.Glob(filepath.Join(a.state, "audit-*.jsonl"))
	slices.Sort(files)
	files = append(files, filepath.Join(a.state, "audit.jsonl"))
	var out []auditRecord
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			a.t.Fatal(err)
		}
		for line := range bytes.Lines(data) {
			if !bytes.HasSuffix(line, []byte("\n")) {
				break // being written
			}
			var r auditRecord
			if err := json.Unmarshal(line, &r); err != nil {
				a.t.Fatalf("%s: %v", f, err)
			}
			out = append(out, r)
		}
	}
	return out
}

// waitDelivered waits until the hub has as many events of agent as the
// agent's audit log has records, and the count has held for a moment.
func waitDelivered(t *testing.T, a *agentProc, st *sqlstore.Store, agent string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	stable := 0
	for {
		n, want := count(t, st, agent), len(a.records())
		if n == want {
			if stable++; stable >= 3 {
				return
			}
		} else {
			stable = 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub has %d events of %s, its audit log %d records", n, agent, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkExactlyOnce compares the agent's audit log with what the hub
// stored for it: every record once, in the log's order, with its seq and
// hash; and the staff API says the chain is intact up to the last record
// and nothing was dropped.
func checkExactlyOnce(t *testing.T, h *hubProc, a *agentProc, st *sqlstore.Store, agent, staffToken string) {
	t.Helper()
	checkStored(t, h, st, a.records(), agent, staffToken)
}

// checkStored compares recs with what the hub stored for agent.
func checkStored(t *testing.T, h *hubProc, st *sqlstore.Store, recs []auditRecord, agent, staffToken string) {
	t.Helper()
	got := storedEvents(t, st.DB(), agent, false)
	ids := map[string]bool{}
	for _, e := range got {
		if ids[e.ID] {
			t.Errorf("event id %s stored twice", e.ID)
		}
		ids[e.ID] = true
	}
	if len(got) != len(recs) {
		t.Fatalf("the hub stored %d events, the audit log has %d records", len(got), len(recs))
	}
	for i := range recs {
		if got[i].Seq != recs[i].Seq || got[i].Hash != recs[i].Hash {
			t.Fatalf("stored event %d is seq %d %.12s, the log's record %d is seq %d %.12s (order or content differs)",
				i, got[i].Seq, got[i].Hash, i, recs[i].Seq, recs[i].Hash)
		}
	}
	req, _ := http.NewRequest("GET", h.url()+wire.PathAgents, nil)
	req.Header.Set("Authorization", "Bearer "+staffToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list api.AgentList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	for _, ag := range list.Agents {
		if ag.Name != agent {
			continue
		}
		if ag.Chain != "intact" || ag.ChainSeq != recs[len(recs)-1].Seq || ag.Dropped != 0 {
			t.Errorf("staff API: agent %s chain %s at %d, dropped %d; want intact at %d, none dropped", agent, ag.Chain, ag.ChainSeq, ag.Dropped, recs[len(recs)-1].Seq)
		}
		t.Logf("%d audit records, seq %d to %d, each stored once in order; chain %s", len(recs), recs[0].Seq, recs[len(recs)-1].Seq, ag.Chain)
		return
	}
	t.Errorf("staff API: no agent %s", agent)
}

// proxy sits between agent and hub on loopback: it forwards each request
// and can hold each answer a while (delay) or lose the answer of a batch
// the hub stored (drop: that many), closing the agent's connection
// instead of answering.
type proxy struct {
	target  string
	delay   atomic.Int64 // ns
	drop    atomic.Int64
	dropped atomic.Int64
	client  *http.Client
	srv     *httptest.Server
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target, client: &http.Client{Timeout: time.Minute}}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if r.URL.Path == wire.PathEvents && resp.StatusCode == http.StatusOK && p.drop.Add(-1) >= 0 {
		p.dropped.Add(1)
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	time.Sleep(time.Duration(p.delay.Load()))
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(data)
}
