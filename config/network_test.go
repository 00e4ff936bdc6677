package config

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// networkExample is the network part of a config as the documentation
// shows it.
const networkExample = `version: 1
agent:
  contact: "情報政策課 内線 1234"
approved:
  networks:
    - name: 庁内LAN (LGWAN接続系)
      cidr: 10.20.0.0/16
      gateway_mac: "00:11:22:33:44:55"
      zone: lgwan
    - name: 庁内Wi-Fi
      ssid: city-staff
      zone: lgwan
  lan_devices:
    - name: 複合機 3F
      mac: "00:1b:a9:00:00:01"
      owner: 総務課
      approved_by: 情報政策課
      valid_from: 2026-04-01
      valid_until: 2027-03-31
network:
  ignore_interfaces: ["docker*", "virbr*"]
  watch_lan: true
  lan_report_window: 24h
`

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestParseNetworkExample(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(networkExample))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agent.Contact != "情報政策課 内線 1234" {
		t.Errorf("Contact = %q", cfg.Agent.Contact)
	}
	wantNets := []NetworkEntry{
		{Name: "庁内LAN (LGWAN接続系)", CIDR: netip.MustParsePrefix("10.20.0.0/16"), GatewayMAC: mac("00:11:22:33:44:55"), Zone: "lgwan", Line: 6, File: "c.yaml"},
		{Name: "庁内Wi-Fi", SSID: "city-staff", Zone: "lgwan", Line: 10, File: "c.yaml"},
	}
	if !reflect.DeepEqual(cfg.Approved.Networks, wantNets) {
		t.Errorf("Networks:\n got %+v\nwant %+v", cfg.Approved.Networks, wantNets)
	}
	wantDevs := []LANDevice{{
		Name: "複合機 3F", MAC: mac("00:1b:a9:00:00:01"), Owner: "総務課", ApprovedBy: "情報政策課",
		ValidFrom: &Date{2026, 4, 1}, ValidUntil: &Date{2027, 3, 31}, Line: 14, File: "c.yaml",
	}}
	if !reflect.DeepEqual(cfg.Approved.LANDevices, wantDevs) {
		t.Errorf("LANDevices:\n got %+v\nwant %+v", cfg.Approved.LANDevices, wantDevs)
	}
	wantNet := Network{IgnoreInterfaces: []string{"docker*", "virbr*"}, WatchLAN: true, LANReportWindow: 24 * time.Hour}
	if !reflect.DeepEqual(cfg.Network, wantNet) {
		t.Errorf("Network = %+v, want %+v", cfg.Network, wantNet)
	}
	// The USB list may sit next to them, before or after, in the shape
	// the fast path reads.
	for _, in := range []string{
		strings.Replace(networkExample, "approved:\n", "approved:\n  usb:\n    - name: keyboards\n      classes: [hid]\n", 1),
		strings.Replace(networkExample, "network:\n", "  usb:\n  - name: keyboards\n    classes: [hid]\nnetwork:\n", 1),
	} {
		c, err := Parse("c.yaml", []byte(in))
		if err != nil {
			t.Fatalf("%v\n%s", err, in)
		}
		// The new sections must not turn the fast path off.
		p := &parser{file: "c.yaml", st: newLoadState(nil)}
		if p.parse([]byte(in)); !p.fastUsed || p.fastFailed || len(p.errs) > 0 {
			t.Errorf("fast path not used (failed %v, errors %v):\n%s", p.fastFailed, p.errs, in)
		}
		if len(c.Approved.USB) != 1 || len(c.Approved.Networks) != 2 || len(c.Approved.LANDevices) != 1 || !reflect.DeepEqual(c.Network, wantNet) {
			t.Errorf("with approved.usb: %+v\n%s", c, in)
		}
	}
}

