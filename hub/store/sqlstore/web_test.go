package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/wire"
)

func TestSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.SetStaffToken(ctx, "admin", "tok1", t0); err != nil {
			t.Fatal(err)
		}
		ss := store.Session{IDHash: "sid1", Staff: "admin", TokenHash: "tok1", CSRF: "c1", Created: t0, Expires: t0.Add(time.Hour)}
		if err := s.CreateSession(ctx, ss); err != nil {
			t.Fatal(err)
		}
		got, err := s.Session(ctx, "sid1", t0.Add(time.Minute))
		if err != nil || got.Staff != "admin" || got.CSRF != "c1" || !got.Expires.Equal(ss.Expires) {
			t.Fatalf("session %+v, %v", got, err)
		}
		if _, err := s.Session(ctx, "sid1", t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session: %v", err)
		}
		if _, err := s.Session(ctx, "nope", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown session: %v", err)
		}
		// A new session deletes the expired ones.
		if err := s.CreateSession(ctx, store.Session{IDHash: "sid2", Staff: "admin", TokenHash: "tok1", CSRF: "c2",
			Created: t0.Add(2 * time.Hour), Expires: t0.Add(3 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		var n int
		s.DB().QueryRow(`SELECT count(*) FROM sessions`).Scan(&n)
		if n != 1 {
			t.Fatalf("%d sessions left, want 1", n)
		}
		// Replacing the staff token ends its sessions.
		if err := s.SetStaffToken(ctx, "admin", "tok2", t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Session(ctx, "sid2", t0.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session of a replaced token: %v", err)
		}
		if err := s.DeleteSession(ctx, "sid2"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSession(ctx, "sid2"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAgentCounts(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, n := range []string{"ok", "silent", "never", "stopped", "revoked", "broken"} {
			if err := s.CreateAgent(ctx, n, "h-"+n, t0); err != nil {
				t.Fatal(err)
			}
		}
		now := t0.Add(time.Hour)
		s.Heartbeat(ctx, "ok", &wire.Heartbeat{}, now.Add(-10*time.Minute)) // exactly silentAfter: ok
		s.Heartbeat(ctx, "silent", &wire.Heartbeat{}, now.Add(-11*time.Minute))
		s.Heartbeat(ctx, "stopped", &wire.Heartbeat{Stopping: true}, now.Add(-time.Minute))
		s.Heartbeat(ctx, "revoked", &wire.Heartbeat{}, now)
		s.RevokeAgent(ctx, "revoked")
		mustIngest(t, s, "broken", chain("b", 1, 2))
		r, err := s.Ingest(ctx, "broken", &store.Batch{Events: chain("b", 5, 1)}, now)
		if err != nil || !r.ChainBroken || r.Kinds[wire.KindAuditChainBroken] != 1 {
			t.Fatalf("ingest %+v, %v", r, err)
		}
		c, err := s.AgentCounts(ctx, now, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if want := (store.AgentCounts{OK: 2, Silent: 2, Stopped: 1, ChainBroken: 1}); c != want {
			t.Fatalf("counts %+v, want %+v", c, want)
		}
		// They agree with Agent.State.
		agents, _ := s.Agents(ctx)
		var byState store.AgentCounts
		for _, a := range agents {
			if a.Revoked {
				continue
			}
			switch a.State(now, 10*time.Minute) {
			case store.StateOK:
				byState.OK++
			case store.StateSilent:
				byState.Silent++
			case store.StateStopped:
				byState.Stopped++
			}
			if a.ChainBroken {
				byState.ChainBroken++
			}
		}
		if byState != c {
			t.Fatalf("Agent.State gives %+v, AgentCounts %+v", byState, c)
		}
	})
}

func TestViolationCountsAndNewest(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s.CreateAgent(ctx, "pc", "h", t0)
		// violationEvent times are t0 + seq seconds.
		var evs []store.Event
		for i := uint64(1); i <= 5; i++ {
			kind := wire.KindUSBStorageUnapproved
			if i == 4 {
				kind = wire.KindMediaUnencrypted
			}
			evs = append(evs, violationEvent("v"+string(rune('0'+i)), i, kind, "m", "S"))
		}
		r := mustIngest(t, s, "pc", evs)
		if r.Kinds[wire.KindUSBStorageUnapproved] != 4 || r.Kinds[wire.KindMediaUnencrypted] != 1 {
			t.Fatalf("kinds %v", r.Kinds)
		}
		b, err := s.ViolationCounts(ctx, t0, t0.Add(5*time.Second), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// [0,2): seq 1; [2,4): seq 2, 3; [4,5): seq 4 (media); seq 5 is at until.
		want := []store.ViolationBucket{
			{Start: t0, Kind: wire.KindUSBStorageUnapproved, Count: 1},
			{Start: t0.Add(2 * time.Second), Kind: wire.KindUSBStorageUnapproved, Count: 2},
			{Start: t0.Add(4 * time.Second), Kind: wire.KindMediaUnencrypted, Count: 1},
		}
		if len(b) != len(want) {
			t.Fatalf("buckets %+v", b)
		}
		for i := range want {
			if !b[i].Start.Equal(want[i].Start) || b[i].Kind != want[i].Kind || b[i].Count != want[i].Count {
				t.Fatalf("bucket %d: %+v, want %+v", i, b[i], want[i])
			}
		}
		rows, err := s.Violations(ctx, store.ViolationFilter{Newest: true, Limit: 2})
		if err != nil || len(rows) != 2 || rows[0].EventID != "v5" || rows[1].EventID != "v4" {
			t.Fatalf("newest %+v, %v", rows, err)
		}
		rows, err = s.Violations(ctx, store.ViolationFilter{Newest: true, Before: rows[1].ID})
		if err != nil || len(rows) != 3 || rows[0].EventID != "v3" {
			t.Fatalf("before %+v, %v", rows, err)
		}
	})
}
