package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub/store"
)

// TestPrune: events and violations received before the cut go, oldest
// first, limit rows of each table a call; later ones, devices and the
// agent's chain position stay.
func TestPrune(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		addAgent(t, s, "pc-01")
		old := append(chain("e", 1, 3), violationEvent("e-4", 4, "usb_unapproved", "old", "S1"))
		if _, err := s.Ingest(ctx, "pc-01", &store.Batch{Events: old}, t0); err != nil {
			t.Fatal(err)
		}
		later := t0.Add(72 * time.Hour)
		recent := append(chain("e", 5, 2), violationEvent("e-7", 7, "usb_unapproved", "new", "S2"))
		if _, err := s.Ingest(ctx, "pc-01", &store.Batch{Events: recent}, later); err != nil {
			t.Fatal(err)
		}
		cut := t0.Add(24 * time.Hour)
		ev, vi, err := s.Prune(ctx, cut, 3)
		if err != nil || ev != 3 || vi != 1 {
			t.Fatalf("first prune: %d events, %d violations, %v", ev, vi, err)
		}
		ev, vi, err = s.Prune(ctx, cut, 3)
		if err != nil || ev != 1 || vi != 0 {
			t.Fatalf("second prune: %d events, %d violations, %v", ev, vi, err)
		}
		ev, vi, err = s.Prune(ctx, cut, 3)
		if err != nil || ev != 0 || vi != 0 {
			t.Fatalf("third prune: %d events, %d violations, %v", ev, vi, err)
		}
		ids, err := s.EventIDs(ctx, "pc-01")
		if err != nil || len(ids) != 3 || ids[0] != "e-5" {
			t.Fatalf("left: %v %v", ids, err)
		}
		v := violations(t, s, store.ViolationFilter{})
		if len(v) != 1 || v[0].Message != "new" {
			t.Fatalf("violations left: %+v", v)
		}
		if d, err := s.Devices(ctx, store.DeviceFilter{}); err != nil || len(d) != 2 {
			t.Fatalf("devices: %+v %v", d, err)
		}
		if a, err := s.Agent(ctx, "pc-01"); err != nil || a.ChainSeq != 7 || a.ChainBroken {
			t.Fatalf("agent: %+v %v", a, err)
		}
		if _, _, err := s.Prune(ctx, cut, 0); err == nil {
			t.Fatal("limit 0 accepted")
		}
	})
}
