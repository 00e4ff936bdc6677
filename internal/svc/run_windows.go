package svc

import (
	"errors"
	"fmt"
	"time"

	"github.com/kardianos/service"
	"golang.org/x/sys/windows"
	winsvc "golang.org/x/sys/windows/svc"
)

// Run runs the service s with p, its program, under the service control
// manager: it calls svc.Run itself rather than leaving it to
// kardianos/service, which does so only when svc.IsWindowsService says
// the process is a service. That is false under Wine (its services run
// in session 1), and "service run" on the installed command line already
// says what the process is. Started by hand (no service control manager
// to connect to), it runs p until Ctrl-C, as kardianos does for a
// console. Errors of p's Start and Stop are returned; the service
// control manager sees exit code 1 for a failed start, 2 for a failed
// stop.
func Run(s service.Service, p service.Interface, name string) error {
	h := &handler{s: s, p: p, stopWait: DefaultStopTimeout + 5*time.Second}
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
// manager starts the service, Stop (which waits for the program) on stop
// or shutdown, with a wait hint that covers the stop timeout.
type handler struct {
	s        service.Service
	p        service.Interface
	stopWait time.Duration
	err      error
}

// Execute runs the program's life as the service control manager asks.
func (h *handler) Execute(args []string, r <-chan winsvc.ChangeRequest, changes chan<- winsvc.Status) (bool, uint32) {
	changes <- winsvc.Status{State: winsvc.StartPending}
	if err := h.p.Start(h.s); err != nil {
		h.err = fmt.Errorf("start: %w", err)
		return true, 1
	}
	changes <- winsvc.Status{State: winsvc.Running, Accepts: winsvc.AcceptStop | winsvc.AcceptShutdown}
	for c := range r {
		switch c.Cmd {
		case winsvc.Interrogate:
			changes <- c.CurrentStatus
		case winsvc.Stop, winsvc.Shutdown:
			changes <- winsvc.Status{State: winsvc.StopPending, WaitHint: uint32(h.stopWait / time.Millisecond)}
			if err := h.p.Stop(h.s); err != nil {
				h.err = fmt.Errorf("stop: %w", err)
				return true, 2
			}
			return false, 0
		}
	}
	return false, 0
}
