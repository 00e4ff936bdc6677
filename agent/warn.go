package agent

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// Warner tells the person at the PC about a violation, in Japanese and
// English, with the rule broken and what to do. The console and log one is
// here; desktop notifications implement the same interface.
type Warner interface {
	Warn(ev *Event) error
}

// ConsoleWarner writes warnings to a terminal or log stream, and to the
// agent's log.
type ConsoleWarner struct {
	W      io.Writer // nil: log only
	Logger *slog.Logger
	mu     sync.Mutex
}

// Warn writes one bilingual warning.
func (c *ConsoleWarner) Warn(ev *Event) error {
	v := ev.Violation
	if v == nil {
		return nil
	}
	if c.Logger != nil {
		c.Logger.Warn("violation", "kind", v.Kind, "device", v.Device, "severity", v.Severity,
			"article", v.Article, "message_ja", v.MessageJA, "message_en", v.MessageEN,
			"remedy_ja", v.RemedyJA, "remedy_en", v.RemedyEN)
	}
	if c.W == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := fmt.Fprintf(c.W, "\n【警告 / WARNING】 %s\n  %s\n  → %s\n  %s\n  → %s\n",
		v.Kind, v.MessageJA, v.RemedyJA, v.MessageEN, v.RemedyEN)
	return err
}
