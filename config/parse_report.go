package config

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mamori-agent/mamori/wire"
)

// reportKeys are the keys of report:, in the order the documentation
// lists them.
var reportKeys = []string{"url", "token_file", "ca_file", "cert_file", "key_file",
	"heartbeat_interval", "batch_size", "queue_limit"}

// Defaults and bounds of the report: section.
const (
	DefaultHeartbeatInterval = 60 * time.Second
	MinHeartbeatInterval     = 5 * time.Second
	MaxHeartbeatInterval     = time.Hour
	DefaultBatchSize         = 500
	DefaultQueueLimit        = 1_000_000
	// MaxQueueLimit bounds report.queue_limit (events): at about 1 KiB an
	// event, 100 million is some 100 GB of state directory.
	MaxQueueLimit = 100_000_000
	// MinQueueLimit is the smallest report.queue_limit: fewer events
	// would drop some at every burst while the hub is away.
	MinQueueLimit = 1000
)

// Report is the report: section: where and how the agent reports to
// mamori-hub. URL "" (the section absent) turns reporting off.
type Report struct {
	// URL is the hub's base URL (report.url), without a trailing slash;
	// the agent appends /api/v1/.... https, or http for a loopback host
	// only.
	URL string
	// TokenFile holds the agent's bearer token (report.token_file);
	// required with URL. Relative paths are joined to the config file's
	// directory, as for every file named below.
	TokenFile string
	// CAFile is the PEM CA certificate(s) the hub's certificate must
	// chain to (report.ca_file); "" uses the system's roots.
	CAFile string
	// CertFile and KeyFile are the agent's client certificate and key for
	// mutual TLS (report.cert_file, report.key_file); both or neither.
	CertFile string
	KeyFile  string
	// HeartbeatInterval is how often the agent tells the hub it is alive
	// (report.heartbeat_interval, default 60s, 5s to 1h).
	HeartbeatInterval time.Duration
	// BatchSize is the most events one request carries
	// (report.batch_size, default 500, at most wire.MaxBatchEvents).
	BatchSize int
	// QueueLimit is the most events the durable queue keeps
	// (report.queue_limit, default 1,000,000); beyond it the oldest are
	// dropped, counted and reported.
	QueueLimit int64
}

// report reads the report: section.
func (p *parser) report(n *yaml.Node, r *Report) {
	m, ok := p.mapping("report", n, reportKeys)
	if !ok {
		return
	}
	file := func(key string) string {
		v := m.get(key)
		if v == nil {
			return ""
		}
		s, ok := p.text("report."+key, v)
		if !ok {
			return ""
		}
		return p.relative(s)
	}
	r.TokenFile = file("token_file")
	r.CAFile = file("ca_file")
	r.CertFile = file("cert_file")
	r.KeyFile = file("key_file")
	if v := m.get("url"); v != nil {
		if s, ok := p.text("report.url", v); ok {
			if u, err := checkHubURL(s); err != "" {
				p.errorf(v, "report.url: %s", err)
			} else {
				r.URL = u
			}
		}
		if r.TokenFile == "" && m.get("token_file") == nil {
			p.errorf(v, "report.url: report.token_file is required with it (the agent's token from `mamori-hub agent add`)")
		}
	} else if len(n.Content) > 0 {
		p.errorf(n, "report: url is required (the hub's base URL, like https://hub.example.lg.jp:8443)")
	}
	if (m.get("cert_file") == nil) != (m.get("key_file") == nil) {
		at := m.get("cert_file")
		if at == nil {
			at = m.get("key_file")
		}
		p.errorf(at, "report: cert_file and key_file go together (mutual TLS needs both)")
	}
	if v := m.get("heartbeat_interval"); v != nil {
		if d, ok := p.duration("report.heartbeat_interval", v, MinHeartbeatInterval, MaxHeartbeatInterval, "5s", "1h"); ok {
			r.HeartbeatInterval = d
		}
	}
	if v := m.get("batch_size"); v != nil {
		if i, ok := p.integer("report.batch_size", v, 1, wire.MaxBatchEvents); ok {
			r.BatchSize = int(i)
		}
	}
	if v := m.get("queue_limit"); v != nil {
		if i, ok := p.integer("report.queue_limit", v, MinQueueLimit, MaxQueueLimit); ok {
			r.QueueLimit = i
		}
	}
}

// integer reads a whole number from lo to hi inclusive; "1_000_000" is
// accepted as written in the documentation.
func (p *parser) integer(path string, n *yaml.Node, lo, hi int64) (int64, bool) {
	s, ok := p.scalar(path, n)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil || strings.HasPrefix(s, "_") || strings.HasPrefix(s, "+") {
		p.errorf(n, "%s: want a whole number, got %q", path, s)
		return 0, false
	}
	if i < lo || i > hi {
		p.errorf(n, "%s: want a number from %d to %d, got %s", path, lo, hi, s)
		return 0, false
	}
	return i, true
}

// checkHubURL checks report.url and returns it without a trailing slash,
// or says what is wrong with it.
func checkHubURL(s string) (string, string) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", "want the hub's base URL, like https://hub.example.lg.jp:8443, got " + strconv.Quote(s)
	}
	switch {
	case u.User != nil:
		return "", "must not hold a user name or password (the token is in report.token_file)"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", "must not have a query or fragment"
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return "", "want a port number 1-65535, got " + strconv.Quote(port)
		}
	}
	host := u.Hostname()
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopbackHost(host) {
			return "", "http:// is allowed only for a loopback host (localhost, 127.0.0.1, ::1); use https:// for " + strconv.Quote(host)
		}
	default:
		return "", "want an https:// URL, got " + strconv.Quote(s)
	}
	if _, err := netip.ParseAddr(host); err != nil && !isHostName(host) {
		return "", strconv.Quote(host) + " is neither an IP address nor a host name"
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), ""
}

// IsLoopbackHost reports whether host (without a port) is "localhost" or
// a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
