package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub/api"
	"github.com/mamori-agent/mamori/hub/hubtest"
	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/hub/store/sqlstore"
	"github.com/mamori-agent/mamori/wire"
)

var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// call makes one request to the hub at base and returns the answer and
// its body.
func call(t *testing.T, base, method, path, token string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Date") == "" {
		t.Errorf("%s %s: no Date header", method, path)
	}
	return resp, data
}

// wantStatus checks an answer's status; error answers must be problems.
func wantStatus(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if status >= 400 {
		var p wire.Problem
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("error as %q", ct)
		}
		if err := json.Unmarshal(body, &p); err != nil || p.Status != status || p.Title == "" {
			t.Fatalf("problem %s: %v", body, err)
		}
	}
}

// zeroHash is the prev_hash of the first record of a log.
var zeroHash = strings.Repeat("0", 64)

// plainHashes memoises chainHash.
var plainHashes = map[uint64]string{0: zeroHash}

// chainHash is the hash of record seq of the plain chain chainBatch
// makes: each batch of it continues the ones before, whatever its ids.
func chainHash(seq uint64) string {
	if h, ok := plainHashes[seq]; ok {
		return h
	}
	e := event("", seq, chainHash(seq-1), wire.Event{})
	plainHashes[seq] = e.Hash
	return e.Hash
}

// event is a recorded event at seq after a record whose hash is prev,
// hashed as the agent's audit log does.
func event(id string, seq uint64, prev string, ev wire.Event) wire.BatchEvent {
	if ev.Time.IsZero() {
		ev.Time = t0.Add(time.Duration(seq) * time.Second)
	}
	if ev.Type == "" {
		ev.Type = wire.TypeDeviceRemoved
	}
	raw, _ := json.Marshal(wire.NewRecord(&ev))
	return wire.BatchEvent{ID: id, Seq: seq, Hash: wire.RecordHash(seq, prev, raw), PrevHash: prev, Event: raw}
}

// chainBatch is a batch of n plain events from seq start.
func chainBatch(prefix string, start uint64, n int) []byte {
	b := wire.Batch{Schema: wire.SchemaVersion, AssetID: "A-1"}
	for i := range n {
		seq := start + uint64(i)
		b.Events = append(b.Events, event(fmt.Sprintf("%s-%d", prefix, seq), seq, chainHash(seq-1), wire.Event{}))
	}
	data, _ := json.Marshal(b)
	return data
}

// violationBatch is a batch of violations from seq start, after the
// plain chain's record start-1.
func violationBatch(start uint64, msgs ...string) []byte {
	b := wire.Batch{Schema: wire.SchemaVersion, AssetID: "A-1"}
	prev := chainHash(start - 1)
	for i, m := range msgs {
		seq := start + uint64(i)
		serial := m
		e := event(fmt.Sprintf("v-%d", seq), seq, prev, wire.Event{
			Type: wire.TypeViolation, Source: wire.SourceUSB, VendorID: "0781", ProductID: "5567", Serial: &serial,
			Violation: &wire.Violation{Kind: wire.KindUSBStorageUnapproved, Device: "1-4", Severity: wire.SeverityHigh, Article: "6, 7", Message: m},
		})
		b.Events = append(b.Events, e)
		prev = e.Hash
	}
	data, _ := json.Marshal(b)
	return data
}

func batchResult(t *testing.T, body []byte) wire.BatchResult {
	t.Helper()
	var r wire.BatchResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.HubTime.IsZero() {
		t.Fatal("no hub_time")
	}
	return r
}

