package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/kardianos/service"
)

// DefaultStopTimeout is how long Stop waits for the program to return
// after cancelling it: below the service managers' own bounds (the unit's
// TimeoutStopSec=30, the init script's 30 s before SIGKILL).
const DefaultStopTimeout = 20 * time.Second

// DefaultStartSettle is how long the Run of a Program that does not
// report when it is ready (ReportsReady false) must run without ending
// before it counts as started (Started).
const DefaultStartSettle = 2 * time.Second

// Program is a service's program (a kardianos service.Interface): Start
// runs Run in a goroutine and returns at once; Stop cancels Run's context
// and waits up to StopTimeout for it to return, so that the program can
// record that it stopped. When Run returns without being asked to (it
// could not start, or failed), the process ends with ExitCode, so that
// the service manager sees a failure (systemd and the Windows service
// control manager start it again; SysV init does not).
//
// Started tells when the program has started: when Run called Ready
// (ReportsReady), else once Run has run for Settle without ending. The
// Windows service stays START_PENDING until then (Run in
// run_windows.go), so that a program that gives up while it starts (a
// config, token or state folder it refuses) is reported to the service
// control manager as a failed start with ExitCode, never as running.
type Program struct {
	// Run runs the program until ctx is done; it returns nil after a
	// clean stop. With ReportsReady it calls Ready once it has started.
	Run func(ctx context.Context) error
	// ReportsReady says Run calls Ready once it has started for real (the
	// agent: after its first scan); until then the program has not
	// started. Without it, a Run that runs for Settle has.
	ReportsReady bool
	// Settle is, without ReportsReady, how long Run must run without
	// ending to count as started; 0 means DefaultStartSettle.
	Settle time.Duration
	// Logger receives what the program's life adds (nil: discarded).
	Logger *slog.Logger
	// StopTimeout bounds Stop's wait; 0 means DefaultStopTimeout.
	StopTimeout time.Duration
	// ExitCode is the exit status after Run ended by itself; 0 means 1.
	ExitCode int
	// Exit ends the process (nil: os.Exit); tests replace it.
	Exit func(code int)

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	// started is Started's channel (made by startedChan), closed by
	// Ready.
	started   chan struct{}
	readyOnce sync.Once
}

var _ service.Interface = (*Program)(nil)

func (p *Program) log() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// Start starts Run in a goroutine. It does not block.
func (p *Program) Start(service.Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		return errors.New("started already")
	}
	if p.Run == nil {
		return errors.New("no program to run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	if !p.ReportsReady {
		d := p.Settle
		if d <= 0 {
			d = DefaultStartSettle
		}
		done := p.done
		time.AfterFunc(d, func() {
			select {
			case <-done: // ended meanwhile: not started
			default:
				p.Ready()
			}
		})
	}
	go func() {
		err := p.Run(ctx)
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
		if ctx.Err() != nil {
			return // Stop asked for it; Stop reports err.
		}
		code := p.ExitCode
		if code == 0 {
			code = 1
		}
		if err == nil {
			err = errors.New("returned without being asked to stop")
		}
		p.log().Error("ended by itself; exiting with an error status", "err", err, "exit_status", code)
		exit := p.Exit
		if exit == nil {
			exit = os.Exit
		}
		exit(code)
	}()
	return nil
}

// Stop cancels Run and waits for it to return, at most StopTimeout. It
// returns Run's error, or an error when Run did not return in time.
func (p *Program) Stop(service.Service) error {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	d := p.StopTimeout
	if d <= 0 {
		d = DefaultStopTimeout
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		return fmt.Errorf("did not stop within %v", d)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// startedChan returns Started's channel, made at the first call.
func (p *Program) startedChan() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started == nil {
		p.started = make(chan struct{})
	}
	return p.started
}

// Started returns a channel closed once the program has started: when
// Run has called Ready (ReportsReady), else once Run has run for Settle
// without ending. It stays open while Run has not started, and for good
// when Run ended before. Run's handler on Windows waits for it (the
// starter interface in run_windows.go).
func (p *Program) Started() <-chan struct{} { return p.startedChan() }

// Ready says the program has started: Started's channel is closed, and
// the Windows service is reported RUNNING. Run calls it (the agent does
// from its Ready option, after its first scan); later calls do nothing.
// On Linux nothing else is told: the units the packages and Install write
// are Type=exec and Type=simple, with no sd_notify.
func (p *Program) Ready() {
	ch := p.startedChan()
	p.readyOnce.Do(func() { close(ch) })
}