func TestParseNetworkValues(t *testing.T) {
	tests := []struct {
		name, in string
		check    func(*Config) bool
	}{
		{"defaults", "", func(c *Config) bool {
			return c.Agent.Contact == DefaultContact && c.Network.WatchLAN && c.Network.LANReportWindow == 24*time.Hour &&
				c.Network.IgnoreInterfaces == nil && c.Approved.Networks == nil && c.Approved.LANDevices == nil
		}},
		{"empty sections", "network:\napproved:\n  networks:\n  lan_devices: []\n", func(c *Config) bool {
			return c.Network.WatchLAN && c.Approved.Networks == nil && c.Approved.LANDevices == nil
		}},
		{"watch_lan off", "network: {watch_lan: false}", func(c *Config) bool { return !c.Network.WatchLAN }},
		{"shortest window", "network: {lan_report_window: 1m}", func(c *Config) bool { return c.Network.LANReportWindow == time.Minute }},
		{"longest window", "network: {lan_report_window: 8784h}", func(c *Config) bool { return c.Network.LANReportWindow == 366*24*time.Hour }},
		{"window in whole days", "network: {lan_report_window: 7d}", func(c *Config) bool { return c.Network.LANReportWindow == 7*24*time.Hour }},
		{"longest window in days", "network: {lan_report_window: 366d}", func(c *Config) bool { return c.Network.LANReportWindow == 366*24*time.Hour }},
		{"uppercase dash MAC normalised", "approved:\n  lan_devices:\n    - {name: a, mac: 00-1B-A9-0A-BC-DE}\n",
			func(c *Config) bool { return FormatMAC(c.Approved.LANDevices[0].MAC) == "00:1b:a9:0a:bc:de" }},
		{"uppercase colon gateway normalised", "approved:\n  networks:\n    - {name: a, cidr: 10.0.0.0/8, gateway_mac: \"AA:BB:CC:DD:EE:FF\"}\n",
			func(c *Config) bool { return c.Approved.Networks[0].GatewayMAC.String() == "aa:bb:cc:dd:ee:ff" }},
		{"ipv6 cidr", "approved:\n  networks:\n    - {name: a, cidr: \"fd00:20::/64\"}\n",
			func(c *Config) bool { return c.Approved.Networks[0].CIDR == netip.MustParsePrefix("fd00:20::/64") }},
		{"one address", "approved:\n  networks:\n    - {name: a, cidr: 192.0.2.1/32}\n",
			func(c *Config) bool { return c.Approved.Networks[0].CIDR.Bits() == 32 }},
		{"same cidr, other ssid", "approved:\n  networks:\n    - {name: a, cidr: 10.0.0.0/8, ssid: x}\n    - {name: b, cidr: 10.0.0.0/8}\n",
			func(c *Config) bool { return len(c.Approved.Networks) == 2 }},
		{"ssid of 32 bytes, any text", "approved:\n  networks:\n    - {name: a, ssid: \"庁内Wi-Fi 3階 ゲスト用 ab\"}\n",
			func(c *Config) bool { return len(c.Approved.Networks[0].SSID) == 32 }},
		{"ssid that YAML reads as a bool keeps its text", "approved:\n  networks:\n    - {name: a, ssid: yes}\n",
			func(c *Config) bool { return c.Approved.Networks[0].SSID == "yes" }},
		{"patterns with classes", "network:\n  ignore_interfaces: [\"veth[0-9a-f][0-9a-f][0-9a-f]*\", \"br-*\", lo]\n",
			func(c *Config) bool { return len(c.Network.IgnoreInterfaces) == 3 }},
		{"pattern of 15 bytes", "network:\n  ignore_interfaces: [abcdefghijklmno]\n",
			func(c *Config) bool { return c.Network.IgnoreInterfaces[0] == "abcdefghijklmno" }},
		{"contact of 200 characters", "agent:\n  contact: " + strings.Repeat("課", 200) + "\n",
			func(c *Config) bool { return c.Agent.Contact == strings.Repeat("課", 200) }},
		{"device with no dates", "approved:\n  lan_devices:\n    - {name: a, mac: \"02:00:00:00:00:01\"}\n",
			func(c *Config) bool { d := c.Approved.LANDevices[0]; return d.ValidFrom == nil && d.ValidUntil == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte("version: 1\n"+tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("unexpected config %+v", cfg)
			}
		})
	}
}

