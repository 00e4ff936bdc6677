package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/wire"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopPostgres()
	os.Exit(code)
}

// openers are the databases the suite runs against.
var openers = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "hub.db") }},
	{"postgres", postgresDSN},
}

// eachStore runs f against a fresh store of every dialect.
func eachStore(t *testing.T, f func(t *testing.T, s *Store)) {
	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			s, err := Open(context.Background(), o.dsn(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			f(t, s)
		})
	}
}

var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// chain makes n events of a chain from seq start (hashes "h<seq>"), ids
// prefix-<seq>.
func chain(prefix string, start uint64, n int) []store.Event {
	var out []store.Event
	for i := range n {
		seq := start + uint64(i)
		ev := wire.Event{Time: t0.Add(time.Duration(seq) * time.Second), Type: wire.TypeDeviceRemoved, Source: wire.SourceUSB}
		raw, _ := json.Marshal(ev)
		out = append(out, store.Event{
			ID: fmt.Sprintf("%s-%d", prefix, seq), Seq: seq, Hash: fmt.Sprintf("h%d", seq),
			PrevHash: fmt.Sprintf("h%d", seq-1), Raw: raw, Event: ev,
		})
	}
	return out
}

// violationEvent is an event carrying a violation about a USB device.
func violationEvent(id string, seq uint64, kind, msg, serial string) store.Event {
	ev := wire.Event{
		Time: t0.Add(time.Duration(seq) * time.Second), Type: wire.TypeViolation, Source: wire.SourceUSB,
		VendorID: "0781", ProductID: "5567", Serial: &serial,
		Violation: &wire.Violation{Kind: kind, Device: "1-4", Severity: wire.SeverityHigh, Article: "6, 7", Message: msg},
	}
	raw, _ := json.Marshal(ev)
	return store.Event{ID: id, Seq: seq, Hash: fmt.Sprintf("h%d", seq), PrevHash: fmt.Sprintf("h%d", seq-1), Raw: raw, Event: ev}
}

