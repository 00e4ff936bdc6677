// Command mamori is the mamori endpoint agent: it watches USB devices and
// removable media against the approved lists, records a tamper-evident
// audit log and serves Prometheus metrics. This file only parses flags and
// calls into package agent.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/mamori-agent/mamori/agent"
	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/safe"
)

// Exit codes.
const (
	exitOK         = 0
	exitViolations = 1
	exitError      = 2
)

const defaultConfig = "/etc/mamori/mamori.yaml"

const usage = `mamori: watches USB devices and removable media against the approved lists.

Usage:
  mamori scan    [--config F] [--sysfs D] [--procfs D] [--format table|json]
  mamori run     [--config F] [--sysfs D] [--procfs D] [--log-format text|json]
  mamori config check --config F
  mamori policy suggest [--config F] [--sysfs D]
  mamori audit verify [--state-dir D | --config F]
  mamori version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "scan":
		return cmdScan(rest, stdout, stderr)
	case "run":
		return cmdRun(rest, stdout, stderr)
	case "config":
		if len(rest) > 0 && rest[0] == "check" {
			return cmdConfigCheck(rest[1:], stdout, stderr)
		}
	case "policy":
		if len(rest) > 0 && rest[0] == "suggest" {
			return cmdSuggest(rest[1:], stdout, stderr)
		}
	case "audit":
		if len(rest) > 0 && rest[0] == "verify" {
			return cmdAuditVerify(rest[1:], stdout, stderr)
		}
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "mamori %s (%s, %s/%s)\n", agent.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "mamori: unknown command %q\n\n%s", strings.Join(args[:min(2, len(args))], " "), usage)
	return exitError
}

// common holds the flags most commands share.
type common struct {
	config    string
	sysfs     string
	procfs    string
	dev       string
	logFormat string
	logLevel  string
}

func (c *common) register(fs *flag.FlagSet, roots bool) {
	fs.StringVar(&c.config, "config", "", "config file (default "+defaultConfig+" when it exists)")
	if roots {
		fs.StringVar(&c.sysfs, "sysfs", "/sys", "sysfs mount point")
		fs.StringVar(&c.procfs, "procfs", "/proc", "procfs mount point")
		fs.StringVar(&c.dev, "devfs", "/dev", "device node directory")
	}
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

func (c *common) roots() agent.Roots {
	return agent.Roots{Sysfs: c.sysfs, Procfs: c.procfs, Dev: c.dev}
}

func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", c.logFormat)
}

// warner shows violations on the terminal in both languages; with JSON
// logs (a service, a pipeline) they go to the log only, which carries the
// same messages, so that the stream stays machine-readable.
func (c *common) warner(stderr io.Writer, log *slog.Logger) agent.Warner {
	if c.logFormat == "json" {
		return &agent.ConsoleWarner{Logger: log}
	}
	return &agent.ConsoleWarner{W: stderr, Logger: log}
}

// loadConfig loads --config, or the default file when it exists, or the
// built-in defaults (nothing approved) when it does not.
func (c *common) loadConfig(log *slog.Logger) (*config.Config, error) {
	path := c.config
	if path == "" {
		cfg, err := config.Load(defaultConfig)
		if errors.Is(err, fs.ErrNotExist) {
			log.Warn("no config file; using defaults with an empty approved list", "looked_for", defaultConfig)
			return config.Default(), nil
		}
		return cfg, err
	}
	return config.Load(path)
}

// setup makes the logger and loads the config, reporting a failure as
// "mamori NAME: error" on stderr.
func (c *common) setup(name string, stderr io.Writer) (*slog.Logger, *config.Config, bool) {
	log, err := c.logger(stderr)
	if err == nil {
		var cfg *config.Config
		if cfg, err = c.loadConfig(log); err == nil {
			return log, cfg, true
		}
	}
	fmt.Fprintf(stderr, "mamori %s: %v\n", name, err)
	return nil, nil, false
}

func parse(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mamori %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false
	}
	return true
}

func cmdScan(args []string, stdout, stderr io.Writer) int {
	var c common
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	c.register(fs, true)
	format := fs.String("format", "table", "output format: table or json")
	if !parse(fs, args, stderr) {
		return exitError
	}
	if *format != "table" && *format != "json" {
		fmt.Fprintf(stderr, "mamori scan: --format %q is neither table nor json\n", *format)
		return exitError
	}
	log, cfg, ok := c.setup("scan", stderr)
	if !ok {
		return exitError
	}
	rep, err := agent.Scan(agent.ScanOptions{Config: cfg, Roots: c.roots(), Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "mamori scan:", err)
		return exitError
	}
	for _, e := range rep.Errors {
		log.Warn("scan incomplete", "err", safe.String(e))
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "mamori scan:", err)
			return exitError
		}
	} else {
		writeTable(stdout, rep, cfg.Agent.Language)
	}
	if len(rep.Violations) > 0 {
		return exitViolations
	}
	return exitOK
}

func writeTable(w io.Writer, rep *agent.Report, lang string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tID\tSERIAL\tCLASSES\tSTORAGE\tAPPROVED\tENTRY\tDEVICE")
	for _, d := range rep.Devices {
		serial := "-"
		if d.Serial != nil {
			serial = *d.Serial
		}
		entry := "-"
		if d.Entry != nil {
			entry = *d.Entry
		}
		fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s\t%v\t%v\t%s\t%s\n", d.Path, d.VendorID, d.ProductID, serial,
			strings.Join(d.ClassNames(), ","), d.Storage, d.Approved, entry, agent.Describe(&d.Device))
	}
	tw.Flush()
	if len(rep.Volumes) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VOLUME\tMOUNT POINT\tFS\tSIZE\tRO\tENCRYPTED\tUSB")
		for _, v := range rep.Volumes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%v\t%v\t%s\n", v.Device, v.MountPoint, v.FSType, v.Size, v.ReadOnly, v.Encrypted, v.USBDevice)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	if len(rep.Violations) == 0 {
		fmt.Fprintln(w, "No violations. 違反はありません。")
		return
	}
	fmt.Fprintf(w, "%d violation(s) / 違反 %d 件:\n", len(rep.Violations), len(rep.Violations))
	for _, v := range rep.Violations {
		msg, remedy := v.MessageJA, v.RemedyJA
		if lang == "en" {
			msg, remedy = v.MessageEN, v.RemedyEN
		}
		fmt.Fprintf(w, "- [%s] %s (article %s, device %s)\n    %s\n    → %s\n", v.Severity, v.Kind, v.Article, v.Device, msg, remedy)
	}
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	var c common
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	c.register(fs, true)
	stateDir := fs.String("state-dir", "", "state directory (overrides agent.state_dir)")
	if !parse(fs, args, stderr) {
		return exitError
	}
	log, cfg, ok := c.setup("run", stderr)
	if !ok {
		return exitError
	}
	if *stateDir != "" {
		cfg.Agent.StateDir = *stateDir
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := agent.New(agent.Options{
		Config: cfg, Roots: c.roots(), Logger: log,
		Warner: c.warner(stderr, log),
		Ready: func(url string) {
			if url == "" {
				log.Info("mamori running; metrics off", "state_dir", cfg.Agent.StateDir)
				return
			}
			log.Info("mamori running", "metrics", url, "state_dir", cfg.Agent.StateDir)
			fmt.Fprintf(stdout, "mamori %s running: metrics at %s, audit log in %s (Ctrl-C stops)\n", agent.Version, url, cfg.Agent.StateDir)
		},
	})
	if err != nil {
		fmt.Fprintln(stderr, "mamori run:", err)
		return exitError
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "mamori run:", err)
		return exitError
	}
	return exitOK
}

func cmdConfigCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	path := fs.String("config", "", "config file to check")
	if !parse(fs, args, stderr) {
		return exitError
	}
	if *path == "" {
		fmt.Fprintln(stderr, "mamori config check: --config is required")
		return exitError
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: ok (version %d, %d approved USB entries)\n", *path, cfg.Version, len(cfg.Approved.USB))
	return exitOK
}

func cmdSuggest(args []string, stdout, stderr io.Writer) int {
	var c common
	fs := flag.NewFlagSet("policy suggest", flag.ContinueOnError)
	c.register(fs, true)
	if !parse(fs, args, stderr) {
		return exitError
	}
	log, cfg, ok := c.setup("policy suggest", stderr)
	if !ok {
		return exitError
	}
	out, err := agent.SuggestFromSystem(agent.SuggestOptions{Config: cfg, Roots: c.roots(), Logger: log})
	if out == nil {
		fmt.Fprintln(stderr, "mamori policy suggest:", err)
		return exitError
	}
	if err != nil {
		log.Warn("some devices could not be read", "err", safe.String(err.Error()))
	}
	stdout.Write(out)
	return exitOK
}

func cmdAuditVerify(args []string, stdout, stderr io.Writer) int {
	var c common
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	c.register(fs, false)
	dir := fs.String("state-dir", "", "state directory holding audit.jsonl (default: agent.state_dir of the config)")
	if !parse(fs, args, stderr) {
		return exitError
	}
	if *dir == "" {
		_, cfg, ok := c.setup("audit verify", stderr)
		if !ok {
			return exitError
		}
		*dir = cfg.Agent.StateDir
	}
	rep, err := audit.Verify(*dir)
	if err != nil {
		fmt.Fprintln(stderr, "mamori audit verify:", err)
		return exitError
	}
	if p := rep.Problem; p != nil {
		fmt.Fprintf(stdout, "BROKEN: %s line %d (seq %d): %s\n", p.File, p.Line, p.Seq, p.Reason)
		fmt.Fprintf(stdout, "%d records in %d files verified before it\n", rep.Records, rep.Files)
		return exitViolations
	}
	fmt.Fprintf(stdout, "ok: %d records in %d files, chain intact, last seq %d, last hash %s\n", rep.Records, rep.Files, rep.LastSeq, rep.LastHash)
	return exitOK
}
