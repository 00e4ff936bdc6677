package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kardianos/service"

	"github.com/mamori-agent/mamori/internal/svc"
	"github.com/mamori-agent/mamori/internal/svc/svctest"
)

// serviceConfig is the config of a service under test: its own state dir
// and metrics port, no local API socket (a real install's path).
const serviceConfig = `version: 1
agent:
  asset_id: PC-SERVICE-TEST
  state_dir: %s
  language: en
  local_socket: ""
metrics:
  listen: %s
`

// freeLoopback is a loopback address nothing listens on.
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// svcCmd runs mamori service ACTION --name name [args] and checks its exit
// status.
func svcCmd(t *testing.T, wantCode int, action, name string, args ...string) string {
	t.Helper()
	out, stderr, code := runBinaryPlain(t, append([]string{"service", action, "--name", name}, args...)...)
	if code != wantCode {
		t.Fatalf("mamori service %s: exit %d, want %d\n%s%s", action, code, wantCode, out, stderr)
	}
	return out + stderr
}

// runBinaryPlain runs the binary in this network namespace (the service it
// controls runs in the host's anyway).
func runBinaryPlain(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// daemonPID is the pid of the running service called name (its pid file
// under SysV, systemctl's MainPID under systemd), 0 when none.
func daemonPID(t *testing.T, name string) int {
	t.Helper()
	if service.Platform() == svc.PlatformSystemd {
		out, _ := exec.Command("systemctl", "show", "--property=MainPID", "--value", name+".service").Output()
		pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return pid
	}
	b, err := os.ReadFile("/run/" + name + ".pid")
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return 0
	}
	return pid
}