func mustIngest(t *testing.T, s *Store, agent string, evs []store.Event) store.IngestResult {
	t.Helper()
	r, err := s.Ingest(context.Background(), agent, &store.Batch{AssetID: "A-" + agent, Events: evs}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func addAgent(t *testing.T, s *Store, name string) {
	t.Helper()
	if err := s.CreateAgent(context.Background(), name, "hash-of-"+name, t0); err != nil {
		t.Fatal(err)
	}
}

func violations(t *testing.T, s *Store, f store.ViolationFilter) []store.Violation {
	t.Helper()
	v, err := s.Violations(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		addAgent(t, s, "pc-01")
		if err := s.CreateAgent(ctx, "pc-01", "other", t0); !errors.Is(err, store.ErrExists) {
			t.Fatalf("second add: %v, want ErrExists", err)
		}
		p, err := s.Authenticate(ctx, "hash-of-pc-01")
		if err != nil || p != (store.Principal{Name: "pc-01", Role: store.RoleAgent}) {
			t.Fatalf("agent: %v %v", p, err)
		}
		if err := s.SetStaffToken(ctx, "admin", "staff1", t0); err != nil {
			t.Fatal(err)
		}
		if p, err := s.Authenticate(ctx, "staff1"); err != nil || p.Role != store.RoleStaff || p.Name != "admin" {
			t.Fatalf("staff: %v %v", p, err)
		}
		// A new token for the same name replaces the old one.
		if err := s.SetStaffToken(ctx, "admin", "staff2", t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, "staff1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("replaced staff token: %v", err)
		}
		if err := s.RevokeAgent(ctx, "pc-01"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, "hash-of-pc-01"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoked: %v", err)
		}
		if err := s.RevokeAgent(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
		if _, err := s.Authenticate(ctx, "nothing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		a, err := s.Agent(ctx, "pc-01")
		if err != nil || !a.Revoked {
			t.Fatalf("agent row: %+v %v", a, err)
		}
	})
}

func TestIngestDedupeAndOrder(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		addAgent(t, s, "pc-01")
		addAgent(t, s, "pc-02")
		evs := chain("a", 1, 5)
		if r := mustIngest(t, s, "pc-01", evs); r.Accepted != 5 || r.Duplicates != 0 || r.ChainBroken {
			t.Fatalf("first: %+v", r)
		}
		if r := mustIngest(t, s, "pc-01", evs); r.Accepted != 0 || r.Duplicates != 5 || r.ChainBroken {
			t.Fatalf("same batch again: %+v", r)
		}
		// A retry overlapping what was stored, then the rest.
		more := chain("a", 4, 6)
		if r := mustIngest(t, s, "pc-01", more); r.Accepted != 4 || r.Duplicates != 2 || r.ChainBroken {
			t.Fatalf("overlap: %+v", r)
		}
		// An id twice in one batch, beside a new one and an old one: the
		// first of the two is stored.
		twice := append(chain("a", 10, 2), chain("a", 10, 1)...)
		twice = append(twice, chain("a", 9, 1)...)
		if r := mustIngest(t, s, "pc-01", twice); r.Accepted != 2 || r.Duplicates != 2 || r.ChainBroken {
			t.Fatalf("an id twice: %+v", r)
		}
		// The same ids from another agent are that agent's own.
		if r := mustIngest(t, s, "pc-02", chain("a", 1, 3)); r.Accepted != 3 {
			t.Fatalf("other agent: %+v", r)
		}
		ids, err := s.EventIDs(ctx, "pc-01")
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for i := 1; i <= 11; i++ {
			want = append(want, fmt.Sprintf("a-%d", i))
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("ids %v, want %v", ids, want)
		}
		a, err := s.Agent(ctx, "pc-01")
		if err != nil {
			t.Fatal(err)
		}
		if a.ChainSeq != 11 || a.ChainHash != "h11" || a.ChainBroken || a.AssetID != "A-pc-01" || !a.LastSeen.Equal(t0) {
			t.Fatalf("agent %+v", a)
		}
		if v := violations(t, s, store.ViolationFilter{}); len(v) != 0 {
			t.Fatalf("violations %+v", v)
		}
	})
}

// TestIngestConcurrent sends the same batches at once from many
// goroutines: each event is stored once, in order.
func TestIngestConcurrent(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		addAgent(t, s, "pc-01")
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for b := range 5 {
					_, err := s.Ingest(context.Background(), "pc-01",
						&store.Batch{Events: chain("c", uint64(1+b*10), 10)}, t0)
					if err != nil {
						t.Errorf("goroutine %d: %v", g, err)
						return
					}
				}
			})
		}
		wg.Wait()
		ids, err := s.EventIDs(context.Background(), "pc-01")
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 50 {
			t.Fatalf("%d events stored, want 50", len(ids))
		}
		for i, id := range ids {
			if id != fmt.Sprintf("c-%d", i+1) {
				t.Fatalf("event %d is %s", i, id)
			}
		}
		if v := violations(t, s, store.ViolationFilter{}); len(v) != 0 {
			t.Fatalf("violations %+v", v)
		}
	})
}

// TestIngestGroup: batches committed together each get their own result;
// one that fails is left out alone, the others are stored.
func TestIngestGroup(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		addAgent(t, s, "pc-01")
		addAgent(t, s, "pc-02")
		group := []*groupReq{
			newGroupReq("pc-01", &store.Batch{Events: chain("a", 1, 3)}, t0),
			newGroupReq("nobody", &store.Batch{Events: chain("n", 1, 3)}, t0),
			newGroupReq("pc-02", &store.Batch{Events: chain("b", 1, 2)}, t0),
			newGroupReq("pc-01", &store.Batch{Events: chain("a", 4, 2)}, t0),
		}
		s.commitGroup(group)
		for i, r := range group {
			<-r.done
			if (r.err != nil) != (i == 1) {
				t.Fatalf("batch %d: %v", i, r.err)
			}
		}
		if !errors.Is(group[1].err, store.ErrNotFound) {
			t.Fatalf("unknown agent: %v", group[1].err)
		}
		if group[0].res.Accepted != 3 || group[2].res.Accepted != 2 || group[3].res.Accepted != 2 {
			t.Fatalf("results %+v %+v %+v", group[0].res, group[2].res, group[3].res)
		}
		for agent, want := range map[string]int{"pc-01": 5, "pc-02": 2, "nobody": 0} {
			ids, err := s.EventIDs(context.Background(), agent)
			if err != nil || len(ids) != want {
				t.Fatalf("%s: %d events, want %d (%v)", agent, len(ids), want, err)
			}
		}
		// The second batch of pc-01 continued the chain the first left
		// in the same transaction.
		if a, err := s.Agent(context.Background(), "pc-01"); err != nil || a.ChainBroken || a.ChainSeq != 5 {
			t.Fatalf("pc-01: %+v %v", a, err)
		}
	})
}

