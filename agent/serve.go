package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"
	"golang.org/x/net/netutil"

	"github.com/mamori-agent/mamori/internal/safe"
)

// Limits of the metrics endpoint: a local user must not be able to hold
// it, or the agent's memory, with slow or many connections.
const (
	maxMetricsConns      = 16
	metricsHeaderTimeout = 5 * time.Second
	metricsReadTimeout   = 10 * time.Second
	metricsWriteTimeout  = 30 * time.Second
	metricsIdleTimeout   = 60 * time.Second
	maxListenRetry       = 5 * time.Minute
)

// startMetrics serves /metrics on metrics.listen, through the
// exporter-toolkit web config (TLS, basic auth) when one is set. Detection
// never depends on the port: when it cannot listen (another process holds
// it), the failure is recorded once and the agent retries in the
// background, with backoff, until it can. It returns the URL when it is
// listening now, "" otherwise.
func (a *Agent) startMetrics(ctx context.Context) string {
	listen := a.cfg.Metrics.Listen
	if listen == "" {
		return ""
	}
	webConfig := a.cfg.Metrics.WebConfigFile
	if webConfig != "" {
		if err := web.Validate(webConfig); err != nil {
			a.metricsFailed(fmt.Errorf("web config %s: %w", webConfig, err))
			return ""
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		a.metricsFailed(err)
		go a.retryMetrics(ctx, listen)
		return ""
	}
	go a.serveMetrics(ctx, ln)
	return metricsURL(ln.Addr().String(), webConfig)
}

func (a *Agent) retryMetrics(ctx context.Context, listen string) {
	wait := a.opts.ListenRetry
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			a.log.Debug("metrics endpoint still cannot listen", "listen", listen, "err", err)
			wait = min(2*wait, maxListenRetry)
			continue
		}
		a.log.Info("metrics endpoint listening", "url", metricsURL(ln.Addr().String(), a.cfg.Metrics.WebConfigFile))
		a.serveMetrics(ctx, ln)
		return
	}
}

// metricsFailed records that the endpoint cannot serve.
func (a *Agent) metricsFailed(err error) {
	a.log.Error("metrics endpoint unavailable; the agent keeps watching and recording", "listen", a.cfg.Metrics.Listen, "err", err)
	a.locked(func() {
		a.emit(&Event{Type: TypeMetricsUnavailable, Source: "agent", Trigger: "start",
			Message: safe.String(fmt.Sprintf("metrics endpoint %s unavailable: %v; retrying", a.cfg.Metrics.Listen, err))})
	})
}

// serveMetrics serves on ln until ctx is done.
func (a *Agent) serveMetrics(ctx context.Context, ln net.Listener) {
	srv := a.metricsServer()
	done := make(chan struct{})
	go func() {
		defer close(done)
		noSystemd := false
		webConfig := a.cfg.Metrics.WebConfigFile
		flags := &web.FlagConfig{WebListenAddresses: &[]string{ln.Addr().String()}, WebSystemdSocket: &noSystemd, WebConfigFile: &webConfig}
		err := web.Serve(netutil.LimitListener(ln, maxMetricsConns), srv, flags, a.log.With("component", "metrics"))
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server", "err", err)
		}
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	<-done
}

func metricsURL(addr, webConfig string) string {
	scheme := "http"
	if webConfig != "" {
		if b, err := os.ReadFile(webConfig); err == nil {
			var c struct {
				TLS map[string]any `yaml:"tls_server_config"`
			}
			if yaml.Unmarshal(b, &c) == nil && len(c.TLS) > 0 {
				scheme = "https"
			}
		}
	}
	return scheme + "://" + addr + "/metrics"
}

func (a *Agent) metricsServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.metrics.Registry, promhttp.HandlerOpts{
		Registry: a.metrics.Registry, ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 4,
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<html><head><title>mamori</title></head><body><h1>mamori</h1><p><a href="/metrics">Metrics</a></p></body></html>`)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: metricsHeaderTimeout, ReadTimeout: metricsReadTimeout,
		WriteTimeout: metricsWriteTimeout, IdleTimeout: metricsIdleTimeout, MaxHeaderBytes: 16 << 10}
	// One request per connection: a local user holding every slot with
	// idle keep-alive connections would lock Prometheus out.
	srv.SetKeepAlivesEnabled(false)
	return srv
}
