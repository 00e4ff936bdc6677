package svc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kardianos/service"
)

// State is what the service manager says of a service.
type State int

// States of a service.
const (
	// StateUnknown: the service manager could not tell (its error says
	// why).
	StateUnknown State = iota
	StateRunning
	StateStopped
	// StateFailed: stopped after a failure (systemd's "failed").
	StateFailed
	StateNotInstalled
)

func (s State) String() string {
	switch s {
	case StateRunning:
		return "running"
	case StateStopped:
		return "stopped"
	case StateFailed:
		return "stopped (failed)"
	case StateNotInstalled:
		return "not installed"
	}
	return "unknown"
}

// ErrNotInstalled is wrapped by Control's errors for a service that is
// not installed.
var ErrNotInstalled = errors.New("not installed")

// ErrInstalled is wrapped by Install's error for a service installed
// already.
var ErrInstalled = errors.New("installed already")

// DefaultSettle is how long Start and Restart watch a started service
// for ending at once.
const DefaultSettle = 2 * time.Second

// DefaultStartTimeout bounds how long Start and Restart wait for a
// Windows service to leave START_PENDING: the service stays there until
// its program has started (Run in run_windows.go, at most 25 s), and MSI's
// ServiceControl waits 30 s too.
const DefaultStartTimeout = 30 * time.Second

// Control drives one service through the service manager kardianos
// chose: Install, Uninstall, Start, Stop, Restart and Status, each
// checking the state first so that its error says what to do.
type Control struct {
	// Service is the service (New).
	Service service.Service
	// Name is its name (Spec.Name).
	Name string
	// Etc is where SysV init scripts and rc links live: "/etc" (where
	// kardianos/service writes them); Uninstall removes the rc links
	// kardianos leaves behind.
	Etc string
	// PackageUnitDirs are where the packages put their systemd units
	// (/usr/lib/systemd/system, /lib/systemd/system on Linux when nil):
	// Install refuses a name whose unit is there.
	PackageUnitDirs []string
	// Settle is how long Start and Restart watch the started service for
	// ending at once; 0 means DefaultSettle.
	Settle time.Duration
	// StartTimeout bounds the wait of Start and Restart for a Windows
	// service to leave START_PENDING; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
}

// Platform names the service manager: "linux-systemd", "unix-systemv",
// "windows-service", ... (kardianos/service's names).
func (c *Control) Platform() string { return c.Service.Platform() }

// Where says where the service is defined, for messages: the init
// script, the unit file, or the Windows service.
func (c *Control) Where() string { return where(c.Service.Platform(), c.etc(), c.Name) }

func (c *Control) packageUnitDirs() []string {
	if c.PackageUnitDirs != nil {
		return c.PackageUnitDirs
	}
	if runtime.GOOS != "linux" {
		return nil
	}
	return []string{"/usr/lib/systemd/system", "/lib/systemd/system"}
}

func (c *Control) etc() string {
	if c.Etc == "" {
		return "/etc"
	}
	return c.Etc
}

// Status asks the service manager about the service. A state it cannot
// tell is StateUnknown with the error.
func (c *Control) Status() (State, error) {
	if st, ok := platformStatus(c.Service.Platform(), c.etc(), c.Name); ok {
		return st, nil
	}
	st, err := c.Service.Status()
	switch {
	case err == nil && st == service.StatusRunning:
		return StateRunning, nil
	case err == nil && st == service.StatusStopped:
		return StateStopped, nil
	case errors.Is(err, service.ErrNotInstalled):
		return StateNotInstalled, nil
	case err != nil && strings.Contains(err.Error(), "failed state"):
		// systemd: "service in failed state".
		return StateFailed, nil
	case err != nil:
		if state, ok := interpretStatusError(c.Service.Platform(), err); ok {
			return state, nil
		}
		return StateUnknown, fmt.Errorf("service %s: status: %w", c.Name, err)
	}
	return StateUnknown, fmt.Errorf("service %s: status: the service manager said %d", c.Name, st)
}

// NeedRoot refuses action (install, start, ...) on the service called
// name by a user who cannot take it: on Unix one whose effective user is
// not root; on Windows it returns nil (the service control manager's
// access denied says so there). The commands call it before anything
// else an unprivileged user would fail at for another reason (a config
// only root can read).
func NeedRoot(name, action string) error {
	if runtime.GOOS != "windows" && os.Geteuid() != 0 {
		return fmt.Errorf("service %s: %s: needs root (run it with sudo)", name, action)
	}
	return nil
}

// needRoot refuses a change by a user who cannot make it, before the
// service manager gives a less clear answer (NeedRoot).
func (c *Control) needRoot(action string) error { return NeedRoot(c.Name, action) }

// wrap adds the service name and action to a service manager's error,
// and a hint for a permission error.
func (c *Control) wrap(action string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("service %s: %s: %w (run it as root or as an administrator)", c.Name, action, err)
	}
	return fmt.Errorf("service %s: %s: %w", c.Name, action, err)
}

