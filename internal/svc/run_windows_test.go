package svc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/kardianos/service"
	"golang.org/x/sys/windows"
	winsvc "golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/mamori-agent/mamori/internal/wintest"
)

// TestMain runs this test binary as a probe service when the service
// control manager starts it so (see serviceProbe), else the tests.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "-svcprobe" {
		os.Exit(serviceProbe(os.Args[2], os.Args[3]))
	}
	os.Exit(m.Run())
}

// probeExitCode is the probe's Program.ExitCode: the service-specific
// exit code of its failed start.
const probeExitCode = 7

// probeSlow is how long the probes that report readiness take to start
// or to give up: past the 2 s a Program that does not report it needs.
const probeSlow = 3 * time.Second

// serviceProbe runs the service name through Run with a Program whose
// Run, for mode "fail", gives up after 300 ms (as the agent refusing its
// state folder does), and for "ok" runs until stopped. The modes
// "slow" and "slowfail" report readiness (ReportsReady): "slow" calls
// Ready after probeSlow and runs until stopped, "slowfail" gives up
// after probeSlow without having been ready.
func serviceProbe(mode, name string) int {
	prg := &Program{ExitCode: probeExitCode, ReportsReady: mode == "slow" || mode == "slowfail"}
	prg.Run = func(ctx context.Context) error {
		switch mode {
		case "fail":
			time.Sleep(300 * time.Millisecond)
			return errors.New("state dir refused")
		case "slowfail":
			time.Sleep(probeSlow)
			return errors.New("token refused")
		case "slow":
			time.Sleep(probeSlow)
			prg.Ready()
		}
		<-ctx.Done()
		return nil
	}
	s, err := NewRunner(prg, name)
	if err != nil {
		return 3
	}
	if err := Run(s, prg, name); err != nil {
		return 2
	}
	return 0
}

// watch runs h.Execute with a request channel the test writes and
// records every status it sends.
type watch struct {
	r       chan winsvc.ChangeRequest
	changes chan winsvc.Status
	done    chan struct{}
	mu      sync.Mutex
	seen    []winsvc.Status
	when    []time.Duration
	start   time.Time
	svcSpec bool
	code    uint32
}

func execute(h *handler) *watch {
	w := &watch{r: make(chan winsvc.ChangeRequest), changes: make(chan winsvc.Status), done: make(chan struct{}), start: time.Now()}
	go func() {
		for st := range w.changes {
			w.mu.Lock()
			w.seen = append(w.seen, st)
			w.when = append(w.when, time.Since(w.start))
			w.mu.Unlock()
		}
	}()
	go func() {
		w.svcSpec, w.code = h.Execute(nil, w.r, w.changes)
		close(w.done)
	}()
	return w
}

// wait waits for Execute to return.
func (w *watch) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(d):
		t.Fatalf("Execute did not return within %v; statuses %v", d, w.statuses())
	}
}

func (w *watch) statuses() []winsvc.Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]winsvc.Status(nil), w.seen...)
}

// running returns when Running was first sent (-1: never).
func (w *watch) running() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, st := range w.seen {
		if st.State == winsvc.Running {
			return w.when[i]
		}
	}
	return -1
}