func TestIngestDedupeAndOrder(t *testing.T) {
	h := hubtest.New(t)
	tok := h.AddAgent("pc-01")
	b := chainBatch("e", 1, 10)
	resp, body := call(t, h.URL, "POST", wire.PathEvents, tok, b)
	wantStatus(t, resp, body, 200)
	if r := batchResult(t, body); r.Accepted != 10 || r.Duplicates != 0 || r.ChainBroken {
		t.Fatalf("first: %+v", r)
	}
	// The reply was lost: the agent sends the same batch again.
	resp, body = call(t, h.URL, "POST", wire.PathEvents, tok, b)
	wantStatus(t, resp, body, 200)
	if r := batchResult(t, body); r.Accepted != 0 || r.Duplicates != 10 || r.ChainBroken {
		t.Fatalf("again: %+v", r)
	}
	resp, body = call(t, h.URL, "POST", wire.PathEvents, tok, chainBatch("e", 11, 5))
	wantStatus(t, resp, body, 200)
	ids, err := h.Store.EventIDs(context.Background(), "pc-01")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 15 {
		t.Fatalf("%d events", len(ids))
	}
	for i, id := range ids {
		if id != fmt.Sprintf("e-%d", i+1) {
			t.Fatalf("event %d is %s", i, id)
		}
	}
}

func TestChainBrokenOverHTTP(t *testing.T) {
	h := hubtest.New(t)
	tok, admin := h.AddAgent("pc-01"), h.AdminToken()
	resp, body := call(t, h.URL, "POST", wire.PathEvents, tok, chainBatch("e", 1, 3))
	wantStatus(t, resp, body, 200)
	resp, body = call(t, h.URL, "POST", wire.PathEvents, tok, chainBatch("e", 5, 2)) // record 4 cut
	wantStatus(t, resp, body, 200)
	if r := batchResult(t, body); !r.ChainBroken || r.Accepted != 2 {
		t.Fatalf("gap: %+v", r)
	}
	resp, body = call(t, h.URL, "GET", wire.PathViolations+"?kind=audit_chain_broken", admin, nil)
	wantStatus(t, resp, body, 200)
	var l api.ViolationList
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Violations) != 1 || l.Violations[0].Severity != "critical" || l.Violations[0].Article != "5" || l.Violations[0].Agent != "pc-01" {
		t.Fatalf("violations %+v", l.Violations)
	}
	resp, body = call(t, h.URL, "GET", wire.PathAgents, admin, nil)
	wantStatus(t, resp, body, 200)
	var al api.AgentList
	json.Unmarshal(body, &al)
	if len(al.Agents) != 1 || al.Agents[0].Chain != "broken" || al.Agents[0].AssetID != "A-1" {
		t.Fatalf("agents %+v", al.Agents)
	}
}