// TestServiceLifecycle installs the agent as a real service of this
// machine's service manager (a SysV init script here: no systemd runs as
// PID 1) under a name of its own, and takes it through start, status,
// reload, restart, stop and uninstall: the agent records agent_started and
// agent_stopped in its audit log, serves metrics, logs to the system log,
// and leaves nothing behind.
func TestServiceLifecycle(t *testing.T) {
	svctest.Require(t)
	svctest.Lock(t)
	syslog := svctest.ListenSyslog(t)
	name := svctest.Name(t, "mamori-test")
	platform := service.Platform()
	t.Logf("service manager: %s", platform)

	dir := t.TempDir()
	state, addr := filepath.Join(dir, "state"), freeLoopback(t)
	must(t, os.WriteFile(filepath.Join(dir, "mamori.yaml"), []byte(fmt.Sprintf(serviceConfig, state, addr)), 0o600))
	// A relative --config is made absolute in what the service runs.
	cmd := exec.Command(binary, "service", "install", "--name", name, "--config", "mamori.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("service install: %v\n%s", err, out)
	}
	svcCmd(t, 2, "install", name, "--config", filepath.Join(dir, "mamori.yaml")) // installed already

	switch platform {
	case svc.PlatformSysV:
		script, err := os.ReadFile(svc.InitScript("/etc", name))
		must(t, err)
		want := fmt.Sprintf(`-- "service" "run" "--name" %q "--config" %q`, name, filepath.Join(dir, "mamori.yaml"))
		if !strings.Contains(string(script), want) || !strings.Contains(string(script), `daemon="`+binary+`"`) {
			t.Errorf("init script does not run %s %s:\n%s", binary, want, script)
		}
		if out, err := exec.Command("sh", "-n", svc.InitScript("/etc", name)).CombinedOutput(); err != nil {
			t.Errorf("sh -n: the init script is not valid sh: %v\n%s", err, out)
		}
		for _, l := range svc.RCLinks("/etc", name) {
			if dst, err := os.Readlink(l); err != nil || dst != "/etc/init.d/"+name {
				t.Errorf("rc link %s: %q %v", l, dst, err)
			}
		}
	case svc.PlatformSystemd:
		unit, err := os.ReadFile("/etc/systemd/system/" + name + ".service")
		must(t, err)
		if !strings.Contains(string(unit), "\nRestart=always\nRestartSec=5\n") {
			t.Errorf("unit:\n%s", unit)
		}
	}

	if out := svcCmd(t, 3, "status", name); !strings.Contains(out, name+": stopped") {
		t.Errorf("status after install: %s", out)
	}
	// A pid file left behind whose pid another process has now, named
	// like the daemon (another program; the daemon's own binary that a
	// user runs, as the pid wraps in seconds): not the daemon, so
	// stopped, and start starts it.
	var impostors []*exec.Cmd
	if platform == svc.PlatformSysV {
		impostors = []*exec.Cmd{startImpostor(t, filepath.Base(binary)), startUserDaemon(t)}
		for _, impostor := range impostors {
			plantPID(t, name, impostor)
			if out := svcCmd(t, 3, "status", name); !strings.Contains(out, name+": stopped") {
				t.Errorf("status with another process's pid (%s) in the pid file: %s", impostor.Args, out)
			}
		}
	}
	svcCmd(t, 0, "start", name)
	for _, impostor := range impostors {
		if pid := daemonPID(t, name); pid == impostor.Process.Pid || pid == 0 {
			t.Errorf("start with a stale pid file: the daemon's pid is %d, the other process's (%s) %d", pid, impostor.Args, impostor.Process.Pid)
		}
		alive(t, impostor, "start")
	}
	if out := svcCmd(t, 0, "status", name); !strings.Contains(out, name+": running") {
		t.Errorf("status after start: %s", out)
	}
	if out := svcCmd(t, 0, "start", name); !strings.Contains(out, "running already") {
		t.Errorf("second start: %s", out)
	}
	pid := daemonPID(t, name)
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	wantCmd := strings.Join([]string{binary, "service", "run", "--name", name, "--config", filepath.Join(dir, "mamori.yaml")}, "\x00") + "\x00"
	if string(cmdline) != wantCmd {
		t.Errorf("the daemon (pid %d) runs %q, want %q", pid, cmdline, wantCmd)
	}
	waitLog(t, state, `"type":"agent_started"`)
	if body := get(t, "http://"+addr+"/metrics"); !strings.Contains(string(body), "mamori_build_info") {
		t.Errorf("metrics of the service:\n%.500s", body)
	}
	if syslog != nil {
		if m := syslog.Wait(name, "mamori running", 10*time.Second); m == "" {
			t.Errorf("no \"mamori running\" from %s in the system log; got %q", name, syslog.Messages(name))
		} else if !strings.HasPrefix(m, "<30>") { // daemon.info
			t.Errorf("want facility daemon, severity info: %q", m)
		}
	}

	// SIGHUP through the init script's reload (systemctl reload: ExecReload).
	reload := exec.Command("service", name, "reload")
	if platform == svc.PlatformSystemd {
		reload = exec.Command("systemctl", "reload", name)
	}
	if out, err := reload.CombinedOutput(); err != nil {
		t.Errorf("reload: %v\n%s", err, out)
	}
	waitLog(t, state, `"type":"config_reloaded"`)

	svcCmd(t, 0, "restart", name)
	if newPID := daemonPID(t, name); newPID == pid || newPID == 0 {
		t.Errorf("restart: pid %d before, %d after", pid, newPID)
	}
	waitCount(t, state, `"type":"agent_started"`, 2)
	if log, _ := readAudit(state); strings.Count(log, `"type":"agent_stopped"`) != 1 {
		t.Errorf("restart: want one agent_stopped before the second agent_started:\n%s", log)
	}

	svcCmd(t, 0, "stop", name)
	if out := svcCmd(t, 3, "status", name); !strings.Contains(out, name+": stopped") {
		t.Errorf("status after stop: %s", out)
	}
	log, err := readAudit(state)
	must(t, err)
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if strings.Count(log, `"type":"agent_stopped"`) != 2 || !strings.Contains(lines[len(lines)-1], `"type":"agent_stopped"`) {
		t.Errorf("the log must end with the second agent_stopped:\n%s", log)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil && daemonPID(t, name) != 0 {
		t.Errorf("a daemon still runs after stop")
	}
	for _, impostor := range impostors {
		// reload and stop signal no process that is not the daemon
		// (sleep and mamori notify end at SIGHUP).
		plantPID(t, name, impostor)
		if out, err := exec.Command("service", name, "reload").CombinedOutput(); err == nil {
			t.Errorf("reload of a stopped service with a stale pid file (%s) succeeded:\n%s", impostor.Args, out)
		}
		alive(t, impostor, "reload")
	}
	if out := svcCmd(t, 0, "stop", name); !strings.Contains(out, "was not running") {
		t.Errorf("second stop: %s", out)
	}
	for _, impostor := range impostors {
		plantPID(t, name, impostor)
		if out, err := exec.Command("service", name, "stop").CombinedOutput(); err != nil {
			t.Errorf("init script stop with a stale pid file (%s): %v\n%s", impostor.Args, err, out)
		}
		alive(t, impostor, "stop")
		plantPID(t, name, impostor) // for the start below
	}
	if out, _, code := runBinary(t, "audit", "verify", "--state-dir", state); code != 0 {
		t.Errorf("audit verify: exit %d: %s", code, out)
	}

	// Two starts at once (the boot's and an administrator's) start one
	// agent, which the pid file names: the other start waits for the
	// first, finds it running and starts nothing.
	starts := make(chan string, 2)
	for range 2 {
		go func() {
			out, stderr, code := runBinaryPlain(t, "service", "start", "--name", name)
			starts <- fmt.Sprintf("exit %d: %s%s", code, out, stderr)
		}()
	}
	for range 2 {
		if out := <-starts; !strings.HasPrefix(out, "exit 0:") {
			t.Errorf("two starts at once: %s", out)
		}
	}
	waitCount(t, state, `"type":"agent_started"`, 3)
	if daemons := agents(t, name); len(daemons) != 1 || daemons[0] != daemonPID(t, name) {
		t.Errorf("two starts at once: agents %v, the service's pid %d: want one, the service's", daemons, daemonPID(t, name))
	}
	if out := svcCmd(t, 0, "status", name); !strings.Contains(out, name+": running") {
		t.Errorf("status after two starts at once: %s", out)
	}
	for _, impostor := range impostors {
		alive(t, impostor, "two starts at once")
	}

	// Uninstall stops a running service first.
	svcCmd(t, 0, "uninstall", name)
	if log, _ := readAudit(state); strings.Count(log, `"type":"agent_stopped"`) != 3 {
		t.Errorf("uninstall of a running service: want a third agent_stopped:\n%s", log)
	}
	if out := svcCmd(t, 4, "status", name); !strings.Contains(out, "not installed") {
		t.Errorf("status after uninstall: %s", out)
	}
	if daemons := agents(t, name); len(daemons) != 0 {
		t.Errorf("uninstall left agents %v running", daemons)
	}
	svcCmd(t, 4, "uninstall", name)
	svcCmd(t, 4, "start", name)
	if left := svctest.Remove(name); len(left) > 0 && !(len(left) == 1 && strings.HasSuffix(left[0], ".log")) {
		t.Errorf("uninstall left %v", left)
	}
}

// startImpostor starts a process called comm that is not the daemon (a
// copy of sleep under that name), killed when t ends.
func startImpostor(t *testing.T, comm string) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	must(t, err)
	b, err := os.ReadFile(sleep)
	must(t, err)
	exe := filepath.Join(t.TempDir(), comm)
	must(t, os.WriteFile(exe, b, 0o755))
	cmd := exec.Command(exe, "300")
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Until it runs as comm (exec done).
	for i := 0; ; i++ {
		if c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); strings.TrimSpace(string(c)) == comm {
			return cmd
		}
		if i == 100 {
			t.Fatalf("the process %d does not run as %s", cmd.Process.Pid, comm)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startUserDaemon starts the daemon's own binary (binary, the path the
// service runs) as the user nobody: mamori notify, which waits for an
// agent that never answers (no socket in a directory it can search:
// one it cannot search makes it give up). It is killed when t ends. The binary's
// directory is opened to other users meanwhile (0755).
func startUserDaemon(t *testing.T) *exec.Cmd {
	t.Helper()
	dir := filepath.Dir(binary)
	fi, err := os.Stat(dir)
	must(t, err)
	must(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.Chmod(dir, fi.Mode().Perm()) })
	cmd := exec.Command(binary, "notify", "--socket", filepath.Join(openDir(t), "none.sock"))
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the user's mamori notify wrote: %s", out.String())
		}
	})
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Until it runs the binary (exec done).
	for i := 0; ; i++ {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)); exe == binary {
			return cmd
		}
		if i == 100 {
			t.Fatalf("the user's process %d does not run %s", cmd.Process.Pid, binary)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// agents returns the pids of the processes that run the service called
// name (binary service run --name NAME ...), zombies left out.
func agents(t *testing.T, name string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	must(t, err)
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.HasPrefix(string(cmdline), binary+"\x00service\x00run\x00--name\x00"+name+"\x00") {
			continue
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(st), ") Z ") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// plantPID writes p's pid into the pid file of the service called name,
// as a daemon that ended would have left it.
func plantPID(t *testing.T, name string, p *exec.Cmd) {
	t.Helper()
	must(t, os.WriteFile("/run/"+name+".pid", []byte(fmt.Sprintf("%d\n", p.Process.Pid)), 0o644))
}

// alive fails t when p has ended (after what).
func alive(t *testing.T, p *exec.Cmd, what string) {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // a signal's delivery
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Process.Pid))
	if err != nil || strings.Contains(string(st), ") Z ") {
		t.Errorf("%s signalled the process %d (%s) that is not the daemon", what, p.Process.Pid, p.Args)
	}
}

