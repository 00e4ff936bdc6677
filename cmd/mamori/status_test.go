package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
)

func TestSocketPath(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no local socket on Windows yet")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mamori.yaml")
	must(t, os.WriteFile(cfg, []byte("version: 1\nagent:\n  local_socket: /run/x/agent.sock\n"), 0o644))
	off := filepath.Join(dir, "off.yaml")
	must(t, os.WriteFile(off, []byte("version: 1\nagent:\n  local_socket: \"\"\n"), 0o644))
	bad := filepath.Join(dir, "bad.yaml")
	must(t, os.WriteFile(bad, []byte("version: 1\nagent:\n  local_socket: relative\n"), 0o644))
	noWarn := func(msg string) { t.Errorf("warned: %s", msg) }
	for _, tt := range []struct {
		flags socketFlags
		want  string
		err   string
	}{
		{socketFlags{socket: "/tmp/s.sock", config: bad}, "/tmp/s.sock", ""},
		{socketFlags{config: cfg}, "/run/x/agent.sock", ""},
		{socketFlags{config: off}, "", "agent.local_socket is empty: the agent serves no local socket"},
		{socketFlags{config: bad}, "", "want an absolute path"},
		{socketFlags{config: filepath.Join(dir, "missing.yaml")}, "", "missing.yaml"},
	} {
		got, err := tt.flags.path(noWarn)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%+v: %q, %v; want %q, %q", tt.flags, got, err, tt.want, tt.err)
		}
	}
}

// TestWriteStatus: the table for people, texts escaped, the configured
// language first.
func TestWriteStatus(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	last := now.Add(-90 * time.Second)
	serial := "SN\x1b[2J"
	st := &localapi.Status{Time: now,
		Agent:      localapi.AgentStatus{Version: "1.0", PID: 42, Started: now.Add(-time.Hour), AssetID: "PC-1", Language: "ja", ConfigDigest: strings.Repeat("ab", 32), ApprovedUSB: 3, PolicyVersion: 7},
		USB:        []localapi.USBStatus{{Path: "1-2", VendorID: "0781", ProductID: "5583", Serial: &serial, Name: "SanDisk\tUltra", Storage: true, Verdict: "unapproved"}},
		Interfaces: []localapi.LinkStatus{{Name: "wlan0", Kind: "wireless", Up: true, SSID: "cafe-free", Addresses: []string{"172.16.0.5/24"}, Verdict: "unapproved"}},
		LAN:        localapi.LANStatus{Registered: 2, Unregistered: 101, UnregisteredDevices: []localapi.NeighbourStatus{{Interface: "eth0", MAC: "02:00:00:00:00:01", IP: "10.20.5.9"}}},
		Violations: []localapi.OpenViolation{{Kind: "usb_storage_unapproved", Severity: "high", Device: "1-2", Texts: []localapi.Text{
			{Lang: "ja", Title: "許可されていない USB 記憶媒体", Rule: "第6条・第7条", Subject: "SanDisk Ultra（ポート 1-2）", Remedy: "直ちに取り外してください。"},
			{Lang: "en", Title: "Unapproved USB storage", Rule: "articles 6 and 7", Subject: "SanDisk Ultra, port 1-2", Remedy: "Unplug it now."}}}},
		Report:    &localapi.ReportStatus{URL: "https://hub.example", Queue: 3, LastSuccess: &last},
		Audit:     localapi.AuditStatus{LastSeq: 99, Pending: 2},
		Notifiers: []localapi.PeerStatus{{UID: 1000, User: "alice", PID: 4242}},
	}
	var b strings.Builder
	writeStatus(&b, st, now)
	out := b.String()
	for _, want := range []string{
		"mamori 1.0 running (pid 42)", "asset PC-1", "3 approved USB entries", "config digest abababababab; the hub's lists v7",
		`SN\x1b[2J`, `SanDisk\x09Ultra`, "unapproved",
		"wlan0", "cafe-free", "172.16.0.5/24",
		"2 registered, 101 unregistered: 02:00:00:00:00:01 (10.20.5.9 on eth0), and 100 more",
		"1 open violation(s) / 未解消の違反 1 件", "- [high] usb_storage_unapproved (1-2)",
		"許可されていない USB 記憶媒体（第6条・第7条）: SanDisk Ultra（ポート 1-2）\n      → 直ちに取り外してください。\n    Unapproved USB storage (articles 6 and 7): SanDisk Ultra, port 1-2",
		"Hub https://hub.example: 3 events queued, 0 dropped; last accepted", "(1m30s ago)",
		"Audit log: last seq 99, 2 events waiting", "Desktop notifiers: alice (pid 4242)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("an escape sequence reached the terminal:\n%q", out)
	}
}

// TestStatusMessages: what mamori status says when it reaches no agent:
// a path that is not a socket says so; no agent serving names --socket,
// --config and service status (--name for a socket not the default);
// the help of --json names no Go type.
func TestStatusMessages(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no local socket on Windows yet")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "agent.sock")
	must(t, os.WriteFile(file, nil, 0o644))
	var out, errOut strings.Builder
	if code := cmdStatus([]string{"--socket", file}, &out, &errOut); code != statusUnreachable ||
		!strings.Contains(errOut.String(), file+" is not a socket") || !strings.Contains(errOut.String(), "--socket PATH") {
		t.Errorf("a regular file: exit %d\n%s", code, errOut.String())
	}
	errOut.Reset()
	missing := filepath.Join(dir, "none.sock")
	if code := cmdStatus([]string{"--socket", missing}, &out, &errOut); code != statusUnreachable {
		t.Errorf("no socket: exit %d", code)
	}
	for _, want := range []string{"No agent is serving " + missing, "mamori service status --name NAME", "--socket PATH", "--config FILE"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("no agent: lacks %q:\n%s", want, errOut.String())
		}
	}
	errOut.Reset()
	out.Reset()
	cmdStatus([]string{"-h"}, &out, &errOut)
	help := out.String() + errOut.String()
	if !strings.Contains(help, "-json") || strings.Contains(help, "localapi") {
		t.Errorf("help:\n%s", help)
	}
}
