// Command mamori-hub is the central endpoint mamori agents report to: it
// stores their events and violations once each, tells silent agents from
// stopped ones, raises audit_chain_broken, serves the approved lists and
// answers security staff. This file only parses flags and calls into
// package hub; the store is opened here (package sqlstore).
//
// The commands that change tokens and lists work on the database while
// serve runs, and take effect at once (the hub keeps nothing in memory).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/mamori-agent/mamori/hub"
	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/hub/store/sqlstore"
	"github.com/mamori-agent/mamori/internal/fsguard"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const defaultConfig = "/etc/mamori-hub/hub.yaml"

// maxNameLen is the longest agent or staff name.
const maxNameLen = 128

const usageText = `mamori-hub: the central endpoint mamori agents report violations to.

Usage:
  mamori-hub serve --config FILE               serve the API until SIGINT/SIGTERM
  mamori-hub agent add NAME --config FILE      add a PC; prints its token alone on one line
  mamori-hub agent revoke NAME --config FILE   revoke a PC's token (its records stay)
  mamori-hub agent rotate NAME --config FILE   a new token for a PC, alone on one line; the old one stops working
                                               (put it in the PC's report.token_file: the agent takes it without a restart)
  mamori-hub admin token [NAME] --config FILE  print a new staff token (NAME: admin); replaces NAME's old one
  mamori-hub policy set FILE --config FILE [--by WHO]
                                               set the approved lists (YAML of the approved: section)
  mamori-hub policy get --config FILE          print the approved lists in force
  mamori-hub version                           the hub's version
  mamori-hub service install --config FILE [--name NAME]
                                               install serve as a system service (starts at boot)
  mamori-hub service uninstall|start|stop|restart|status [--name NAME]
                                               control that service ("mamori-hub service" tells more)

--config defaults to ` + defaultConfig + `. Tokens are stored as their SHA-256 only:
a token printed once cannot be shown again. serve refuses (exit 1) a config, TLS
certificate or key, or SQLite database (or its directory) that someone other than
root or this user owns or can write. Exit: 0 done, 1 error, 2 usage.
`