func TestTokens(t *testing.T) {
	h := hubtest.New(t)
	tok, admin := h.AddAgent("pc-01"), h.AdminToken()
	other := h.AddAgent("pc-02")
	cases := []struct {
		name, method, path, token string
		body                      []byte
		status                    int
	}{
		{"no token", "POST", wire.PathEvents, "", chainBatch("a", 1, 1), 401},
		{"unknown token", "POST", wire.PathEvents, "nope", chainBatch("a", 1, 1), 401},
		{"staff posts events", "POST", wire.PathEvents, admin, chainBatch("a", 1, 1), 403},
		{"staff posts heartbeat", "POST", wire.PathHeartbeat, admin, []byte(`{"schema":2}`), 403},
		{"agent reads violations", "GET", wire.PathViolations, tok, nil, 403},
		{"agent reads agents", "GET", wire.PathAgents, tok, nil, 403},
		{"agent reads devices", "GET", wire.PathDevices, tok, nil, 403},
		{"agent reads csv", "GET", api.PathViolationsCSV, tok, nil, 403},
		{"agent reads devices csv", "GET", api.PathDevicesCSV, tok, nil, 403},
		{"agent gets policy", "GET", wire.PathPolicy, tok, nil, 404}, // none set yet
		{"staff gets policy", "GET", wire.PathPolicy, admin, nil, 404},
		{"agent posts events", "POST", wire.PathEvents, tok, chainBatch("a", 1, 1), 200},
		{"other agent, same ids", "POST", wire.PathEvents, other, chainBatch("a", 1, 1), 200},
		{"wrong method", "GET", wire.PathEvents, tok, nil, 405},
		{"unknown path", "GET", "/api/v1/nothing", tok, nil, 404},
		{"staff reads", "GET", wire.PathViolations, admin, nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := call(t, h.URL, c.method, c.path, c.token, c.body)
			wantStatus(t, resp, body, c.status)
			if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// Each agent's events are its own: the same ids from pc-02 were stored
	// as pc-02's, not refused or merged.
	for _, name := range []string{"pc-01", "pc-02"} {
		ids, _ := h.Store.EventIDs(context.Background(), name)
		if len(ids) != 1 {
			t.Fatalf("%s: %v", name, ids)
		}
	}
	h.RevokeAgent("pc-01")
	resp, body := call(t, h.URL, "POST", wire.PathEvents, tok, chainBatch("a", 2, 1))
	wantStatus(t, resp, body, 401)
	resp, body = call(t, h.URL, "GET", wire.PathPolicy, tok, nil)
	wantStatus(t, resp, body, 401)
}

func TestBadBodies(t *testing.T) {
	h := hubtest.New(t)
	tok := h.AddAgent("pc-01")
	tooMany := wire.Batch{Schema: 2}
	for i := range wire.MaxBatchEvents + 1 {
		tooMany.Events = append(tooMany.Events, wire.BatchEvent{ID: fmt.Sprint(i), Seq: uint64(i + 1), Event: json.RawMessage(`{}`)})
	}
	many, _ := json.Marshal(tooMany)
	big := append([]byte(`{"schema":2,"events":[],"asset_id":"`), bytes.Repeat([]byte("x"), wire.MaxBatchBytes)...)
	big = append(big, `"}`...)
	cases := []struct {
		name   string
		body   []byte
		status int
	}{
		{"oversized", big, 413},
		{"too many events", many, 413},
		{"broken JSON", []byte(`{"schema":2,"events":[`), 400},
		{"not an object", []byte(`[1,2]`), 400},
		{"trailing data", []byte(`{"schema":2,"events":[]} {}`), 400},
		{"no schema", []byte(`{"events":[]}`), 400},
		{"empty id", []byte(`{"schema":2,"events":[{"id":"","seq":1,"event":{}}]}`), 400},
		{"id with newline", []byte(`{"schema":2,"events":[{"id":"a\nb","seq":1,"event":{}}]}`), 400},
		{"event not an object", []byte(`{"schema":2,"events":[{"id":"a","seq":1,"event":"x"}]}`), 400},
		{"event of wrong types", []byte(`{"schema":2,"events":[{"id":"a","seq":1,"event":{"time":5}}]}`), 400},
		{"seq too large", []byte(`{"schema":2,"events":[{"id":"a","seq":18446744073709551615,"event":{}}]}`), 400},
		{"empty body", nil, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := call(t, h.URL, "POST", wire.PathEvents, tok, c.body)
			wantStatus(t, resp, body, c.status)
		})
	}
	// An oversized body sent chunked (no Content-Length) is cut at the
	// limit too.
	req, _ := http.NewRequest("POST", h.URL+wire.PathEvents, io.MultiReader(bytes.NewReader(big)))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked oversized: %d", resp.StatusCode)
	}
	ids, _ := h.Store.EventIDs(context.Background(), "pc-01")
	if len(ids) != 0 {
		t.Fatalf("stored %v", ids)
	}
}

