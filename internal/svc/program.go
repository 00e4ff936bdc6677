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

// Program is a service's program (a kardianos service.Interface): Start
// runs Run in a goroutine and returns at once; Stop cancels Run's context
// and waits up to StopTimeout for it to return, so that the program can
// record that it stopped. When Run returns without being asked to (it
// could not start, or failed), the process ends with ExitCode, so that
// the service manager sees a failure and restarts it.
type Program struct {
	// Run runs the program until ctx is done; it returns nil after a
	// clean stop.
	Run func(ctx context.Context) error
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
		p.log().Error("ended; exiting so that the service manager restarts it", "err", err, "exit_status", code)
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