// TestParseNetworkErrors checks every error of the network keys with its
// exact position.
func TestParseNetworkErrors(t *testing.T) {
	const v = "version: 1\n"
	nw := func(s string) string { return v + "approved:\n  networks:\n    - " + s + "\n" }
	dev := func(s string) string { return v + "approved:\n  lan_devices:\n    - " + s + "\n" }
	tests := []struct {
		name, in string
		want     []string
	}{
		{"bad cidr", nw("{name: a, cidr: 10.20.0/16}"),
			[]string{`c.yaml:4:23: approved.networks[0].cidr: want a network prefix like 10.20.0.0/16 or fd00:20::/64, got "10.20.0/16"`}},
		{"unmasked cidr", nw("{name: a, cidr: 10.20.3.4/16}"),
			[]string{`c.yaml:4:23: approved.networks[0].cidr: 10.20.3.4/16 has host bits set: want the network address 10.20.0.0/16`}},
		{"unmasked ipv6 cidr", nw("{name: a, cidr: \"fd00::1/64\"}"),
			[]string{`c.yaml:4:23: approved.networks[0].cidr: fd00::1/64 has host bits set: want the network address fd00::/64`}},
		{"cidr without length", nw("{name: a, cidr: 10.20.3.4}"),
			[]string{`c.yaml:4:23: approved.networks[0].cidr: "10.20.3.4" has no prefix length: add it, like 10.20.3.0/24 (10.20.3.4/32 for this one address)`}},
		{"ipv6 cidr without length", nw("{name: a, cidr: \"fd00:20::1\"}"),
			[]string{`c.yaml:4:23: approved.networks[0].cidr: "fd00:20::1" has no prefix length: add it, like fd00:20::/64 (fd00:20::1/128 for this one address)`}},
		{"ipv4-mapped cidr", nw("{name: a, cidr: \"::ffff:10.0.0.0/104\"}"),
			[]string{`c.yaml:4:23: approved.networks[0].cidr: "::ffff:10.0.0.0/104" is an IPv4-mapped IPv6 prefix: write the IPv4 prefix 10.0.0.0/8`}},
		{"cidr list", nw("{name: a, cidr: [10.0.0.0/8]}"),
			[]string{`c.yaml:4:23: approved.networks[0].cidr: want a single value, got a list`}},
		{"neither cidr nor ssid", nw("{name: a, zone: lgwan}"),
			[]string{`c.yaml:4:7: approved.networks[0]: sets neither cidr nor ssid, so it would match every network`}},
		{"ssid of 33 bytes", nw("{name: a, ssid: " + strings.Repeat("s", 33) + "}"),
			[]string{`c.yaml:4:23: approved.networks[0].ssid: longer than 32 bytes (the IEEE 802.11 limit): 33 bytes`}},
		{"ssid of 33 bytes of Japanese", nw("{name: a, ssid: " + strings.Repeat("庁", 11) + "}"),
			[]string{`c.yaml:4:23: approved.networks[0].ssid: longer than 32 bytes (the IEEE 802.11 limit): 33 bytes`}},
		{"empty ssid", nw(`{name: a, ssid: ""}`),
			[]string{`c.yaml:4:23: approved.networks[0].ssid: must not be empty (leave the key out to match a network by cidr alone)`}},
		{"ssid with control character", nw(`{name: a, ssid: "a\tb"}`),
			[]string{`c.yaml:4:23: approved.networks[0].ssid: control character U+0009 is not allowed`}},
		{"missing network name", nw("{cidr: 10.0.0.0/8}"),
			[]string{`c.yaml:4:7: approved.networks[0]: name is required`}},
		{"empty zone", nw(`{name: a, cidr: 10.0.0.0/8, zone: ""}`),
			[]string{`c.yaml:4:41: approved.networks[0].zone: must not be empty`}},
		{"duplicate network names", v + "approved:\n  networks:\n    - {name: a, cidr: 10.0.0.0/8}\n    - {name: a, ssid: x}\n",
			[]string{`c.yaml:5:14: approved.networks[1].name: "a" is already the name of the network at line 4`}},
		{"identical networks", v + "approved:\n  networks:\n    - name: a\n      cidr: 10.0.0.0/8\n      ssid: x\n    - name: b\n      ssid: x\n      cidr: 10.0.0.0/8\n",
			[]string{`c.yaml:7:7: approved.networks[1]: matches exactly the networks of the entry "a" at line 4 (same cidr and ssid)`}},
		{"unknown network key", nw(`{name: a, cidr: 10.0.0.0/8, gatway_mac: "00:11:22:33:44:55"}`),
			[]string{`c.yaml:4:35: approved.networks[0]: unknown key "gatway_mac" (did you mean "gateway_mac"?)`}},
		{"network not a mapping", nw("10.0.0.0/8"),
			[]string{`c.yaml:4:7: approved.networks[0]: want a mapping of keys (name, cidr, ...), got "10.0.0.0/8"`}},
		{"networks not a list", v + "approved:\n  networks: {name: a}\n",
			[]string{`c.yaml:3:13: approved.networks: want a list, got a mapping`}},
		{"gateway MAC of 5 octets", nw(`{name: a, cidr: 10.0.0.0/8, gateway_mac: "00:11:22:33:44"}`),
			[]string{`c.yaml:4:48: approved.networks[0].gateway_mac: want a MAC address of 6 octets like 00:1b:a9:00:00:01, got "00:11:22:33:44"`}},
		{"gateway MAC dotted", nw(`{name: a, cidr: 10.0.0.0/8, gateway_mac: 0011.2233.4455}`),
			[]string{`c.yaml:4:48: approved.networks[0].gateway_mac: "0011.2233.4455" is in the dotted form: write it as 00:11:22:33:44:55`}},
		{"no separators: gateway MAC dotted", nw(`{name: a, cidr: 10.0.0.0/8, gateway_mac: 001122334455}`),
			[]string{`c.yaml:4:48: approved.networks[0].gateway_mac: "001122334455" has no separators: write it as 00:11:22:33:44:55`}},
		{"gateway MAC of 8 octets", nw(`{name: a, cidr: 10.0.0.0/8, gateway_mac: "00:11:22:33:44:55:66:77"}`),
			[]string{`c.yaml:4:48: approved.networks[0].gateway_mac: "00:11:22:33:44:55:66:77" has 8 octets (an EUI-64): want a MAC address of 6 octets like 00:1b:a9:00:00:01`}},
		{"gateway MAC multicast", nw(`{name: a, cidr: 10.0.0.0/8, gateway_mac: "01:00:5e:00:00:01"}`),
			[]string{`c.yaml:4:48: approved.networks[0].gateway_mac: 01:00:5e:00:00:01 is a multicast address (the first octet is odd), not a device's MAC address`}},
		{"missing mac", dev("{name: a}"),
			[]string{`c.yaml:4:7: approved.lan_devices[0]: mac is required`}},
		{"MAC of 5 octets", dev(`{name: a, mac: "00:11:22:33:44"}`),
			[]string{`c.yaml:4:22: approved.lan_devices[0].mac: want a MAC address of 6 octets like 00:1b:a9:00:00:01, got "00:11:22:33:44"`}},
		{"MAC dotted", dev(`{name: a, mac: "0011.2233.4455"}`),
			[]string{`c.yaml:4:22: approved.lan_devices[0].mac: "0011.2233.4455" is in the dotted form: write it as 00:11:22:33:44:55`}},
		{"MAC of 8 octets", dev(`{name: a, mac: "00-11-22-33-44-55-66-77"}`),
			[]string{`c.yaml:4:22: approved.lan_devices[0].mac: "00-11-22-33-44-55-66-77" has 8 octets (an EUI-64): want a MAC address of 6 octets like 00:1b:a9:00:00:01`}},
		{"MAC multicast", dev(`{name: a, mac: "01:00:5e:00:00:01"}`),
			[]string{`c.yaml:4:22: approved.lan_devices[0].mac: 01:00:5e:00:00:01 is a multicast address (the first octet is odd), not a device's MAC address`}},
		{"MAC broadcast", dev(`{name: a, mac: "FF:FF:FF:FF:FF:FF"}`),
			[]string{`c.yaml:4:22: approved.lan_devices[0].mac: ff:ff:ff:ff:ff:ff is the broadcast address, not a device's MAC address`}},
		{"MAC all zero", dev(`{name: a, mac: "00:00:00:00:00:00"}`),
			[]string{`c.yaml:4:22: approved.lan_devices[0].mac: 00:00:00:00:00:00 is not a device's MAC address (all zero)`}},
		{"MAC mixed separators", dev(`{name: a, mac: "00:11-22:33:44:55"}`),
			[]string{`c.yaml:4:22: approved.lan_devices[0].mac: want a MAC address of 6 octets like 00:1b:a9:00:00:01, got "00:11-22:33:44:55"`}},
		{"duplicate device names", v + "approved:\n  lan_devices:\n    - {name: a, mac: \"00:1b:a9:00:00:01\"}\n    - {name: a, mac: \"00:1b:a9:00:00:02\"}\n",
			[]string{`c.yaml:5:14: approved.lan_devices[1].name: "a" is already the name of the device at line 4`}},
		{"duplicate MACs", v + "approved:\n  lan_devices:\n    - name: printer\n      mac: \"00:1b:a9:00:00:01\"\n    - name: copier\n      mac: 00-1B-A9-00-00-01\n",
			[]string{`c.yaml:7:12: approved.lan_devices[1].mac: 00:1b:a9:00:00:01 is already the MAC of the device "printer" at line 4`}},
		{"device dates", dev(`{name: a, mac: "02:00:00:00:00:01", valid_from: 2026-04-01, valid_until: 2026-03-31}`),
			[]string{`c.yaml:4:80: approved.lan_devices[0].valid_until: 2026-03-31 is before valid_from 2026-04-01`}},
		{"device bad date", dev(`{name: a, mac: "02:00:00:00:00:01", valid_from: 2026-02-30}`),
			[]string{`c.yaml:4:55: approved.lan_devices[0].valid_from: want a date YYYY-MM-DD, got "2026-02-30"`}},
		{"empty owner", dev(`{name: a, mac: "02:00:00:00:00:01", owner: " "}`),
			[]string{`c.yaml:4:50: approved.lan_devices[0].owner: must not be empty`}},
		{"unknown device key", dev(`{name: a, mac: "02:00:00:00:00:01", ownr: x}`),
			[]string{`c.yaml:4:43: approved.lan_devices[0]: unknown key "ownr" (did you mean "owner"?)`}},
		{"bad glob", v + "network:\n  ignore_interfaces: [\"docker*\", \"[\"]\n",
			[]string{`c.yaml:3:34: network.ignore_interfaces[1]: "[" is not a valid pattern (use * for any text, ? for one character, [0-9] for one of a set)`}},
		{"empty pattern", v + "network:\n  ignore_interfaces: [\"\"]\n",
			[]string{`c.yaml:3:23: network.ignore_interfaces[0]: must not be empty`}},
		{"pattern longer than any interface name", v + "network:\n  ignore_interfaces: [\"VirtualBox Host-Only*\"]\n",
			[]string{`c.yaml:3:23: network.ignore_interfaces[0]: "VirtualBox Host-Only*" matches no interface: a name it matches has at least 20 bytes, and interface names have at most 15`}},
		{"patterns not a list", v + "network:\n  ignore_interfaces: docker*\n",
			[]string{`c.yaml:3:22: network.ignore_interfaces: want a list, got "docker*"`}},
		{"lan_report_window 30s", v + "network:\n  lan_report_window: 30s\n",
			[]string{`c.yaml:3:22: network.lan_report_window: want a duration from 1m to 8784h (366 days), got "30s"`}},
		{"lan_report_window without unit", v + "network:\n  lan_report_window: 24\n",
			[]string{`c.yaml:3:22: network.lan_report_window: want a duration with a unit, like 60s, 5m, 24h or 7d (whole days), got "24"`}},
		{"lan_report_window in part days", v + "network:\n  lan_report_window: 1.5d\n",
			[]string{`c.yaml:3:22: network.lan_report_window: want a duration with a unit, like 60s, 5m, 24h or 7d (whole days), got "1.5d"`}},
		{"lan_report_window over a year in days", v + "network:\n  lan_report_window: 367d\n",
			[]string{`c.yaml:3:22: network.lan_report_window: want a duration from 1m to 8784h (366 days), got "367d"`}},
		{"watch_lan yes", v + "network:\n  watch_lan: yes\n",
			[]string{`c.yaml:3:14: network.watch_lan: want true or false, got "yes"`}},
		{"unknown network key", v + "network:\n  watch_wan: true\n",
			[]string{`c.yaml:3:3: network: unknown key "watch_wan" (did you mean "watch_lan"?)`}},
		{"contact empty", v + "agent:\n  contact: \"\"\n",
			[]string{`c.yaml:3:12: agent.contact: must not be empty`}},
		{"contact too long", v + "agent:\n  contact: " + strings.Repeat("課", 201) + "\n",
			[]string{`c.yaml:3:12: agent.contact: longer than 200 characters (201): name a division and a phone extension or address`}},
		{"contact control character", v + "agent:\n  contact: \"内線\\u202e1234\"\n",
			[]string{`c.yaml:3:12: agent.contact: control character U+202E is not allowed`}},
		{"several, in file order", v + "network:\n  watch_lan: 1\napproved:\n  lan_devices:\n    - {name: a, mac: \"0011.2233.4455\"}\n  networks:\n    - {name: n, cidr: 10.0.0.1/8}\n",
			[]string{
				`c.yaml:3:14: network.watch_lan: want true or false, got "1"`,
				`c.yaml:6:22: approved.lan_devices[0].mac: "0011.2233.4455" is in the dotted form: write it as 00:11:22:33:44:55`,
				`c.yaml:8:23: approved.networks[0].cidr: 10.0.0.1/8 has host bits set: want the network address 10.0.0.0/8`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("no error, config %+v", cfg)
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
		})
	}
}

