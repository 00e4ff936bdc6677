package hub

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxConfigSize is the largest config file read (bytes).
const MaxConfigSize = 1 << 20

// Defaults of the config.
const (
	DefaultListen      = "127.0.0.1:8443"
	DefaultDatabase    = "sqlite:///var/lib/mamori-hub/hub.db"
	DefaultSilentAfter = 10 * time.Minute
	// MinRetention is the shortest retention but 0: a shorter one is
	// more likely a mistake (a unit left out) than a wish.
	MinRetention = 24 * time.Hour
)

// Config is mamori-hub's config file:
//
//	version: 1
//	listen: 127.0.0.1:8443
//	metrics_listen: 127.0.0.1:9869   # optional: /metrics only there
//	tls: {cert_file: /etc/mamori-hub/hub.crt, key_file: /etc/mamori-hub/hub.key}
//	database: sqlite:///var/lib/mamori-hub/hub.db     # or postgres://user@host/db
//	silent_after: 10m
//	retention: 0
type Config struct {
	// File is the config file's path ("" when not read from one).
	File string
	// Listen is the address serve listens on.
	Listen string
	// MetricsListen, when set, is a separate address (plain HTTP) that
	// serves /metrics, which Listen then does not: the agents reach
	// Listen, and the metrics need not be open to them.
	MetricsListen string
	// TLS is the certificate and key; both empty means plain HTTP, which
	// only a loopback Listen allows.
	TLS TLS
	// Database is "sqlite:///path" (a relative path is relative to the
	// config file's directory) or a "postgres://" URL.
	Database string
	// SilentAfter is how long an agent may be quiet before it counts as
	// silent.
	SilentAfter time.Duration
	// Retention is how long events and violations are kept after the hub
	// received them (at least MinRetention); 0 keeps every record. Devices,
	// agents and policy versions are kept whatever it says.
	Retention time.Duration
}

// TLS names the hub's certificate and key files (PEM).
type TLS struct {
	CertFile string
	KeyFile  string
}

// LoadConfig reads and checks the config file at path. A missing file
// gives an error wrapping fs.ErrNotExist; an invalid one an ErrorList.
func LoadConfig(path string) (*Config, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("config %s: not a regular file", path)
	}
	if fi.Size() > MaxConfigSize {
		return nil, fmt.Errorf("config %s: larger than %d bytes", path, MaxConfigSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig checks data, the contents of the config file named file:
// every key known, each once, of the right type; version 1. It returns
// every problem found as an ErrorList.
func ParseConfig(file string, data []byte) (*Config, error) {
	c := &yamlChecker{file: file}
	cfg := &Config{File: file, Listen: DefaultListen, Database: DefaultDatabase, SilentAfter: DefaultSilentAfter}
	root := c.document(data)
	if root == nil {
		if len(c.errs) == 0 {
			c.errs = append(c.errs, &Error{File: file, Line: 1, Column: 1, Msg: "version: 1 required (the file is empty)"})
		}
		return nil, c.errs
	}
	var versionNode, tlsNode *yaml.Node
	for _, kv := range c.mapping(root, "the config", []string{"version", "listen", "metrics_listen", "tls", "database", "silent_after", "retention"}) {
		k, v := kv[0], kv[1]
		if k.Value == "tls" {
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			tlsNode = v
			c.tls(cfg, v)
			continue
		}
		val, ok := c.scalar(v, k.Value)
		if !ok {
			continue
		}
		switch k.Value {
		case "version":
			versionNode = v
			if val != "1" {
				c.errorf(v, "version: only version 1 is known, not "+strconv.Quote(val))
			}
		case "listen":
			if _, _, err := net.SplitHostPort(val); err != nil {
				c.errorf(v, "listen: want host:port, not "+strconv.Quote(val))
			}
			cfg.Listen = val
		case "metrics_listen":
			if _, _, err := net.SplitHostPort(val); err != nil {
				c.errorf(v, "metrics_listen: want host:port (for example 127.0.0.1:9869), not "+strconv.Quote(val))
			}
			cfg.MetricsListen = val
		case "database":
			db, err := databaseURL(file, val)
			if err != nil {
				c.errorf(v, "database: "+err.Error())
			}
			cfg.Database = db
		case "silent_after":
			d, err := parseDuration(val)
			if err != nil || d <= 0 {
				c.errorf(v, "silent_after: want a duration above 0 like 10m, not "+strconv.Quote(val))
			}
			cfg.SilentAfter = d
		case "retention":
			d, err := parseDuration(val)
			if err != nil || d < 0 {
				c.errorf(v, "retention: want 0 (keep every record) or a duration like 2555d, not "+strconv.Quote(val))
			}
			cfg.Retention = d
			if err == nil && d > 0 && d < MinRetention {
				c.errorf(v, "retention: at least 1d (or 0 to keep every record), not "+strconv.Quote(val))
			}
		}
	}
	if versionNode == nil {
		c.errorf(root, "version: 1 required")
	}
	if tlsNode != nil && (cfg.TLS.CertFile == "" || cfg.TLS.KeyFile == "") {
		c.errorf(tlsNode, "tls: both cert_file and key_file are needed")
	}
	if cfg.TLS.CertFile == "" && !isLoopback(cfg.Listen) {
		n := root
		if tlsNode != nil {
			n = tlsNode
		}
		c.errorf(n, "tls: needed: plain HTTP is allowed only on a loopback address, not on "+strconv.Quote(cfg.Listen))
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return cfg, nil
}

// tls reads the tls: mapping into cfg.TLS.
func (c *yamlChecker) tls(cfg *Config, v *yaml.Node) {
	for _, kv := range c.mapping(v, "tls", []string{"cert_file", "key_file"}) {
		p, ok := c.scalar(kv[1], "tls."+kv[0].Value)
		if !ok {
			continue
		}
		if p == "" {
			c.errorf(kv[1], "tls."+kv[0].Value+" must not be empty")
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(c.file), p)
		}
		if kv[0].Value == "cert_file" {
			cfg.TLS.CertFile = p
		} else {
			cfg.TLS.KeyFile = p
		}
	}
}

// isLoopback reports whether the host of a host:port is a loopback
// address or "localhost".
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// databaseURL checks a database: value and makes a relative SQLite path
// relative to the config file's directory.
func databaseURL(file, v string) (string, error) {
	switch {
	case strings.HasPrefix(v, "sqlite://"):
		p := strings.TrimPrefix(v, "sqlite://")
		if p == "" || strings.ContainsAny(p, "?#") {
			return "", errors.New("want sqlite:///path/to/hub.db (a path without ? or #)")
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(file), p)
		}
		return "sqlite://" + p, nil
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		return v, nil
	}
	return "", fmt.Errorf("want sqlite:///path or postgres://user@host/db, not %q", v)
}

// parseDuration is time.ParseDuration that also takes whole days ("30d")
// and a bare 0.
func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.ParseUint(n, 10, 32)
		if err != nil {
			return 0, err
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
