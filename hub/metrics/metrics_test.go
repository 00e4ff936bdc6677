package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub/hubtest"
	"github.com/mamori-agent/mamori/hub/metrics"
	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/wire"
)

func post(t *testing.T, h *hubtest.Hub, token, path string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest("POST", h.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// chains is the last record (seq, hash) of each prefix's chain.
var chains = map[string]struct {
	seq  uint64
	hash string
}{}

// batch is a batch of violations of kinds, records from seq on, hashed as
// the agent's audit log does and continuing prefix's chain when seq
// follows its last record.
func batch(t *testing.T, prefix string, seq uint64, kinds ...string) []byte {
	t.Helper()
	b := wire.Batch{Schema: 1}
	prev := strings.Repeat("0", 64)
	if c, ok := chains[prefix]; ok && c.seq+1 == seq {
		prev = c.hash
	}
	for i, k := range kinds {
		s := seq + uint64(i)
		ev, _ := json.Marshal(wire.Event{Time: time.Date(2026, 12, 1, 9, 0, int(s), 0, time.UTC), Type: wire.TypeViolation, Source: wire.SourceUSB,
			Violation: &wire.Violation{Kind: k, Severity: wire.SeverityHigh, Message: "m"}})
		h := wire.RecordHash(s, prev, ev)
		b.Events = append(b.Events, wire.BatchEvent{ID: fmt.Sprintf("%s-%d", prefix, s), Seq: s, Hash: h, PrevHash: prev, Event: ev})
		prev = h
		chains[prefix] = struct {
			seq  uint64
			hash string
		}{s, h}
	}
	data, _ := json.Marshal(b)
	return data
}

func scrape(t *testing.T, h *hubtest.Hub) string {
	t.Helper()
	resp, err := http.Get(h.URL + "/metrics") // no token
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, data)
	}
	return string(data)
}

func TestMetrics(t *testing.T) {
	h := hubtest.New(t)
	tok := h.AddAgent("pc-001")
	h.AddAgent("pc-002") // never heard from: silent
	tok3 := h.AddAgent("pc-003")
	h.AddAgent("pc-004")
	h.RevokeAgent("pc-004") // not counted
	staff := h.AdminToken()

	if c := post(t, h, tok, wire.PathEvents, batch(t, "a", 1, wire.KindUSBStorageUnapproved, wire.KindUSBStorageUnapproved, "made_up_kind")); c != 200 {
		t.Fatalf("events: %d", c)
	}
	// The same batch again: 3 duplicates. Then records 4 and 5 missing.
	post(t, h, tok, wire.PathEvents, batch(t, "a", 1, wire.KindUSBStorageUnapproved, wire.KindUSBStorageUnapproved, "made_up_kind"))
	post(t, h, tok, wire.PathEvents, batch(t, "a", 6, wire.KindMediaUnencrypted))
	post(t, h, tok, wire.PathEvents, []byte("{broken"))
	post(t, h, "unknown", wire.PathEvents, batch(t, "x", 1))
	post(t, h, staff, wire.PathHeartbeat, []byte(`{"schema":1}`))
	hb, _ := json.Marshal(wire.Heartbeat{Schema: 1, Stopping: true})
	post(t, h, tok3, wire.PathHeartbeat, hb)

	text := scrape(t, h)
	for _, line := range []string{
		`mamori_hub_agents{state="ok"} 1`,
		`mamori_hub_agents{state="silent"} 1`,
		`mamori_hub_agents{state="stopped"} 1`,
		`mamori_hub_agents_chain_broken 1`,
		`mamori_hub_events_ingested_total 4`,
		`mamori_hub_ingest_duplicates_total 3`,
		`mamori_hub_violations_ingested_total{kind="usb_storage_unapproved"} 2`,
		`mamori_hub_violations_ingested_total{kind="media_unencrypted"} 1`,
		`mamori_hub_violations_ingested_total{kind="other"} 1`,
		`mamori_hub_violations_ingested_total{kind="audit_chain_broken"} 1`,
		`mamori_hub_violations_ingested_total{kind="network_zone_bridge"} 0`,
		`mamori_hub_chain_breaks_total 1`,
		`mamori_hub_ingest_errors_total{reason="bad_request"} 1`,
		`mamori_hub_ingest_errors_total{reason="unauthorized"} 1`,
		`mamori_hub_ingest_errors_total{reason="forbidden"} 1`,
		`mamori_hub_ingest_errors_total{reason="internal"} 0`,
		`mamori_hub_requests_rejected_total{code="429"} 0`,
		`mamori_hub_requests_rejected_total{code="503"} 0`,
		`mamori_hub_ingest_duration_seconds_count 4`,
	} {
		if !strings.Contains(text, "\n"+line+"\n") {
			t.Errorf("no line %q", line)
		}
	}
	if strings.Contains(text, "made_up_kind") {
		t.Error("an agent's kind became a label")
	}

	// promtool lints the names (scripts/test-deps.sh installs it).
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool missing (CI=true: run scripts/test-deps.sh)")
		}
		t.Skip("promtool missing: names not linted (scripts/test-deps.sh installs it)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestRejectedAndInternal(t *testing.T) {
	m := metrics.New(failingStats{}, time.Minute, nil, nil)
	m.IngestStatus(503)
	m.IngestStatus(503)
	m.IngestStatus(429)
	m.IngestStatus(500)
	m.IngestStatus(413)
	m.IngestStatus(200)
	var nilM *metrics.Metrics
	nilM.IngestStatus(503) // a nil Metrics records nothing
	nilM.Ingested(store.IngestResult{Accepted: 1})
	nilM.IngestDuration(time.Second)
	got := map[string]float64{}
	mfs, err := m.Registry().Gather()
	if err == nil {
		t.Fatal("gathering with a failing store: want the agents' error")
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range mt.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = mt.GetCounter().GetValue()
		}
	}
	for k, v := range map[string]float64{
		"mamori_hub_requests_rejected_total/503": 2, "mamori_hub_requests_rejected_total/429": 1,
		"mamori_hub_ingest_errors_total/internal": 1, "mamori_hub_ingest_errors_total/too_large": 1,
		"mamori_hub_ingest_errors_total/bad_request": 0,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// failingStats is a store whose queries fail.
type failingStats struct{}

func (failingStats) AgentCounts(context.Context, time.Time, time.Duration) (store.AgentCounts, error) {
	return store.AgentCounts{}, errors.New("database gone")
}

func (failingStats) ViolationCounts(context.Context, time.Time, time.Time, time.Duration) ([]store.ViolationBucket, error) {
	return nil, errors.New("database gone")
}
