package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/notify"
)

// Exit codes of mamori notify.
const (
	notifyOK       = 0 // stopped by a signal, or this user may not read the warnings; --once: shown
	notifyNotShown = 1 // --once: the warning could not be shown
	notifyError    = 2 // bad flags; --once: no warning on standard input
)

func init() {
	register(&command{"notify", "the desktop notifier: shows the agent's warnings in this desktop session", `Started with the desktop session (XDG autostart, the systemd user unit mamori-notify.service):
connects to the agent's local socket (waiting while no agent runs, and while the session D-Bus
has no notification service: mamori status lists only notifiers that can show), shows each
warning as a desktop notification on the session D-Bus (org.freedesktop.Notifications), and
tells the agent.
A user the agent does not let read its warnings (not in agent.local_group, default ` + config.DefaultLocalGroup + `)
gets them anyway: the agent starts a notifier in the session itself (--once, the warning on
standard input).
Exit: 0 after SIGINT/SIGTERM, or when this user may not read the agent's warnings;
--once: 0 shown, 1 not shown, 2 no warning on standard input. 2 on bad flags.`, cmdNotify})
}

func cmdNotify(args []string, stdout, stderr io.Writer) int {
	flags := newFlags("notify", stdout, stderr)
	var sf socketFlags
	sf.register(flags)
	once := flags.Bool("once", false, "show the one warning given on standard input (a localapi warning message) and exit")
	bus := flags.String("bus", "", "the session bus `address` (default DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus)")
	level := flags.String("log-level", "info", "log level: debug, info, warn, error")
	if code, ok := parse(flags, args, stdout, 0); !ok {
		return code
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(stderr, "mamori notify: --log-level:", err)
		return notifyError
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *once {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		err := notify.ShowOnce(ctx, os.Stdin, stdout, *bus)
		if err == nil {
			return notifyOK
		}
		fmt.Fprintln(stderr, "mamori notify --once:", err)
		if errors.Is(err, notify.ErrBadInput) {
			return notifyError
		}
		return notifyNotShown
	}
	if *bus == "" {
		if _, err := notify.SessionBusAddress(); err != nil {
			// It waits for one (a bus may come; notify.Run does not
			// connect to the agent meanwhile), but say why no warning
			// shows.
			fmt.Fprintf(stderr, "mamori notify: %v: warnings cannot be shown in this session; run it inside the desktop session (XDG autostart, mamori-notify.service) or give --bus ADDRESS. "+
				"セッションバスがないため、警告を表示できません。\n", err)
		}
	}
	path, err := sf.path(func(msg string) { log.Warn(msg) })
	if err != nil {
		fmt.Fprintln(stderr, "mamori notify:", err)
		return notifyError
	}
	err = notify.Run(ctx, notify.Options{Socket: path, Bus: *bus, Logger: log})
	if errors.Is(err, localapi.ErrRefused) {
		fmt.Fprintf(stderr, "mamori notify: %v\nThis user may not read the agent's warnings; the agent shows them in this session by a notifier it starts itself. "+
			"このユーザーはエージェントの警告を直接受け取れません。警告はエージェントが起動する通知プログラムで表示されます。\n", err)
		return notifyOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "mamori notify:", err)
		return notifyError
	}
	return notifyOK
}