func TestChainBroken(t *testing.T) {
	cases := []struct {
		name string
		next func() []store.Event
		want string
	}{
		{"gap", func() []store.Event { return chain("a", 8, 2) }, "audit records 6 to 7 are missing"},
		{"prev hash", func() []store.Event {
			e := chain("a", 6, 2)
			e[0].PrevHash = "forged"
			return e
		}, "does not continue record 5"},
		{"restored old copy, new ids", func() []store.Event { return chain("b", 3, 2) }, "the chain went back"},
		{"restored old copy, same ids", func() []store.Event {
			e := chain("a", 4, 3)
			for i := range e {
				e[i].Hash += "x"
			}
			return e
		}, "another hash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s *Store) {
				ctx := context.Background()
				addAgent(t, s, "pc-01")
				addAgent(t, s, "pc-02")
				mustIngest(t, s, "pc-01", chain("a", 1, 5))
				mustIngest(t, s, "pc-02", chain("a", 1, 5))
				r := mustIngest(t, s, "pc-01", c.next())
				if !r.ChainBroken {
					t.Fatalf("result %+v, want chain broken", r)
				}
				v := violations(t, s, store.ViolationFilter{Kind: wire.KindAuditChainBroken})
				if len(v) != 1 {
					t.Fatalf("violations %+v", v)
				}
				got := v[0]
				if got.Agent != "pc-01" || got.Severity != wire.SeverityCritical || got.Article != "5" ||
					!strings.Contains(got.Message, c.want) || got.AssetID != "A-pc-01" || !got.Time.Equal(t0) {
					t.Fatalf("violation %+v, want message with %q", got, c.want)
				}
				a, _ := s.Agent(ctx, "pc-01")
				if !a.ChainBroken || a.Chain() != store.ChainBroken {
					t.Fatalf("agent %+v", a)
				}
				b, _ := s.Agent(ctx, "pc-02")
				if b.ChainBroken {
					t.Fatal("the other agent's chain is broken too")
				}
			})
		})
	}
}

func TestViolationsAndDevices(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		addAgent(t, s, "pc-01")
		addAgent(t, s, "pc-02")
		hostile := "<script>alert(1)</script>\x1b[31m\u202e=cmd|' /C calc'!A0\x00\xff"
		mustIngest(t, s, "pc-01", []store.Event{
			violationEvent("v-1", 1, wire.KindUSBStorageUnapproved, "first", "SN1"),
			violationEvent("v-2", 2, wire.KindUSBDeviceUnapproved, hostile, hostile),
		})
		mustIngest(t, s, "pc-02", []store.Event{violationEvent("w-1", 1, wire.KindUSBStorageUnapproved, "x", "SN1")})
		mustIngest(t, s, "pc-01", []store.Event{violationEvent("v-3", 3, wire.KindUSBStorageUnapproved, "again", "SN1")})

		all := violations(t, s, store.ViolationFilter{})
		if len(all) != 4 {
			t.Fatalf("%d violations", len(all))
		}
		v := all[0]
		if v.EventID != "v-1" || v.Agent != "pc-01" || v.AssetID != "A-pc-01" || v.Kind != wire.KindUSBStorageUnapproved ||
			v.Severity != wire.SeverityHigh || v.Article != "6, 7" || v.Device != "1-4" || v.VendorID != "0781" ||
			v.ProductID != "5567" || v.Serial != "SN1" || v.Message != "first" || !v.Time.Equal(t0.Add(time.Second)) {
			t.Fatalf("violation %+v", v)
		}
		want := strings.ToValidUTF8(strings.ReplaceAll(hostile, "\x00", "\uFFFD"), "\uFFFD")
		if all[1].Message != want || all[1].Serial != want {
			t.Fatalf("hostile message %q, want %q", all[1].Message, want)
		}
		// Filters and paging.
		if got := violations(t, s, store.ViolationFilter{Agent: "pc-01"}); len(got) != 3 {
			t.Fatalf("by agent: %d", len(got))
		}
		if got := violations(t, s, store.ViolationFilter{Kind: wire.KindUSBStorageUnapproved}); len(got) != 3 {
			t.Fatalf("by kind: %d", len(got))
		}
		got := violations(t, s, store.ViolationFilter{Since: t0.Add(2 * time.Second), Until: t0.Add(3 * time.Second)})
		if len(got) != 1 || got[0].EventID != "v-2" {
			t.Fatalf("by time: %+v", got)
		}
		var paged []string
		for after := int64(0); ; {
			page := violations(t, s, store.ViolationFilter{After: after, Limit: 3})
			for _, v := range page {
				paged = append(paged, v.EventID)
				after = v.ID
			}
			if len(page) < 3 {
				break
			}
		}
		if !slices.Equal(paged, []string{"v-1", "v-2", "w-1", "v-3"}) {
			t.Fatalf("paged %v", paged)
		}

		devs, err := s.Devices(ctx, store.DeviceFilter{Serial: "SN1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) != 2 || devs[0].Agent != "pc-01" || devs[0].Count != 2 || devs[1].Agent != "pc-02" ||
			!devs[0].FirstSeen.Equal(t0.Add(time.Second)) || !devs[0].LastSeen.Equal(t0.Add(3*time.Second)) {
			t.Fatalf("devices %+v", devs)
		}
		all2, err := s.Devices(ctx, store.DeviceFilter{})
		if err != nil || len(all2) != 3 {
			t.Fatalf("all devices %+v %v", all2, err)
		}
	})
}

