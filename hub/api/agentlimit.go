package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mamori-agent/mamori/hub/store"
)

// Defaults of the per-agent limits (Options.AgentRate, AgentBurst,
// AgentInFlight). An agent sends one batch at a time, a heartbeat a
// minute and a policy poll beside them; catching up after an outage it
// sends batches back to back, which these allow at about 10,000 events/s
// (500 a batch). More is a broken or hostile agent (a token copied into a
// loop) taking the other PCs' share of the hub.
const (
	DefaultAgentRate     = 20 // requests per second, sustained
	DefaultAgentBurst    = 40
	DefaultAgentInFlight = 4
)

// agentIdle is how long an agent's limiter is kept after its last
// request.
const agentIdle = 5 * time.Minute

// agentLimits holds each agent's token bucket and requests in flight.
type agentLimits struct {
	rate     rate.Limit
	burst    int
	inFlight int

	mu        sync.Mutex
	agents    map[string]*agentLimit
	lastSweep time.Time
}

type agentLimit struct {
	lim      *rate.Limiter
	inFlight int
	last     time.Time
}

func newAgentLimits(perSecond float64, burst, inFlight int) *agentLimits {
	return &agentLimits{rate: rate.Limit(perSecond), burst: burst, inFlight: inFlight, agents: map[string]*agentLimit{}}
}

// admit takes a turn for agent at now: ok with a release func, or how
// long to wait before the next request would be admitted.
func (l *agentLimits) admit(agent string, now time.Time) (release func(), wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > agentIdle {
		for name, a := range l.agents {
			if a.inFlight == 0 && now.Sub(a.last) > agentIdle {
				delete(l.agents, name)
			}
		}
		l.lastSweep = now
	}
	a := l.agents[agent]
	if a == nil {
		a = &agentLimit{lim: rate.NewLimiter(l.rate, l.burst)}
		l.agents[agent] = a
	}
	a.last = now
	if a.inFlight >= l.inFlight {
		return nil, time.Second, false
	}
	r := a.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d, false
	}
	a.inFlight++
	return func() {
		l.mu.Lock()
		a.inFlight--
		l.mu.Unlock()
	}, 0, true
}

// limitAgent answers 429 with Retry-After to an agent over its limits
// (the agent's sender waits that long; see report.RetryAfter).
func (a *API) limitAgent(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, who store.Principal) {
		if who.Role != store.RoleAgent {
			h(w, r, who)
			return
		}
		release, wait, ok := a.limits.admit(who.Name, time.Now())
		if !ok {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			a.problem(w, http.StatusTooManyRequests, "too many requests from this agent; retry after "+strconv.Itoa(secs)+" s")
			return
		}
		defer release()
		h(w, r, who)
	}
}
