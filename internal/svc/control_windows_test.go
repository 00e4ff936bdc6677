package svc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	winsvc "golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// These run on Windows and under Wine 8.0 (make wine-test), with this
// test binary as the probe service (serviceProbe in run_windows_test.go).

// TestWindowsControlStartWaits: "service start" (Control.Start) returns
// only once the service control manager says the service left
// START_PENDING, which kardianos/service counts as running: a program
// that takes 3 s to be ready is RUNNING when Start returns, not still
// starting; one that gives up after 3 s (past the 2 s settle that
// Start watched for before) is a failed start whose error gives its
// service-specific exit code in words and where its reason is logged;
// Restart waits the same way; a Start while the service is still
// starting waits for it too.
func TestWindowsControlStartWaits(t *testing.T) {
	needAdmin(t)
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()

	slowName := fmt.Sprintf("mamori-ctltest-slow-%d", os.Getpid())
	slow := installProbe(t, m, slowName, "slow")
	c, err := OpenControl(slowName)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	already, err := c.Start()
	took := time.Since(start)
	if err != nil || already {
		t.Fatalf("Start of a service that takes %v to be ready: %v, already %v", probeSlow, err, already)
	}
	if st, err := slow.Query(); err != nil || st.State != winsvc.Running {
		t.Errorf("Start returned after %v with the service in state %d (%v), want RUNNING", took, st.State, err)
	}
	if took < probeSlow {
		t.Errorf("Start returned after %v, before the program was ready (%v)", took, probeSlow)
	}
	// Restart: stopped, started, waited for again.
	start = time.Now()
	if err := c.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if st, err := slow.Query(); err != nil || st.State != winsvc.Running || time.Since(start) < probeSlow {
		t.Errorf("Restart returned after %v in state %d (%v)", time.Since(start), st.State, err)
	}
	if _, err := slow.Control(winsvc.Stop); err != nil {
		t.Fatal(err)
	}
	waitState(t, slow, winsvc.Stopped, 30*time.Second)
	// A start under way (StartService by someone else) is waited for.
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, err := c.Start(); err != nil {
		t.Fatalf("Start while the service is starting: %v", err)
	}
	if st, err := slow.Query(); err != nil || st.State != winsvc.Running {
		t.Errorf("Start during a start returned after %v in state %d (%v), want RUNNING", time.Since(start), st.State, err)
	}
	if _, err := slow.Control(winsvc.Stop); err != nil {
		t.Fatal(err)
	}
	waitState(t, slow, winsvc.Stopped, 30*time.Second)

	failName := fmt.Sprintf("mamori-ctltest-slowfail-%d", os.Getpid())
	failing := installProbe(t, m, failName, "slowfail")
	c, err = OpenControl(failName)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = c.Start()
	if err == nil {
		t.Fatalf("Start of a service that gives up after %v: no error", probeSlow)
	}
	t.Logf("service start after %v: %v", time.Since(start).Round(time.Millisecond), err)
	for _, want := range []string{"service " + failName + ": start: it failed to start",
		fmt.Sprintf("its own exit code %d", probeExitCode), "the Application event log, source " + failName} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start's error %q lacks %q", err, want)
		}
	}
	if st, err := failing.Query(); err != nil || st.State != winsvc.Stopped {
		t.Errorf("after the failed start: state %d, %v", st.State, err)
	}
	// The command's words and exit code.
	var out, errOut strings.Builder
	if code := ActExit("mamori", failName, "start", &out, &errOut, 2); code != 2 ||
		!strings.Contains(errOut.String(), "mamori service start: service "+failName+": start: it failed to start") {
		t.Errorf("service start: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	waitState(t, failing, winsvc.Stopped, 30*time.Second)
}

// TestWindowsHandlerWaitsForReady: a Program that reports readiness
// stays START_PENDING past the settle time a Program that does not
// needs, until its Run calls Ready; then it runs, and stops cleanly.
func TestWindowsHandlerWaitsForReady(t *testing.T) {
	ready := make(chan struct{})
	prg := &Program{ReportsReady: true, Exit: func(code int) { t.Errorf("Exit(%d)", code) }}
	prg.Run = func(ctx context.Context) error {
		<-ready
		prg.Ready()
		<-ctx.Done()
		return nil
	}
	h := fastHandler(prg)
	w := execute(h)
	time.Sleep(3 * h.settle)
	if at := w.running(); at >= 0 {
		t.Fatalf("running at %v before Run called Ready", at)
	}
	for _, st := range w.statuses() {
		if st.State != winsvc.StartPending {
			t.Errorf("status %+v before Ready", st)
		}
	}
	close(ready)
	w.waitRunning(t, 2*time.Second)
	w.r <- winsvc.ChangeRequest{Cmd: winsvc.Stop}
	w.wait(t, 5*time.Second)
	if w.svcSpec || w.code != 0 || h.err != nil {
		t.Errorf("Execute = %v, %d, %v after a clean stop", w.svcSpec, w.code, h.err)
	}

	// Given up before Ready: a failed start with the exit code.
	prg = &Program{ReportsReady: true, ExitCode: 4, Exit: func(code int) { t.Errorf("Exit(%d) during the start", code) },
		Run: func(context.Context) error {
			time.Sleep(3 * 300 * time.Millisecond)
			return errors.New("token refused")
		}}
	h = fastHandler(prg)
	w = execute(h)
	w.wait(t, 5*time.Second)
	if !w.svcSpec || w.code != 4 || h.err == nil || !strings.Contains(h.err.Error(), "token refused") {
		t.Errorf("Execute = %v, %d, %v; want a failed start with code 4", w.svcSpec, w.code, h.err)
	}
	if at := w.running(); at >= 0 {
		t.Errorf("running at %v", at)
	}
}
