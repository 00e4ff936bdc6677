package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mamori-agent/mamori/agent"
)

// reloadOnHangup reloads the config file on SIGHUP (as sshd and
// node_exporter's web config do) until ctx is done. A file that does not
// load, or that others can write, is refused and the old config stays in
// force; both outcomes are recorded by the agent.
func reloadOnHangup(ctx context.Context, a *agent.Agent, c *common, log *slog.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			log.Info("SIGHUP: reloading the config")
			cfg, err := c.loadConfig(log)
			if err == nil {
				err = checkOwnership(cfg)
			}
			a.Reload(cfg, err)
		}
	}
}
