package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kardianos/service"

	"github.com/mamori-agent/mamori/internal/svc"
	"github.com/mamori-agent/mamori/internal/svc/svctest"
)

var (
	buildOnce sync.Once
	hubBinary string
	buildErr  error
)

// binary builds mamori-hub once, into a directory only root can change
// (the service refuses a binary others can write).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mamori-hub-bin")
		if err != nil {
			buildErr = err
			return
		}
		hubBinary = filepath.Join(dir, "mamori-hub")
		cmd := exec.Command("go", "build", "-o", hubBinary, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build mamori-hub: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return hubBinary
}

// hubSvc runs mamori-hub service ACTION --name name [args] and checks its
// exit status.
func hubSvc(t *testing.T, wantCode int, action, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"service", action, "--name", name}, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != wantCode {
		t.Fatalf("mamori-hub service %s: exit %d, want %d\n%s", action, code, wantCode, out)
	}
	return string(out)
}

func healthy(url string) bool {
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == 200 && string(b) == "ok\n"
}

// TestServiceLifecycle installs mamori-hub as a real service of this
// machine's service manager (a SysV init script here) under a name of its
// own, on SQLite in a temporary directory, and takes it through start,
// status, restart, stop and uninstall: /healthz answers while it runs,
// the database keeps what was added, it logs to the system log, and
// nothing is left behind.
func TestServiceLifecycle(t *testing.T) {
	svctest.Require(t)
	svctest.Lock(t)
	syslog := svctest.ListenSyslog(t)
	bin := binary(t)
	name := svctest.Name(t, "mamori-hub-test")
	platform := service.Platform()
	t.Logf("service manager: %s", platform)

	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("version: 1\nlisten: %s\ndatabase: sqlite://db/hub.db\n", addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	hubSvc(t, 0, "install", name, "--config", cfg)
	if out := hubSvc(t, 1, "install", name, "--config", cfg); !strings.Contains(out, "installed already") {
		t.Errorf("second install: %s", out)
	}
	if platform == svc.PlatformSysV {
		script, err := os.ReadFile(svc.InitScript("/etc", name))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`-- "service" "run" "--name" %q "--config" %q`, name, cfg)
		if !strings.Contains(string(script), want) || strings.Contains(string(script), " reload)") {
			t.Errorf("init script: want %s and no reload (SIGHUP would end serve):\n%s", want, script)
		}
	}
	if out := hubSvc(t, 3, "status", name); !strings.Contains(out, name+": stopped") {
		t.Errorf("status after install: %s", out)
	}
	hubSvc(t, 0, "start", name)
	if out := hubSvc(t, 0, "status", name); !strings.Contains(out, name+": running") {
		t.Errorf("status after start: %s", out)
	}
	url := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for !healthy(url) {
		if time.Now().After(deadline) {
			t.Fatalf("the service's /healthz does not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if syslog != nil {
		if m := syslog.Wait(name, "msg=serving", 10*time.Second); m == "" || !strings.HasPrefix(m, "<30>") {
			t.Errorf("no \"serving\" from %s in the system log as daemon.info: %q", name, syslog.Messages(name))
		}
	}
	// The CLI works on the service's database while it runs.
	if out, err := exec.Command(bin, "agent", "add", "pc-svc", "--config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("agent add: %v\n%s", err, out)
	}

	hubSvc(t, 0, "restart", name)
	deadline = time.Now().Add(10 * time.Second)
	for !healthy(url) {
		if time.Now().After(deadline) {
			t.Fatalf("/healthz does not answer after restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := exec.Command(bin, "agent", "add", "pc-svc", "--config", cfg).CombinedOutput(); err == nil || !strings.Contains(string(out), "exists") {
		t.Errorf("the agent added before the restart is gone: %v\n%s", err, out)
	}

	hubSvc(t, 0, "stop", name)
	if healthy(url) {
		t.Error("/healthz answers after stop")
	}
	if out := hubSvc(t, 3, "status", name); !strings.Contains(out, name+": stopped") {
		t.Errorf("status after stop: %s", out)
	}
	if syslog != nil {
		if m := syslog.Wait(name, "service stopped", 5*time.Second); m == "" {
			t.Errorf("no \"service stopped\" in the system log: %q", syslog.Messages(name))
		}
	}
	hubSvc(t, 0, "start", name)
	hubSvc(t, 0, "uninstall", name)
	if healthy(url) {
		t.Error("/healthz answers after uninstall")
	}
	if out := hubSvc(t, 4, "status", name); !strings.Contains(out, "not installed") {
		t.Errorf("status after uninstall: %s", out)
	}
	hubSvc(t, 4, "stop", name)
	if left := svctest.Remove(name); len(left) > 0 && !(len(left) == 1 && strings.HasSuffix(left[0], ".log")) {
		t.Errorf("uninstall left %v", left)
	}
}
