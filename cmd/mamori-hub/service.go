package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mamori-agent/mamori/hub"
	"github.com/mamori-agent/mamori/internal/fsguard"
	"github.com/mamori-agent/mamori/internal/svc"
)

// defaultServiceName is the hub's service name: /etc/init.d/mamori-hub,
// mamori-hub.service, the Windows service mamori-hub.
const defaultServiceName = "mamori-hub"

const serviceUsage = `Usage: mamori-hub service ACTION [flags]

  install --config FILE [--name NAME]
        install "mamori-hub serve" as a system service that starts at boot: it runs
        "mamori-hub service run --name NAME --config FILE" (FILE made absolute) as root
        (LocalSystem on Windows); systemd restarts it %[1]d s after it ends (unless
        systemctl stopped it), Windows %[1]d s after it fails (SysV init does not
        watch over it); systemd where it
        runs as PID 1, else a SysV init script (/etc/init.d/NAME, start-stop-daemon),
        the service control manager on Windows. The config must load and pass serve's
        checks; the binary must not be writable by others. The packages install their
        own hardened systemd unit instead.
  uninstall [--name NAME]    stop the service if it runs and remove it
  start [--name NAME]        start it; one that ends at once is an error naming its log (on
                             Windows it waits until the hub listens or has failed to start,
                             and names a failed start's exit code)
  stop [--name NAME]         stop it
  restart [--name NAME]      restart it
  status [--name NAME]       print running, stopped or not installed
  run --config FILE [--name NAME]
        what the service manager runs: serve, logging to the system log (syslog with
        tag NAME, facility daemon; the Event Log on Windows; stderr when there is none);
        on Windows the service is "starting" until the hub listens, and a config or
        file it refuses is a failed start (service-specific error %[2]d)

--name defaults to ` + defaultServiceName + `; another name makes a second instance. Every action but
status and run needs root.
Exit: 0 done (status: running), 1 error (status: cannot tell), 2 usage,
3 stopped (status), 4 not installed.
`

// cmdService runs "mamori-hub service ACTION [flags]".
func cmdService(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || isHelp(args[0]) {
		w, code := stdout, exitOK
		if len(args) == 0 {
			w, code = stderr, exitUsage
		}
		printServiceUsage(w)
		return code
	}
	action := args[0]
	fl := flag.NewFlagSet("mamori-hub service "+action, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { printServiceUsage(fl.Output()) }
	name := fl.String("name", defaultServiceName, "service name")
	var configPath *string
	if action == "install" || action == "run" {
		configPath = fl.String("config", defaultConfig, "the hub's config file")
	}
	if err := fl.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	configGiven := false
	fl.Visit(func(f *flag.Flag) { configGiven = configGiven || f.Name == "config" })
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "mamori-hub service %s: unexpected argument %q\n", action, fl.Arg(0))
		return exitUsage
	}
	if err := svc.CheckName(*name); err != nil {
		fmt.Fprintf(stderr, "mamori-hub service %s: %v\n", action, err)
		return exitUsage
	}
	switch {
	case action == "install":
		return serviceInstall(*name, *configPath, configGiven, stdout, stderr)
	case action == "run":
		return serviceRun(*name, *configPath, configGiven, stderr)
	case slices.Contains(svc.Actions, action):
		return svc.ActExit("mamori-hub", *name, action, stdout, stderr, exitError)
	}
	fmt.Fprintf(stderr, "mamori-hub service: unknown action %q\n\n", action)
	printServiceUsage(stderr)
	return exitUsage
}

// printServiceUsage writes serviceUsage to w.
func printServiceUsage(w io.Writer) { fmt.Fprintf(w, serviceUsage, svc.RestartSec, exitError) }

func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "-help" || s == "help" }

// hubSpec is the hub's service: what it is called and what it runs.
func hubSpec(name, config, exe string) svc.Spec {
	return svc.Spec{
		Name:        name,
		DisplayName: "mamori hub",
		Description: "mamori-hub: the central endpoint mamori agents report to",
		Executable:  exe,
		Arguments:   []string{"service", "run", "--name", name, "--config", config},
		// The database may be on another host.
		Dependencies:     []string{"Wants=network-online.target", "After=network-online.target"},
		DelayedAutoStart: true,
	}
}

