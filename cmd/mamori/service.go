package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"

	"github.com/mamori-agent/mamori/agent"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/fsguard"
	"github.com/mamori-agent/mamori/internal/svc"
)

// defaultServiceName is the service's name: /etc/init.d/mamori,
// mamori.service, the Windows service mamori.
const defaultServiceName = "mamori"

const serviceExits = "Exit: 0 done, 4 not installed, 2 error."

func init() {
	register([]*command{
		{"service install", "install the agent as a system service that starts at boot", `The service runs "mamori service run --name NAME --config FILE" (FILE made absolute), as root
(LocalSystem on Windows); systemd restarts it ` + fmt.Sprint(svc.RestartSec) + ` s after it ends (unless systemctl stopped it),
Windows ` + fmt.Sprint(svc.RestartSec) + ` s after it fails (SysV init does not watch over it). The service manager is
systemd where it runs as PID 1, else a SysV init script (/etc/init.d/NAME, started with
start-stop-daemon), the service control manager on Windows. The packages install their own
hardened systemd unit: under systemd use that (systemctl enable --now mamori); without systemd
this installs the init script that runs it.
The config must load (errors as FILE:LINE:COL) and pass the checks "mamori run" makes; the
binary must not be writable by others. ` + needsAdmin + `
Exit: 0 installed, 2 error (a bad config, installed already: "mamori service uninstall" first).`, cmdServiceInstall},
		{"service uninstall", "stop and remove the agent's service", needsAdmin + "\n" + serviceExits, cmdServiceAction("uninstall")},
		{"service start", "start the agent's service", `Watches the service for a moment: one that ends at once (a config or a state dir it refuses)
is an error that says where its log is. On Windows it first waits (at most ` + fmt.Sprint(int(svc.DefaultStartTimeout.Seconds())) + ` s) until the
service has started (the agent's first scan done) or failed to, and names a failed start's exit code.
` + needsAdmin + `
` + serviceExits, cmdServiceAction("start")},
		{"service stop", "stop the agent's service (agent_stopped is recorded)", needsAdmin + "\n" + serviceExits, cmdServiceAction("stop")},
		{"service restart", "restart the agent's service", needsAdmin + "\n" + serviceExits, cmdServiceAction("restart")},
		{"service status", "whether the agent's service runs", `Prints "NAME: running", "NAME: stopped" or "NAME: not installed", and where it is defined.
Exit: 0 running, 3 stopped, 4 not installed, 2 cannot tell.`, cmdServiceAction("status")},
		{"service run", "the agent as the service manager runs it (installed by service install)", `Runs the agent like "mamori run", logging to the system log (syslog with tag NAME, facility
daemon; the Event Log on Windows; stderr when there is none) instead of the terminal, until the
service manager stops it (SIGTERM; the service control manager on Windows). SIGHUP reloads the
config. Refuses to start on the files "mamori run" refuses; on Windows the service is "starting"
until the agent's first scan is done, and a refusal is a failed start (service-specific error 2).
Exit: 0 stopped by the service manager (agent_stopped recorded), 2 could not start or failed
(systemd and Windows start it again after ` + fmt.Sprint(svc.RestartSec) + ` s; SysV init does not).`, cmdServiceRun},
	}...)
}

// serviceName registers --name.
func serviceName(fs *flag.FlagSet) *string {
	return fs.String("name", defaultServiceName, "service `name` (another name makes a second instance)")
}

// agentSpec is the agent's service: what it is called and what it runs.
func agentSpec(name string, args []string) svc.Spec {
	return svc.Spec{
		Name:        name,
		DisplayName: "mamori endpoint agent",
		Description: "mamori endpoint agent: watches USB devices, removable media and networks against the approved lists",
		Arguments:   append([]string{"service", "run", "--name", name}, args...),
		ReloadOnHUP: true,
	}
}

