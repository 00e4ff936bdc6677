package svc

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/kardianos/service"
	"golang.org/x/sys/windows"
	winsvc "golang.org/x/sys/windows/svc"
)

// Timing of the service's life as the service control manager sees it.
const (
	// startTimeout bounds how long the service stays START_PENDING: for
	// Start to return, then for a program that says when it has started
	// (Started) to say so. MSI's ServiceControl waits 30 s for a start.
	startTimeout = 25 * time.Second
	// startSettle is how long the handler itself would watch a *Program
	// without a Started method for ending by itself before reporting the
	// service RUNNING. No *Program lacks one: Program.Started closes its
	// channel on Ready or after the program's own Settle
	// (DefaultStartSettle, also 2 s), so this is a fallback that nothing
	// reaches today; other service.Interface values without Started are
	// not watched at all (see Run).
	startSettle = 2 * time.Second
	// pendingTick is how often a pending state's checkpoint advances;
	// pendingHint is the wait hint sent with it (the service control
	// manager takes a service whose checkpoint does not advance within
	// the hint for hung).
	pendingTick = time.Second
	pendingHint = 5 * time.Second
	// stopWait is the wait hint for a stop, and PreshutdownTimeout's
	// base: the program's own stop bound and time to exit.
	stopWait = DefaultStopTimeout + 5*time.Second
)

// PreshutdownTimeout is the time the service asks the service control
// manager for at shutdown (SERVICE_CONFIG_PRESHUTDOWN_INFO): enough for
// Stop to flush the audit log and the report queue. Windows' default is
// 10 s on Windows 10 1703 and later (180 s before).
const PreshutdownTimeout = stopWait

// starter is what a program may also implement to say when its start is
// done: Run's handler keeps the service START_PENDING until Started's
// channel is closed (at most startTimeout), so that the service control
// manager, net start and MSI's ServiceControl see a start that fails as
// failed.
type starter interface {
	Started() <-chan struct{}
}

// Run runs the service s with p, its program, under the service control
// manager: it calls svc.Run itself rather than leaving it to
// kardianos/service, which does so only when svc.IsWindowsService says
// the process is a service. That is false under Wine (its services run
// in session 1), and "service run" on the installed command line already
// says what the process is. Started by hand (no service control manager
// to connect to), it runs p until Ctrl-C, as kardianos does for a
// console.
//
// Unlike kardianos/service, which reports RUNNING as soon as p's Start
// returns, the service stays START_PENDING (its checkpoint advancing
// every second, within a wait hint of 5 s) until p has started: until
// the channel of its Started method (the starter interface) is closed,
// for at most 25 s (then RUNNING, with a warning in the log). A
// *Program always has Started, with its own settle default: the channel
// closes when Run calls Ready (ReportsReady), else once Run has run for
// Program.Settle (DefaultStartSettle, 2 s) without ending; a *Program's
// Start itself returns at once. The handler's own 2 s settle
// (startSettle) is for a *Program without Started, which cannot be, so
// no program reaches it; any other service.Interface value without
// Started is reported RUNNING as soon as its Start returns, as
// kardianos does. A start that fails (Start's error, or a *Program
// whose Run ends meanwhile) is reported as SERVICE_STOPPED with
// ERROR_SERVICE_SPECIFIC_ERROR and the program's exit code as the
// service-specific code (Program.ExitCode, 1 by default; for this
// p.Exit is taken over while the service starts), so that net start,
// MSI's ServiceControl and Control.Start see it fail; Run then returns
// the error. A *Program whose Run ends after it has started still ends
// the process (its Exit), which the service control manager takes for a
// crash and restarts it for.
//
// The service accepts stop, shutdown and preshutdown: at a system
// shutdown it is told first (SERVICE_CONTROL_PRESHUTDOWN) and may take
// PreshutdownTimeout to stop, which it sets in its own configuration
// when it starts (ChangeServiceConfig2, SERVICE_CONFIG_PRESHUTDOWN_INFO),
// with FailureActionsOnNonCrashFailures, so that the recovery action
// (the restart RestartSec after a failure) also follows a failed start;
// it does so at every start because the MSI installs the service
// without this package's code. A configuration it cannot change is
// logged (Program.Logger) and not fatal. Errors of p's Start and Stop
// are returned; the exit code a failed stop reports is 2.
func Run(s service.Service, p service.Interface, name string) error {
	h := newHandler(s, p, name)
	err := winsvc.Run(name, h)
	if errors.Is(err, windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
		return s.Run()
	}
	if err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	return h.err
}