func TestParseNetworkCaps(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\napproved:\n  networks:\n")
	for i := range MaxApprovedNetworks + 1 {
		b.WriteString("    - {name: n")
		b.WriteString(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}).String())
		b.WriteString(", cidr: ")
		b.WriteString(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24).String())
		b.WriteString("}\n")
	}
	_, err := Parse("c.yaml", []byte(b.String()))
	want := `c.yaml:10004:7: approved.networks: more than 10000 approved networks`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestParseMAC(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want "" for an error
	}{
		{"00:1b:a9:00:00:01", "00:1b:a9:00:00:01"},
		{"00:1B:A9:0A:BC:DE", "00:1b:a9:0a:bc:de"},
		{"00-1b-a9-0a-bc-de", "00:1b:a9:0a:bc:de"},
		{"02:00:00:00:00:00", "02:00:00:00:00:00"}, // locally administered
		{"00:1b:a9:00:00", ""},
		{"00:1b:a9:00:00:01:02", ""},
		{"00:1b:a9:00:00:1", ""},
		{"0:1b:a9:00:00:01", ""},
		{"00:1b:a9:00:00:0g", ""},
		{"001ba9000001", ""},
		{"001b.a900.0001", ""},
		{"00:1b:a9:00:00:01:02:03", ""},
		{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", ""},
		{"00:1b-a9:00:00:01", ""},
		{" 00:1b:a9:00:00:01", ""},
		{"00:00:00:00:00:00", ""},
		{"ff:ff:ff:ff:ff:ff", ""},
		{"33:33:00:00:00:01", ""},
		{"", ""},
	} {
		got, err := ParseMAC(tt.in)
		if tt.want == "" {
			if err == nil || got != nil {
				t.Errorf("ParseMAC(%q) = %v, %v; want an error", tt.in, got, err)
			}
			continue
		}
		if err != nil || FormatMAC(got) != tt.want || len(got) != 6 {
			t.Errorf("ParseMAC(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if FormatMAC(nil) != "" {
		t.Errorf("FormatMAC(nil) = %q", FormatMAC(nil))
	}
}

func TestMatchesAddr(t *testing.T) {
	v4 := NetworkEntry{CIDR: netip.MustParsePrefix("10.20.0.0/16")}
	v6 := NetworkEntry{CIDR: netip.MustParsePrefix("fd00:20::/64")}
	mapped := NetworkEntry{CIDR: netip.MustParsePrefix("::ffff:10.20.0.0/112")}
	ssidOnly := NetworkEntry{SSID: "city-staff"}
	for _, tt := range []struct {
		e    *NetworkEntry
		addr string
		want bool
	}{
		{&v4, "10.20.3.4", true},
		{&v4, "10.20.0.0", true},
		{&v4, "10.20.255.255", true},
		{&v4, "10.21.0.1", false},
		{&v4, "::ffff:10.20.3.4", true},
		{&v4, "fd00:20::1", false},
		{&v6, "fd00:20::1", true},
		{&v6, "fd00:20::1%eth0", true},
		{&v6, "fd00:21::1", false},
		{&v6, "10.20.3.4", false},
		{&mapped, "10.20.3.4", true},
		{&mapped, "::ffff:10.20.3.4", true},
		{&mapped, "10.21.3.4", false},
		{&ssidOnly, "10.20.3.4", false},
	} {
		if got := tt.e.MatchesAddr(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("%v.MatchesAddr(%s) = %v", tt.e.CIDR, tt.addr, got)
		}
	}
	if v4.MatchesAddr(netip.Addr{}) {
		t.Error("the zero Addr matched")
	}
}

func TestLANIndex(t *testing.T) {
	jst := time.FixedZone("JST", 9*3600)
	devs := []LANDevice{
		{Name: "printer", MAC: mac("00:1b:a9:00:00:01")},
		{Name: "copier", MAC: mac("00:1b:a9:00:00:02"), ValidFrom: date("2026-04-01"), ValidUntil: date("2027-03-31")},
		{Name: "same MAC later", MAC: mac("00:1b:a9:00:00:01")},
		{Name: "short MAC", MAC: net.HardwareAddr{1, 2, 3}},
	}
	x := NewLANIndex(devs, WithLocation(jst))
	if x.Len() != 4 {
		t.Errorf("Len = %d", x.Len())
	}
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation(time.DateTime, s, jst)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tt := range []struct {
		mac        string
		day        time.Time
		want       string // "" for none
		registered bool
	}{
		{"00:1b:a9:00:00:01", at("2020-01-01 12:00:00"), "printer", true},
		{"00:1B:A9:00:00:01", at("2020-01-01 12:00:00"), "printer", true},
		{"00:1b:a9:00:00:03", at("2026-06-01 12:00:00"), "", false},
		{"00:1b:a9:00:00:02", at("2026-03-31 23:59:59"), "copier", false},
		{"00:1b:a9:00:00:02", at("2026-04-01 00:00:00"), "copier", true},
		{"00:1b:a9:00:00:02", at("2027-03-31 23:59:59"), "copier", true},
		{"00:1b:a9:00:00:02", at("2027-04-01 00:00:00"), "copier", false},
		// The day is the index's: 2026-03-31 15:00 UTC is April 1st in JST.
		{"00:1b:a9:00:00:02", time.Date(2026, 3, 31, 15, 0, 0, 0, time.UTC), "copier", true},
		{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", at("2026-06-01 12:00:00"), "", false},
	} {
		d, reg := x.Lookup(mac(tt.mac), tt.day)
		name := ""
		if d != nil {
			name = d.Name
		}
		if name != tt.want || reg != tt.registered {
			t.Errorf("Lookup(%s, %v) = %q, %v; want %q, %v", tt.mac, tt.day, name, reg, tt.want, tt.registered)
		}
	}
	if d, reg := x.Lookup(net.HardwareAddr{1, 2, 3}, time.Now()); d != nil || reg {
		t.Error("a 3-byte MAC was found")
	}
	if d, reg := (*LANIndex)(nil).Lookup(mac("00:1b:a9:00:00:01"), time.Now()); d != nil || reg {
		t.Error("nil index found a device")
	}
	// From a config.
	cfg, err := Parse("c.yaml", []byte(networkExample))
	if err != nil {
		t.Fatal(err)
	}
	x = NewLANIndex(cfg.Approved.LANDevices)
	if d, reg := x.Lookup(mac("00:1b:a9:00:00:01"), time.Date(2026, 6, 1, 12, 0, 0, 0, time.Local)); d == nil || !reg || d.Name != "複合機 3F" {
		t.Errorf("config device: %+v %v", d, reg)
	}
}

func TestLANIndexLookupAllocs(t *testing.T) {
	x := NewLANIndex([]LANDevice{{Name: "a", MAC: mac("00:1b:a9:00:00:01")}})
	m, day := mac("00:1b:a9:00:00:01"), time.Now()
	if n := testing.AllocsPerRun(100, func() { x.Lookup(m, day) }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

func TestPatternMinLen(t *testing.T) {
	for _, tt := range []struct {
		p string
		n int
	}{
		{"", 0}, {"*", 0}, {"eth0", 4}, {"docker*", 6}, {"v?th", 4}, {"veth[0-9a-f]*", 5},
		{"[]a]", 1}, {"[^x]y", 2}, {`a\*b`, 3}, {"[\\]]x", 2}, {"é*", 2},
	} {
		if got := patternMinLen(tt.p); got != tt.n {
			t.Errorf("patternMinLen(%q) = %d, want %d", tt.p, got, tt.n)
		}
	}
}