// waitRunning waits up to d for Running.
func (w *watch) waitRunning(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if at := w.running(); at >= 0 {
			return at
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("not running within %v; statuses %v", d, w.statuses())
	return 0
}

// fastHandler is newHandler with short bounds and no configuration of a
// real service; a *Program's own settle time (Program.Settle, which
// decides when one that does not report readiness has started) is made
// as short as the handler's.
func fastHandler(p service.Interface) *handler {
	h := newHandler(nil, p, "mamori-test")
	h.settle, h.tick, h.startTimeout, h.configure = 300*time.Millisecond, 20*time.Millisecond, 3*time.Second, nil
	if prg, ok := p.(*Program); ok {
		prg.Settle = h.settle
	}
	return h
}

// A start that fails (the program ends while the service starts, as the
// agent refusing its state folder does) is never reported RUNNING:
// START_PENDING with advancing checkpoints, then Execute returns the
// program's exit code as the service-specific code, with the program's
// error; the program's own Exit (which would end the process without
// telling the service control manager) is not called.
func TestHandlerFailedStart(t *testing.T) {
	prg := &Program{ExitCode: 9, Run: func(ctx context.Context) error {
		time.Sleep(150 * time.Millisecond)
		return errors.New("state dir refused")
	}, Exit: func(code int) { t.Errorf("the program's Exit(%d) was called during the start", code) }}
	h := fastHandler(prg)
	w := execute(h)
	w.wait(t, 5*time.Second)
	if !w.svcSpec || w.code != 9 {
		t.Errorf("Execute = %v, %d; want a service-specific exit code 9", w.svcSpec, w.code)
	}
	if h.err == nil || !strings.Contains(h.err.Error(), "state dir refused") {
		t.Errorf("Run's error %v", h.err)
	}
	sts := w.statuses()
	if len(sts) < 3 {
		t.Errorf("statuses %v: want checkpoints while the start is pending", sts)
	}
	var last uint32
	for _, st := range sts {
		if st.State != winsvc.StartPending {
			t.Errorf("status %+v during a failed start", st)
		}
		if st.CheckPoint <= last || st.WaitHint == 0 {
			t.Errorf("status %+v: the checkpoint does not advance (last %d) or no wait hint", st, last)
		}
		last = st.CheckPoint
	}
}

// A program that keeps running is reported RUNNING after the settle time,
// accepting stop, shutdown and preshutdown; a preshutdown stops it, with
// STOP_PENDING meanwhile.
func TestHandlerStartThenPreshutdown(t *testing.T) {
	stopped := make(chan struct{})
	prg := &Program{Run: func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(100 * time.Millisecond) // flushes the audit log
		close(stopped)
		return nil
	}, Exit: func(code int) { t.Errorf("Exit(%d)", code) }}
	h := fastHandler(prg)
	w := execute(h)
	at := w.waitRunning(t, 3*time.Second)
	if at < h.settle {
		t.Errorf("running after %v, before the settle time %v", at, h.settle)
	}
	sts := w.statuses()
	if a := sts[len(sts)-1].Accepts; a != winsvc.AcceptStop|winsvc.AcceptShutdown|winsvc.AcceptPreShutdown {
		t.Errorf("a running service accepts %#x, want stop, shutdown and preshutdown", a)
	}
	w.r <- winsvc.ChangeRequest{Cmd: winsvc.Interrogate, CurrentStatus: sts[len(sts)-1]}
	w.r <- winsvc.ChangeRequest{Cmd: winsvc.PreShutdown}
	w.wait(t, 5*time.Second)
	select {
	case <-stopped:
	default:
		t.Error("Execute returned before the program stopped")
	}
	if w.svcSpec || w.code != 0 || h.err != nil {
		t.Errorf("Execute = %v, %d, %v after a clean stop", w.svcSpec, w.code, h.err)
	}
	var pending bool
	for _, st := range w.statuses() {
		pending = pending || st.State == winsvc.StopPending && st.WaitHint > 0
	}
	if !pending {
		t.Errorf("no STOP_PENDING with a wait hint: %v", w.statuses())
	}
}

// readyProgram says when it has started (Started).
type readyProgram struct {
	ready   chan struct{}
	stopped chan struct{}
}

func (p *readyProgram) Start(service.Service) error { return nil }
func (p *readyProgram) Stop(service.Service) error  { close(p.stopped); return nil }
func (p *readyProgram) Started() <-chan struct{}    { return p.ready }

// A program that says when it has started stays START_PENDING until it
// does, past the settle time.
func TestHandlerWaitsForStarted(t *testing.T) {
	p := &readyProgram{ready: make(chan struct{}), stopped: make(chan struct{})}
	h := fastHandler(p)
	w := execute(h)
	time.Sleep(2 * h.settle)
	if at := w.running(); at >= 0 {
		t.Fatalf("running at %v before the program said it had started", at)
	}
	close(p.ready)
	w.waitRunning(t, 2*time.Second)
	w.r <- winsvc.ChangeRequest{Cmd: winsvc.Stop}
	w.wait(t, 2*time.Second)
	select {
	case <-p.stopped:
	default:
		t.Error("not stopped")
	}
}

// A Program whose Run ends after the service started ends the process
// (its Exit with its code), which the service control manager takes for
// a crash and restarts it for: as before.
func TestHandlerEndAfterStartExits(t *testing.T) {
	release := make(chan struct{})
	exited := make(chan int, 1)
	prg := &Program{ExitCode: 5, Run: func(ctx context.Context) error {
		<-release
		return errors.New("audit log lost")
	}, Exit: func(code int) { exited <- code }}
	h := fastHandler(prg)
	w := execute(h)
	w.waitRunning(t, 3*time.Second)
	close(release)
	select {
	case code := <-exited:
		if code != 5 {
			t.Errorf("Exit(%d), want 5", code)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the program's Exit was not called")
	}
	w.r <- winsvc.ChangeRequest{Cmd: winsvc.Stop} // the test's process lives on
	w.wait(t, 2*time.Second)
}

// A Start that returns an error fails the start with the exit code.
func TestHandlerStartError(t *testing.T) {
	prg := &Program{} // no Run: Start fails
	h := fastHandler(prg)
	w := execute(h)
	w.wait(t, 2*time.Second)
	if !w.svcSpec || w.code != 1 || h.err == nil || !strings.Contains(h.err.Error(), "no program to run") {
		t.Errorf("Execute = %v, %d, %v", w.svcSpec, w.code, h.err)
	}
	if at := w.running(); at >= 0 {
		t.Errorf("running at %v", at)
	}
}

// needAdmin skips where services cannot be installed: real Windows
// without an elevated token. Wine's user is an administrator.
func needAdmin(t *testing.T) {
	t.Helper()
	if !wintest.IsWine() && !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("installs a Windows service: needs an elevated administrator (or Wine)")
	}
}