func TestHostileStrings(t *testing.T) {
	h := hubtest.New(t)
	tok, admin := h.AddAgent("pc-01"), h.AdminToken()
	hostile := "<script>alert('x')</script>\u001b[2J\u202e&amp;\"=HYPERLINK(\"http://evil\")"
	resp, body := call(t, h.URL, "POST", wire.PathEvents, tok, violationBatch(1, hostile))
	wantStatus(t, resp, body, 200)
	resp, body = call(t, h.URL, "GET", wire.PathViolations, admin, nil)
	wantStatus(t, resp, body, 200)
	if bytes.Contains(body, []byte("<script>")) || !bytes.Contains(body, []byte(`\u003cscript\u003e`)) {
		t.Fatalf("not escaped: %s", body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers %v", resp.Header)
	}
	var l api.ViolationList
	json.Unmarshal(body, &l)
	if len(l.Violations) != 1 || l.Violations[0].Message != hostile || l.Violations[0].Serial != hostile {
		t.Fatalf("stored %+v, want the string as given", l.Violations)
	}
}

func TestCSV(t *testing.T) {
	h := hubtest.New(t)
	tok, admin := h.AddAgent("pc-01"), h.AdminToken()
	msgs := []string{"許可されていない USB 記憶媒体 \"x\", line\nbreak", "=cmd|' /C calc'!A0", "-1+1", "plain"}
	resp, body := call(t, h.URL, "POST", wire.PathEvents, tok, violationBatch(1, msgs...))
	wantStatus(t, resp, body, 200)
	for _, c := range []struct {
		path string
		rows int
	}{{api.PathViolationsCSV, 5}, {api.PathDevicesCSV, 5}} {
		resp, body := call(t, h.URL, "GET", c.path, admin, nil)
		wantStatus(t, resp, body, 200)
		if !bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")) {
			t.Fatalf("%s: no BOM", c.path)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Fatalf("%s: %s", c.path, ct)
		}
		if bytes.Count(body, []byte("\n")) != bytes.Count(body, []byte("\r\n")) {
			t.Fatalf("%s: lines not CRLF: %q", c.path, body)
		}
		recs, err := csv.NewReader(bytes.NewReader(body[3:])).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if len(recs) != c.rows {
			t.Fatalf("%s: %d rows: %q", c.path, len(recs), recs)
		}
		if c.path == api.PathViolationsCSV {
			msg := len(recs[0]) - 1
			if recs[0][msg] != "message" || recs[1][msg] != msgs[0] ||
				recs[2][msg] != "'"+msgs[1] || recs[3][msg] != "'"+msgs[2] || recs[4][msg] != "plain" {
				t.Fatalf("cells %q", recs)
			}
		}
	}
}

func TestPolicyETag(t *testing.T) {
	h := hubtest.New(t)
	tok := h.AddAgent("pc-01")
	p := h.SetPolicy("usb:\n  - name: stick\n    vendor_id: \"0781\"\n")
	resp, body := call(t, h.URL, "GET", wire.PathPolicy, tok, nil)
	wantStatus(t, resp, body, 200)
	var b wire.PolicyBundle
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	etag := resp.Header.Get("ETag")
	if b.Version != p.Version || b.Approved != p.Approved || b.Digest != p.Digest || etag != api.ETag(p.Version) || b.HubTime.IsZero() {
		t.Fatalf("bundle %+v etag %s", b, etag)
	}
	resp, body = call(t, h.URL, "GET", wire.PathPolicy, tok, nil, "If-None-Match", etag)
	wantStatus(t, resp, body, 304)
	if len(body) != 0 || resp.Header.Get("ETag") != etag {
		t.Fatalf("304 with %q", body)
	}
	p2 := h.SetPolicy("usb: []\n")
	resp, body = call(t, h.URL, "GET", wire.PathPolicy, tok, nil, "If-None-Match", etag)
	wantStatus(t, resp, body, 200)
	json.Unmarshal(body, &b)
	if b.Version != p2.Version {
		t.Fatalf("version %d", b.Version)
	}
	// The batch result and heartbeat result carry the version too.
	resp, body = call(t, h.URL, "POST", wire.PathEvents, tok, chainBatch("e", 1, 1))
	wantStatus(t, resp, body, 200)
	if r := batchResult(t, body); r.PolicyVersion != p2.Version {
		t.Fatalf("result %+v", r)
	}
}