func cmdServiceInstall(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("service install", stdout, stderr)
	cfgPath := fl.String("config", defaultConfig, "config `file` the service runs with")
	name := serviceName(fl)
	c := common{}
	fl.StringVar(&c.logFormat, "log-format", "text", "log format of the service: text or json")
	fl.StringVar(&c.logLevel, "log-level", "info", "log level of the service: debug, info, warn, error")
	if code, ok := parse(fl, args, stdout, 0); !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "mamori service install:", err)
		return exitError
	}
	if _, err := c.logger(io.Discard); err != nil {
		return fail(err)
	}
	if err := svc.CheckName(*name); err != nil {
		return fail(err)
	}
	// Before the config: one only root may read would not load either.
	if err := svc.NeedRoot(*name, "install"); err != nil {
		return fail(err)
	}
	abs, err := filepath.Abs(*cfgPath)
	if err != nil {
		return fail(err)
	}
	cfg, err := config.Load(abs)
	if errors.Is(err, fs.ErrNotExist) {
		if serviceFlagGiven(fl, "config") {
			return fail(fmt.Errorf("config file %s does not exist", abs))
		}
		return fail(fmt.Errorf("no config file %s (give one with --config)", abs))
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return fail(fmt.Errorf("%s does not load; the service would not start", abs))
	}
	if err := checkOwnership(cfg); err != nil {
		return fail(fmt.Errorf("the service would refuse to start: %w", err))
	}
	exe, err := svc.Executable()
	if err != nil {
		return fail(err)
	}
	if err := fsguard.CheckFile(exe); err != nil {
		return fail(fmt.Errorf("the service would run, as root, a binary others can change: %w", err))
	}
	run := []string{"--config", abs}
	if c.logLevel != "info" {
		run = append(run, "--log-level", c.logLevel)
	}
	if c.logFormat != "text" {
		run = append(run, "--log-format", c.logFormat)
	}
	sp := agentSpec(*name, run)
	sp.Executable = exe
	ctl, err := svc.NewControl(sp)
	if err != nil {
		return fail(err)
	}
	if err := ctl.Install(); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "%s: installed (%s), starts at boot, runs %s service run --name %s --config %s\nstart it now with: %s service start --name %s\n",
		*name, ctl.Where(), exe, *name, abs, filepath.Base(exe), *name)
	return exitOK
}

// cmdServiceAction is the command of a control action (svc.Act).
func cmdServiceAction(action string) func(args []string, stdout, stderr io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		fl := newFlags("service "+action, stdout, stderr)
		name := serviceName(fl)
		if code, ok := parse(fl, args, stdout, 0); !ok {
			return code
		}
		return svc.ActExit("mamori", *name, action, stdout, stderr, exitError)
	}
}

// cmdServiceRun runs the agent under the service manager.
func cmdServiceRun(args []string, stdout, stderr io.Writer) int {
	var c common
	fl := newFlags("service run", stdout, stderr)
	c.register(fl, true)
	name := serviceName(fl)
	if code, ok := parse(fl, args, stdout, 0); !ok {
		return code
	}
	if _, err := c.logger(io.Discard); err != nil {
		fmt.Fprintln(stderr, "mamori service run:", err)
		return exitError
	}
	// The agent says when it has started (after its first scan): until
	// then the Windows service is START_PENDING, and a config, token or
	// state folder it refuses is a failed start the service control
	// manager sees, with exit code 2.
	prg := &svc.Program{ExitCode: exitError, ReportsReady: true}
	s, err := svc.NewRunner(prg, *name)
	if err != nil {
		fmt.Fprintln(stderr, "mamori service run:", err)
		return exitError
	}
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.logLevel)) // checked by c.logger above
	log, lerr := svc.SystemLogger(s, *name, svc.LogOptions{Level: lvl, JSON: c.logFormat == "json"}, stderr)
	if lerr != nil {
		log.Warn("logging to stderr", "err", lerr)
	}
	prg.Logger = log
	// The config and the files it names are checked in the program's
	// start, not before svc.Run: on Windows the service must have
	// connected to the service control manager to report a refusal as a
	// failed start (an exit before that is only "did not respond").
	// Under systemd and SysV init the process exits 2 all the same.
	prg.Run = func(ctx context.Context) error {
		cfg, err := c.loadConfig(log)
		if err == nil {
			err = checkOwnership(cfg)
		}
		if err != nil {
			log.Error("not started", "err", err)
			fmt.Fprintln(stderr, "mamori service run:", err)
			return err
		}
		return runAgent(ctx, &c, cfg, log, io.Discard, &agent.ConsoleWarner{Logger: log}, prg.Ready)
	}
	if err := svc.Run(s, prg, *name); err != nil {
		log.Error("service ended with an error", "err", err)
		return exitError
	}
	log.Info("service stopped")
	return exitOK
}

// serviceFlagGiven says whether the flag called name was on the command
// line (fl parsed).
func serviceFlagGiven(fl *flag.FlagSet, name string) bool {
	given := false
	fl.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
