// Command mamori is the mamori endpoint agent: it watches USB devices,
// removable media, network connections and LAN devices against the
// approved lists, records a tamper-evident
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
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/mamori-agent/mamori/agent"
	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/agent/report"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/fsguard"
	"github.com/mamori-agent/mamori/internal/safe"
)

// Exit codes.
const (
	exitOK         = 0
	exitViolations = 1
	exitError      = 2
	// exitIncomplete: parts of the system could not be read and no
	// violation was found in the rest; never "all clear".
	exitIncomplete = 3
)

// command is one subcommand: its synopsis, its help and what it runs.
type command struct {
	name     string
	synopsis string
	help     string
	run      func(args []string, stdout, stderr io.Writer) int
}

// commands lists every subcommand; files of other commands (service,
// status, notify) add theirs with register in their own init.
var commands []*command

// register adds commands. Usage lists them in the order registered:
// main.go's first, then those of the other files by file name (the
// order Go runs their init functions in).
func register(cs ...*command) {
	commands = append(commands, cs...)
}

func init() {
	register([]*command{
		{"scan", "one inventory and policy pass; prints devices, volumes, networks and violations", `The network (links, default routes, LAN devices) is that of the network namespace it runs in.
Exit: 0 no violations, 1 violations, 2 error (cannot see: the sysfs root is not a sysfs,
no procfs, a bad config), 3 incomplete (parts could not be read; no violation in the rest).`, cmdScan},
		{"run", "the agent in the foreground until stopped", stopHow + `.
Refuses to start (exit 2) on a config, ledger, metrics web config, state dir or report: file
(token_file, ca_file, cert_file, key_file) that is missing or that someone other than root or
this user owns or can write, naming the file, the problem and the fix.`, cmdRun},
		{"config check", "validate a config file (and its ledgers)", `Usage: mamori config check [--config] FILE
Exit: 0 good, 2 bad (every error as FILE:LINE:COL: message).`, cmdConfigCheck},
		{"policy suggest", "approved lists for the devices, networks and LAN devices seen now and not approved yet", `USB entries and LAN devices: owner and approved_by are left empty, so they do not load until
IT has reviewed them. Networks (CIDR, gateway MAC, SSID) load as they are: review them before
merging.
--all includes devices already approved; --entries-only prints only the list items, indented
for pasting under an existing "approved: usb:" list (USB only).
Exit: 0, 2 error.`, cmdSuggest},
		{"audit verify", "check the audit log's hash chain", `Reads agent.state_dir of the config (--config, else ` + defaultConfig + `), or --state-dir.
Reports every problem found, not only the first. --from SEQ:HASH starts at a record IT has
archived the files before (rotated files wholly before it may be absent).
Exit: 0 intact, 1 broken, 2 error.`, cmdAuditVerify},
		{"version", "version, Go version, platform", "Exit: 0.", cmdVersion},
	}...)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `mamori: watches USB devices, removable media, network connections and LAN devices against the approved lists,
records a tamper-evident audit log, serves Prometheus metrics and warns the person at the PC.

Usage: mamori COMMAND [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.synopsis)
	}
	fmt.Fprint(w, `
"mamori COMMAND --help" shows a command's flags and exit codes.
Without --config, `+defaultConfig+` is used when it exists, else built-in defaults
with an empty approved list.
`)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitError
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			return run(append(args[1:], "--help"), stdout, stderr)
		}
		usage(stdout)
		return exitOK
	case "--version", "-version":
		return cmdVersion(nil, stdout, stderr)
	}
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return c.run(args[len(words):], stdout, stderr)
		}
	}
	// A group name alone ("mamori policy") lists its subcommands.
	var sub []*command
	for _, c := range commands {
		if strings.HasPrefix(c.name, args[0]+" ") {
			sub = append(sub, c)
		}
	}
	if len(sub) > 0 {
		w, code := stdout, exitOK
		if len(args) > 1 && !isHelp(args[1]) {
			fmt.Fprintf(stderr, "mamori %s: unknown subcommand %q\n\n", args[0], args[1])
			w, code = stderr, exitError
		}
		fmt.Fprintf(w, "Usage: mamori %s SUBCOMMAND [flags]\n\nSubcommands:\n", args[0])
		for _, c := range sub {
			fmt.Fprintf(w, "  %-18s %s\n", c.name, c.synopsis)
		}
		fmt.Fprintf(w, "\n'mamori %s SUBCOMMAND --help' gives a subcommand's flags and exit codes.\n", args[0])
		return code
	}
	fmt.Fprintf(stderr, "mamori: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitError
}

func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "-help" || s == "help" }

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	panic("no command " + name)
}

// newFlags makes the flag set of command name, whose --help prints the
// command's synopsis, flags and exit codes on stdout.
func newFlags(name string, stdout, stderr io.Writer) *flag.FlagSet {
	c := lookup(name)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: mamori %s [flags]\n\n%s.\n\nFlags:\n", c.name, upperFirst(c.synopsis))
		fs.PrintDefaults()
		fmt.Fprintf(w, "\n%s\n", c.help)
	}
	return fs
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parse parses args; ok false means exit with code.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer, positional int) (code int, ok bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if isHelp(a) && a != "help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK, false
		}
	}
	if err := fs.Parse(args); err != nil {
		return exitError, false
	}
	if fs.NArg() > positional {
		fmt.Fprintf(fs.Output(), "mamori %s: unexpected argument %q (see mamori %s --help)\n", fs.Name(), fs.Arg(positional), fs.Name())
		return exitError, false
	}
	return 0, true
}

// common holds the flags most commands share.
type common struct {
	config    string
	sysfs     string
	procfs    string
	dev       string
	rundir    string // run: where /run/user and utmp are read ("": /run)
	logFormat string
	logLevel  string
}

func (c *common) register(fs *flag.FlagSet, roots bool) {
	fs.StringVar(&c.config, "config", "", "config `file` (default "+defaultConfig+" when it exists)")
	if roots && hasFSRoots {
		fs.StringVar(&c.sysfs, "sysfs", "/sys", "sysfs mount point (`dir`)")
		fs.StringVar(&c.procfs, "procfs", "/proc", "procfs mount point (`dir`)")
		fs.StringVar(&c.dev, "devfs", "/dev", "device node directory (`dir`)")
	}
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

func (c *common) roots() agent.Roots {
	return agent.Roots{Sysfs: c.sysfs, Procfs: c.procfs, Dev: c.dev}
}

// desktop is where the agent finds desktop sessions: RUNDIR/user and
// RUNDIR/utmp with --rundir, the agent's defaults without.
func (c *common) desktop() agent.DesktopOptions {
	if c.rundir == "" {
		return agent.DesktopOptions{}
	}
	return agent.DesktopOptions{RunUserDir: filepath.Join(c.rundir, "user"), Utmp: filepath.Join(c.rundir, "utmp")}
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

// warner shows each violation once: on the terminal in both languages
// with text logs, in the log only (which carries the same messages) with
// JSON logs, so that the stream stays machine-readable.
func (c *common) warner(stderr io.Writer, log *slog.Logger) agent.Warner {
	if c.logFormat == "json" {
		return &agent.ConsoleWarner{Logger: log}
	}
	return &agent.ConsoleWarner{W: stderr}
}

// configPath is --config, or the default file when it exists ("" for the
// built-in defaults).
func (c *common) configPath(log *slog.Logger) string {
	if c.config != "" {
		return c.config
	}
	if _, err := os.Stat(defaultConfig); errors.Is(err, fs.ErrNotExist) {
		if log != nil {
			log.Warn("no config file; using defaults with an empty approved list", "looked_for", defaultConfig)
		}
		return ""
	}
	return defaultConfig
}

// loadConfig loads --config, or the default file when it exists, or the
// built-in defaults (nothing approved) when it does not.
func (c *common) loadConfig(log *slog.Logger) (*config.Config, error) {
	path := c.configPath(log)
	if path == "" {
		return config.Default(), nil
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

// checkOwnership refuses the files that decide what the agent approves
// and whom it talks to (the config and its ledgers, the metrics web
// config, the hub token and the TLS CA, certificate and key of report:)
// when someone other than root or this user owns or can write them, or
// when they are missing: whoever can write them decides what the agent
// approves, or where its reports and its token go. The hub token and the
// TLS key are secrets, checked by report.CheckFiles as the reporter takes
// them: also refused when group or others can read them, and a token
// file that is empty or does not hold one token, so that the agent never
// starts with its reporting off (the hub would never hear of its
// violations). Every error names the file (and its config key), the
// problem and the fix.
func checkOwnership(cfg *config.Config) error {
	type file struct{ key, path string }
	var files []file
	for _, f := range cfg.Files {
		files = append(files, file{"", f})
	}
	r := cfg.Report
	for _, f := range []file{{"metrics.web_config_file", cfg.Metrics.WebConfigFile},
		{"report.ca_file", r.CAFile}, {"report.cert_file", r.CertFile}} {
		if f.path != "" {
			files = append(files, f)
		}
	}
	var errs []error
	for _, f := range files {
		if err := fsguard.CheckFile(f.path); err != nil {
			if f.key != "" {
				err = fmt.Errorf("%s: %w", f.key, err)
			}
			errs = append(errs, err)
		}
	}
	if err := report.CheckFiles(r); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	if args != nil {
		fs := newFlags("version", stdout, stderr)
		if code, ok := parse(fs, args, stdout, 0); !ok {
			return code
		}
	}
	fmt.Fprintf(stdout, "mamori %s (%s, %s/%s)\n", agent.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

func cmdScan(args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlags("scan", stdout, stderr)
	c.register(fs, true)
	format := fs.String("format", "table", "output format: table or json")
	if code, ok := parse(fs, args, stdout, 0); !ok {
		return code
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
		fmt.Fprintln(stderr, "mamori scan:", safe.String(err.Error()))
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
	switch {
	case len(rep.Violations) > 0:
		return exitViolations
	case rep.Incomplete():
		return exitIncomplete
	}
	return exitOK
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlags("run", stdout, stderr)
	c.register(fs, true)
	if hasFSRoots {
		fs.StringVar(&c.rundir, "rundir", "/run", "run-time `dir`ectory: the desktop sessions the agent warns are found in its user/UID/bus and utmp")
	}
	stateDir := fs.String("state-dir", "", "state `dir`ectory (overrides agent.state_dir)")
	if code, ok := parse(fs, args, stdout, 0); !ok {
		return code
	}
	log, cfg, ok := c.setup("run", stderr)
	if !ok {
		return exitError
	}
	if err := checkOwnership(cfg); err != nil {
		fmt.Fprintln(stderr, "mamori run:", err)
		return exitError
	}
	if *stateDir != "" {
		cfg.Agent.StateDir = *stateDir
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runAgent(ctx, &c, cfg, log, stdout, c.warner(stderr, log), nil); err != nil {
		fmt.Fprintln(stderr, "mamori run:", err)
		return exitError
	}
	return exitOK
}

// runAgent runs the agent on cfg until ctx is done, reloading the config
// on SIGHUP. It is what `mamori run` and the service (`mamori service
// run`) share: whatever runs beside the agent belongs here. stdout gets
// the line saying that it runs (io.Discard under the service manager).
// It returns an error when the agent cannot start. ready, when not nil,
// is called once the agent has started (its first scan done): the
// service's Program.Ready.
func runAgent(ctx context.Context, c *common, cfg *config.Config, log *slog.Logger, stdout io.Writer, warner agent.Warner, ready func()) error {
	// Loading a large approved list leaves garbage behind; give it back
	// before the agent settles (a one-time cost).
	debug.FreeOSMemory()
	var a *agent.Agent
	a, err := agent.New(agent.Options{
		Config: cfg, Roots: c.roots(), Logger: log, Desktop: c.desktop(),
		Warner: warner,
		Ready: func(url string) {
			// The first scan and the replay of the audit log leave
			// garbage too: give it back once the agent has settled.
			debug.FreeOSMemory()
			if ready != nil {
				ready()
			}
			// agent.state_dir, or the alternate folder beside it.
			dir := a.StateDir()
			if url == "" {
				log.Info("mamori running; metrics not served", "state_dir", dir)
				fmt.Fprintf(stdout, "mamori %s running: audit log in %s, metrics not served (Ctrl-C stops)\n", agent.Version, dir)
				return
			}
			log.Info("mamori running", "metrics", url, "state_dir", dir)
			fmt.Fprintf(stdout, "mamori %s running: metrics at %s, audit log in %s (Ctrl-C stops)\n", agent.Version, url, dir)
		},
	})
	if err != nil {
		return err
	}
	go reloadOnHangup(ctx, a, c, log)
	return a.Run(ctx)
}

func cmdConfigCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("config check", stdout, stderr)
	path := fs.String("config", "", "config `file` to check (or give it as the argument)")
	if code, ok := parse(fs, args, stdout, 1); !ok {
		return code
	}
	if fs.NArg() == 1 {
		if *path != "" {
			fmt.Fprintln(stderr, "mamori config check: give the file either as --config or as the argument, not both")
			return exitError
		}
		*path = fs.Arg(0)
	}
	if *path == "" {
		fmt.Fprintln(stderr, "mamori config check: which file? mamori config check FILE")
		return exitError
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	if err := checkOwnership(cfg); err != nil {
		fmt.Fprintf(stderr, "%s: mamori run refuses it: %v\n", *path, err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: ok (version %d, %d approved USB entries, %d approved networks, %d registered LAN devices)\n",
		*path, cfg.Version, len(cfg.Approved.USB), len(cfg.Approved.Networks), len(cfg.Approved.LANDevices))
	return exitOK
}

func cmdSuggest(args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlags("policy suggest", stdout, stderr)
	c.register(fs, true)
	all := fs.Bool("all", false, "include devices the config already approves")
	entriesOnly := fs.Bool("entries-only", false, "print only the list items, for pasting under an existing approved.usb list")
	if code, ok := parse(fs, args, stdout, 0); !ok {
		return code
	}
	if *all && *entriesOnly {
		fmt.Fprintln(stderr, "mamori policy suggest: --entries-only is for merging into the config, so it leaves out what the config approves: drop --all")
		return exitError
	}
	log, cfg, ok := c.setup("policy suggest", stderr)
	if !ok {
		return exitError
	}
	out, err := agent.SuggestFromSystem(agent.SuggestOptions{ScanOptions: agent.ScanOptions{Config: cfg, Roots: c.roots(), Logger: log},
		All: *all, EntriesOnly: *entriesOnly})
	if out == nil {
		fmt.Fprintln(stderr, "mamori policy suggest:", safe.String(err.Error()))
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
	fs := newFlags("audit verify", stdout, stderr)
	c.register(fs, false)
	dir := fs.String("state-dir", "", "state `dir`ectory holding audit.jsonl (default: agent.state_dir of the config)")
	from := fs.String("from", "", "verify from an archived record, `SEQ:HASH` (files wholly before it may be absent)")
	if code, ok := parse(fs, args, stdout, 0); !ok {
		return code
	}
	if *dir == "" {
		_, cfg, ok := c.setup("audit verify", stderr)
		if !ok {
			return exitError
		}
		// On Windows the agent records in an alternate folder beside
		// agent.state_dir while that one is squatted and held.
		st, err := fsguard.FindState(cfg.Agent.StateDir)
		if err != nil {
			fmt.Fprintln(stderr, "mamori audit verify:", err)
			return exitError
		}
		for _, f := range st.Findings {
			fmt.Fprintln(stderr, "mamori audit verify: note: agent.state_dir", f)
		}
		*dir = st.Path
	}
	var opts audit.VerifyOptions
	if *from != "" {
		a, err := audit.ParseAnchor(*from)
		if err != nil {
			fmt.Fprintln(stderr, "mamori audit verify: --from:", err)
			return exitError
		}
		opts.From = &a
	}
	rep, err := audit.VerifyWith(*dir, opts)
	if err != nil {
		fmt.Fprintln(stderr, "mamori audit verify:", err)
		return exitError
	}
	if len(rep.Problems) > 0 {
		for _, p := range rep.Problems {
			where := p.File
			if p.Line > 0 {
				where += fmt.Sprintf(" line %d", p.Line)
			}
			fmt.Fprintf(stdout, "BROKEN: %s (seq %d): %s\n", where, p.Seq, safe.String(p.Reason))
		}
		if rep.MoreProblems > 0 {
			fmt.Fprintf(stdout, "... and %d more problems\n", rep.MoreProblems)
		}
		fmt.Fprintf(stdout, "%d records in %d files read, %d intact before the first problem, %d problems\n", rep.Read, rep.Files, rep.Records, len(rep.Problems)+rep.MoreProblems)
		return exitViolations
	}
	fmt.Fprintf(stdout, "ok: %d records in %d files in %s, chain intact, last seq %d, last hash %s\n", rep.Records, rep.Files, *dir, rep.LastSeq, rep.LastHash)
	return exitOK
}