func TestViolationPaging(t *testing.T) {
	h := hubtest.New(t)
	tok, admin := h.AddAgent("pc-01"), h.AdminToken()
	var msgs []string
	for i := range 250 {
		msgs = append(msgs, fmt.Sprint("m", i))
	}
	resp, body := call(t, h.URL, "POST", wire.PathEvents, tok, violationBatch(1, msgs...))
	wantStatus(t, resp, body, 200)
	var got []string
	cursor, pages := "", 0
	for {
		resp, body := call(t, h.URL, "GET", wire.PathViolations+"?agent=pc-01&limit=100&cursor="+cursor, admin, nil)
		wantStatus(t, resp, body, 200)
		var l api.ViolationList
		json.Unmarshal(body, &l)
		pages++
		for _, v := range l.Violations {
			got = append(got, v.Message)
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	if pages != 3 || len(got) != 250 {
		t.Fatalf("%d pages, %d rows", pages, len(got))
	}
	for i, m := range got {
		if m != msgs[i] {
			t.Fatalf("row %d is %s", i, m)
		}
	}
	since := t0.Add(10 * time.Second).Format(time.RFC3339)
	until := t0.Add(20 * time.Second).Format(time.RFC3339)
	resp, body = call(t, h.URL, "GET", wire.PathViolations+"?since="+since+"&until="+until, admin, nil)
	wantStatus(t, resp, body, 200)
	var l api.ViolationList
	json.Unmarshal(body, &l)
	if len(l.Violations) != 10 || l.Violations[0].Message != "m9" {
		t.Fatalf("by time: %d", len(l.Violations))
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?cursor=x", "?since=yesterday"} {
		resp, body := call(t, h.URL, "GET", wire.PathViolations+q, admin, nil)
		wantStatus(t, resp, body, 400)
	}
	resp, body = call(t, h.URL, "GET", wire.PathDevices+"?serial=m3", admin, nil)
	wantStatus(t, resp, body, 200)
	var dl api.DeviceList
	json.Unmarshal(body, &dl)
	if len(dl.Devices) != 1 || dl.Devices[0].Agent != "pc-01" || dl.Devices[0].AssetID != "A-1" {
		t.Fatalf("devices %+v", dl.Devices)
	}
}

func TestHeartbeat(t *testing.T) {
	h := hubtest.New(t)
	tok, admin := h.AddAgent("pc-01"), h.AdminToken()
	h.AddAgent("pc-never")
	hb := wire.Heartbeat{Schema: wire.SchemaVersion, AssetID: "A-1", Version: "1.0", Host: wire.HostFacts{Hostname: "pc01"}}
	data, _ := json.Marshal(hb)
	resp, body := call(t, h.URL, "POST", wire.PathHeartbeat, tok, data)
	wantStatus(t, resp, body, 200)
	var r wire.HeartbeatResult
	if json.Unmarshal(body, &r); r.HubTime.IsZero() || time.Since(r.HubTime) > time.Minute {
		t.Fatalf("result %s", body)
	}
	states := func() map[string]string {
		resp, body := call(t, h.URL, "GET", wire.PathAgents, admin, nil)
		wantStatus(t, resp, body, 200)
		var l api.AgentList
		json.Unmarshal(body, &l)
		m := map[string]string{}
		for _, a := range l.Agents {
			m[a.Name] = a.State
		}
		return m
	}
	if s := states(); s["pc-01"] != "ok" || s["pc-never"] != "silent" {
		t.Fatalf("states %v", s)
	}
	hb.Stopping = true
	data, _ = json.Marshal(hb)
	resp, body = call(t, h.URL, "POST", wire.PathHeartbeat, tok, data)
	wantStatus(t, resp, body, 200)
	if s := states(); s["pc-01"] != "stopped" {
		t.Fatalf("states %v", s)
	}
	resp, body = call(t, h.URL, "POST", wire.PathHeartbeat, tok, []byte("{"))
	wantStatus(t, resp, body, 400)
}

// blockingStore holds every Ingest until release is closed.
type blockingStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) Ingest(ctx context.Context, agent string, b *store.Batch, now time.Time) (store.IngestResult, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.Ingest(ctx, agent, b, now)
}

func TestOverload(t *testing.T) {
	st, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok := store.NewToken()
	st.CreateAgent(context.Background(), "pc-01", store.HashToken(tok), t0)
	bs := &blockingStore{Store: st, entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv := httptest.NewServer(api.New(api.Options{Store: bs, MaxIngest: 1, IngestWait: 10 * time.Millisecond, RetryAfter: 3 * time.Second}))
	defer srv.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		resp, body := call(t, srv.URL, "POST", wire.PathEvents, tok, chainBatch("e", 1, 1))
		if resp.StatusCode != 200 {
			t.Errorf("first: %d %s", resp.StatusCode, body)
		}
	})
	<-bs.entered
	resp, body := call(t, srv.URL, "POST", wire.PathEvents, tok, chainBatch("e", 2, 1))
	wantStatus(t, resp, body, 503)
	if resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	close(bs.release)
	wg.Wait()
	resp, body = call(t, srv.URL, "POST", wire.PathEvents, tok, chainBatch("e", 2, 1))
	wantStatus(t, resp, body, 200)
}

