package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/hub/store/sqlstore"
	"github.com/mamori-agent/mamori/wire"
)

// TestPruneRetention: a hub with retention 30d deletes, in chunks, the
// events received more than 30 days before its clock, counts them in
// mamori_hub_pruned_records_total, and keeps the rest; retention 0 deletes
// nothing.
func TestPruneRetention(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateAgent(ctx, "pc-01", "h1", time.Now()); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	mk := func(from, n int) []store.Event {
		var out []store.Event
		for i := from; i < from+n; i++ {
			ev := wire.Event{Time: now, Type: wire.TypeDeviceAdded, Source: wire.SourceUSB}
			raw, _ := json.Marshal(ev)
			out = append(out, store.Event{ID: fmt.Sprint("e-", i), Seq: uint64(i), Hash: fmt.Sprint("h", i),
				PrevHash: fmt.Sprint("h", i-1), Raw: raw, Event: ev})
		}
		return out
	}
	// 12,000 events 40 days old (more than two chunks), 10 a day old.
	for b := range 12 {
		if _, err := st.Ingest(ctx, "pc-01", &store.Batch{Events: mk(1+b*1000, 1000)}, now.Add(-40*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Ingest(ctx, "pc-01", &store.Batch{Events: mk(12001, 10)}, now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	keep := New(&Config{Retention: 0, SilentAfter: time.Minute}, st, nil, WithClock(func() time.Time { return now }))
	if ev, _ := keep.Prune(ctx); ev != 0 {
		t.Fatalf("retention 0 pruned %d events", ev)
	}
	h := New(&Config{Retention: 30 * 24 * time.Hour, SilentAfter: time.Minute}, st, nil, WithClock(func() time.Time { return now }))
	if ev, vi := h.Prune(ctx); ev != 12000 || vi != 0 {
		t.Fatalf("pruned %d events, %d violations; want 12000, 0", ev, vi)
	}
	ids, err := st.EventIDs(ctx, "pc-01")
	if err != nil || len(ids) != 10 || ids[0] != "e-12001" {
		t.Fatalf("left %d events (%v)", len(ids), err)
	}
	// A clock set ten years ahead would delete everything: nothing.
	future := New(&Config{Retention: 30 * 24 * time.Hour, SilentAfter: time.Minute}, st, nil,
		WithClock(func() time.Time { return now.AddDate(10, 0, 0) }))
	if ev, vi := future.Prune(ctx); ev != 0 || vi != 0 {
		t.Fatalf("a clock 10 years ahead pruned %d events, %d violations", ev, vi)
	}
	// Rows stored while the clock ran ahead come first by id; older rows
	// stored after the clock was set right are pruned all the same.
	if _, err := st.Ingest(ctx, "pc-01", &store.Batch{Events: mk(13001, 5)}, now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Ingest(ctx, "pc-01", &store.Batch{Events: mk(13006, 5)}, now.Add(-60*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ev, _ := h.Prune(ctx); ev != 5 {
		t.Fatalf("after the clock was set right: pruned %d, want 5", ev)
	}
	want := `
# HELP mamori_hub_pruned_records_total Records deleted because they were older than the config's retention, by table (events, violations).
# TYPE mamori_hub_pruned_records_total counter
mamori_hub_pruned_records_total{table="events"} 12005
mamori_hub_pruned_records_total{table="violations"} 0
`
	if err := testutil.GatherAndCompare(h.Metrics().Registry(), strings.NewReader(want), "mamori_hub_pruned_records_total"); err != nil {
		t.Fatal(err)
	}
}
