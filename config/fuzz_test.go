package config

import (
	"bytes"
	"errors"
	"os"
	"path"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/collector/usb"
)

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(example),
		"",
		"version: 1\n",
		"version: 2\n",
		"version: 1\nagent: {asset_id: 0042, language: en, rescan_interval: 1m30s, state_dir: /srv/m}\n",
		"version: 1\nmetrics: {listen: \"[::1]:0\"}\nusb: {backend: libusb}\n",
		"version: 1\nmetrics:\n  listen:\n",
		"version: 1\napproved:\n  usb:\n    - {name: a, vendor_id: 0951, product_id: 1666, serial: \"X\", port: \"1-2.3\", classes: [hid, class-ff]}\n",
		"version: 1\napproved:\n  usb:\n    - {name: a, classes: [hid], valid_from: 2026-04-01, valid_until: 2027-03-31}\n    - {name: b, serial: '1', require_encryption: true}\n",
		"version: 1\napproved:\n  usb:\n    - &a {name: a, port: \"1-1\"}\n    - *a\n",
		"version: 1\nagent:\n\tlanguage: ja\n",
		"version: 1\n---\nversion: 1\n",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
		"version: 1\nagent: {<<: {language: ja}}\n",
		"\ufeffversion: 1\r\nagent:\r\n  language: en\r\n",
		"version: !!str 1\n",
		"version: 1\napproved: {usb: [{name: \"\\u202e\", port: 1-1}]}\n",
		"version: 1\nagent:\n  contact: \"情報政策課 内線 1234\"\napproved:\n  networks:\n    - name: 庁内LAN (LGWAN接続系)\n      cidr: 10.20.0.0/16\n" +
			"      gateway_mac: \"00:11:22:33:44:55\"\n      zone: lgwan\n    - name: 庁内Wi-Fi\n      ssid: city-staff\n      zone: lgwan\n" +
			"  lan_devices:\n    - name: 複合機 3F\n      mac: \"00:1b:a9:00:00:01\"\n      owner: 総務課\n      approved_by: 情報政策課\n" +
			"      valid_from: 2026-04-01\n      valid_until: 2027-03-31\n  usb:\n    - name: a\n      port: 1-1\n" +
			"network:\n  ignore_interfaces: [\"docker*\", \"virbr*\"]\n  watch_lan: true\n  lan_report_window: 24h\n",
		"version: 1\napproved:\n  networks: [{name: a, cidr: \"fd00::/64\", ssid: x}, {name: b, cidr: \"::ffff:10.0.0.0/104\"}, {name: c, cidr: 10.1.2.3}]\n" +
			"  lan_devices: [{name: a, mac: 0011.2233.4455}, {name: b, mac: \"00:11:22:33:44:55:66:77\"}, {name: c, mac: 02-00-00-00-00-01, valid_until: 2026-01-01}]\n",
		"version: 1\nnetwork: {ignore_interfaces: [\"[\", \"veth[0-9a-f]*\", \"abcdefghijklmnop*\"], watch_lan: no, lan_report_window: 30s}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			for i, e := range list {
				if e.File != "f.yaml" || e.Line < 1 || e.Column < 0 || e.Msg == "" {
					t.Fatalf("malformed error %#v", e)
				}
				if i > 0 && (e.Line < list[i-1].Line || e.Line == list[i-1].Line && e.Column < list[i-1].Column) {
					t.Fatalf("errors out of order: %v", err)
				}
			}
			return
		}
		checkConfig(t, cfg)
	})
}