// Install installs the service to start at boot. It refuses a service
// installed already (ErrInstalled) and, for a SysV init script, a system
// without the commands the script and the control use. A failed install
// is undone as far as it went.
func (c *Control) Install() error {
	if err := c.needRoot("install"); err != nil {
		return err
	}
	if st, _ := c.Status(); st != StateNotInstalled && st != StateUnknown {
		return fmt.Errorf("service %s: %w (%s, %s); remove it first with \"service uninstall\"", c.Name, ErrInstalled, c.Where(), st)
	}
	if err := platformInstallCheck(c.Service.Platform()); err != nil {
		return fmt.Errorf("service %s: install: %w", c.Name, err)
	}
	// A unit the .deb or .rpm installed is hardened; under systemd a unit
	// written here in /etc/systemd/system would silently take its place.
	// (Without systemd, an init script beside the package's unit is
	// what runs it; should the machine boot systemd later, its
	// sysv-generator skips an init script that has a native unit.)
	for _, dir := range c.packageUnitDirs() {
		if c.Service.Platform() != PlatformSystemd {
			break
		}
		unit := filepath.Join(dir, c.Name+".service")
		if _, err := os.Stat(unit); err == nil {
			return fmt.Errorf("service %s: %w: %s comes with the package; control it with systemctl (enable --now %s), or install under another --name",
				c.Name, ErrInstalled, unit, c.Name)
		}
	}
	if err := c.Service.Install(); err != nil {
		c.Service.Uninstall()
		cleanup(c.Service.Platform(), c.etc(), c.Name)
		return c.wrap("install", err)
	}
	return nil
}

// Uninstall stops the service when it runs, then removes it (and, for
// SysV, its rc links). It returns an error wrapping ErrNotInstalled when
// there is nothing to remove.
func (c *Control) Uninstall() error {
	if err := c.needRoot("uninstall"); err != nil {
		return err
	}
	st, err := c.Status()
	switch {
	case st == StateNotInstalled:
		return fmt.Errorf("service %s: %w", c.Name, ErrNotInstalled)
	case st == StateRunning:
		if err := c.Service.Stop(); err != nil {
			return c.wrap("stop before uninstall", err)
		}
	case err != nil:
		// Unknown: try to remove it all the same.
	}
	if err := c.Service.Uninstall(); err != nil {
		return c.wrap("uninstall", err)
	}
	cleanup(c.Service.Platform(), c.etc(), c.Name)
	return nil
}

// Start starts the service and watches it for Settle: one that ends at
// once (a config it refuses, a state dir others can write) is an error
// that says where its reason was logged. On Windows it first waits, at
// most StartTimeout, for the service to leave START_PENDING (which
// kardianos/service counts as running): a start that failed meanwhile is
// an error giving its exit code in words (waitStart). already reports a
// service that was running before (one still starting is waited for
// first).
func (c *Control) Start() (already bool, err error) {
	if err := c.needRoot("start"); err != nil {
		return false, err
	}
	switch st, err := c.Status(); {
	case st == StateNotInstalled:
		return false, fmt.Errorf("service %s: %w (install it first with \"service install\")", c.Name, ErrNotInstalled)
	case st == StateRunning:
		return true, c.waitStart("start")
	case err != nil:
		return false, err
	}
	mark := logMark(c.Service.Platform(), c.Name)
	if err := c.Service.Start(); err != nil {
		return false, c.startFailed("start", err, mark)
	}
	if err := c.waitStart("start"); err != nil {
		return false, err
	}
	return false, c.settle("start", mark)
}

// startFailed is the error of a start the service manager reported
// failed: most often the program ended at once. mark is where the
// service's log file ended before the start (logMark).
func (c *Control) startFailed(action string, err error, mark int64) error {
	if st, _ := c.Status(); st == StateStopped || st == StateFailed {
		return fmt.Errorf("service %s: %s: it ended at once (%v); %s", c.Name, action, err, c.reason(mark))
	}
	return c.wrap(action, err)
}

// reason says where the reason a service ended at once is: the system
// log, and for a SysV service what it wrote to its log file after mark
// (logSince), when there is something and it can be read.
func (c *Control) reason(mark int64) string {
	r := "the reason is in the system log (" + logHint(c.Service.Platform(), c.Name) + ")"
	if tail := logSince(c.Service.Platform(), c.Name, mark); tail != "" {
		r += "; it wrote to " + LogFile(c.Name) + ":\n" + tail
	}
	return r
}

// Stop stops the service. already reports one that was not running.
func (c *Control) Stop() (already bool, err error) {
	if err := c.needRoot("stop"); err != nil {
		return false, err
	}
	switch st, err := c.Status(); {
	case st == StateNotInstalled:
		return false, fmt.Errorf("service %s: %w", c.Name, ErrNotInstalled)
	case st == StateStopped || st == StateFailed:
		return true, nil
	case err != nil:
		return false, err
	}
	if err := c.Service.Stop(); err != nil {
		return false, c.wrap("stop", err)
	}
	if st, err := c.Status(); st == StateRunning || err != nil {
		return false, fmt.Errorf("service %s: stop: still %s %v", c.Name, st, err)
	}
	return false, nil
}

