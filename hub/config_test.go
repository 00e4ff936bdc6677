package hub

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig("/etc/mamori-hub/hub.yaml", []byte(`version: 1
listen: 0.0.0.0:8443
tls: {cert_file: hub.crt, key_file: /etc/mamori-hub/hub.key}
database: postgres://hub@db.example/hub
silent_after: 15m
retention: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:8443" || cfg.TLS.CertFile != "/etc/mamori-hub/hub.crt" || cfg.TLS.KeyFile != "/etc/mamori-hub/hub.key" ||
		cfg.Database != "postgres://hub@db.example/hub" || cfg.SilentAfter != 15*time.Minute || cfg.Retention != 0 {
		t.Fatalf("%+v", cfg)
	}
	cfg, err = ParseConfig("/srv/hub.yaml", []byte("version: 1\ndatabase: sqlite://data/hub.db\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database != "sqlite:///srv/data/hub.db" || cfg.Listen != DefaultListen || cfg.SilentAfter != DefaultSilentAfter {
		t.Fatalf("%+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"empty", "", "h.yaml:1:1: version: 1 required (the file is empty)"},
		{"no version", "listen: 127.0.0.1:1\n", "h.yaml:1:1: version: 1 required"},
		{"version 2", "version: 2\n", "h.yaml:1:10: version: only version 1 is known"},
		{"unknown key", "version: 1\nlisen: x\n", `h.yaml:2:1: the config: unknown key "lisen"`},
		{"twice", "version: 1\nversion: 1\n", `h.yaml:2:1: the config: key "version" is given twice`},
		{"plain http off loopback", "version: 1\nlisten: 0.0.0.0:8443\n", "h.yaml:1:1: tls: needed: plain HTTP is allowed only on a loopback address"},
		{"tls half", "version: 1\nlisten: 10.0.0.1:8443\ntls: {cert_file: a}\n", "h.yaml:3:6: tls: both cert_file and key_file are needed"},
		{"tls unknown", "version: 1\ntls: {cert: a}\n", `h.yaml:2:7: tls: unknown key "cert"`},
		{"database", "version: 1\ndatabase: mysql://x\n", "h.yaml:2:11: database: want sqlite:///path or postgres://"},
		{"silent_after", "version: 1\nsilent_after: soon\n", "h.yaml:2:15: silent_after: want a duration"},
		{"retention", "version: 1\nretention: 30m\n", "h.yaml:2:12: retention: at least 1d"},
		{"listen", "version: 1\nlisten: 8443\n", "h.yaml:2:9: listen: want host:port"},
		{"a list", "version: 1\nlisten: [a]\n", "h.yaml:2:9: listen must be a single value"},
		{"syntax", "version: 1\n  bad: [\n", "h.yaml:"},
		{"two documents", "version: 1\n---\nversion: 1\n", "h.yaml:2:1: only one YAML document"},
		{"not a mapping", "- 1\n", "h.yaml:1:1: the config must be a mapping"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("h.yaml", []byte(c.doc))
			var l ErrorList
			if !errors.As(err, &l) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestLoadConfigMissing(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%v", err)
	}
	if _, err := LoadConfig(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("%v", err)
	}
}

func TestCheckApproved(t *testing.T) {
	good := "usb:\n  - name: stick\n    vendor_id: \"0781\"\nnetworks: []\nlan_devices:\n"
	if err := CheckApproved("a.yaml", []byte(good)); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ doc, want string }{
		{"", "a.yaml:1:1: the approved lists are empty"},
		{"usb_ledger: x.csv\n", `a.yaml:1:1: approved: unknown key "usb_ledger"`},
		{"usb: {name: x}\n", "a.yaml:1:6: usb must be a list"},
		{"usb:\n  - x\n", "a.yaml:2:5: usb[0] must be a mapping"},
		{"usb:\n  - &a {name: x}\n  - *a\n", "a.yaml:3:5: usb[1]: aliases are not allowed"},
		{"usb:\n  - name: x\n    classes: &c [8]\n", "a.yaml:3:14: usb[0].classes: anchors and aliases are not allowed"},
		{"usb: []\n---\nusb: []\n", "only one YAML document"},
	}
	for _, c := range cases {
		err := CheckApproved("a.yaml", []byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.doc, err, c.want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "127.8.0.1:1": true,
		":8443": false, "0.0.0.0:1": false, "10.0.0.1:1": false, "x": false,
	} {
		if isLoopback(addr) != want {
			t.Errorf("%s: %v", addr, !want)
		}
	}
}