// checkConfig checks what every valid config holds, and that the policy
// finds each entry for a device built to match it.
func checkConfig(t *testing.T, cfg *Config) {
	t.Helper()
	a := cfg.Agent
	if cfg.Version != 1 || a.RescanInterval <= 0 || (a.Language != "ja" && a.Language != "en") ||
		a.StateDir == "" || (cfg.USB.Backend != "sysfs" && cfg.USB.Backend != "libusb") {
		t.Fatalf("invalid config accepted: %+v", cfg)
	}
	if cfg.Metrics.Listen != "" {
		if err := checkListen(cfg.Metrics.Listen); err != nil {
			t.Fatal(err)
		}
	}
	checkNetworkConfig(t, cfg)
	p := NewPolicy(cfg.Approved.USB, WithLocation(time.UTC))
	for i := range cfg.Approved.USB {
		e := &cfg.Approved.USB[i]
		if e.Name == "" || !e.matchesSomething() || e.Line < 1 {
			t.Fatalf("invalid entry accepted: %+v", e)
		}
		from, until := e.Dates()
		if from != nil && until != nil && from.Compare(*until) > 0 {
			t.Fatalf("dates out of order accepted: %+v", e)
		}
		if tm := e.Terms; tm != nil && tm.Classes == nil && tm.Owner == "" && tm.ApprovedBy == "" && tm.ValidFrom == nil && tm.ValidUntil == nil && !tm.RequireEncryption {
			t.Fatalf("entry with empty Terms accepted (want nil): %+v", e)
		}
		if _, ok := parseID(e.VendorID); e.VendorID != "" && (!ok || e.VendorID != lowerHex(e.VendorID)) {
			t.Fatalf("bad vendor id accepted: %q", e.VendorID)
		}
		if _, ok := parseID(e.ProductID); e.ProductID != "" && (!ok || e.VendorID == "") {
			t.Fatalf("bad product id accepted: %q", e.ProductID)
		}
		d := &usb.Device{Path: e.Port, VendorID: e.VendorID, ProductID: e.ProductID, Serial: e.Serial, Class: "00"}
		if d.Path == "" {
			d.Path = "9-9"
		}
		if d.VendorID == "" {
			d.VendorID = "ffff"
		}
		if d.ProductID == "" {
			d.ProductID = "ffff"
		}
		for _, c := range e.terms().Classes {
			code, ok := usb.ClassCode(c)
			if !ok {
				code = c[len("class-"):]
			}
			d.Interfaces = append(d.Interfaces, usb.Interface{Class: code})
		}
		now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		if from != nil {
			now = time.Date(from.Year, from.Month, from.Day, 0, 0, 0, 0, time.UTC)
		} else if until != nil {
			now = time.Date(until.Year, until.Month, until.Day, 23, 59, 0, 0, time.UTC)
		}
		got := p.Decide(d, now)
		if got.Status != Approved || got.Entry == nil {
			t.Fatalf("entry %+v: device %+v decided %v", e, d, got.Status)
		}
	}
}

func lowerHex(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// checkNetworkConfig checks what every valid config holds of the network
// keys, and that the lookups find each entry.
func checkNetworkConfig(t *testing.T, cfg *Config) {
	t.Helper()
	n := cfg.Network
	if cfg.Agent.Contact == "" || n.LANReportWindow < MinLANReportWindow || n.LANReportWindow > MaxLANReportWindow {
		t.Fatalf("invalid config accepted: %+v", cfg)
	}
	for _, pat := range n.IgnoreInterfaces {
		if _, err := path.Match(pat, ""); err != nil || pat == "" {
			t.Fatalf("bad pattern accepted: %q", pat)
		}
	}
	names := map[string]bool{}
	for i := range cfg.Approved.Networks {
		e := &cfg.Approved.Networks[i]
		if e.Name == "" || names[e.Name] || e.Line < 1 || !e.CIDR.IsValid() && e.SSID == "" || len(e.SSID) > MaxSSIDLen {
			t.Fatalf("invalid network accepted: %+v", e)
		}
		names[e.Name] = true
		if e.CIDR.IsValid() && (e.CIDR.Masked() != e.CIDR || !e.MatchesAddr(e.CIDR.Addr())) {
			t.Fatalf("network %+v: CIDR not masked or does not match its own address", e)
		}
		if e.GatewayMAC != nil && (len(e.GatewayMAC) != 6 || e.GatewayMAC[0]&1 != 0) {
			t.Fatalf("bad gateway MAC accepted: %v", e.GatewayMAC)
		}
	}
	x := NewLANIndex(cfg.Approved.LANDevices, WithLocation(time.UTC))
	names = map[string]bool{}
	for i := range cfg.Approved.LANDevices {
		d := &cfg.Approved.LANDevices[i]
		if d.Name == "" || names[d.Name] || d.Line < 1 || len(d.MAC) != 6 || d.MAC[0]&1 != 0 {
			t.Fatalf("invalid LAN device accepted: %+v", d)
		}
		names[d.Name] = true
		if d.ValidFrom != nil && d.ValidUntil != nil && d.ValidFrom.Compare(*d.ValidUntil) > 0 {
			t.Fatalf("dates out of order accepted: %+v", d)
		}
		day := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
		if d.ValidFrom != nil {
			day = time.Date(d.ValidFrom.Year, d.ValidFrom.Month, d.ValidFrom.Day, 0, 0, 0, 0, time.UTC)
		} else if d.ValidUntil != nil {
			day = time.Date(d.ValidUntil.Year, d.ValidUntil.Month, d.ValidUntil.Day, 23, 59, 0, 0, time.UTC)
		}
		if got, reg := x.Lookup(d.MAC, day); got != d || !reg {
			t.Fatalf("device %+v: Lookup = %+v, %v", d, got, reg)
		}
		if m, err := ParseMAC(FormatMAC(d.MAC)); err != nil || !bytes.Equal(m, d.MAC) {
			t.Fatalf("FormatMAC(%v) does not parse back: %v", d.MAC, err)
		}
	}
}
