package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// digest is the Digest of a config of the given bytes.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileDigest(t *testing.T, files ...string) string {
	t.Helper()
	var parts []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, string(b))
	}
	return digest(parts...)
}

func TestParseExample(t *testing.T) {
	cfg, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Version: 1,
		Agent: Agent{
			AssetID:        "PC-0042",
			StateDir:       "/var/lib/mamori",
			Language:       "ja",
			RescanInterval: 60 * time.Second,
			Contact:        DefaultContact,
			LocalSocket:    DefaultLocalSocket,
			LocalGroup:     DefaultLocalGroup,
		},
		Metrics: Metrics{Listen: "127.0.0.1:9868"},
		USB:     USB{Backend: "sysfs"},
		Network: Network{WatchLAN: true, LANReportWindow: 24 * time.Hour},
		Report:  Default().Report,
		Approved: ApprovedLists{USB: []USBEntry{
			{Name: "Keyboards and mice", Terms: &EntryTerms{Classes: []string{"hid"}}, Line: 35, File: "testdata/example.yaml"},
			{
				Name: "Encrypted stick issued to the work lead", VendorID: "0951", ProductID: "1666",
				Serial: ptr("001A4D5F1B2C"), Terms: &EntryTerms{Owner: "委託先作業責任者", ApprovedBy: "情報政策課",
					ValidFrom: &Date{2026, 4, 1}, ValidUntil: &Date{2027, 3, 31}, RequireEncryption: true}, Line: 38, File: "testdata/example.yaml",
			},
			{
				Name: "Label printer at the front desk (no serial number)", VendorID: "04f9", ProductID: "2042",
				Port: "1-2", Terms: &EntryTerms{Owner: "受付", ApprovedBy: "情報政策課",
					ValidFrom: &Date{2026, 4, 1}, ValidUntil: &Date{2027, 3, 31}}, Line: 48, File: "testdata/example.yaml",
			},
			{Name: "Webcams of one vendor for video calls", VendorID: "046d", Terms: &EntryTerms{Classes: []string{"video", "audio"}, ApprovedBy: "情報政策課"}, Line: 57, File: "testdata/example.yaml"},
		}},
		File:   "testdata/example.yaml",
		Files:  []string{"testdata/example.yaml"},
		Digest: fileDigest(t, "testdata/example.yaml"),
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got\n%+v\nwant\n%+v", cfg, want)
		for i := range min(len(cfg.Approved.USB), len(want.Approved.USB)) {
			if !reflect.DeepEqual(cfg.Approved.USB[i], want.Approved.USB[i]) {
				t.Errorf("entry %d: got %+v want %+v", i, cfg.Approved.USB[i], want.Approved.USB[i])
			}
		}
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.File, want.Files, want.Digest = "c.yaml", []string{"c.yaml"}, digest("version: 1\n")
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
	if want.Agent.StateDir != DefaultStateDir || want.Metrics.Listen != "127.0.0.1:9868" ||
		want.Agent.Language != "ja" || want.Agent.RescanInterval != time.Minute || want.USB.Backend != "sysfs" {
		t.Errorf("Default() = %+v", want)
	}
	// Empty sections keep the defaults too.
	cfg, err = Parse("c.yaml", []byte("version: 1\nagent:\nmetrics:\nusb:\napproved:\n  usb:\n"))
	if err != nil {
		t.Fatal(err)
	}
	want.Digest = cfg.Digest
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("empty sections: got %+v, want %+v", cfg, want)
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		name, in string
		check    func(*Config) bool
	}{
		{"listen absent", "metrics: {}", func(c *Config) bool { return c.Metrics.Listen == "127.0.0.1:9868" }},
		{"listen empty string turns it off", `metrics: {listen: ""}`, func(c *Config) bool { return c.Metrics.Listen == "" }},
		{"listen null turns it off", "metrics:\n  listen:\n", func(c *Config) bool { return c.Metrics.Listen == "" }},
		{"listen all addresses", `metrics: {listen: ":9868"}`, func(c *Config) bool { return c.Metrics.Listen == ":9868" }},
		{"listen ipv6", `metrics: {listen: "[::1]:9868"}`, func(c *Config) bool { return c.Metrics.Listen == "[::1]:9868" }},
		{"listen host name", `metrics: {listen: "localhost:9868"}`, func(c *Config) bool { return c.Metrics.Listen == "localhost:9868" }},
		{"language en", "agent: {language: en}", func(c *Config) bool { return c.Agent.Language == "en" }},
		{"backend libusb", "usb: {backend: libusb}", func(c *Config) bool { return c.USB.Backend == "libusb" }},
		{"shortest duration", "agent: {rescan_interval: 1s}", func(c *Config) bool { return c.Agent.RescanInterval == time.Second }},
		{"longest duration", "agent: {rescan_interval: 60m}", func(c *Config) bool { return c.Agent.RescanInterval == time.Hour }},
		{"compound duration", "agent: {rescan_interval: 1m30s}", func(c *Config) bool { return c.Agent.RescanInterval == 90*time.Second }},
		{"web config", "metrics: {web_config_file: web.yml}", func(c *Config) bool { return c.Metrics.WebConfigFile == "web.yml" }},
		{"web config absolute", "metrics: {web_config_file: /etc/mamori/web.yml}", func(c *Config) bool { return c.Metrics.WebConfigFile == "/etc/mamori/web.yml" }},
		{"asset id digits kept", "agent: {asset_id: 0042}", func(c *Config) bool { return c.Agent.AssetID == "0042" }},
		{"state dir cleaned", "agent: {state_dir: /var/lib//mamori/}", func(c *Config) bool { return c.Agent.StateDir == "/var/lib/mamori" }},
		{"unquoted ids keep their digits", "approved:\n  usb:\n    - {name: a, vendor_id: 0951, product_id: 1666}\n",
			func(c *Config) bool { e := c.Approved.USB[0]; return e.VendorID == "0951" && e.ProductID == "1666" }},
		{"ids lower-cased", "approved:\n  usb:\n    - {name: a, vendor_id: ABCD, product_id: 0E0F}\n",
			func(c *Config) bool { e := c.Approved.USB[0]; return e.VendorID == "abcd" && e.ProductID == "0e0f" }},
		{"unquoted numeric serial keeps its text", "approved:\n  usb:\n    - {name: a, serial: 0012345}\n",
			func(c *Config) bool { return *c.Approved.USB[0].Serial == "0012345" }},
		{"classes normalised", "approved:\n  usb:\n    - {name: a, classes: [HID, class-08, class-3f, hid]}\n",
			func(c *Config) bool {
				return reflect.DeepEqual(c.Approved.USB[0].Terms.Classes, []string{"hid", "mass-storage", "class-3f"})
			}},
		{"block list of classes", "approved:\n  usb:\n    - name: a\n      classes:\n        - audio\n        - video\n",
			func(c *Config) bool {
				return reflect.DeepEqual(c.Approved.USB[0].Terms.Classes, []string{"audio", "video"})
			}},
		{"quoted dates", "approved:\n  usb:\n    - {name: a, port: \"2-1.4\", valid_from: \"2026-01-01\", valid_until: \"2026-01-01\"}\n",
			func(c *Config) bool {
				e := c.Approved.USB[0]
				from, until := e.Dates()
				return *from == Date{2026, 1, 1} && *until == Date{2026, 1, 1} && e.Port == "2-1.4"
			}},
		{"BOM and CRLF", "\ufeffagent:\r\n  language: en\r\n", func(c *Config) bool { return c.Agent.Language == "en" }},
		{"explicit document markers", "---\nagent: {language: en}\n...\n", func(c *Config) bool { return c.Agent.Language == "en" }},
		{"version only", "", func(c *Config) bool { return c.Version == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "version: 1\n" + tt.in
			if strings.HasPrefix(tt.in, "\ufeff") || strings.HasPrefix(tt.in, "---") {
				in = strings.Replace(tt.in, "agent", "version: 1\r\nagent", 1)
			}
			cfg, err := Parse("c.yaml", []byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("unexpected config %+v", cfg)
			}
		})
	}
}