// Restart stops the service when it runs and starts it, and watches it
// as Start does.
func (c *Control) Restart() error {
	if err := c.needRoot("restart"); err != nil {
		return err
	}
	mark := logMark(c.Service.Platform(), c.Name)
	switch st, err := c.Status(); {
	case st == StateNotInstalled:
		return fmt.Errorf("service %s: %w (install it first with \"service install\")", c.Name, ErrNotInstalled)
	case st == StateRunning:
		if err := c.Service.Restart(); err != nil {
			return c.startFailed("restart", err, mark)
		}
	case err != nil:
		return err
	default:
		if err := c.Service.Start(); err != nil {
			return c.startFailed("restart", err, mark)
		}
	}
	if err := c.waitStart("restart"); err != nil {
		return err
	}
	return c.settle("restart", mark)
}

// startStatus is what the service control manager says of a service
// being started (SERVICE_STATUS): its state and exit codes.
type startStatus struct {
	state startState
	// win32 is dwWin32ExitCode; specific is dwServiceSpecificExitCode,
	// meaningful when win32 is ERROR_SERVICE_SPECIFIC_ERROR.
	win32, specific uint32
}

// startState is a service's state as waitStart tells them apart.
type startState int

const (
	startOther startState = iota
	startRunning
	// startPending: START_PENDING, or STOP_PENDING (a program that gave
	// up while it started is on its way to STOPPED).
	startPending
	startStopped
)

func (s startState) String() string {
	switch s {
	case startRunning:
		return "running"
	case startPending:
		return "start or stop pending"
	case startStopped:
		return "stopped"
	}
	return "paused or unknown"
}

// errServiceSpecific is ERROR_SERVICE_SPECIFIC_ERROR (winerror.h): the
// service's own exit code is in dwServiceSpecificExitCode.
const errServiceSpecific = 1066

// waitStart waits, on Windows, until the service leaves START_PENDING,
// polling its status (queryStart) every 100 ms for at most StartTimeout:
// nil once it runs; an error (startFailure) when it stopped, with its
// exit code in words; an error when it is still pending at the end. It
// returns nil at once elsewhere, where the service manager's "running"
// is not a start still under way.
func (c *Control) waitStart(action string) error {
	if c.Service.Platform() != PlatformWindows {
		return nil
	}
	d := c.StartTimeout
	if d <= 0 {
		d = DefaultStartTimeout
	}
	deadline := time.Now().Add(d)
	for {
		st, err := queryStart(c.Name)
		if err != nil {
			return fmt.Errorf("service %s: %s: its state: %w", c.Name, action, err)
		}
		switch st.state {
		case startRunning:
			return nil
		case startStopped:
			return c.startFailure(action, st)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s: %s: not started after %v (%s); the reason is in the system log (%s)",
				c.Name, action, d, st.state, logHint(c.Service.Platform(), c.Name))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startFailure is the error of a service that stopped while it started.
func (c *Control) startFailure(action string, st startStatus) error {
	return fmt.Errorf("service %s: %s: it failed to start: %s; the reason is in the system log (%s)",
		c.Name, action, exitWords(st.win32, st.specific), logHint(c.Service.Platform(), c.Name))
}

// exitWords says in words how a service that failed to start ended, from
// its SERVICE_STATUS exit codes: the program's own exit code when win32
// is ERROR_SERVICE_SPECIFIC_ERROR (what Run in run_windows.go reports for
// a program that gave up while it started: Program.ExitCode), else the
// Win32 error code and its system message (win32Message).
func exitWords(win32, specific uint32) string {
	switch win32 {
	case 0:
		return "it stopped, with no exit code"
	case errServiceSpecific:
		return fmt.Sprintf("the program gave up while it started, with its own exit code %d (service-specific error)", specific)
	}
	if m := win32Message(win32); m != "" {
		return fmt.Sprintf("Win32 exit code %d (%s)", win32, m)
	}
	return fmt.Sprintf("Win32 exit code %d", win32)
}

// settle watches a started service for Settle: one that stops meanwhile
// ended at once (a program that fails at start may take a moment to load
// its config and give up); it must be running at the end. mark is where
// the service's log file ended before the start (logMark).
func (c *Control) settle(action string, mark int64) error {
	d := c.Settle
	if d <= 0 {
		d = DefaultSettle
	}
	deadline := time.Now().Add(d)
	for {
		st, err := c.Status()
		switch {
		case st == StateStopped || st == StateFailed:
			return fmt.Errorf("service %s: %s: it ended at once; %s", c.Name, action, c.reason(mark))
		case time.Now().After(deadline) && st == StateRunning:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("service %s: %s: %s %v after %v", c.Name, action, st, err, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