// version is the hub's version, set at build time (-ldflags -X
// main.version=...).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs one command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "service":
		return cmdService(rest, stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "mamori-hub %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	}
	if (cmd == "agent" || cmd == "admin" || cmd == "policy") && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		cmd, rest = cmd+" "+rest[0], rest[1:]
	} else if cmd == "agent" || cmd == "admin" || cmd == "policy" {
		// A group alone lists its commands.
		w, code := stdout, exitOK
		if len(rest) > 0 && !isHelp(rest[0]) {
			w, code = stderr, exitUsage
		}
		fmt.Fprintf(w, "Usage: mamori-hub %s SUBCOMMAND [flags]\n\nSubcommands:\n", cmd)
		for line := range strings.Lines(usageText) {
			if strings.HasPrefix(line, "  mamori-hub "+cmd+" ") {
				fmt.Fprint(w, line)
			}
		}
		return code
	}
	fl := flag.NewFlagSet("mamori-hub "+cmd, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		// --help asked for it: the usage on stdout (a wrong flag gets
		// the flag package's error on stderr first).
		fmt.Fprint(stdout, usageText)
	}
	configPath := fl.String("config", defaultConfig, "the hub's config file")
	by := fl.String("by", "", "policy set: who makes the change (default: the user running it)")
	pos, err := parseInterleaved(fl, rest)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	want := map[string][2]int{ // command: min, max positional arguments
		"serve": {0, 0}, "agent add": {1, 1}, "agent revoke": {1, 1}, "agent rotate": {1, 1}, "admin token": {0, 1},
		"policy set": {1, 1}, "policy get": {0, 0},
	}
	n, ok := want[cmd]
	if !ok {
		fmt.Fprintf(stderr, "mamori-hub: unknown command %q\n\n%s", cmd, usageText)
		return exitUsage
	}
	if len(pos) < n[0] || len(pos) > n[1] {
		fmt.Fprintf(stderr, "mamori-hub %s: wrong number of arguments\n\n%s", cmd, usageText)
		return exitUsage
	}
	cfg, err := hub.LoadConfig(*configPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "mamori-hub: no config file %s (give one with --config)\n", *configPath)
		} else {
			fmt.Fprintf(stderr, "mamori-hub: %v\n", err)
		}
		return exitError
	}
	// policy set checks its file before touching the database.
	var approved []byte
	if cmd == "policy set" {
		if approved, err = readApproved(pos[0]); err != nil {
			fmt.Fprintf(stderr, "mamori-hub: %v\n", err)
			return exitError
		}
	}
	if len(pos) == 1 && (cmd == "agent add" || cmd == "agent revoke" || cmd == "agent rotate" || cmd == "admin token") {
		if err := checkName(pos[0]); err != nil {
			fmt.Fprintf(stderr, "mamori-hub %s: %v\n", cmd, err)
			return exitUsage
		}
	}
	// Every command that opens the database refuses a config others can
	// write: whoever can would choose the database the command writes
	// tokens and lists to.
	if err := checkOwnership(cfg); err != nil {
		fmt.Fprintf(stderr, "mamori-hub %s: %v\n", cmd, err)
		return exitError
	}
	if cmd == "serve" {
		if err := serveHub(ctx, cfg, slog.New(slog.NewTextHandler(stderr, nil)), nil); err != nil {
			fmt.Fprintf(stderr, "mamori-hub: %v\n", err)
			return exitError
		}
		return exitOK
	}
	st, err := sqlstore.Open(ctx, cfg.Database)
	if err != nil {
		fmt.Fprintf(stderr, "mamori-hub: %v\n", err)
		return exitError
	}
	defer st.Close()
	now := time.Now()
	switch cmd {
	case "agent add":
		tok := store.NewToken()
		if err = st.CreateAgent(ctx, pos[0], store.HashToken(tok), now); err == nil {
			fmt.Fprintln(stdout, tok)
		} else if errors.Is(err, store.ErrExists) {
			err = fmt.Errorf("agent %q exists already (a revoked agent keeps its name and records; choose another name)", pos[0])
		}
	case "agent revoke":
		err = st.RevokeAgent(ctx, pos[0])
	case "agent rotate":
		tok := store.NewToken()
		if err = st.RotateAgent(ctx, pos[0], store.HashToken(tok)); err == nil {
			fmt.Fprintln(stdout, tok)
		} else if errors.Is(err, store.ErrRevoked) {
			err = fmt.Errorf("agent %q is revoked; add the PC again under another name", pos[0])
		}
	case "admin token":
		name := "admin"
		if len(pos) == 1 {
			name = pos[0]
		}
		tok := store.NewToken()
		if err = st.SetStaffToken(ctx, name, store.HashToken(tok), now); err == nil {
			fmt.Fprintln(stdout, tok)
		}
	case "policy set":
		who := *by
		if who == "" {
			who = currentUser()
		}
		// The same lists again make no new version: every agent would
		// record a policy_changed that changes nothing.
		cur, cerr := st.Policy(ctx)
		if cerr == nil && cur.Approved == string(approved) {
			fmt.Fprintf(stderr, "mamori-hub: the approved lists are unchanged: version %d (set %s by %s) stays in force\n",
				cur.Version, cur.Changed.Format(time.RFC3339), cur.ChangedBy)
			break
		}
		var p store.Policy
		if p, err = st.SetPolicy(ctx, string(approved), who, now); err == nil {
			fmt.Fprintf(stderr, "mamori-hub: approved lists version %d set by %s (sha256 %s)\n", p.Version, p.ChangedBy, p.Digest)
		}
	case "policy get":
		var p store.Policy
		p, err = st.Policy(ctx)
		if errors.Is(err, store.ErrNotFound) {
			err = errors.New("no approved lists were set (mamori-hub policy set FILE)")
		} else if err == nil {
			fmt.Fprintf(stderr, "# version %d, set %s by %s, sha256 %s\n", p.Version, p.Changed.Format(time.RFC3339), p.ChangedBy, p.Digest)
			io.WriteString(stdout, p.Approved)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "mamori-hub %s: %v\n", cmd, err)
		return exitError
	}
	return exitOK
}

