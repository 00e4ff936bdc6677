package report

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shirou/gopsutil/v4/host"

	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/fsguard"
	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/wire"
)

// maxAnswer is the most of a hub answer read.
const maxAnswer = 1 << 20

// checkURL accepts https, or http for a loopback host only.
func checkURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("report: hub URL %q: want https://host[:port]", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !config.IsLoopbackHost(u.Hostname()) {
			return "", fmt.Errorf("report: hub URL %q: http:// is allowed only for a loopback host", s)
		}
	default:
		return "", fmt.Errorf("report: hub URL %q: want https://", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// reloadToken reads token_file again after the hub refused the token in
// use, and takes the file's token when it differs: a token rotated on the
// hub (mamori-hub agent rotate) and written to the file works without a
// restart. It reports whether the token changed; a file that cannot be
// read (or that others can now read or write) keeps the old token.
func (r *Reporter) reloadToken() bool {
	tok, err := readToken(r.opts.Config.TokenFile)
	if err != nil {
		r.log.Error("report.token_file cannot be read again; keeping the token in use", "err", err)
		return false
	}
	if old := r.token.Load(); old != nil && *old == tok {
		return false
	}
	r.token.Store(&tok)
	r.log.Info("report.token_file holds a new token; using it")
	return true
}

// newClient makes the HTTP client: the pinned CA, the client certificate,
// no redirects (the token must not follow one), bounded timeouts.
func newClient(c config.Report, timeout time.Duration) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := fsguard.ReadFile(c.CAFile, 1<<20)
		if err != nil {
			return nil, fmt.Errorf("report ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("report ca_file %s: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if err := checkKeyFile(c.KeyFile); err != nil {
			return nil, err
		}
		certPEM, err := fsguard.ReadFile(c.CertFile, 1<<20)
		if err != nil {
			return nil, fmt.Errorf("report cert_file: %w", err)
		}
		keyPEM, err := fsguard.ReadFile(c.KeyFile, 1<<20)
		if err != nil {
			return nil, fmt.Errorf("report key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("report cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// verdict is what became of a request.
type verdict int

const (
	sent         verdict = iota
	retry                // the network, the hub busy or failing: back off
	unauthorized         // 401, 403, 404: a wrong token or URL, retry slowly
	refused              // the hub will never take this batch (400, 413, 422, ...)
)

type outcome struct {
	verdict    verdict
	status     int
	detail     string
	retryAfter time.Duration
}

// post sends one batch.
func (r *Reporter) post(b *batch) outcome {
	var res wire.BatchResult
	out := r.do(r.ctx, wire.PathEvents, b.body, &res, "batch")
	if out.verdict == sent {
		r.hubPolicyVersion(res.PolicyVersion)
		if res.ChainBroken {
			r.log.Warn("the hub says this batch does not continue the audit chain it has for this PC (raised there as audit_chain_broken)")
		}
	}
	return out
}

// do POSTs body to path and decodes a 2xx answer into res.
func (r *Reporter) do(ctx context.Context, path string, body []byte, res any, what string) outcome {
	ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, bytes.NewReader(body))
	if err != nil {
		return outcome{verdict: refused, detail: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+*r.token.Load())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mamori/"+r.opts.Version)
	sentAt := r.now()
	resp, err := r.client.Do(req)
	if err != nil {
		r.failed("network", slog.LevelWarn, "cannot reach the hub; events stay queued and are sent later", "what", what, "err", err)
		return outcome{verdict: retry, detail: err.Error()}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	recvAt := r.now()
	if d, derr := http.ParseTime(resp.Header.Get("Date")); derr == nil && resp.StatusCode < 500 {
		// The Date header has whole seconds: used until a hub_time comes.
		if r.anchor.Load() == nil {
			r.setOffset(d.Add(500*time.Millisecond), sentAt, recvAt)
		}
	}
	out := outcome{status: resp.StatusCode, retryAfter: retryAfter(resp.Header.Get("Retry-After"), r.now())}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		if err == nil {
			err = json.Unmarshal(answer, res)
		}
		if err != nil {
			r.failed("response", slog.LevelWarn, "the hub's answer does not parse; sending again", "what", what, "status", code, "err", err)
			out.verdict = retry
			return out
		}
		if t := hubTime(res); !t.IsZero() {
			r.setOffset(t, sentAt, recvAt)
		}
		out.verdict = sent
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		r.failed("throttled", slog.LevelInfo, "the hub is busy; waiting as it asks", "what", what, "status", code, "retry_after", out.retryAfter)
		out.verdict = retry
	case code == http.StatusRequestTimeout || code >= 500:
		r.failed("server", slog.LevelWarn, "the hub failed; events stay queued and are sent later", "what", what, "status", code, "detail", problem(answer))
		out.verdict = retry
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		if r.reloadToken() {
			// IT put a new token in token_file (mamori-hub agent
			// rotate): try it at once.
			out.verdict = retry
			out.retryAfter = 0
			return out
		}
		r.failed("unauthorized", slog.LevelError, "THE HUB REFUSES THIS AGENT'S TOKEN: nothing reaches the hub until report.token_file holds a valid token "+
			"(mamori-hub agent add NAME, or agent rotate NAME for a PC already added; write it to report.token_file, mode 600); events stay queued",
			"what", what, "status", code, "detail", problem(answer), "token_file", r.opts.Config.TokenFile, "retry_in", r.opts.Backoff.Slow)
		out.verdict = unauthorized
	case code == http.StatusNotFound || code == http.StatusMethodNotAllowed:
		r.failed("not_found", slog.LevelError, "the hub does not know this path: check report.url (the hub's base URL, without /api/v1); events stay queued",
			"what", what, "status", code, "url", r.base+path, "retry_in", r.opts.Backoff.Slow)
		out.verdict = unauthorized
	default:
		r.failed("refused", slog.LevelError, "the hub refused the request", "what", what, "status", code, "detail", problem(answer))
		out.verdict = refused
	}
	out.detail = problem(answer)
	return out
}

// hubTime returns the hub's time of an answer.
func hubTime(res any) time.Time {
	switch v := res.(type) {
	case *wire.BatchResult:
		return v.HubTime
	case *wire.HeartbeatResult:
		return v.HubTime
	}
	return time.Time{}
}

// problem returns the hub's problem detail for a log line.
func problem(answer []byte) string {
	var p wire.Problem
	if json.Unmarshal(answer, &p) == nil && (p.Title != "" || p.Detail != "") {
		return safe.String(strings.TrimSpace(p.Title + ": " + p.Detail))
	}
	if len(answer) > 200 {
		answer = answer[:200]
	}
	return safe.String(string(answer))
}

// setOffset keeps the hub's clock minus ours, taking the hub's time as of
// the middle of the request, and anchors the hub's time to the monotonic
// clock (HubNow). OnClock hears of the first offset and of every move by
// a second or more.
func (r *Reporter) setOffset(hub, sentAt, recvAt time.Time) {
	mid := sentAt.Add(recvAt.Sub(sentAt) / 2)
	off := hub.Sub(mid)
	mono := time.Now()
	a := &clockAnchor{hub: hub.Add(r.now().Sub(mid)).Round(0), mono: mono, offset: off}
	prev := r.anchor.Swap(a)
	r.metrics.offset.Set(off.Seconds())
	if r.opts.OnClock != nil && (prev == nil || (off-prev.offset).Abs() >= time.Second) {
		r.opts.OnClock()
	}
}

// heartbeatLoop sends a heartbeat at once and every heartbeat_interval.
func (r *Reporter) heartbeatLoop() {
	defer r.done.Done()
	t := time.NewTicker(r.opts.Config.HeartbeatInterval)
	defer t.Stop()
	for {
		r.heartbeat(r.ctx, false)
		select {
		case <-t.C:
		case <-r.stop:
			return
		}
	}
}

// heartbeat sends one heartbeat; true when the hub took it.
func (r *Reporter) heartbeat(ctx context.Context, stopping bool) bool {
	hb := wire.Heartbeat{Schema: wire.SchemaVersion, AssetID: r.opts.AssetID, Version: r.opts.Version,
		Time: r.now(), Queue: int(r.q.Len()), PolicyVersion: r.policyInForce.Load(), Stopping: stopping}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	h, err := r.opts.HostFacts(hctx)
	if err != nil {
		r.log.Debug("host facts incomplete", "err", err)
	}
	hb.Host = h
	cancel()
	if r.opts.Inventory != nil {
		hb.Inventory = r.opts.Inventory()
	}
	body, _ := json.Marshal(hb)
	var res wire.HeartbeatResult
	out := r.do(ctx, wire.PathHeartbeat, body, &res, "heartbeat")
	if out.verdict == sent {
		r.hubPolicyVersion(res.PolicyVersion)
		r.metrics.lastSuccess.Set(float64(r.now().UnixNano()) / 1e9)
	}
	return out.verdict == sent
}

// hostFacts reads the host's facts with gopsutil.
func hostFacts(ctx context.Context) (wire.HostFacts, error) {
	info, err := host.InfoWithContext(ctx)
	if info == nil {
		return wire.HostFacts{}, err
	}
	f := wire.HostFacts{Hostname: info.Hostname, OS: info.OS, Platform: info.Platform,
		PlatformVersion: info.PlatformVersion, KernelVersion: info.KernelVersion, HostID: info.HostID}
	if info.BootTime > 0 {
		f.BootTime = time.Unix(int64(info.BootTime), 0).UTC()
	}
	return f, err
}

// metrics are the reporter's Prometheus metrics.
type metrics struct {
	queueLen    func() int64
	failures    *prometheus.CounterVec
	dropped     prometheus.Counter
	lastSuccess prometheus.Gauge
	offset      prometheus.Gauge
}

// failureReasons are the values of the reason label.
var failureReasons = []string{"network", "throttled", "server", "unauthorized", "not_found", "refused", "response"}

func newMetrics() *metrics {
	m := &metrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mamori_report_send_failures_total",
			Help: "Requests to the hub that failed, by reason: network, throttled (429/503), server (5xx, 408), unauthorized (401/403: the token), not_found (404/405: the URL), refused (other 4xx), response (an answer that does not parse)."},
			[]string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamori_report_dropped_events_total",
			Help: "Events dropped before reaching the hub (the queue full, damaged, or not writable, or the sink's queue full); each drop is reported to the hub."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mamori_report_last_success_timestamp_seconds",
			Help: "When the hub last accepted a batch or heartbeat (Unix time)."}),
		offset: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mamori_clock_offset_seconds",
			Help: "The hub's clock minus this PC's, from the hub's last answer."}),
	}
	for _, r := range failureReasons {
		m.failures.WithLabelValues(r)
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mamori_report_queue_events",
		Help: "Events in the durable queue waiting for the hub's acknowledgement."},
		func() float64 { return float64(m.queueLen()) })
	for _, c := range []prometheus.Collector{queue, m.failures, m.dropped, m.lastSuccess, m.offset} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("report metrics: %w", err)
		}
	}
	return nil
}