// handler is the svc.Handler of a program: Start when the service control
// manager starts the service, Stop (which waits for the program) on stop,
// shutdown or preshutdown, with checkpoints while either is pending.
type handler struct {
	s    service.Service
	p    service.Interface
	name string
	log  *slog.Logger
	// exitCode is the service-specific code of a failed start.
	exitCode uint32
	// Bounds and pace (the constants above; tests shorten them).
	startTimeout, settle, tick, hint, stopWait time.Duration
	// configure sets the service's own configuration (selfConfigure;
	// nil: not set).
	configure func(name string, log *slog.Logger)

	// ended receives the exit code of a *Program whose Run ended by
	// itself while the service starts.
	ended chan int
	mu    sync.Mutex
	// starting is true until the start is decided; then a *Program's Run
	// that ends goes to realExit.
	starting bool
	realExit func(int)

	err error
}

func newHandler(s service.Service, p service.Interface, name string) *handler {
	h := &handler{s: s, p: p, name: name, log: slog.New(slog.DiscardHandler), exitCode: 1,
		startTimeout: startTimeout, settle: startSettle, tick: pendingTick, hint: pendingHint, stopWait: stopWait,
		configure: selfConfigure, ended: make(chan int, 1), starting: true}
	if prg, ok := p.(*Program); ok {
		if prg.Logger != nil {
			h.log = prg.Logger
		}
		if prg.ExitCode > 0 {
			h.exitCode = uint32(prg.ExitCode)
		}
		h.realExit = prg.Exit
		if h.realExit == nil {
			h.realExit = os.Exit
		}
		prg.Exit = h.programEnded
	}
	return h
}

// programEnded is a *Program's Exit while Run's handler watches it: during
// the start, the handler reports the failure; after, the process ends as
// the program asked.
func (h *handler) programEnded(code int) {
	h.mu.Lock()
	if h.starting {
		select {
		case h.ended <- code:
		default:
		}
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	h.realExit(code)
}

// started ends the start: from now on a *Program's Run that ends ends the
// process. It returns the error of a Run that ended before (programErr),
// which fails the start after all.
func (h *handler) started() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.starting = false
	select {
	case code := <-h.ended:
		if code > 0 {
			h.exitCode = uint32(code)
		}
		return h.programErr()
	default:
		return nil
	}
}

// accepts are the controls a running service accepts.
const accepts = winsvc.AcceptStop | winsvc.AcceptShutdown | winsvc.AcceptPreShutdown

// Execute runs the program's life as the service control manager asks.
func (h *handler) Execute(args []string, r <-chan winsvc.ChangeRequest, changes chan<- winsvc.Status) (bool, uint32) {
	pending := &pendingStatus{changes: changes, state: winsvc.StartPending, hint: h.hint}
	pending.next()
	if h.configure != nil {
		h.configure(h.name, h.log)
	}
	if err := h.start(r, pending); err != nil {
		h.err = fmt.Errorf("start: %w", err)
		h.log.Error("service start failed; reported to the service control manager", "err", err, "service_specific_exit_code", h.exitCode)
		return true, h.exitCode
	}
	changes <- winsvc.Status{State: winsvc.Running, Accepts: accepts}
	for c := range r {
		switch c.Cmd {
		case winsvc.Interrogate:
			changes <- c.CurrentStatus
		case winsvc.Stop, winsvc.Shutdown, winsvc.PreShutdown:
			return h.stop(c.Cmd, r, changes)
		}
	}
	return false, 0
}

// start runs p's Start and waits, START_PENDING, until the program has
// started (see Run: Started's channel closed, or, for a value without
// Started, Start returned); the error says why it did not.
func (h *handler) start(r <-chan winsvc.ChangeRequest, pending *pendingStatus) error {
	err := h.startPending(r, pending)
	if err2 := h.started(); err == nil {
		err = err2
	}
	return err
}