// serveHub opens the store and serves cfg until ctx ends. It is what
// serve and the service (service run) share. ready, when not nil, is
// called once the store is open and the hub listens on cfg.Listen (the
// service's start is done then: the Windows service is RUNNING from
// then on); an error before that is a failed start.
func serveHub(ctx context.Context, cfg *hub.Config, logger *slog.Logger, ready func()) error {
	st, err := sqlstore.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close() // Serve closes it too, but not when it fails first
	// SIGHUP would end the process (Go's default): the hub has nothing
	// to reload, so it says so and goes on.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			logger.Warn("SIGHUP: mamori-hub has nothing to reload; restart it to apply a changed config (agents, tokens and policy take effect at once)")
		}
	}()
	logger.Info("starting", "version", version, "config", cfg.File, "database", redactDSN(cfg.Database), "retention", cfg.Retention.String())
	if ready != nil {
		ready()
	}
	err = hub.New(cfg, st, logger).Serve(ctx, ln)
	logger.Info("stopped", "err", err)
	return err
}

// redactDSN leaves a password out of a database URL shown in the log.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "@"); i >= 0 {
		if j := strings.Index(dsn, "://"); j >= 0 && j < i {
			return dsn[:j+3] + "…" + dsn[i:]
		}
	}
	return dsn
}

// checkOwnership refuses the files serve trusts (the config, the TLS
// certificate and key, and a SQLite database with its directory, where
// they exist) when someone other than root or this user owns or can
// write them: whoever can write them can impersonate the hub to the
// agents or rewrite what the agents reported. Every error names the
// file, the problem and the fix.
func checkOwnership(cfg *hub.Config) error {
	var errs []error
	check := func(key, path string, dir bool) {
		f := fsguard.CheckFile
		if dir {
			f = fsguard.CheckDir
		}
		if err := f(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	if cfg.File != "" {
		check("config", cfg.File, false)
	}
	if cfg.TLS.CertFile != "" {
		check("tls.cert_file", cfg.TLS.CertFile, false)
	}
	if cfg.TLS.KeyFile != "" {
		check("tls.key_file", cfg.TLS.KeyFile, false)
	}
	if p, ok := strings.CutPrefix(cfg.Database, "sqlite://"); ok && p != "" {
		if abs, err := filepath.Abs(p); err == nil {
			if _, err := os.Stat(filepath.Dir(abs)); err == nil {
				check("database (its directory)", filepath.Dir(abs), true)
			}
			if _, err := os.Stat(abs); err == nil {
				check("database", abs, false)
			}
		}
	}
	return errors.Join(errs...)
}

// parseInterleaved parses flags given before, between or after the
// positional arguments ("agent add NAME --config F"), and returns the
// positional ones.
func parseInterleaved(fl *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			return nil, err
		}
		args = fl.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// checkName checks an agent or staff name: printable, no spaces, at most
// maxNameLen bytes.
func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("a name has 1 to %d bytes", maxNameLen)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == '\uFFFD' {
			return fmt.Errorf("name %q: no spaces or control characters", name)
		}
	}
	return nil
}

// readApproved reads and checks an approved-lists file.
func readApproved(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > hub.MaxApprovedSize {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", path, hub.MaxApprovedSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := hub.CheckApproved(path, data); err != nil {
		return nil, err
	}
	return data, nil
}

// currentUser names who runs the command, for the policy's history: the
// user sudo was run by, else this process's user.
func currentUser() string {
	if s := os.Getenv("SUDO_USER"); s != "" {
		return s
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}