// TestParseErrors checks every validation error with its exact position.
func TestParseErrors(t *testing.T) {
	const v = "version: 1\n"
	entry := func(s string) string { return v + "approved:\n  usb:\n    - " + s + "\n" }
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty file", "", []string{"c.yaml:1:1: version: 1 required (the file is empty)"}},
		{"only comments", "# nothing\n\n", []string{"c.yaml:1:1: version: 1 required (the file is empty)"}},
		{"null document", "~\n", []string{"c.yaml:1:1: version: 1 required (the file is empty)"}},
		{"missing version", "agent:\n  language: ja\n", []string{"c.yaml:1:1: version: 1 required"}},
		{"version 2", "version: 2\n", []string{"c.yaml:1:10: version: unsupported version 2 (this mamori reads version 1)"}},
		{"version quoted", "version: \"1\"\n", []string{`c.yaml:1:10: version: want the number 1, got "1"`}},
		{"version float", "version: 1.0\n", []string{`c.yaml:1:10: version: want the number 1, got "1.0"`}},
		{"version null", "version:\n", []string{"c.yaml:1:9: version: a value is required"}},
		{"version list", "version: [1]\n", []string{"c.yaml:1:10: version: want a single value, got a list"}},
		{"top level list", "- 1\n", []string{"c.yaml:1:1: the file must be a mapping of keys (version, agent, ...), got a list"}},
		{"top level scalar", "hello\n", []string{`c.yaml:1:1: the file must be a mapping of keys (version, agent, ...), got "hello"`}},
		{"unknown top key", v + "agnet: {}\n", []string{`c.yaml:2:1: unknown key "agnet" (did you mean "agent"?)`}},
		{"unknown key far from any", v + "zzzzzzzz: 1\n", []string{`c.yaml:2:1: unknown key "zzzzzzzz" (known keys: version, agent, metrics, usb, network, report, approved)`}},
		{"duplicate key", v + "agent: {}\nagent: {}\n", []string{`c.yaml:3:1: duplicate key "agent" (first at line 2)`}},
		{"duplicate nested key", v + "agent:\n  language: ja\n  language: en\n", []string{`c.yaml:4:3: agent: duplicate key "language" (first at line 3)`}},
		{"unknown agent key", v + "agent:\n  languge: en\n", []string{`c.yaml:3:3: agent: unknown key "languge" (did you mean "language"?)`}},
		{"agent not a mapping", v + "agent: ja\n", []string{`c.yaml:2:8: agent: want a mapping of keys, got "ja"`}},
		{"bad language", v + "agent:\n  language: fr\n", []string{`c.yaml:3:13: agent.language: want "ja" or "en", got "fr"`}},
		{"empty asset id", v + "agent:\n  asset_id: \"\"\n", []string{`c.yaml:3:13: agent.asset_id: must not be empty`}},
		{"control character", v + "agent:\n  asset_id: \"PC\\x1b[2J\"\n", []string{`c.yaml:3:13: agent.asset_id: control character U+001B is not allowed`}},
		{"bidi override", v + "agent:\n  asset_id: \"PC\\u202E1\"\n", []string{`c.yaml:3:13: agent.asset_id: control character U+202E is not allowed`}},
		{"relative state dir", v + "agent:\n  state_dir: var/lib\n", []string{`c.yaml:3:14: agent.state_dir: want an absolute path, got "var/lib"`}},
		{"duration without unit", v + "agent:\n  rescan_interval: 60\n", []string{`c.yaml:3:20: agent.rescan_interval: want a duration with a unit, like 60s, 5m, 24h or 7d (whole days), got "60"`}},
		{"zero duration", v + "agent:\n  rescan_interval: 0s\n", []string{`c.yaml:3:20: agent.rescan_interval: want a duration from 1s to 1h, got "0s"`}},
		{"negative duration", v + "agent:\n  rescan_interval: -5s\n", []string{`c.yaml:3:20: agent.rescan_interval: want a duration from 1s to 1h, got "-5s"`}},
		{"spinning duration", v + "agent:\n  rescan_interval: 1ns\n", []string{`c.yaml:3:20: agent.rescan_interval: want a duration from 1s to 1h, got "1ns"`}},
		{"duration just short", v + "agent:\n  rescan_interval: 999ms\n", []string{`c.yaml:3:20: agent.rescan_interval: want a duration from 1s to 1h, got "999ms"`}},
		{"duration too long", v + "agent:\n  rescan_interval: 1h0m1s\n", []string{`c.yaml:3:20: agent.rescan_interval: want a duration from 1s to 1h, got "1h0m1s"`}},
		{"huge duration", v + "agent:\n  rescan_interval: 2562047h\n", []string{`c.yaml:3:20: agent.rescan_interval: want a duration from 1s to 1h, got "2562047h"`}},
		{"empty web config", v + "metrics:\n  web_config_file: \"\"\n", []string{`c.yaml:3:20: metrics.web_config_file: must not be empty`}},
		{"web config list", v + "metrics:\n  web_config_file: [a]\n", []string{`c.yaml:3:20: metrics.web_config_file: want a single value, got a list`}},
		{"identical matcher", v + "approved:\n  usb:\n    - {name: a, vendor_id: \"0951\", classes: [hid, audio]}\n    - {name: b, vendor_id: \"0951\", classes: [audio, HID]}\n",
			[]string{`c.yaml:5:7: approved.usb[1]: matches exactly the devices of the entry "a" at line 4 (same vendor_id, product_id, serial, port and classes)`}},
		{"identical matcher, dates differ", v + "approved:\n  usb:\n    - {name: a, serial: X, valid_until: 2026-01-01}\n    - {name: b, serial: X, valid_from: 2026-01-02}\n",
			[]string{`c.yaml:5:7: approved.usb[1]: matches exactly the devices of the entry "a" at line 4 (same vendor_id, product_id, serial, port and classes)`}},
		{"ledger empty", v + "approved:\n  usb_ledger: \"\"\n", []string{`c.yaml:3:15: approved.usb_ledger: must not be empty`}},
		{"ledger empty list", v + "approved:\n  usb_ledger: []\n", []string{`c.yaml:3:15: approved.usb_ledger: must not be empty (leave the key out when there is no ledger)`}},
		{"ledger twice", v + "approved:\n  usb_ledger: [a.csv, ./a.csv]\n", []string{`c.yaml:3:23: approved.usb_ledger[1]: "./a.csv" is already named at line 3`}},
		{"ledger encoding", v + "approved:\n  usb_ledger_encoding: sjis\n", []string{`c.yaml:3:24: approved.usb_ledger_encoding: want "auto", "utf-8" or "cp932", got "sjis"`}},
		{"bad duration", v + "agent:\n  rescan_interval: soon\n", []string{`c.yaml:3:20: agent.rescan_interval: want a duration with a unit, like 60s, 5m, 24h or 7d (whole days), got "soon"`}},
		{"listen without port", v + "metrics:\n  listen: 127.0.0.1\n", []string{`c.yaml:3:11: metrics.listen: want host:port, like 127.0.0.1:9868, got "127.0.0.1"`}},
		{"listen port too big", v + "metrics:\n  listen: \":65536\"\n", []string{`c.yaml:3:11: metrics.listen: want a port number 0-65535 in ":65536"`}},
		{"listen named port", v + "metrics:\n  listen: localhost:http\n", []string{`c.yaml:3:11: metrics.listen: want a port number 0-65535 in "localhost:http"`}},
		{"listen bad host", v + "metrics:\n  listen: \"bad host:9868\"\n", []string{`c.yaml:3:11: metrics.listen: "bad host" is neither an IP address nor a host name`}},
		{"listen bad ip", v + "metrics:\n  listen: \"300.1.1.1:9868\"\n", []string{`c.yaml:3:11: metrics.listen: "300.1.1.1" is neither an IP address nor a host name`}},
		{"bad backend", v + "usb:\n  backend: winusb\n", []string{`c.yaml:3:12: usb.backend: want "sysfs" or "libusb", got "winusb"`}},
		{"approved not a mapping", v + "approved: []\n", []string{`c.yaml:2:11: approved: want a mapping of keys, got a list`}},
		{"approved.usb not a list", v + "approved:\n  usb: {}\n", []string{`c.yaml:3:8: approved.usb: want a list, got a mapping`}},
		{"entry not a mapping", entry("hid"), []string{`c.yaml:4:7: approved.usb[0]: want a mapping of keys (name, vendor_id, ...), got "hid"`}},
		{"missing name", entry("{vendor_id: \"0951\"}"), []string{`c.yaml:4:7: approved.usb[0]: name is required`}},
		{"empty name", entry("{name: \"\", vendor_id: \"0951\"}"), []string{`c.yaml:4:14: approved.usb[0].name: must not be empty`}},
		{"no matching field", entry("{name: everything, owner: me}"), []string{`c.yaml:4:7: approved.usb[0]: sets none of vendor_id, product_id, serial, port, classes, so it would approve every device`}},
		{"unknown entry key", entry("{name: a, vendor_id: \"0951\", serial_number: x}"), []string{`c.yaml:4:36: approved.usb[0]: unknown key "serial_number" (known keys: name, vendor_id, product_id, serial, port, classes, owner, approved_by, valid_from, valid_until, require_encryption)`}},
		{"short vendor id", entry("{name: a, vendor_id: \"951\"}"), []string{`c.yaml:4:28: approved.usb[0].vendor_id: want 4 hex digits like "0951", got "951"`}},
		{"short unquoted vendor id", entry("{name: a, vendor_id: 951}"), []string{`c.yaml:4:28: approved.usb[0].vendor_id: want 4 hex digits like "0951", got "951"`}},
		{"0x vendor id", entry("{name: a, vendor_id: 0x0951}"), []string{`c.yaml:4:28: approved.usb[0].vendor_id: want 4 hex digits like "0951", got "0x0951"`}},
		{"non-hex product id", entry("{name: a, vendor_id: \"0951\", product_id: \"16g6\"}"), []string{`c.yaml:4:48: approved.usb[0].product_id: want 4 hex digits like "0951", got "16g6"`}},
		{"product without vendor", entry("{name: a, product_id: \"1666\"}"), []string{`c.yaml:4:29: approved.usb[0].product_id: needs vendor_id as well`}},
		{"empty serial", entry("{name: a, serial: \"\"}"), []string{`c.yaml:4:25: approved.usb[0].serial: must not be empty (leave the key out to match any serial)`}},
		{"null serial", entry("{name: a, serial: ~}"), []string{`c.yaml:4:25: approved.usb[0].serial: a value is required`}},
		{"root hub port", entry("{name: a, port: usb1}"), []string{`c.yaml:4:23: approved.usb[0].port: want a bus path like "1-2" or "3-1.4", got "usb1"`}},
		{"interface port", entry("{name: a, port: \"1-2:1.0\"}"), []string{`c.yaml:4:23: approved.usb[0].port: want a bus path like "1-2" or "3-1.4", got "1-2:1.0"`}},
		{"unknown class", entry("{name: a, classes: [hid, keyboard]}"), []string{`c.yaml:4:32: approved.usb[0].classes[1]: unknown USB class "keyboard" (known: application-specific, audio, audio-video, billboard, cdc-data, communications, content-security, diagnostic, hid, hub, mass-storage, misc, per-interface, personal-healthcare, physical, printer, smart-card, still-image, type-c-bridge, vendor-specific, video, wireless, or class-XX with a hex code)`}},
		{"empty classes", entry("{name: a, classes: []}"), []string{`c.yaml:4:26: approved.usb[0].classes: must not be empty (leave the key out to match any class)`}},
		{"classes scalar", entry("{name: a, classes: hid}"), []string{`c.yaml:4:26: approved.usb[0].classes: want a list, got "hid"`}},
		{"bad date", entry("{name: a, port: \"1-2\", valid_from: 2026-02-30}"), []string{`c.yaml:4:42: approved.usb[0].valid_from: want a date YYYY-MM-DD, got "2026-02-30"`}},
		{"timestamp not date", entry("{name: a, port: \"1-2\", valid_until: 2026-02-01T10:00:00Z}"), []string{`c.yaml:4:43: approved.usb[0].valid_until: want a date YYYY-MM-DD, got "2026-02-01T10:00:00Z"`}},
		{"date order", entry("{name: a, port: \"1-2\", valid_from: 2026-04-01, valid_until: 2026-03-31}"), []string{`c.yaml:4:67: approved.usb[0].valid_until: 2026-03-31 is before valid_from 2026-04-01`}},
		{"bad bool", entry("{name: a, port: \"1-2\", require_encryption: yes}"), []string{`c.yaml:4:50: approved.usb[0].require_encryption: want true or false, got "yes"`}},
		{"duplicate names", v + "approved:\n  usb:\n    - {name: a, port: \"1-2\"}\n    - {name: a, port: \"1-3\"}\n",
			[]string{`c.yaml:5:14: approved.usb[1].name: "a" is already the name of the entry at line 4`}},
		{"anchor", v + "agent: &a {language: ja}\n", []string{"c.yaml:2:8: agent: anchors (&a) are not allowed"}},
		{"alias", v + "approved:\n  usb:\n    - &e {name: a, port: \"1-2\"}\n    - *e\n",
			[]string{"c.yaml:4:7: approved.usb[0]: anchors (&e) are not allowed", "c.yaml:5:7: approved.usb[1]: aliases (*e) are not allowed"}},
		{"merge key", v + "agent:\n  <<: {language: ja}\n", []string{`c.yaml:3:3: agent: keys must be plain names, got "<<"`}},
		{"custom tag", v + "agent:\n  language: !lang ja\n", []string{`c.yaml:3:13: agent.language: tag !lang is not allowed`}},
		{"binary tag", v + "agent:\n  asset_id: !!binary UEMtMQ==\n", []string{`c.yaml:3:13: agent.asset_id: tag !!binary is not allowed`}},
		{"two documents", v + "---\nversion: 1\n", []string{"c.yaml:3:1: only one YAML document is allowed per file"}},
		{"syntax: tab indent", v + "agent:\n\tlanguage: ja\n", []string{"c.yaml:3:1: a tab character is not allowed for indentation in YAML; use spaces"}},
		{"syntax: tab after spaces", v + "agent:\n  \tlanguage: ja\n", []string{"c.yaml:3:3: a tab character is not allowed for indentation in YAML; use spaces"}},
		{"syntax: tab in a long list", v + "approved:\n  usb:\n    - name: a\n      port: 1-1\n    - name: b\n    \t  port: 1-2\n", []string{"c.yaml:7:5: a tab character is not allowed for indentation in YAML; use spaces"}},
		{"tab in a value is fine, a later syntax error is not a tab", v + "agent:\n  asset_id: a\tb\n bad: 1\n", []string{"c.yaml:4: YAML syntax error: did not find expected key"}},
		{"syntax: unclosed flow", v + "agent: {language: ja\nmetrics: {}\n", []string{"c.yaml:2: YAML syntax error: did not find expected ',' or '}'"}},
		{"syntax: bad indent", v + "agent:\n  language: ja\n bad: 1\n", []string{"c.yaml:4: YAML syntax error: did not find expected key"}},
		{"syntax: first line", "version: 1: 2\n", []string{"c.yaml:1: YAML syntax error: mapping values are not allowed in this context"}},
		{"syntax: unterminated quote", v + "agent:\n  asset_id: \"PC\n", []string{"c.yaml:3: YAML syntax error: found unexpected end of stream"}},
		{"not UTF-8", v + "agent:\n  asset_id: PC\xff\n", []string{"c.yaml:3:15: the file is not valid UTF-8 (save it as UTF-8)"}},
		{"UTF-16", "\xff\xfev\x00", []string{"c.yaml:1:1: the file is not valid UTF-8 (save it as UTF-8)"}},
		{"raw control character", v + "agent:\n  asset_id: PC\x07\n", []string{"c.yaml:3:15: control character U+0007 is not allowed"}},
		{"raw control character after CR", "version: 1\ragent: \x00", []string{"c.yaml:2:8: control character U+0000 is not allowed"}},
		{"several, in file order", "agent:\n  language: fr\n  rescan_interval: 0s\nmetrics:\n  listen: nope\napproved:\n  usb:\n    - {name: x, vendor_id: \"12\"}\n    - {vendor_id: \"0951\"}\n",
			[]string{
				"c.yaml:1:1: version: 1 required",
				`c.yaml:2:13: agent.language: want "ja" or "en", got "fr"`,
				`c.yaml:3:20: agent.rescan_interval: want a duration from 1s to 1h, got "0s"`,
				`c.yaml:5:11: metrics.listen: want host:port, like 127.0.0.1:9868, got "nope"`,
				`c.yaml:8:28: approved.usb[0].vendor_id: want 4 hex digits like "0951", got "12"`,
				`c.yaml:9:7: approved.usb[1]: name is required`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("no error, config %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("config %+v returned with an error", cfg)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList: %v", err, err)
			}
			var got []string
			for _, e := range list {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if err.Error() != strings.Join(tt.want, "\n") {
				t.Errorf("Error() = %q", err.Error())
			}
			var first *Error
			if !errors.As(err, &first) || first != list[0] {
				t.Errorf("errors.As(*Error) = %v, want the first error", first)
			}
			if !IsInvalid(err) {
				t.Error("IsInvalid = false")
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Column: 7, Msg: "bad"}, "a.yaml:3:7: bad"},
		{Error{File: "a.yaml", Line: 3, Column: 0, Msg: "bad"}, "a.yaml:3: bad"},
		{Error{File: "a.yaml", Line: 0, Column: 0, Msg: "bad"}, "a.yaml: bad"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.e, got, tt.want)
		}
	}
	var l ErrorList
	for i := range 60 {
		l = append(l, &Error{File: "f", Line: i + 1, Column: 1, Msg: "x"})
	}
	s := l.Error()
	if n := strings.Count(s, "\n"); n != 50 || !strings.HasSuffix(s, "\n(and 10 more errors)") {
		t.Errorf("long list: %d lines, ends %q", n, s[len(s)-30:])
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || IsInvalid(err) {
		t.Errorf("missing file: %v (IsInvalid %v)", err, IsInvalid(err))
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nagent: {language: fr}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if want := bad + `:2:19: agent.language: want "ja" or "en", got "fr"`; err == nil || err.Error() != want {
		t.Errorf("bad file: %v, want %s", err, want)
	}
	if errors.Is(err, fs.ErrNotExist) || !IsInvalid(err) {
		t.Errorf("bad file error classified wrong: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	data := []byte("version: 1\n" + strings.Repeat("#", MaxFileSize))
	if err := os.WriteFile(big, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(big)
	if want := big + ": file is larger than 67108864 bytes"; err == nil || err.Error() != want {
		t.Errorf("big file: %v", err)
	}
	if _, err := Parse("x", data); err == nil {
		t.Error("Parse accepted a file over MaxFileSize")
	}
	if _, err := Load(dir); err == nil || IsInvalid(err) {
		t.Errorf("directory: %v", err)
	}
	cfg, err := Load("testdata/example.yaml")
	if err != nil || cfg.File != "testdata/example.yaml" {
		t.Errorf("example: %v %+v", err, cfg)
	}
}

// TestHostileInput checks that inputs built to exhaust a parser fail
// quickly instead.
func TestHostileInput(t *testing.T) {
	var laughs strings.Builder
	laughs.WriteString("version: 1\nagent: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&laughs, "metrics%d: &a%d [", i, i)
		for j := range 9 {
			if j > 0 {
				laughs.WriteString(", ")
			}
			fmt.Fprintf(&laughs, "*a%d", i-1)
		}
		laughs.WriteString("]\n")
	}
	laughs.WriteString("approved:\n  usb:\n    - *a9\n")
	var entries strings.Builder
	entries.WriteString("version: 1\napproved:\n  usb:\n")
	for i := 0; entries.Len() < 4<<20; i++ {
		fmt.Fprintf(&entries, "    - {name: e%d, vendor_id: \"12x4\"}\n", i)
	}
	for _, tt := range []struct {
		name, in string
	}{
		{"billion laughs", laughs.String()},
		{"deep flow nesting", "version: 1\nagent: " + strings.Repeat("[", 1_000_000)},
		{"deep block nesting", "version: 1\n" + strings.Repeat("- ", 100_000) + "x\n"},
		{"long key", "version: 1\n" + strings.Repeat("k", 1<<20) + ": 1\n"},
		{"long value", "version: 1\nagent: {asset_id: " + strings.Repeat("v", 1<<20) + "}\n"},
		{"4 MiB of bad entries", entries.String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse("c.yaml", []byte(tt.in))
			if err == nil {
				t.Fatal("accepted")
			}
			// A bound that catches a blow-up (exponential work), not a
			// figure: 4 MiB of flow entries take about 2.7 s here, and
			// 25 s under the race detector on a loaded machine.
			limit := 30 * time.Second
			if raceEnabled {
				limit = 120 * time.Second
			}
			if d := time.Since(start); d > limit {
				t.Errorf("took %v, more than %v", d, limit)
			}
			msg := err.Error()
			if len(msg) > 64<<10 {
				t.Errorf("error message is %d bytes", len(msg))
			}
			t.Logf("%.200s", msg)
		})
	}
}

func TestParseDate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Date
		ok   bool
	}{
		{"2026-04-01", Date{2026, 4, 1}, true},
		{"2028-02-29", Date{2028, 2, 29}, true},
		{"2027-02-29", Date{}, false},
		{"2026-4-01", Date{}, false},
		{"-026-04-01", Date{}, false},
		{"+026-04-01", Date{}, false},
		{"2026-04-01 ", Date{}, false},
		{"2026/04/01", Date{}, false},
		{"20260401", Date{}, false},
		{"", Date{}, false},
		{"2026-13-01", Date{}, false},
		{"2026-00-10", Date{}, false},
	} {
		got, err := ParseDate(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDate(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
	a, b := Date{2026, 4, 1}, Date{2026, 3, 31}
	if a.Compare(b) != 1 || b.Compare(a) != -1 || a.Compare(a) != 0 {
		t.Error("Compare")
	}
	var d Date
	if err := d.UnmarshalText([]byte("2026-12-31")); err != nil || d != (Date{2026, 12, 31}) {
		t.Errorf("UnmarshalText: %v %v", d, err)
	}
	if txt, _ := d.MarshalText(); string(txt) != "2026-12-31" {
		t.Errorf("MarshalText = %s", txt)
	}
}

// bigConfig returns a valid config with n approved entries written the way
// people write them (block style, quoted ids, dates).
func bigConfig(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nagent:\n  asset_id: PC-0042\napproved:\n  usb:\n")
	for i := range n {
		fmt.Fprintf(&b, "    - name: stick %d\n      vendor_id: \"%04x\"\n      product_id: \"%04x\"\n      serial: \"SN%010d\"\n"+
			"      owner: 委託先作業責任者\n      approved_by: 情報政策課\n      valid_from: 2026-04-01\n      valid_until: 2027-03-31\n",
			i, i%0x10000, (i*7)%0x10000, i)
	}
	return []byte(b.String())
}

func TestParseBig(t *testing.T) {
	n := 100_000
	if testing.Short() || raceEnabled {
		n = 1000
	}
	cfg, err := Parse("big.yaml", bigConfig(n))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Approved.USB) != n {
		t.Fatalf("%d entries", len(cfg.Approved.USB))
	}
}

func BenchmarkParse100k(b *testing.B) {
	data := bigConfig(100_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("big.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
