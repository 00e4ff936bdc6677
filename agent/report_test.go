package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/wire"
)

// reportHub is the least of a hub: it keeps each event id once.
type reportHub struct {
	mu     sync.Mutex
	ids    map[string]bool
	events []wire.BatchEvent
	types  []string
	beats  []wire.Heartbeat
}

func (h *reportHub) serve(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.PathEvents, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b wire.Batch
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		for _, e := range b.Events {
			if !h.ids[e.ID] {
				h.ids[e.ID] = true
				h.events = append(h.events, e)
				var ev wire.Event
				json.Unmarshal(e.Event, &ev)
				h.types = append(h.types, ev.Type)
			}
		}
		h.mu.Unlock()
		json.NewEncoder(w).Encode(wire.BatchResult{HubTime: time.Now(), Accepted: len(b.Events)})
	})
	mux.HandleFunc("POST "+wire.PathHeartbeat, func(w http.ResponseWriter, r *http.Request) {
		var hb wire.Heartbeat
		json.NewDecoder(r.Body).Decode(&hb)
		h.mu.Lock()
		h.beats = append(h.beats, hb)
		h.mu.Unlock()
		json.NewEncoder(w).Encode(wire.HeartbeatResult{HubTime: time.Now()})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestReportToHub: with report.url set, every audit record reaches the
// hub once, in order, with the chain's seq, hash and prev_hash, across a
// restart; a stop sends agent_stopped and a heartbeat saying so.
func TestReportToHub(t *testing.T) {
	h := &reportHub{ids: map[string]bool{}}
	srv := h.serve(t)
	e := newEnv(t, testConfig, kbd, camera, finger)
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("tok-1\n"), 0o600)
	e.cfg.Report.URL = srv.URL
	e.cfg.Report.TokenFile = tok
	for run := range 2 {
		r := e.start(Options{})
		r.stop(t)
		recs := e.records()
		h.mu.Lock()
		n, types, beats := len(h.events), h.types, h.beats
		h.mu.Unlock()
		if n != len(recs) {
			t.Fatalf("run %d: hub has %d events, the audit log %d records:\n%s", run, n, len(recs), dump(recs))
		}
		if types[0] != TypeAgentStarted || types[n-1] != TypeAgentStopped {
			t.Errorf("run %d: hub got %v", run, types)
		}
		if last := beats[len(beats)-1]; !last.Stopping || last.AssetID != "PC-TEST" || last.Host.Hostname == "" || last.Inventory.USBDevices == 0 {
			t.Errorf("run %d: last heartbeat %+v", run, last)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, ev := range h.events {
		if ev.Seq != uint64(i+1) {
			t.Errorf("event %d has seq %d", i, ev.Seq)
		}
		if i > 0 && ev.PrevHash != h.events[i-1].Hash {
			t.Errorf("event seq %d: prev_hash %s, the hash before is %s", ev.Seq, ev.PrevHash, h.events[i-1].Hash)
		}
	}
}