// installProbe installs this test binary as the service name running
// serviceProbe in mode, and removes it when the test ends.
func installProbe(t *testing.T, m *mgr.Mgr, name, mode string) *mgr.Service {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.CreateService(name, exe, mgr.Config{StartType: mgr.StartManual, DisplayName: name}, "-svcprobe", mode, name)
	if err != nil {
		t.Fatalf("CreateService: %v", err)
	}
	t.Cleanup(func() {
		if st, err := s.Query(); err == nil && st.State != winsvc.Stopped {
			s.Control(winsvc.Stop)
			waitState(t, s, winsvc.Stopped, 10*time.Second)
		}
		s.Delete()
		s.Close()
	})
	return s
}

// waitState polls s every 10 ms until it is in state, at most d, and
// returns every state seen and the last status.
func waitState(t *testing.T, s *mgr.Service, state winsvc.State, d time.Duration) ([]winsvc.State, winsvc.Status) {
	t.Helper()
	var seen []winsvc.State
	deadline := time.Now().Add(d)
	for {
		st, err := s.Query()
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != st.State {
			seen = append(seen, st.State)
		}
		if st.State == state {
			return seen, st
		}
		if time.Now().After(deadline) {
			t.Fatalf("service not in state %d within %v: states %v", state, d, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWindowsServiceStartFailure: through the service control manager
// (Wine's services.exe, or Windows'), a service whose program gives up
// while it starts is never seen RUNNING: it goes from START_PENDING to
// STOPPED with ERROR_SERVICE_SPECIFIC_ERROR and the program's exit code,
// and "service start" (Control.Start) and net start report the failure.
// A program that runs is seen RUNNING, carries the preshutdown timeout
// it set, and stops with exit code 0.
func TestWindowsServiceStartFailure(t *testing.T) {
	needAdmin(t)
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	name := fmt.Sprintf("mamori-svctest-fail-%d", os.Getpid())
	s := installProbe(t, m, name, "fail")

	if err := s.Start(); err != nil {
		t.Fatalf("StartService: %v", err)
	}
	seen, st := waitState(t, s, winsvc.Stopped, 20*time.Second)
	for _, state := range seen {
		if state == winsvc.Running {
			t.Errorf("a start that fails was seen RUNNING: states %v", seen)
		}
	}
	if st.Win32ExitCode != uint32(windows.ERROR_SERVICE_SPECIFIC_ERROR) || st.ServiceSpecificExitCode != probeExitCode {
		t.Errorf("stopped with Win32 exit code %d, service-specific %d; want %d and %d",
			st.Win32ExitCode, st.ServiceSpecificExitCode, windows.ERROR_SERVICE_SPECIFIC_ERROR, probeExitCode)
	}

	c, err := OpenControl(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(); err == nil {
		t.Errorf("service start of a service that fails to start: no error")
	} else {
		t.Logf("service start: %v", err)
	}
	waitState(t, s, winsvc.Stopped, 20*time.Second)
	// Windows' net start waits for the start to end and reports its
	// service-specific error; Wine 8.0's only calls StartService (and sc
	// start does that on both).
	out, err := exec.Command("net", "start", name).CombinedOutput()
	switch {
	case err == nil && !wintest.IsWine():
		t.Errorf("net start of a service that fails to start succeeded: %s", out)
	case err == nil:
		t.Logf("net start under Wine does not wait for the start: %s", out)
	default:
		t.Logf("net start: %v: %s", err, out)
	}
	waitState(t, s, winsvc.Stopped, 20*time.Second)

	okName := fmt.Sprintf("mamori-svctest-ok-%d", os.Getpid())
	ok := installProbe(t, m, okName, "ok")
	if err := ok.Start(); err != nil {
		t.Fatalf("StartService: %v", err)
	}
	seen, _ = waitState(t, ok, winsvc.Running, 20*time.Second)
	if seen[0] != winsvc.StartPending && seen[0] != winsvc.Stopped {
		t.Errorf("states %v", seen)
	}
	if timeout, err := preshutdownTimeout(ok.Handle); err != nil {
		t.Logf("preshutdown timeout not readable here: %v", err)
	} else if timeout != uint32(PreshutdownTimeout/time.Millisecond) {
		t.Errorf("preshutdown timeout %d ms, want %d", timeout, PreshutdownTimeout/time.Millisecond)
	}
	if flag, err := ok.RecoveryActionsOnNonCrashFailures(); err != nil {
		t.Logf("failure actions flag not readable here: %v", err)
	} else if !flag {
		t.Errorf("FailureActionsOnNonCrashFailures not set")
	}
	if _, err := ok.Control(winsvc.Stop); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, st := waitState(t, ok, winsvc.Stopped, 30*time.Second); st.Win32ExitCode != 0 {
		t.Errorf("stopped with exit code %d/%d", st.Win32ExitCode, st.ServiceSpecificExitCode)
	}
}

// preshutdownTimeout reads SERVICE_CONFIG_PRESHUTDOWN_INFO.
func preshutdownTimeout(h windows.Handle) (uint32, error) {
	var info servicePreshutdownInfo
	var need uint32
	if err := windows.QueryServiceConfig2(h, windows.SERVICE_CONFIG_PRESHUTDOWN_INFO, (*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), &need); err != nil {
		return 0, err
	}
	return info.PreshutdownTimeout, nil
}
