package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseReport(t *testing.T) {
	cfg, err := Parse("/etc/mamori/c.yaml", []byte(`version: 1
report:
  url: https://hub.example.lg.jp:8443/
  token_file: token
  ca_file: /etc/mamori/hub-ca.pem
  cert_file: agent.crt
  key_file: agent.key
  heartbeat_interval: 30s
  batch_size: 1000
  queue_limit: 2_000_000
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Report{URL: "https://hub.example.lg.jp:8443", TokenFile: filepath.FromSlash("/etc/mamori/token"),
		CAFile: filepath.FromSlash("/etc/mamori/hub-ca.pem"), CertFile: filepath.FromSlash("/etc/mamori/agent.crt"),
		KeyFile: filepath.FromSlash("/etc/mamori/agent.key"), HeartbeatInterval: 30 * time.Second, BatchSize: 1000, QueueLimit: 2_000_000}
	if cfg.Report != want {
		t.Errorf("Report = %+v\nwant     %+v", cfg.Report, want)
	}

	cfg, err = Parse("c.yaml", []byte("version: 1\nreport:\n  url: http://127.0.0.1:8080\n  token_file: /t\n"))
	if err != nil {
		t.Fatal(err)
	}
	want = Report{URL: "http://127.0.0.1:8080", TokenFile: filepath.FromSlash("/t"), HeartbeatInterval: DefaultHeartbeatInterval,
		BatchSize: DefaultBatchSize, QueueLimit: DefaultQueueLimit}
	if cfg.Report != want {
		t.Errorf("defaults: %+v, want %+v", cfg.Report, want)
	}
	cfg, err = Parse("c.yaml", []byte("version: 1\n"))
	if err != nil || cfg.Report.URL != "" || cfg.Report.BatchSize != DefaultBatchSize {
		t.Errorf("no report: section: %+v, %v", cfg.Report, err)
	}
}

func TestParseReportErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"  url: http://hub.example.lg.jp\n  token_file: t\n", `c.yaml:3:8: report.url: http:// is allowed only for a loopback host`},
		{"  url: http://10.0.0.1:80\n  token_file: t\n", `c.yaml:3:8: report.url: http:// is allowed only for a loopback host`},
		{"  url: ftp://hub\n  token_file: t\n", `c.yaml:3:8: report.url: want an https:// URL`},
		{"  url: hub.example.lg.jp\n  token_file: t\n", `c.yaml:3:8: report.url: want the hub's base URL`},
		{"  url: https://u:p@hub\n  token_file: t\n", `c.yaml:3:8: report.url: must not hold a user name`},
		{"  url: https://hub/?x=1\n  token_file: t\n", `c.yaml:3:8: report.url: must not have a query`},
		{"  url: https://hub:99999\n  token_file: t\n", `c.yaml:3:8: report.url: want a port number`},
		{"  url: https://hub\n", `c.yaml:3:8: report.url: report.token_file is required`},
		{"  token_file: t\n", `c.yaml:3:3: report: url is required`},
		{"  url: https://hub\n  token_file: t\n  cert_file: c\n", `c.yaml:5:14: report: cert_file and key_file go together`},
		{"  url: https://hub\n  token_file: t\n  heartbeat_interval: 1s\n", `c.yaml:5:23: report.heartbeat_interval: want a duration from 5s to 1h`},
		{"  url: https://hub\n  token_file: t\n  heartbeat_interval: 2h\n", `report.heartbeat_interval: want a duration from 5s to 1h`},
		{"  url: https://hub\n  token_file: t\n  batch_size: 1001\n", `c.yaml:5:15: report.batch_size: want a number from 1 to 1000, got 1001`},
		{"  url: https://hub\n  token_file: t\n  batch_size: 0\n", `report.batch_size: want a number from 1 to 1000`},
		{"  url: https://hub\n  token_file: t\n  batch_size: ten\n", `report.batch_size: want a whole number, got "ten"`},
		{"  url: https://hub\n  token_file: t\n  queue_limit: 10\n", `report.queue_limit: want a number from 1000 to 100000000`},
		{"  url: https://hub\n  token_file: t\n  queue_limt: 10\n", `c.yaml:5:3: report: unknown key "queue_limt" (did you mean "queue_limit"?)`},
		{"  url: https://hub\n  url: https://hub2\n  token_file: t\n", `c.yaml:4:3: report: duplicate key "url"`},
	} {
		_, err := Parse("c.yaml", []byte("version: 1\nreport:\n"+tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v\nwant %q", tc.body, err, tc.want)
		}
	}
}

func TestCheckHubURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hub.example.lg.jp":         "https://hub.example.lg.jp",
		"https://hub.example.lg.jp/mamori/": "https://hub.example.lg.jp/mamori",
		"http://localhost:8080":             "http://localhost:8080",
		"http://[::1]:8080/":                "http://[::1]:8080",
		"https://[2001:db8::1]:8443":        "https://[2001:db8::1]:8443",
	} {
		if got, msg := checkHubURL(in); got != want || msg != "" {
			t.Errorf("checkHubURL(%q) = %q, %q; want %q", in, got, msg, want)
		}
	}
	for _, in := range []string{"http://[::ffff:10.0.0.1]/", "http://localhost.evil.example/", "https://bad_host/"} {
		if got, msg := checkHubURL(in); msg == "" {
			t.Errorf("checkHubURL(%q) = %q, accepted", in, got)
		}
	}
}
