package report

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/wire"
)

// TestUnauthorizedSaysHowToFix: the 401 line tells how to get a token
// for a new PC and for one already added, where to put it and its mode.
func TestUnauthorizedSaysHowToFix(t *testing.T) {
	h := newCountingHub(t, http.StatusUnauthorized)
	r, logs := stopReporter(t, h, nil)
	r.Start()
	emit(t, r, 0, 1)
	waitFor(t, "the 401 logged", func() bool { return count(logs.lines(), "what=batch", "status=401") >= 1 })
	r.Close()
	for _, want := range []string{"mamori-hub agent add NAME, or agent rotate NAME for a PC already added; write it to report.token_file, mode 600",
		"token_file=" + r.opts.Config.TokenFile} {
		if count(logs.lines(), "what=batch", "status=401", want) != 1 {
			t.Errorf("no 401 line says %q:\n%s", want, strings.Join(logs.lines(), "\n"))
		}
	}
}

// TestPolicyFailureLoggedOnce: a pull the hub refuses again and again
// (401, retried with backoff) is logged once; another failure is logged
// when it comes, and the first again after a pull went through.
func TestPolicyFailureLoggedOnce(t *testing.T) {
	var mu sync.Mutex
	status, pulls := http.StatusUnauthorized, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != wire.PathPolicy {
			json.NewEncoder(w).Encode(wire.HeartbeatResult{HubTime: time.Now()})
			return
		}
		mu.Lock()
		pulls++
		st := status
		mu.Unlock()
		if st == http.StatusNotModified {
			w.WriteHeader(st)
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(st)
		json.NewEncoder(w).Encode(wire.Problem{Title: http.StatusText(st), Status: st})
	}))
	t.Cleanup(srv.Close)
	h := &countingHub{srv: srv}
	r, logs := stopReporter(t, h, func(o *Options) { o.Backoff = fast })
	set := func(s int) {
		mu.Lock()
		status, pulls = s, 0
		mu.Unlock()
	}
	pulled := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return pulls >= n }
	}
	r.Start()
	defer r.Close()
	const refused = "the hub did not hand out its approved lists"
	waitFor(t, "6 refused pulls", pulled(6))
	if n := count(logs.lines(), refused, "status=401"); n != 1 {
		t.Errorf("%d lines for 6 pulls refused alike, want 1:\n%s", n, strings.Join(logs.lines(), "\n"))
	}
	set(http.StatusServiceUnavailable)
	waitFor(t, "3 pulls answered 503", pulled(3))
	if n := count(logs.lines(), refused, "status=503"); n != 1 {
		t.Errorf("%d lines for 503s, want 1", n)
	}
	set(http.StatusNotModified)
	waitFor(t, "a pull answered", pulled(1))
	set(http.StatusUnauthorized)
	r.policyPoke <- struct{}{}
	waitFor(t, "3 more pulls refused", pulled(3))
	if n := count(logs.lines(), refused, "status=401"); n != 2 {
		t.Errorf("%d lines for 401s before and after a pull that went through, want 2", n)
	}
}

// TestReachableAgainCountsTheQueue: the line saying the hub is back
// gives what was queued when it came back, not what is left after the
// batch it took (0 for a queue sent in one batch).
func TestReachableAgainCountsTheQueue(t *testing.T) {
	h := newCountingHub(t, http.StatusServiceUnavailable)
	r, logs := stopReporter(t, h, func(o *Options) { o.Backoff = fast; o.Config.BatchSize = 100 })
	r.Start()
	emit(t, r, 0, 20)
	waitFor(t, "a 503", func() bool { return h.counts()[wire.PathEvents] >= 1 })
	h.mu.Lock()
	h.status = 0
	h.mu.Unlock()
	waitFor(t, "the queue sent", func() bool { return r.q.Len() == 0 })
	r.Close()
	if n := count(logs.lines(), "hub reachable again", "queued=20"); n != 1 {
		t.Errorf("want one 'hub reachable again' with queued=20:\n%s", strings.Join(logs.lines(), "\n"))
	}
}
