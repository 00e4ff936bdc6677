// Package metrics is mamori-hub's own Prometheus metrics, on a registry
// of their own (served at /metrics without a token: restrict who reaches
// it by the hub's listen address or a firewall).
//
// Counters are kept per hub process; the gauges about agents are
// computed from the store at each scrape (one grouped query), so every
// hub on one PostgreSQL reports the same agents. Labels never carry what
// an agent sends as is: a kind that is not in wire's kinds table counts
// as "other", so an agent cannot grow the series without bound.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/wire"
)

// Reasons of mamori_hub_ingest_errors_total.
const (
	ReasonBadRequest   = "bad_request"  // 400: broken JSON, a bad id or field
	ReasonTooLarge     = "too_large"    // 413: body or batch too large
	ReasonUnauthorized = "unauthorized" // 401: no, unknown or revoked token
	ReasonForbidden    = "forbidden"    // 403: a staff token on an agent path
	ReasonInternal     = "internal"     // 5xx but 503: the store failed
)

// OtherKind is the kind label of a violation kind not in wire's table.
const OtherKind = "other"

// scrapeTimeout bounds the store query of one scrape.
const scrapeTimeout = 5 * time.Second

// Metrics is the hub's metrics. A nil *Metrics records nothing.
type Metrics struct {
	reg        *prometheus.Registry
	violations *prometheus.CounterVec
	events     prometheus.Counter
	duplicates prometheus.Counter
	errors     *prometheus.CounterVec
	duration   prometheus.Histogram
	rejected   *prometheus.CounterVec
	breaks     prometheus.Counter
	pruned     *prometheus.CounterVec
}

// New returns the hub's metrics, with the gauges about agents read from
// st at each scrape (agents silent after silentAfter; now is the clock,
// time.Now when nil).
func New(st store.Stats, silentAfter time.Duration, now func() time.Time, logger *slog.Logger) *Metrics {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_hub_violations_ingested_total",
			Help: "Violations stored, by kind (audit_chain_broken raised by the hub included; unknown kinds as other).",
		}, []string{"kind"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_hub_events_ingested_total",
			Help: "Events stored (duplicates not counted).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_hub_ingest_duplicates_total",
			Help: "Events received again that were stored before (an agent retrying a batch whose answer it lost).",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_hub_ingest_errors_total",
			Help: "Agent requests (events, heartbeats) refused or failed, by reason.",
		}, []string{"reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mamori_hub_ingest_duration_seconds",
			Help:    "Time to handle one POST of events admitted to ingest, from decoding its body (read before) to the answer.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_hub_requests_rejected_total",
			Help: "Requests turned away because the hub was busy, by status code (429, 503), each with Retry-After.",
		}, []string{"code"}),
		breaks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_hub_chain_breaks_total",
			Help: "Batches that did not continue their agent's audit chain (each raised audit_chain_broken).",
		}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_hub_pruned_records_total",
			Help: "Records deleted because they were older than the config's retention, by table (events, violations).",
		}, []string{"table"}),
	}
	for _, t := range []string{"events", "violations"} {
		m.pruned.WithLabelValues(t)
	}
	for _, k := range append(wire.KindNames(), wire.KindAuditChainBroken, OtherKind) {
		m.violations.WithLabelValues(k)
	}
	for _, r := range []string{ReasonBadRequest, ReasonTooLarge, ReasonUnauthorized, ReasonForbidden, ReasonInternal} {
		m.errors.WithLabelValues(r)
	}
	for _, c := range []string{"429", "503"} {
		m.rejected.WithLabelValues(c)
	}
	m.reg.MustRegister(m.violations, m.events, m.duplicates, m.errors, m.duration, m.rejected, m.breaks, m.pruned,
		&agentCollector{st: st, silentAfter: silentAfter, now: now, logger: logger},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Pruned counts records of table deleted past retention.
func (m *Metrics) Pruned(table string, n int64) {
	if m == nil {
		return
	}
	m.pruned.WithLabelValues(table).Add(float64(n))
}

// Registry returns the hub's registry.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Ingested records a batch stored: res as the store returned it.
func (m *Metrics) Ingested(res store.IngestResult) {
	if m == nil {
		return
	}
	m.events.Add(float64(res.Accepted))
	m.duplicates.Add(float64(res.Duplicates))
	if res.ChainBroken {
		m.breaks.Inc()
	}
	for k, n := range res.Kinds {
		if _, ok := wire.KindOf(k); !ok && k != wire.KindAuditChainBroken {
			k = OtherKind
		}
		m.violations.WithLabelValues(k).Add(float64(n))
	}
}

// IngestDuration records the time one POST of events took.
func (m *Metrics) IngestDuration(d time.Duration) {
	if m == nil {
		return
	}
	m.duration.Observe(d.Seconds())
}

// IngestStatus records the status of an answer to an agent request:
// errors by reason, 429 and 503 as rejected.
func (m *Metrics) IngestStatus(status int) {
	if m == nil || status < 400 {
		return
	}
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		m.rejected.WithLabelValues(strconv.Itoa(status)).Inc()
	case http.StatusUnauthorized:
		m.errors.WithLabelValues(ReasonUnauthorized).Inc()
	case http.StatusForbidden:
		m.errors.WithLabelValues(ReasonForbidden).Inc()
	case http.StatusRequestEntityTooLarge:
		m.errors.WithLabelValues(ReasonTooLarge).Inc()
	default:
		if status >= 500 {
			m.errors.WithLabelValues(ReasonInternal).Inc()
		} else {
			m.errors.WithLabelValues(ReasonBadRequest).Inc()
		}
	}
}

var (
	agentsDesc = prometheus.NewDesc("mamori_hub_agents",
		"Agents not revoked, by state: ok, silent (nothing heard for silent_after, or never), stopped (a clean stop).",
		[]string{"state"}, nil)
	chainBrokenDesc = prometheus.NewDesc("mamori_hub_agents_chain_broken",
		"Agents not revoked whose audit chain was once broken.", nil, nil)
)

// agentCollector reads the gauges about agents from the store at each
// scrape.
type agentCollector struct {
	st          store.Stats
	silentAfter time.Duration
	now         func() time.Time
	logger      *slog.Logger
}

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- agentsDesc
	ch <- chainBrokenDesc
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	n, err := c.st.AgentCounts(ctx, c.now(), c.silentAfter)
	if err != nil {
		// The series go missing for this scrape (absent() alerts on it);
		// the rest of the metrics are still served.
		c.logger.Error("metrics: count agents", "err", err)
		ch <- prometheus.NewInvalidMetric(agentsDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(n.OK), store.StateOK)
	ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(n.Silent), store.StateSilent)
	ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(n.Stopped), store.StateStopped)
	ch <- prometheus.MustNewConstMetric(chainBrokenDesc, prometheus.GaugeValue, float64(n.ChainBroken))
}
