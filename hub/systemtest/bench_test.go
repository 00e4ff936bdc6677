package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/report"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/wire"
)

// benchAgents is how many simulated agents the benchmarks spread over.
const benchAgents = 1000

// BenchmarkIngest measures the hub's ingest from 1,000 simulated agents,
// each sending its queue in batches of agentBatch events (the agent's
// default batch size) over HTTP on loopback, 16 requests at a time, into
// SQLite and into PostgreSQL. One op is one batch; events/s is the
// figure (README: at least 50,000 events/s with SQLite on two cores).
func BenchmarkIngest(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) { benchIngest(b, dialect, agentBatch) })
	}
}

func benchIngest(b *testing.B, dialect string, batch int) {
	st := openStore(b, dialect)
	h := startInHub(b, st, "127.0.0.1:0")
	toks := addAgents(b, st, "pc", benchAgents)
	client := newClient(30 * time.Second)
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	client.Transport.(*http.Transport).MaxIdleConns = 64
	agents := make([]*simAgent, benchAgents)
	perAgent := (b.N + benchAgents - 1) / benchAgents
	for i := range agents {
		agents[i] = newSimAgent(fmt.Sprintf("pc-%d", i), toks[i], client)
	}
	// Only the agents that send get events (b.N batches in all).
	for k := range min(b.N, benchAgents) {
		agents[k].queue(perAgent * batch)
	}
	locks := make([]sync.Mutex, benchAgents)
	var next, busy atomic.Int64
	const workers = 16
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				k := next.Add(1) - 1
				if k >= int64(b.N) {
					return
				}
				i := int(k % benchAgents)
				locks[i].Lock()
				for {
					ok, ans := agents[i].sendOnce(context.Background(), h.URL, batch)
					if ok {
						break
					}
					if ans.status == http.StatusServiceUnavailable || ans.status == http.StatusTooManyRequests {
						busy.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					b.Errorf("batch: status %d: %v", ans.status, ans.err)
					break
				}
				locks[i].Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	events := float64(b.N) * float64(batch)
	b.ReportMetric(events/elapsed.Seconds(), "events/s")
	// CPU time of the whole process (hub and simulated agents) per
	// event: less sensitive than events/s to other work on the machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/events, "cpu-ns/event")
	b.ReportMetric(float64(elapsed.Nanoseconds())/events, "ns/event")
	b.ReportMetric(float64(busy.Load()), "busy-answers")
	var n int64
	if err := st.DB().QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil || n != int64(events) {
		b.Fatalf("the hub stored %d events, want %v (%v)", n, events, err)
	}
}

// heartbeatJSON is a heartbeat as the agent sends it.
func heartbeatJSON(i int) []byte {
	hb := wire.Heartbeat{Schema: wire.SchemaVersion, AssetID: fmt.Sprintf("PC-%05d", i), Version: "1.0.0", Time: time.Now(),
		Host: wire.HostFacts{Hostname: fmt.Sprintf("pc-%05d", i), OS: "linux", Platform: "debian", PlatformVersion: "12.8",
			KernelVersion: "6.1.0-28-amd64", BootTime: time.Now().Add(-time.Hour), HostID: "0e6b8bd4-5a4a-4b0e-8f43-97c0b5d7e0a1"},
		Inventory: wire.Inventory{USBDevices: 7, Volumes: 1, Interfaces: 2, LANDevices: 12}, PolicyVersion: 1}
	data, _ := json.Marshal(hb)
	return data
}

// BenchmarkHeartbeat measures heartbeats from 10,000 agents (each once a
// minute needs 167/s) over HTTP on loopback, 32 at a time: heartbeats/s
// and the latency of one (p50, p99) on SQLite and PostgreSQL. One op is
// one heartbeat.
func BenchmarkHeartbeat(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			const n = 10_000
			st := openStore(b, dialect)
			h := startInHub(b, st, "127.0.0.1:0")
			toks := addAgents(b, st, "pc", n)
			client := newClient(30 * time.Second)
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			client.Transport.(*http.Transport).MaxIdleConns = 64
			bodies := make([][]byte, n)
			agents := make([]*simAgent, n)
			for i := range n {
				bodies[i] = heartbeatJSON(i)
				agents[i] = newSimAgent(fmt.Sprintf("pc-%d", i), toks[i], client)
			}
			var next, busy atomic.Int64
			lat := make([]time.Duration, b.N)
			const workers = 32
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range workers {
				wg.Go(func() {
					for {
						k := next.Add(1) - 1
						if k >= int64(b.N) {
							return
						}
						i := int(k % n)
						for {
							var res wire.HeartbeatResult
							ans := agents[i].post(context.Background(), h.URL, wire.PathHeartbeat, bodies[i], &res)
							if ans.status == http.StatusServiceUnavailable {
								busy.Add(1)
								time.Sleep(10 * time.Millisecond)
								continue
							}
							if ans.err != nil || ans.status != http.StatusOK {
								b.Errorf("heartbeat: %d %v", ans.status, ans.err)
							}
							lat[k] = ans.latency
							break
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "heartbeats/s")
			b.ReportMetric(float64(percentile(lat, 50).Microseconds()), "p50-µs")
			b.ReportMetric(float64(percentile(lat, 99).Microseconds()), "p99-µs")
			b.ReportMetric(float64(busy.Load()), "busy-answers")
		})
	}
}

// commitClock is the hub's store with the time each event's row was
// committed, by seq, told on a channel.
type commitClock struct {
	store.Store
	committed chan uint64
}

func (c *commitClock) Ingest(ctx context.Context, agent string, b *store.Batch, now time.Time) (store.IngestResult, error) {
	res, err := c.Store.Ingest(ctx, agent, b, now)
	if err == nil {
		for _, e := range b.Events {
			c.committed <- e.Seq
		}
	}
	return res, err
}

// BenchmarkViolationToRow measures a violation's way from the agent to a
// row at the hub, with the hub up: the agent's hub sink (report.Reporter,
// its durable queue with group commit and fsync, its sender) posting to
// the real hub over loopback, which commits the row to SQLite (synchronous
// FULL). One op is one violation handed to the sink, timed until its row
// is committed; the next goes once it is. p50 and p99 are the figures.
func BenchmarkViolationToRow(b *testing.B) {
	st := openStore(b, "sqlite")
	toks := addAgents(b, st, "pc", 1)
	cc := &commitClock{Store: st, committed: make(chan uint64, 1024)}
	h := startInHub(b, cc, "127.0.0.1:0").URL
	dir := b.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(toks[0]+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	rep, err := report.New(report.Options{
		Config:    config.Report{URL: h, TokenFile: tokFile, HeartbeatInterval: time.Hour, BatchSize: agentBatch},
		StateDir:  dir,
		HostFacts: func(context.Context) (wire.HostFacts, error) { return wire.HostFacts{Hostname: "pc-0"}, nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	rep.Start()
	defer rep.Close()
	var ev wire.Event
	if err := json.Unmarshal(eventJSON(10, time.Now()), &ev); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, b.N)
	prev := ""
	b.ResetTimer()
	for i := range b.N {
		seq := uint64(i + 1)
		ev.Time = time.Now()
		raw, _ := json.Marshal(wire.NewRecord(&ev))
		hash := wire.RecordHash(seq, prev, raw)
		t0 := time.Now()
		if err := rep.HandleRecord(&ev, seq, hash, prev); err != nil {
			b.Fatal(err)
		}
		for got := range cc.committed {
			if got == seq {
				break
			}
		}
		lat[i] = time.Since(t0)
		prev = hash
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 99).Microseconds()), "p99-µs")
}
