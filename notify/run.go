package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
)

// Defaults of Options.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 30 * time.Second
	// DefaultShowTimeout bounds one Notify call.
	DefaultShowTimeout = 10 * time.Second
	// ConnectTimeout bounds connecting to the session bus and asking the
	// notification service for its capabilities (OpenDesktop): a bus
	// that never answers fails within it.
	ConnectTimeout = 3 * time.Second
)

// Options configures Run.
type Options struct {
	// Socket is the agent's local API socket (agent.local_socket).
	Socket string
	// Bus is the session bus address; "" is SessionBusAddress, read at
	// each connection.
	Bus string
	// MinBackoff and MaxBackoff pace reconnection to the agent: the wait
	// doubles from MinBackoff to MaxBackoff while the agent is not
	// there, and starts again at MinBackoff after a connection that
	// lasted.
	MinBackoff, MaxBackoff time.Duration
	// ShowTimeout bounds one Notify call; zero means DefaultShowTimeout.
	ShowTimeout time.Duration
	// Idle bounds the time without a message from the agent (it pings);
	// zero means the local API's default.
	Idle time.Duration
	// OnShown is told each warning shown and the notification's id (for
	// tests and logs); it may be nil.
	OnShown func(w *localapi.Warning, id uint32)
	Logger  *slog.Logger
}

// Run is the notifier: it connects to the agent's socket (waiting, with
// backoff, while there is no agent), shows each warning on the desktop
// and tells the agent whether it could, and connects again when the
// agent or the session bus goes. It watches only once it has reached
// the desktop's notification service (OpenDesktop; until then it
// connects, to learn whether it may, and closes again with the same
// backoff: no session bus, no service), so that the agent, and mamori
// status, count no notifier that cannot show anything; where there is
// no desktop service yet (errors.ErrUnsupported: Windows) it watches
// all the same. It returns
// nil when ctx is done, and an
// error wrapping localapi.ErrRefused when the agent does not let this
// user read its warnings (the agent then reaches this session by a
// notifier it starts itself).
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.ShowTimeout <= 0 {
		opts.ShowTimeout = DefaultShowTimeout
	}
	s := &shower{opts: opts, log: opts.Logger, ids: map[string]uint32{}}
	defer s.close()
	wait := opts.MinBackoff
	lastErr := ""
	for {
		c, err := localapi.Dial(ctx, opts.Socket)
		if ctx.Err() != nil {
			if c != nil {
				c.Close()
			}
			return nil
		}
		if errors.Is(err, localapi.ErrRefused) {
			return err
		}
		if err == nil {
			// Told whether it may watch (refused: above); it watches
			// only once it can show.
			if rerr := s.ready(); rerr != nil {
				c.Close()
				if msg := rerr.Error(); msg != lastErr {
					opts.Logger.Warn("desktop notifications not reachable; not watching the agent's warnings until they are (its status lists no notifier here meanwhile)",
						"err", rerr, "every_up_to", opts.MaxBackoff)
					lastErr = msg
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
				wait = min(2*wait, opts.MaxBackoff)
				continue
			}
			opts.Logger.Info("connected to the agent", "socket", opts.Socket, "agent", c.Hello.Agent, "role", c.Hello.Role)
			lastErr = ""
			start := time.Now()
			err = c.Watch(ctx, opts.Idle, s.show)
			if ctx.Err() != nil {
				return nil
			}
			if time.Since(start) > opts.MaxBackoff {
				wait = opts.MinBackoff
			}
		}
		// Said once per kind of failure, not at every retry.
		if msg := err.Error(); msg != lastErr {
			opts.Logger.Warn("agent not reachable; trying again", "socket", opts.Socket, "err", err, "every_up_to", opts.MaxBackoff)
			lastErr = msg
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, opts.MaxBackoff)
	}
}

// shower shows warnings on the desktop, opening the bus connection when
// needed and again after it failed.
type shower struct {
	opts Options
	log  *slog.Logger
	mu   sync.Mutex
	d    *Desktop
	// ids are the notifications shown, by warning key: a later warning
	// of the same key replaces the earlier one.
	ids map[string]uint32
}

// ready opens the desktop when it is not open: nil when it is, or when
// this system has no desktop service to open (errors.ErrUnsupported).
func (s *shower) ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(ConnectTimeout, s.opts.ShowTimeout))
	d, err := OpenDesktop(ctx, s.opts.Bus)
	cancel()
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("desktop notification: %w", err)
	}
	s.d = d
	return nil
}

// show shows w, trying once more on a fresh bus connection when the
// first attempt fails (the session bus restarted, the service went).
func (s *shower) show(w *localapi.Warning) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for attempt := range 2 {
		if s.d == nil {
			ctx, cancel := context.WithTimeout(context.Background(), min(ConnectTimeout, s.opts.ShowTimeout))
			s.d, err = OpenDesktop(ctx, s.opts.Bus)
			cancel()
			if err != nil {
				s.d = nil
				continue
			}
		}
		n := Compose(w, s.d.Markup(), nil)
		n.ReplacesID = s.ids[w.Key]
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShowTimeout)
		var id uint32
		id, err = s.d.Show(ctx, n)
		cancel()
		if err == nil {
			if len(s.ids) > 1000 {
				clear(s.ids)
			}
			s.ids[w.Key] = id
			s.log.Info("warning shown", "id", w.ID, "kind", w.Kind, "device", w.Device, "notification", id)
			if s.opts.OnShown != nil {
				s.opts.OnShown(w, id)
			}
			return nil
		}
		s.log.Warn("could not show the warning", "id", w.ID, "attempt", attempt+1, "err", err)
		s.d.Close()
		s.d = nil
	}
	return fmt.Errorf("desktop notification: %w", err)
}

func (s *shower) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d != nil {
		s.d.Close()
		s.d = nil
	}
}
