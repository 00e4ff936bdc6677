//go:build !linux && !windows

package agent

import (
	"context"
	"errors"

	"github.com/mamori-agent/mamori/agent/localapi"
)

// noSessions is the session finder where none is done yet: no notifier
// is started; the connected ones still show warnings.
type noSessions struct{}

func newSessionFinder(o DesktopOptions, procfs string) sessionFinder { return noSessions{} }

func (noSessions) sessions() ([]session, error) { return nil, nil }

func (noSessions) start(ctx context.Context, s session, w *localapi.Warning) error {
	return errors.ErrUnsupported
}
