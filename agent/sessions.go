package agent

import (
	"context"
	"os"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
)

// Defaults of DesktopOptions.
const (
	DefaultRunUserDir = "/run/user"
	DefaultUtmp       = "/var/run/utmp"
	// DefaultMinSessionUID is the lowest uid whose sessions get a
	// notifier started (Debian's FIRST_UID: people, not system users).
	DefaultMinSessionUID = 1000
	// DefaultAckTimeout is how long connected notifiers have to say a
	// warning reached the desktop before their sessions count as not
	// reached.
	DefaultAckTimeout = 5 * time.Second
	// DefaultStartTimeout bounds a notifier the agent starts (it gives
	// up on a session bus that does not answer after
	// notify.ConnectTimeout, on the notification after
	// notify.DefaultShowTimeout). The notifiers of the sessions are
	// started in parallel, each with its own.
	DefaultStartTimeout = 15 * time.Second
)

// DesktopOptions configures the warnings on the desktop of the person at
// the PC (Options.Desktop). Every path is injectable for tests.
type DesktopOptions struct {
	// Off turns desktop warnings off: no local API, no notifier started
	// (the console warner still shows violations).
	Off bool
	// WarnInterval is the rate limit: at most one warning per kind and
	// device per interval (zero: DefaultWarnInterval).
	WarnInterval time.Duration
	// AckTimeout: see DefaultAckTimeout. StartTimeout: see
	// DefaultStartTimeout.
	AckTimeout, StartTimeout time.Duration
	// RunUserDir holds the users' runtime directories, each with its
	// session bus socket "bus" (default /run/user); Utmp is the login
	// records (default /var/run/utmp; "-" reads none). MinUID is the
	// lowest uid considered (zero: DefaultMinSessionUID).
	RunUserDir string
	Utmp       string
	MinUID     int
	// NotifyCommand starts a notifier for one warning on standard input
	// (default: this executable with "notify --once"); nil with NoStart
	// set starts none.
	NotifyCommand []string
	NoStart       bool
	// SocketMode is the local API socket's mode (zero: 0660, or 0600
	// without a group); PingInterval its watchers' ping interval.
	SocketMode   os.FileMode
	PingInterval time.Duration
}

// session is a desktop session of one user: who (User "" when the user
// database does not know the uid), and the session bus its notifier
// talks to.
type session struct {
	UID, GID   int
	User, Home string
	Groups     []uint32
	// RuntimeDir is RunUserDir/<uid>; Bus its session bus's address.
	RuntimeDir, Bus string
}

// sessionFinder finds the desktop sessions on the PC and starts a
// notifier in one (sessions_linux.go; none elsewhere yet).
type sessionFinder interface {
	sessions() ([]session, error)
	start(ctx context.Context, s session, w *localapi.Warning) error
}
