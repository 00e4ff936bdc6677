package config

import (
	"errors"
	"strings"
	"testing"
)

const hubLists = `usb:
  - name: Camera
    vendor_id: "04a9"
    product_id: "31c0"
    valid_until: 2027-03-31
  - name: Keyboards
    classes: [hid]
networks:
  - name: Office
    cidr: 10.20.0.0/16
lan_devices:
  - name: Printer
    mac: "00:11:22:33:44:55"
`

// TestParseApproved: the hub's document is read by the approved: parser,
// its entries named after the hub's version.
func TestParseApproved(t *testing.T) {
	a, err := ParseApproved(HubPolicyFile(3), []byte(hubLists))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.USB) != 2 || len(a.Networks) != 1 || len(a.LANDevices) != 1 {
		t.Fatalf("got %d usb, %d networks, %d lan devices", len(a.USB), len(a.Networks), len(a.LANDevices))
	}
	if e := a.USB[0]; e.Name != "Camera" || e.File != "hub policy v3" || e.Line != 2 || e.Terms == nil || e.Terms.ValidUntil == nil {
		t.Errorf("first entry %+v", e)
	}
}

// TestParseApprovedErrors: file:line:col errors naming the hub's version;
// keys a config file allows but the hub cannot hand out (ledgers) and the
// config file's own keys are refused.
func TestParseApprovedErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"", "hub policy v2:1:1: usb:, networks: or lan_devices: required (the file is empty)"},
		{"usb:\n  - name: A\n    vendor_id: 12345\n", "hub policy v2:3:16: approved.usb[0].vendor_id"},
		{"usb:\n  - name: A\n    vendor_id: \"1234\"\n  - name: A\n    vendor_id: \"5678\"\n", "hub policy v2:4:"},
		{"usb_ledger: ledger.csv\n", `hub policy v2:1:1: approved: unknown key "usb_ledger"`},
		{"version: 1\n", `hub policy v2:1:1: approved: unknown key "version"`},
		{"- a\n", "hub policy v2:1:1: approved: want a mapping"},
		{"usb: [\n", "hub policy v2:"},
		{"usb: []\n---\nusb: []\n", "only one YAML document"},
		{"lan_devices:\n  - name: P\n    mac: \"ff:ff:ff:ff:ff:ff\"\n", "hub policy v2:3:10:"},
	} {
		_, err := ParseApproved(HubPolicyFile(2), []byte(tc.doc))
		var l ErrorList
		if !errors.As(err, &l) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.doc, err, tc.want)
		}
	}
}

// TestMergeApproved: the hub's entries first; a local entry with the name
// of a hub entry (or a LAN device with its MAC) is replaced and named.
func TestMergeApproved(t *testing.T) {
	hub, err := ParseApproved(HubPolicyFile(1), []byte(hubLists))
	if err != nil {
		t.Fatal(err)
	}
	local, err := Parse("local.yaml", []byte(`version: 1
approved:
  usb:
    - name: Camera
      vendor_id: "04a9"
      product_id: "31c0"
      valid_until: 2025-03-31
    - name: Mouse
      vendor_id: "046d"
  networks:
    - name: Office
      cidr: 10.30.0.0/16
    - name: Lab
      cidr: 10.40.0.0/16
  lan_devices:
    - name: Old printer
      mac: "00:11:22:33:44:55"
    - name: Scanner
      mac: "00:11:22:33:44:66"
`))
	if err != nil {
		t.Fatal(err)
	}
	m := MergeApproved(&local.Approved, hub)
	var names []string
	for _, e := range m.Lists.USB {
		names = append(names, e.File+":"+e.Name)
	}
	if got := strings.Join(names, ","); got != "hub policy v1:Camera,hub policy v1:Keyboards,local.yaml:Mouse" {
		t.Errorf("usb %s", got)
	}
	if len(m.Lists.Networks) != 2 || m.Lists.Networks[0].CIDR.String() != "10.20.0.0/16" || m.Lists.Networks[1].Name != "Lab" {
		t.Errorf("networks %+v", m.Lists.Networks)
	}
	if len(m.Lists.LANDevices) != 2 || m.Lists.LANDevices[1].Name != "Scanner" {
		t.Errorf("lan devices %+v", m.Lists.LANDevices)
	}
	if got := strings.Join(m.Replaced, ","); got != "usb:Camera,networks:Office,lan_devices:Old printer" {
		t.Errorf("replaced %s", got)
	}
	if len(local.Approved.USB) != 2 || local.Approved.USB[0].File != "local.yaml" {
		t.Error("the local lists were changed")
	}
	if m := MergeApproved(&local.Approved, nil); len(m.Lists.USB) != 2 || m.Replaced != nil {
		t.Errorf("no hub lists: %+v", m)
	}
}