// TestAgentLimits: an agent over its own rate, or with too many requests
// in flight, gets 429 with Retry-After while another agent is served; a
// staff token's policy reads are not limited.
func TestAgentLimits(t *testing.T) {
	st, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok1, tok2, admin := store.NewToken(), store.NewToken(), store.NewToken()
	st.CreateAgent(context.Background(), "pc-01", store.HashToken(tok1), t0)
	st.CreateAgent(context.Background(), "pc-02", store.HashToken(tok2), t0)
	st.SetStaffToken(context.Background(), "admin", store.HashToken(admin), t0)
	bs := &blockingStore{Store: st, entered: make(chan struct{}, 4), release: make(chan struct{})}
	srv := httptest.NewServer(api.New(api.Options{Store: bs, AgentRate: 0.2, AgentBurst: 3, AgentInFlight: 1}))
	defer srv.Close()

	// In flight: pc-01's second batch while its first is held.
	var wg sync.WaitGroup
	wg.Go(func() {
		resp, body := call(t, srv.URL, "POST", wire.PathEvents, tok1, chainBatch("e", 1, 1))
		if resp.StatusCode != 200 {
			t.Errorf("first: %d %s", resp.StatusCode, body)
		}
	})
	<-bs.entered
	resp, body := call(t, srv.URL, "POST", wire.PathEvents, tok1, chainBatch("e", 2, 1))
	wantStatus(t, resp, body, 429)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Another agent is not held back by pc-01.
	go func() { <-bs.entered }()
	close(bs.release)
	resp, body = call(t, srv.URL, "POST", wire.PathEvents, tok2, chainBatch("f", 1, 1))
	wantStatus(t, resp, body, 200)
	wg.Wait()

	// Rate: a burst of 3 (one used above; the refused one took no
	// token), then 429 for about 5 s (0.2 a second).
	for range 2 {
		resp, body = call(t, srv.URL, "GET", wire.PathPolicy, tok1, nil)
		if resp.StatusCode == 429 {
			t.Fatalf("within the burst: %d %s", resp.StatusCode, body)
		}
	}
	hb, _ := json.Marshal(wire.Heartbeat{Schema: wire.SchemaVersion, AssetID: "A-1", Version: "1.0"})
	resp, body = call(t, srv.URL, "POST", wire.PathHeartbeat, tok1, hb)
	wantStatus(t, resp, body, 429)
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 5 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	for range 10 {
		resp, body = call(t, srv.URL, "GET", wire.PathPolicy, admin, nil)
		if resp.StatusCode == 429 {
			t.Fatalf("staff limited: %s", body)
		}
	}
}

