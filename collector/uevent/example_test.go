package uevent_test

import (
	"errors"
	"log/slog"

	"github.com/mamori-agent/mamori/collector/uevent"
)

// The agent's loop: re-read the device an event names, rescan everything
// after an overrun or a bad datagram, and fall back to periodic rescans
// when there is no socket.
func ExampleListen() {
	var (
		log     = slog.Default()
		reread  = func(devpath string) {}
		rescan  = func(reason string) {}
		polling = func() {}
	)
	conn, err := uevent.Listen()
	if err != nil {
		log.Debug("no uevent socket, rescanning periodically", "err", err)
		polling()
		return
	}
	defer conn.Close()
	var src uevent.Source = conn
	for {
		ev, err := src.Receive()
		switch {
		case err == nil:
			if ev.Subsystem == "usb" || ev.Subsystem == "block" {
				reread(ev.DevPath)
			}
		case errors.Is(err, uevent.ErrClosed):
			return
		case errors.Is(err, uevent.ErrOverrun):
			rescan("overrun")
		case !uevent.IsTerminal(err):
			log.Warn("bad uevent", "err", err)
			rescan("bad uevent")
		default:
			log.Error("uevent socket failed", "err", err)
			polling()
			return
		}
	}
}
