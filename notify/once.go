package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mamori-agent/mamori/agent/localapi"
)

// ErrBadInput is wrapped by ShowOnce's error when standard input held no
// warning message.
var ErrBadInput = errors.New("no warning on standard input")

// ShowOnce reads one warning from r, a line holding a localapi.Message
// of type "warning" (at most localapi.MaxAnswerLine bytes), shows it on
// the session bus at bus ("" for SessionBusAddress), and writes the
// answer to w: a "shown" message, with the error when it could not be
// shown. This is the notifier the agent starts as the user of a session
// that has none connected (mamori notify --once): the warning comes on
// standard input, so that the user need not be allowed on the socket.
func ShowOnce(ctx context.Context, r io.Reader, w io.Writer, bus string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), localapi.MaxAnswerLine)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadInput, err)
		}
		return fmt.Errorf("%w: nothing read", ErrBadInput)
	}
	var m localapi.Message
	if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
		return fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	if m.Type != localapi.TypeWarning || m.Warning == nil {
		return fmt.Errorf("%w: got a %q message", ErrBadInput, m.Type)
	}
	ack := localapi.Message{Type: localapi.TypeShown, ID: m.Warning.ID}
	err := showOne(ctx, m.Warning, bus)
	if err != nil {
		ack.Error = err.Error()
	}
	b, merr := json.Marshal(&ack)
	if merr != nil {
		return merr
	}
	if _, werr := w.Write(append(b, '\n')); werr != nil && err == nil {
		err = werr
	}
	return err
}

// showOne shows wr on bus: connecting and asking for the capabilities
// within ConnectTimeout, the Notify call within DefaultShowTimeout.
func showOne(ctx context.Context, wr *localapi.Warning, bus string) error {
	octx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	d, err := OpenDesktop(octx, bus)
	cancel()
	if err != nil {
		return err
	}
	defer d.Close()
	sctx, cancel := context.WithTimeout(ctx, DefaultShowTimeout)
	defer cancel()
	_, err = d.Show(sctx, Compose(wr, d.Markup(), nil))
	return err
}
