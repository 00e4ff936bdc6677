package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/report"
)

// TestReconnectStorm: the mamori-hub binary on SQLite and 1,000 simulated agents (each its own token, HTTP
// client and 20 queued events, chained) find the hub down, back off as
// the agent does (report.Backoff with its defaults: full jitter from 1 s
// up to 30 s, never shorter than Retry-After), and all come back when it
// comes up on the same address. The hub stays up (its /healthz answers
// throughout), answers every request within its budget with 200 or with
// 503/429 and Retry-After, and stores every event exactly once, each
// agent's in order.
func TestReconnectStorm(t *testing.T) {
	const (
		agents = 1000
		events = 20
		// budget bounds one answer: the hub waits api.DefaultIngestWait
		// (500 ms) for a turn before it answers 503; the rest is a
		// batch's storing and loopback HTTP.
		budget = 5 * time.Second
	)
	// The hub is the mamori-hub binary (not slowed by -race), down at
	// first: nothing listens on its address.
	h := newHubProc(t)
	st := h.store()
	toks := addAgents(t, st, "pc", agents)
	url := h.url()
	sims := make([]*simAgent, agents)
	for i := range sims {
		sims[i] = newSimAgent(fmt.Sprintf("pc-%d", i), toks[i], newClient(30*time.Second))
		sims[i].queue(events)
	}
	var (
		mu       sync.Mutex
		lats     []time.Duration
		codes    = map[int]int{}
		refused  atomic.Int64 // connection errors
		noRetry  atomic.Int64 // 503/429 without Retry-After
		upAt     atomic.Int64
		lateErrs atomic.Int64 // connection errors after the hub was up
	)
	seen := func(a answer) {
		if a.status == 0 {
			refused.Add(1)
			if up := upAt.Load(); up != 0 && time.Now().UnixNano() > up+int64(time.Second) {
				lateErrs.Add(1)
			}
			return
		}
		if (a.status == http.StatusServiceUnavailable || a.status == http.StatusTooManyRequests) && a.retryAfter <= 0 {
			noRetry.Add(1)
		}
		mu.Lock()
		codes[a.status]++
		lats = append(lats, a.latency)
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, agents)
	for _, a := range sims {
		wg.Go(func() {
			if err := a.drain(ctx, url, agentBatch, report.Backoff{}, seen); err != nil {
				errs <- err
			}
		})
	}
	// The outage: every agent's first try is refused.
	for refused.Load() < agents {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	h.start()
	// Up once it answers /healthz (starting the process and its
	// migrations can take over a second on a busy machine: refusals
	// meanwhile are still the outage).
	upAt.Store(time.Now().UnixNano())
	// The hub stays up through the storm.
	healthStop := make(chan struct{})
	var healthFail atomic.Int64
	var hwg sync.WaitGroup
	hwg.Go(func() {
		c := newClient(5 * time.Second)
		for {
			select {
			case <-healthStop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			resp, err := c.Get(url + "/healthz")
			if err != nil || resp.StatusCode != http.StatusOK {
				healthFail.Add(1)
			}
			if err == nil {
				resp.Body.Close()
			}
		}
	})
	wg.Wait()
	close(healthStop)
	hwg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	p50, p99, pmax := percentile(lats, 50), percentile(lats, 99), percentile(lats, 100)
	t.Logf("storm: %d agents × %d events back after the outage; all stored in %v; answers %v (p50 %v, p99 %v, max %v); %d connection errors before the hub was up, %d after",
		agents, events, elapsed.Round(time.Millisecond), codes, p50.Round(time.Millisecond), p99.Round(time.Millisecond),
		pmax.Round(time.Millisecond), refused.Load()-lateErrs.Load(), lateErrs.Load())
	for code := range codes {
		if code != http.StatusOK && code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
			t.Errorf("the hub answered %d %d times", code, codes[code])
		}
	}
	if noRetry.Load() > 0 {
		t.Errorf("%d busy answers without Retry-After", noRetry.Load())
	}
	if pmax > budget {
		t.Errorf("slowest answer %v, budget %v", pmax, budget)
	}
	if lateErrs.Load() > 0 {
		t.Errorf("%d connections failed after the hub was up", lateErrs.Load())
	}
	if healthFail.Load() > 0 {
		t.Errorf("/healthz failed %d times during the storm", healthFail.Load())
	}
	for _, a := range sims {
		a.checkExactlyOnce(t, storedEvents(t, st.DB(), a.name, false))
	}
}
