package svc_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kardianos/service"

	"github.com/mamori-agent/mamori/internal/svc"
	"github.com/mamori-agent/mamori/internal/svc/svctest"
)

// systemdSystem is kardianos/service's systemd platform, chosen whether
// or not systemd runs here.
func systemdSystem(t *testing.T) service.System {
	for _, s := range service.AvailableSystems() {
		if s.String() == svc.PlatformSystemd {
			return s
		}
	}
	t.Fatal("kardianos/service has no linux-systemd platform")
	return nil
}

// TestSystemdUnit writes the unit through kardianos/service's systemd
// install (into /etc/systemd/system, enabled; the daemon-reload that
// follows fails where systemd does not run, which is expected here) and
// checks it: restart whenever it ends (Restart=always) after 5 s, no start limit, reload by
// SIGHUP, the command line quoted; systemd-analyze verify accepts it.
// Then the library's uninstall removes it and its wants link.
func TestSystemdUnit(t *testing.T) {
	svctest.Require(t)
	for _, c := range []string{"systemctl", "systemd-analyze"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s missing (Debian package systemd; scripts/test-deps.sh installs it): %v", c, err)
		}
	}
	svctest.Lock(t)
	name := svctest.Name(t, "mamori-unit-test")
	exe := filepath.Join(t.TempDir(), "mamori")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, reload := range []bool{true, false} {
		sp := svc.Spec{Name: name, DisplayName: "mamori endpoint agent", Description: "mamori endpoint agent: a test",
			Executable: exe, Arguments: []string{"service", "run", "--name", name, "--config", "/etc/mamori/mamori.yaml"},
			ReloadOnHUP: reload, Dependencies: []string{"After=network-online.target", "Wants=network-online.target"}}
		c, err := sp.Config()
		if err != nil {
			t.Fatal(err)
		}
		s, err := systemdSystem(t).New(&svc.Program{}, c)
		if err != nil {
			t.Fatal(err)
		}
		unitPath := "/etc/systemd/system/" + name + ".service"
		wants := "/etc/systemd/system/multi-user.target.wants/" + name + ".service"
		err = s.Install()
		unit, rerr := os.ReadFile(unitPath)
		if rerr != nil {
			t.Fatalf("install: %v; no unit written: %v", err, rerr)
		}
		if err != nil {
			t.Logf("install: %v (daemon-reload without a running systemd)", err)
		}
		want := `[Unit]
Description=mamori endpoint agent: a test
ConditionFileIsExecutable=` + exe + `
StartLimitIntervalSec=0
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=` + exe + ` "service" "run" "--name" "` + name + `" "--config" "/etc/mamori/mamori.yaml"
`
		if reload {
			want += "ExecReload=/bin/kill -HUP $MAINPID\n"
		}
		want += `Restart=always
RestartSec=5
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
`
		if string(unit) != want {
			t.Errorf("unit:\n%s\nwant:\n%s", unit, want)
		}
		if dst, err := os.Readlink(wants); err != nil || dst != unitPath {
			t.Errorf("not enabled: %s -> %q %v", wants, dst, err)
		}
		out, err := exec.Command("systemd-analyze", "verify", unitPath).CombinedOutput()
		if err != nil || strings.Contains(string(out), name) {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
		}
		if err := s.Uninstall(); err != nil {
			t.Logf("uninstall: %v (daemon-reload without a running systemd)", err)
		}
		for _, p := range []string{unitPath, wants} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("uninstall left %s", p)
			}
		}
	}
}

// TestSystemLogger: the service's log reaches the system log as lines
// tagged with the service's name, facility daemon, at the record's
// severity, without the time (syslog stamps it).
func TestSystemLogger(t *testing.T) {
	svctest.Require(t)
	svctest.Lock(t)
	sink := svctest.ListenSyslog(t)
	name := svctest.Name(t, "mamori-log-test")
	s, err := svc.NewRunner(&svc.Program{}, name)
	if err != nil {
		t.Fatal(err)
	}
	log, err := svc.SystemLogger(s, name, svc.LogOptions{}, os.Stderr)
	if err != nil {
		t.Fatalf("SystemLogger with a logger on /dev/log: %v", err)
	}
	log.Info("mamori running", "state_dir", "/var/lib/mamori")
	log.Warn("listen failed")
	log.Error("not started", "err", "state dir: unsafe")
	if sink == nil {
		return
	}
	for _, want := range []string{
		`level=INFO msg="mamori running" state_dir=/var/lib/mamori`,
		`level=WARN msg="listen failed"`,
		`level=ERROR msg="not started" err="state dir: unsafe"`,
	} {
		if m := sink.Wait(name, want, 5*time.Second); m == "" {
			t.Errorf("no %q in the system log: %q", want, sink.Messages(name))
		}
	}
	got := sink.Messages(name)
	if len(got) != 3 || !strings.HasPrefix(got[0], "<30>") || !strings.HasPrefix(got[1], "<28>") || !strings.HasPrefix(got[2], "<27>") {
		t.Errorf("want daemon.info, daemon.warning, daemon.err: %q", got)
	}
	for _, m := range got {
		if strings.Contains(m, "time=") {
			t.Errorf("the time is syslog's to stamp: %q", m)
		}
	}
}