func readAudit(state string) (string, error) {
	b, err := os.ReadFile(filepath.Join(state, "audit.jsonl"))
	return string(b), err
}

// waitCount waits until the audit log holds want n times.
func waitCount(t *testing.T, state, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, _ := readAudit(state)
		if strings.Count(log, want) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit log never had %s %d times:\n%s", want, n, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServiceRunFails: a service whose agent cannot start (a state dir
// others can write) exits 2 at once, so that the service manager sees a
// failure, and says why in the system log; service start reports it.
func TestServiceRunFails(t *testing.T) {
	svctest.Require(t)
	svctest.Lock(t)
	syslog := svctest.ListenSyslog(t)
	name := svctest.Name(t, "mamori-test")
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	must(t, os.Mkdir(state, 0o700))
	cfg := filepath.Join(dir, "mamori.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(serviceConfig, state, `""`)), 0o600))

	svcCmd(t, 0, "install", name, "--config", cfg)
	must(t, os.Chmod(state, 0o777)) // after install: the agent finds it when it starts
	out := svcCmd(t, 2, "start", name)
	if !strings.Contains(out, "ended at once") || !strings.Contains(out, "system log") {
		t.Errorf("start of a service that cannot run: %s", out)
	}
	if syslog != nil {
		if m := syslog.Wait(name, "chmod go-w "+state, 5*time.Second); m == "" || !strings.HasPrefix(m, "<27>") { // daemon.err
			t.Errorf("the reason is not in the system log as an error: %q", syslog.Messages(name))
		}
	}
	svcCmd(t, 3, "status", name)
	svcCmd(t, 0, "uninstall", name)

	// Run by hand, the same: exit 2 at once.
	start := time.Now()
	_, stderr, code := runBinaryPlain(t, "service", "run", "--name", name, "--config", cfg)
	if code != 2 || time.Since(start) > 10*time.Second {
		t.Errorf("service run on an unsafe state dir: exit %d after %v, want 2 at once\n%s", code, time.Since(start), stderr)
	}
}

// TestServiceStartShowsLog: under SysV with no system logger, a service
// that ends at once logs why to stderr, which its init script sends to
// its log file; service start shows what it wrote there, not only "the
// reason is in the system log".
func TestServiceStartShowsLog(t *testing.T) {
	svctest.Require(t)
	if service.Platform() != svc.PlatformSysV {
		t.Skip("the log file is the SysV init script's")
	}
	svctest.Lock(t)
	if !svctest.WithoutSyslog(t) {
		t.Skip("a system logger listens on /dev/log: the service logs there, not to its log file")
	}
	name := svctest.Name(t, "mamori-test")
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	must(t, os.Mkdir(state, 0o700))
	cfg := filepath.Join(dir, "mamori.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(serviceConfig, state, `""`)), 0o600))
	svcCmd(t, 0, "install", name, "--config", cfg)
	// An earlier run's lines are not this start's.
	must(t, os.WriteFile(svc.LogFile(name), []byte("an earlier run's line\n"), 0o600))
	must(t, os.Chmod(state, 0o777))
	out := svcCmd(t, 2, "start", name)
	if !strings.Contains(out, "ended at once") || !strings.Contains(out, svc.LogFile(name)+":\n  ") ||
		!strings.Contains(out, "chmod go-w "+state) || strings.Contains(out, "earlier run") {
		t.Errorf("start of a service that cannot run does not show what it wrote to %s: %s", svc.LogFile(name), out)
	}
	svcCmd(t, 0, "uninstall", name)
}
