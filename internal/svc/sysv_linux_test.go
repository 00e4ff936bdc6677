package svc_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kardianos/service"

	"github.com/mamori-agent/mamori/internal/svc"
	"github.com/mamori-agent/mamori/internal/svc/svctest"
)

// sysvSleeper installs, through kardianos/service's SysV install, a
// service whose daemon is a copy of sleep(1) (running 1000 s) at a path
// of its own that any user can run but only root change, and returns the
// service's name and the daemon's path. Every process of that path is
// killed when t ends.
func sysvSleeper(t *testing.T, reload bool) (name, daemon string) {
	t.Helper()
	svctest.Require(t)
	if service.Platform() != svc.PlatformSysV {
		t.Skip("the SysV init script runs only where systemd does not")
	}
	svctest.Lock(t)
	name = svctest.Name(t, "mamori-sysv-test")
	dir, err := os.MkdirTemp("", "mamori-sysv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	daemon = filepath.Join(dir, "mamori-sleeper")
	if err := os.WriteFile(daemon, b, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pid := range processesOf(t, daemon) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	c, err := svc.NewControl(svc.Spec{Name: name, DisplayName: "t", Description: "t", Executable: daemon,
		Arguments: []string{"1000"}, ReloadOnHUP: reload})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Install(); err != nil {
		t.Fatal(err)
	}
	return name, daemon
}

// initScript runs /etc/init.d/NAME ACTION and returns its output and exit
// status.
func initScript(t *testing.T, name, action string) (string, int) {
	t.Helper()
	out, err := exec.Command(svc.InitScript("/etc", name), action).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %s: %v", name, action, err)
	}
	return string(out), 0
}

// processesOf returns the pids of the processes that run exe, zombies
// left out.
func processesOf(t *testing.T, exe string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || l != exe {
			continue
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(st), ") Z ") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// pidFile is the pid the pid file of service name holds, 0 for none.
func pidFile(name string) int {
	b, _ := os.ReadFile("/run/" + name + ".pid")
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// TestSysVConcurrentStarts: starts at once (service start run twice as
// the boot runs it and an administrator does) start one daemon, which
// the pid file names, so that status says running and stop stops it:
// unserialised, both found the daemon stopped, both started one, and
// the pid file named one of them. Ten rounds, so that an unserialised
// script is caught.
func TestSysVConcurrentStarts(t *testing.T) {
	name, daemon := sysvSleeper(t, false)
	for round := 0; round < 10; round++ {
		var wg sync.WaitGroup
		outs, codes := make([]string, 3), make([]int, 3)
		for i := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], codes[i] = initScript(t, name, "start")
			}()
		}
		wg.Wait()
		for i := range outs {
			if codes[i] != 0 {
				t.Fatalf("round %d: start %d: exit %d\n%s", round, i, codes[i], outs[i])
			}
		}
		if n := strings.Count(strings.Join(outs, ""), "Starting "); n != 1 {
			t.Errorf("round %d: %d of the starts started the daemon, want 1: %q", round, n, outs)
		}
		pids := processesOf(t, daemon)
		if len(pids) != 1 || pidFile(name) != pids[0] {
			t.Fatalf("round %d: daemons %v, the pid file names %d: want one, named by the pid file", round, pids, pidFile(name))
		}
		if out, code := initScript(t, name, "status"); code != 0 || !strings.Contains(out, "Running") {
			t.Fatalf("round %d: status: exit %d %s", round, code, out)
		}
		// A stop and a start at once: either order, never two daemons,
		// and the pid file names the one that runs.
		wg.Add(2)
		var stopCode, startCode int
		var stopOut, startOut string
		go func() { defer wg.Done(); stopOut, stopCode = initScript(t, name, "stop") }()
		go func() { defer wg.Done(); startOut, startCode = initScript(t, name, "start") }()
		wg.Wait()
		if stopCode != 0 || startCode != 0 {
			t.Fatalf("round %d: stop and start at once: exit %d %s, exit %d %s", round, stopCode, stopOut, startCode, startOut)
		}
		if pids := processesOf(t, daemon); len(pids) > 1 || len(pids) == 1 && pidFile(name) != pids[0] {
			t.Fatalf("round %d: after a stop and a start at once: daemons %v, the pid file names %d", round, pids, pidFile(name))
		}
		if out, code := initScript(t, name, "stop"); code != 0 {
			t.Fatalf("round %d: stop: exit %d %s", round, code, out)
		}
		if pids := processesOf(t, daemon); len(pids) != 0 {
			t.Fatalf("round %d: stop left daemons %v", round, pids)
		}
	}
	fi, err := os.Stat(svc.LockFile(name))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file %s: %v %v, want mode 0600", svc.LockFile(name), fi, err)
	}
	// Uninstall removes the lock file with the script.
	c, err := svc.OpenControl(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Uninstall(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(svc.LockFile(name)); err == nil {
		t.Errorf("uninstall left %s", svc.LockFile(name))
	}
}

// TestSysVLockHeld: while another process holds the service's lock,
// start waits for it; the daemon does not inherit the lock (a stop
// while it runs does not wait for ever).
func TestSysVLockHeld(t *testing.T) {
	name, daemon := sysvSleeper(t, false)
	if out, code := initScript(t, name, "start"); code != 0 {
		t.Fatalf("start: exit %d %s", code, out)
	}
	// The daemon holds no descriptor of the lock file.
	pids := processesOf(t, daemon)
	if len(pids) != 1 {
		t.Fatalf("daemons %v", pids)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pids[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pids[0], fd.Name())); l == svc.LockFile(name) {
			t.Errorf("the daemon holds the lock file on descriptor %s", fd.Name())
		}
	}
	f, err := os.Open(svc.LockFile(name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { _, code := initScript(t, name, "stop"); done <- code }()
	select {
	case code := <-done:
		t.Fatalf("stop did not wait for the lock: exit %d", code)
	case <-time.After(500 * time.Millisecond):
	}
	if len(processesOf(t, daemon)) != 1 {
		t.Fatal("stop signalled the daemon without the lock")
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if code := <-done; code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	if pids := processesOf(t, daemon); len(pids) != 0 {
		t.Fatalf("stop left %v", pids)
	}
}

// TestSysVRootOnly: a process of the daemon's own binary (same path,
// same name) that a user runs is not the daemon, though a pid file left
// behind names it: status says stopped, start starts the daemon, reload
// and stop signal nothing. (sleep(1) ends at SIGHUP and SIGTERM.)
func TestSysVRootOnly(t *testing.T) {
	name, daemon := sysvSleeper(t, true)
	user := exec.Command(daemon, "1000")
	user.Dir = "/"
	user.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	if err := user.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { user.Process.Kill(); user.Wait() })
	for i := 0; ; i++ {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", user.Process.Pid)); l == daemon {
			break
		}
		if i == 100 {
			t.Fatalf("the user's process %d does not run %s", user.Process.Pid, daemon)
		}
		time.Sleep(10 * time.Millisecond)
	}
	plant := func() {
		t.Helper()
		if err := os.WriteFile("/run/"+name+".pid", []byte(fmt.Sprintf("%d\n", user.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	alive := func(after string) {
		t.Helper()
		time.Sleep(100 * time.Millisecond) // a signal's delivery
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", user.Process.Pid))
		if err != nil || strings.Contains(string(st), ") Z ") {
			t.Fatalf("%s signalled the user's process %d", after, user.Process.Pid)
		}
	}

	plant()
	if out, code := initScript(t, name, "status"); code != 3 || !strings.Contains(out, "Stopped") {
		t.Errorf("status with the user's process in the pid file: exit %d %s", code, out)
	}
	if out, code := initScript(t, name, "reload"); code != 7 {
		t.Errorf("reload with the user's process in the pid file: exit %d %s", code, out)
	}
	alive("reload")
	if out, code := initScript(t, name, "stop"); code != 0 {
		t.Errorf("stop with the user's process in the pid file: exit %d %s", code, out)
	}
	alive("stop")
	plant()
	if out, code := initScript(t, name, "start"); code != 0 || strings.Contains(out, "running already") {
		t.Fatalf("start with the user's process in the pid file: exit %d %s", code, out)
	}
	alive("start")
	pid := pidFile(name)
	if pid == user.Process.Pid || pid == 0 {
		t.Fatalf("after start the pid file names %d, the user's process is %d", pid, user.Process.Pid)
	}
	if out, code := initScript(t, name, "status"); code != 0 || !strings.Contains(out, "Running") {
		t.Errorf("status of the started daemon: exit %d %s", code, out)
	}
	if out, code := initScript(t, name, "stop"); code != 0 {
		t.Fatalf("stop: exit %d %s", code, out)
	}
	alive("stop of the daemon")
	if pids := processesOf(t, daemon); len(pids) != 1 || pids[0] != user.Process.Pid {
		t.Errorf("after stop: processes of %s: %v, want only the user's %d", daemon, pids, user.Process.Pid)
	}
}
