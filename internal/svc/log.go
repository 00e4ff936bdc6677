package svc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/kardianos/service"
)

// LogOptions say how records are formatted for the system log.
type LogOptions struct {
	// Level is the lowest level logged.
	Level slog.Leveler
	// JSON formats each record as JSON instead of logfmt text.
	JSON bool
}

// LineLogger takes one formatted line at a severity: a kardianos
// service.Logger (the Windows Event Log) or syslog on Unix.
type LineLogger interface {
	Error(v ...any) error
	Warning(v ...any) error
	Info(v ...any) error
}

// NewLogHandler returns a slog.Handler that formats each record as one
// line (text or JSON, without the time: the system log stamps it) and
// hands it to l at the record's severity: Error from slog.LevelError,
// Warning from slog.LevelWarn, Info below.
func NewLogHandler(l LineLogger, o LogOptions) slog.Handler {
	s := &logSink{l: l}
	opts := &slog.HandlerOptions{Level: o.Level, ReplaceAttr: dropTime}
	var inner slog.Handler
	if o.JSON {
		inner = slog.NewJSONHandler(&s.buf, opts)
	} else {
		inner = slog.NewTextHandler(&s.buf, opts)
	}
	return &logHandler{inner: inner, s: s}
}

// SystemLogger returns a slog.Logger on the system log, tagged with the
// service's name: syslog (facility daemon, through /dev/log) on Unix, the
// Event Log (s.SystemLogger) on Windows. Where there is none (no
// /dev/log: no syslog daemon runs), it returns a logger on fallback with
// the reason, for the caller to log.
func SystemLogger(s service.Service, name string, o LogOptions, fallback io.Writer) (*slog.Logger, error) {
	l, err := systemLog(s, name)
	if err == nil {
		return slog.New(NewLogHandler(l, o)), nil
	}
	opts := &slog.HandlerOptions{Level: o.Level}
	if o.JSON {
		return slog.New(slog.NewJSONHandler(fallback, opts)), fmt.Errorf("no system log: %w", err)
	}
	return slog.New(slog.NewTextHandler(fallback, opts)), fmt.Errorf("no system log: %w", err)
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// logSink is the buffer a record is formatted into and the logger it
// goes to, shared by a handler and those derived from it.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
	l   LineLogger
}

type logHandler struct {
	inner slog.Handler
	s     *logSink
}

func (h *logHandler) Enabled(ctx context.Context, lvl slog.Level) bool {
	return h.inner.Enabled(ctx, lvl)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	h.s.buf.Reset()
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	line := strings.TrimSuffix(h.s.buf.String(), "\n")
	switch {
	case r.Level >= slog.LevelError:
		return h.s.l.Error(line)
	case r.Level >= slog.LevelWarn:
		return h.s.l.Warning(line)
	}
	return h.s.l.Info(line)
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{inner: h.inner.WithAttrs(as), s: h.s}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{inner: h.inner.WithGroup(name), s: h.s}
}