// startPending is start's wait.
func (h *handler) startPending(r <-chan winsvc.ChangeRequest, pending *pendingStatus) error {
	deadline := time.NewTimer(h.startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(h.tick)
	defer tick.Stop()
	startErr := make(chan error, 1)
	go func() { startErr <- h.p.Start(h.s) }()
	var ready <-chan struct{} // closed once the program has started
	var settle <-chan time.Time
	for {
		select {
		case err := <-startErr:
			if err != nil {
				return err
			}
			startErr = nil
			if st, ok := h.p.(starter); ok {
				ready = st.Started()
			} else if _, ok := h.p.(*Program); ok {
				t := time.NewTimer(h.settle)
				defer t.Stop()
				settle = t.C
			} else {
				return nil
			}
		case <-ready:
			return nil
		case <-settle:
			return nil
		case code := <-h.ended:
			if code > 0 {
				h.exitCode = uint32(code)
			}
			return h.programErr()
		case <-deadline.C:
			if startErr != nil {
				return fmt.Errorf("Start did not return within %v", h.startTimeout)
			}
			// Running, but it has not said it started: not a failure.
			h.log.Warn("service reported running: the program did not say it had started", "within", h.startTimeout)
			return nil
		case c := <-r:
			if c.Cmd == winsvc.Interrogate {
				pending.again()
			}
		case <-tick.C:
			pending.next()
		}
	}
}

// programErr is the error of a *Program whose Run ended while it started.
func (h *handler) programErr() error {
	if prg, ok := h.p.(*Program); ok {
		prg.mu.Lock()
		defer prg.mu.Unlock()
		if prg.err != nil {
			return prg.err
		}
	}
	return errors.New("the program ended while it started")
}

// stop stops the program for cmd (Stop, or Shutdowner's Shutdown for a
// shutdown or preshutdown), STOP_PENDING with advancing checkpoints
// meanwhile.
func (h *handler) stop(cmd winsvc.Cmd, r <-chan winsvc.ChangeRequest, changes chan<- winsvc.Status) (bool, uint32) {
	pending := &pendingStatus{changes: changes, state: winsvc.StopPending, hint: h.stopWait}
	pending.next()
	done := make(chan error, 1)
	go func() {
		if sd, ok := h.p.(service.Shutdowner); ok && cmd != winsvc.Stop {
			done <- sd.Shutdown(h.s)
			return
		}
		done <- h.p.Stop(h.s)
	}()
	tick := time.NewTicker(h.tick)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				h.err = fmt.Errorf("stop: %w", err)
				return true, 2
			}
			return false, 0
		case c := <-r:
			if c.Cmd == winsvc.Interrogate {
				pending.again()
			}
		case <-tick.C:
			pending.next()
		}
	}
}

// pendingStatus sends a pending state with its checkpoint.
type pendingStatus struct {
	changes    chan<- winsvc.Status
	state      winsvc.State
	hint       time.Duration
	checkpoint uint32
}

// next sends the state with the next checkpoint.
func (p *pendingStatus) next() {
	p.checkpoint++
	p.again()
}

// again sends the state with the current checkpoint (an interrogation's
// answer).
func (p *pendingStatus) again() {
	p.changes <- winsvc.Status{State: p.state, CheckPoint: p.checkpoint, WaitHint: uint32(p.hint / time.Millisecond)}
}

// servicePreshutdownInfo is SERVICE_PRESHUTDOWN_INFO (winsvc.h).
type servicePreshutdownInfo struct {
	PreshutdownTimeout uint32 // milliseconds
}

// selfConfigure sets, on the service called name, the preshutdown timeout
// (PreshutdownTimeout) and FailureActionsOnNonCrashFailures (so that a
// start reported failed is restarted like a crash), as Run's doc says;
// what it cannot set it logs at Warn.
func selfConfigure(name string, log *slog.Logger) {
	if err := configureService(name); err != nil {
		log.Warn("service configuration not updated: a system shutdown may not wait for the audit log to be flushed, or a failed start may not be retried",
			"service", name, "err", err)
	}
}

// configureService is selfConfigure's work: OpenSCManager, OpenService
// with SERVICE_CHANGE_CONFIG, ChangeServiceConfig2 for
// SERVICE_CONFIG_PRESHUTDOWN_INFO and SERVICE_CONFIG_FAILURE_ACTIONS_FLAG.
func configureService(name string) error {
	m, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return fmt.Errorf("OpenSCManager: %w", err)
	}
	defer windows.CloseServiceHandle(m)
	n, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return err
	}
	s, err := windows.OpenService(m, n, windows.SERVICE_CHANGE_CONFIG|windows.SERVICE_QUERY_CONFIG)
	if err != nil {
		return fmt.Errorf("OpenService %s: %w", name, err)
	}
	defer windows.CloseServiceHandle(s)
	var errs []error
	info := servicePreshutdownInfo{PreshutdownTimeout: uint32(PreshutdownTimeout / time.Millisecond)}
	if err := windows.ChangeServiceConfig2(s, windows.SERVICE_CONFIG_PRESHUTDOWN_INFO, (*byte)(unsafe.Pointer(&info))); err != nil {
		errs = append(errs, fmt.Errorf("preshutdown timeout: %w", err))
	}
	flag := windows.SERVICE_FAILURE_ACTIONS_FLAG{FailureActionsOnNonCrashFailures: 1}
	if err := windows.ChangeServiceConfig2(s, windows.SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, (*byte)(unsafe.Pointer(&flag))); err != nil {
		errs = append(errs, fmt.Errorf("recovery on non-crash failures: %w", err))
	}
	return errors.Join(errs...)
}