// loadChecked loads the config at path and runs serve's file checks.
// given says the path came from --config (not the default), for the
// error of a missing file.
func loadChecked(path string, given bool) (*hub.Config, error) {
	cfg, err := hub.LoadConfig(path)
	if errors.Is(err, fs.ErrNotExist) {
		if given {
			return nil, fmt.Errorf("config file %s does not exist", path)
		}
		return nil, fmt.Errorf("no config file %s (give one with --config)", path)
	}
	if err != nil {
		return nil, err
	}
	if err := checkOwnership(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// checkDatabaseDir refuses, for install, a SQLite database whose
// directory serve would refuse at start (sqlstore.Open): one that does
// not exist (the error names mkdir -m 700 DIR) or is not a directory.
// checkOwnership checks an existing one's owner and mode. Other
// databases (postgres://) are not checked here.
func checkDatabaseDir(cfg *hub.Config) error {
	p, ok := strings.CutPrefix(cfg.Database, "sqlite://")
	if !ok || p == "" {
		return nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return fmt.Errorf("database %s: %w", p, err)
	}
	dir := filepath.Dir(abs)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("database directory %s does not exist: create it (mkdir -m 700 %s)", dir, dir)
	case err != nil:
		return fmt.Errorf("database directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("database directory %s is not a directory", dir)
	}
	return nil
}

func serviceInstall(name, configPath string, configGiven bool, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "mamori-hub service install:", err)
		return exitError
	}
	// Before the config: one only root may read would not load either.
	if err := svc.NeedRoot(name, "install"); err != nil {
		return fail(err)
	}
	abs, err := filepath.Abs(configPath)
	if err != nil {
		return fail(err)
	}
	cfg, err := loadChecked(abs, configGiven)
	if err == nil {
		err = checkDatabaseDir(cfg)
	}
	if err != nil {
		return fail(fmt.Errorf("the service would not start: %w", err))
	}
	exe, err := svc.Executable()
	if err != nil {
		return fail(err)
	}
	if err := fsguard.CheckFile(exe); err != nil {
		return fail(fmt.Errorf("the service would run, as root, a binary others can change: %w", err))
	}
	ctl, err := svc.NewControl(hubSpec(name, abs, exe))
	if err != nil {
		return fail(err)
	}
	if err := ctl.Install(); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "%s: installed (%s), starts at boot, runs %s service run --name %s --config %s\nstart it now with: %s service start --name %s\n",
		name, ctl.Where(), exe, name, abs, filepath.Base(exe), name)
	return exitOK
}

// serviceRun runs serve under the service manager until it stops it.
//
// The config and the files it names are checked in the program's start,
// not before svc.Run: on Windows the service must have connected to the
// service control manager to report a refusal as a failed start
// (STOPPED, ERROR_SERVICE_SPECIFIC_ERROR, exit code exitError); a process
// that exits before that is only a service that "did not respond". The
// service has started (RUNNING on Windows) once the hub's store is open
// and it listens. Under systemd and SysV init a refusal ends the process
// with exitError all the same, as before.
func serviceRun(name, configPath string, configGiven bool, stderr io.Writer) int {
	prg := &svc.Program{ExitCode: exitError, ReportsReady: true}
	s, err := svc.NewRunner(prg, name)
	if err != nil {
		fmt.Fprintln(stderr, "mamori-hub service run:", err)
		return exitError
	}
	log, lerr := svc.SystemLogger(s, name, svc.LogOptions{Level: slog.LevelInfo}, stderr)
	if lerr != nil {
		log.Warn("logging to stderr", "err", lerr)
	}
	prg.Logger = log
	prg.Run = func(ctx context.Context) error {
		cfg, err := loadChecked(configPath, configGiven)
		if err != nil {
			log.Error("not started", "err", err)
			fmt.Fprintln(stderr, "mamori-hub service run:", err)
			return err
		}
		return serveHub(ctx, cfg, log, prg.Ready)
	}
	if err := svc.Run(s, prg, name); err != nil {
		log.Error("service ended with an error", "err", err)
		return exitError
	}
	log.Info("service stopped")
	return exitOK
}