// TestAgentEvents: staff read an agent's stored events, oldest first,
// paged, each with its chain position and the event as sent; agents may
// not; an unknown agent is 404.
func TestAgentEvents(t *testing.T) {
	h := hubtest.New(t)
	tok, admin := h.AddAgent("pc-01"), h.AdminToken()
	resp, body := call(t, h.URL, "POST", wire.PathEvents, tok, chainBatch("e", 1, 7))
	wantStatus(t, resp, body, 200)
	var got []api.StoredEvent
	cursor := ""
	for pages := 0; ; pages++ {
		path := "/api/v1/agents/pc-01/events?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		resp, body = call(t, h.URL, "GET", path, admin, nil)
		wantStatus(t, resp, body, 200)
		var l api.EventList
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l.Events...)
		if cursor = l.NextCursor; cursor == "" {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
	}
	if len(got) != 7 {
		t.Fatalf("%d events", len(got))
	}
	for i, e := range got {
		var ev wire.Event
		if err := json.Unmarshal(e.Event, &ev); err != nil {
			t.Fatal(err)
		}
		if e.EventID != fmt.Sprintf("e-%d", i+1) || e.Seq != uint64(i+1) || e.Hash == "" || e.Type != ev.Type || e.Received.IsZero() {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	resp, body = call(t, h.URL, "GET", "/api/v1/agents/pc-01/events", tok, nil)
	wantStatus(t, resp, body, 403)
	resp, body = call(t, h.URL, "GET", "/api/v1/agents/nobody/events", admin, nil)
	wantStatus(t, resp, body, 404)
	resp, body = call(t, h.URL, "GET", "/api/v1/agents/pc-01/events?cursor=-1", admin, nil)
	wantStatus(t, resp, body, 400)
	resp, body = call(t, h.URL, "GET", "/api/v1/agents/pc-01/events?limit=100000", admin, nil)
	wantStatus(t, resp, body, 400)
}

// TestAlteredRecord: a record whose content was changed after the agent
// wrote it (its report queue edited, hash and chain kept) is stored and
// raises audit_chain_broken for the agent.
func TestAlteredRecord(t *testing.T) {
	h := hubtest.New(t)
	tok := h.AddAgent("pc-01")
	var b wire.Batch
	if err := json.Unmarshal(violationBatch(1, "unapproved stick", "second"), &b); err != nil {
		t.Fatal(err)
	}
	b.Events[0].Event = json.RawMessage(bytes.Replace(b.Events[0].Event, []byte(`"type":"violation"`), []byte(`"type":"rescan_note"`), 1))
	data, _ := json.Marshal(b)
	resp, body := call(t, h.URL, "POST", wire.PathEvents, tok, data)
	wantStatus(t, resp, body, 200)
	if r := batchResult(t, body); r.Accepted != 2 || !r.ChainBroken {
		t.Fatalf("altered record: %+v", r)
	}
	v, err := h.Store.Violations(context.Background(), store.ViolationFilter{Kind: wire.KindAuditChainBroken, Limit: 10})
	if err != nil || len(v) != 1 || !strings.Contains(v[0].Message, "audit record 1 does not match its hash") {
		t.Fatalf("violations %+v %v", v, err)
	}
}

// TestSlowBodiesHoldNoTurns: agents that send their bodies slowly hold
// no turn of the hub's (MaxIngest): another agent's heartbeat gets
// through while they trickle.
func TestSlowBodiesHoldNoTurns(t *testing.T) {
	h := hubtest.New(t)
	slow := []string{h.AddAgent("slow-1"), h.AddAgent("slow-2"), h.AddAgent("slow-3")}
	tok := h.AddAgent("pc-01")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	host := strings.TrimPrefix(h.URL, "http://")
	for _, s := range slow {
		for range api.DefaultAgentInFlight {
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", wire.PathEvents, host, s)
		}
	}
	time.Sleep(200 * time.Millisecond) // their handlers are reading
	hb, _ := json.Marshal(wire.Heartbeat{Schema: wire.SchemaVersion, AssetID: "A-1", Version: "1.0"})
	resp, body := call(t, h.URL, "POST", wire.PathHeartbeat, tok, hb)
	wantStatus(t, resp, body, 200)
}

// TestAbsurdCounts: counts no agent could have are refused; the dropped
// count saturates rather than overflowing.
func TestAbsurdCounts(t *testing.T) {
	h := hubtest.New(t)
	tok := h.AddAgent("pc-01")
	resp, body := call(t, h.URL, "POST", wire.PathEvents, tok, []byte(`{"schema":2,"events":[],"dropped":9223372036854775807}`))
	wantStatus(t, resp, body, 400)
	resp, body = call(t, h.URL, "POST", wire.PathHeartbeat, tok, []byte(`{"schema":2,"queue":-1}`))
	wantStatus(t, resp, body, 400)
	if _, err := h.Store.DB().Exec(`UPDATE agents SET dropped = ? WHERE name = 'pc-01'`, int64(1)<<62-5); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		resp, body = call(t, h.URL, "POST", wire.PathEvents, tok, []byte(`{"schema":2,"events":[],"dropped":1099511627776}`))
		wantStatus(t, resp, body, 200)
	}
	resp, body = call(t, h.URL, "GET", wire.PathAgents, h.AdminToken(), nil)
	wantStatus(t, resp, body, 200)
	if !strings.Contains(string(body), `"dropped":4611686018427387904`) {
		t.Fatalf("agents: %s", body)
	}
}