func TestHeartbeat(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		addAgent(t, s, "pc-01")
		a, _ := s.Agent(ctx, "pc-01")
		if st := a.State(t0, time.Minute); st != store.StateSilent {
			t.Fatalf("never seen: %s", st)
		}
		hb := &wire.Heartbeat{Schema: wire.SchemaVersion, AssetID: "A-1", Version: "1.2",
			Host: wire.HostFacts{Hostname: "pc01", OS: "linux", HostID: "abc", BootTime: t0.Add(-time.Hour)}, Queue: 7, PolicyVersion: 3}
		if err := s.Heartbeat(ctx, "pc-01", hb, t0); err != nil {
			t.Fatal(err)
		}
		a, _ = s.Agent(ctx, "pc-01")
		if a.State(t0.Add(30*time.Second), time.Minute) != store.StateOK || a.State(t0.Add(2*time.Minute), time.Minute) != store.StateSilent {
			t.Fatalf("states of %+v", a)
		}
		if a.Host != hb.Host || a.Queue != 7 || a.PolicyVersion != 3 || a.Version != "1.2" || a.AssetID != "A-1" {
			t.Fatalf("agent %+v", a)
		}
		hb.Stopping = true
		if err := s.Heartbeat(ctx, "pc-01", hb, t0); err != nil {
			t.Fatal(err)
		}
		a, _ = s.Agent(ctx, "pc-01")
		if a.State(t0.Add(time.Hour), time.Minute) != store.StateStopped {
			t.Fatalf("stopping: %+v", a)
		}
		if err := s.Heartbeat(ctx, "nobody", hb, t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown agent: %v", err)
		}
		list, err := s.Agents(ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("agents %v %v", list, err)
		}
	})
}

func TestPolicy(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.Policy(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("no policy: %v", err)
		}
		p1, err := s.SetPolicy(ctx, "usb: []\n", "alice", t0)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := s.SetPolicy(ctx, "usb:\n  - name: x\n", "bob", t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if p2.Version <= p1.Version {
			t.Fatalf("versions %d then %d", p1.Version, p2.Version)
		}
		got, err := s.Policy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != p2 || got.ChangedBy != "bob" || len(got.Digest) != 64 {
			t.Fatalf("policy %+v, want %+v", got, p2)
		}
	})
}

// TestReopen opens a database twice: migrations run once, the data stays.
func TestReopen(t *testing.T) {
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "hub.db")
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	addAgent(t, s, "pc-01")
	s.Close()
	s, err = Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Agent(context.Background(), "pc-01"); err != nil {
		t.Fatal(err)
	}
	var mode, sync string
	s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode)
	s.DB().QueryRow("PRAGMA synchronous").Scan(&sync)
	if mode != "wal" || sync != "2" {
		t.Fatalf("journal_mode %s synchronous %s, want wal and 2 (FULL)", mode, sync)
	}
}

func TestOpenBadDSN(t *testing.T) {
	for _, dsn := range []string{"", "mysql://x", "sqlite://", "sqlite:///a?b"} {
		if _, err := Open(context.Background(), dsn); err == nil {
			t.Errorf("%q: no error", dsn)
		}
	}
}

func TestRebind(t *testing.T) {
	if got := postgresDialect.rebind("a = ? AND b = ?"); got != "a = $1 AND b = $2" {
		t.Fatal(got)
	}
}
