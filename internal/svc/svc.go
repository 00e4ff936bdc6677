// Package svc is the service glue both binaries share, on top of
// github.com/kardianos/service: what the service manager is told to run
// (Spec), the program it runs (Program: Start does not block, Stop cancels
// and waits), control (install, uninstall, start, stop, restart, status)
// with answers a person can act on, and a slog handler that writes to the
// system log (syslog on Unix, the Event Log on Windows).
//
// The service manager is the one kardianos picks: systemd where it runs
// as PID 1, the SysV fallback (/etc/init.d and rc links) elsewhere on
// Linux, the service control manager on Windows. The unit and the init
// script are this package's own templates (SystemdScript, SysvScript):
// restart whenever it ends (not only on failure) after 5 s instead of the
// library's on failure after 120 s, SIGHUP for
// reload where the program reloads, and an init script that starts,
// stops and checks the daemon with start-stop-daemon(8).
//
// The packages (.deb, .rpm) ship their own hardened units; what is here
// is what "mamori service install" writes on a machine without them.
package svc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kardianos/service"
)

// RestartSec is how long the service manager waits before it starts the
// service again (systemd RestartSec= after any end but systemctl stop,
// the Windows recovery action's delay after a failure), in seconds.
const RestartSec = 5

// Spec is what the service manager knows a service by and what it runs.
type Spec struct {
	// Name is the service's name: /etc/init.d/NAME, NAME.service, the
	// Windows service name, the syslog tag. See CheckName.
	Name string
	// DisplayName and Description are shown by the service manager.
	DisplayName string
	Description string
	// Executable is the absolute path of the binary the service runs;
	// "" means this process's own (os.Executable, symlinks resolved).
	Executable string
	// Arguments follow the executable on the installed command line,
	// e.g. service run --config /etc/mamori/mamori.yaml. See CheckArg.
	Arguments []string
	// ReloadOnHUP says the program reloads its config on SIGHUP: the unit
	// gets ExecReload=, the init script a reload action. Without it
	// SIGHUP would end a Go program.
	ReloadOnHUP bool
	// Dependencies are lines for the systemd unit's [Unit] section, such
	// as "After=network-online.target".
	Dependencies []string
	// DelayedAutoStart starts the Windows service after the automatic
	// ones at boot (for a server that needs the network); the agent
	// leaves it false to watch from the start.
	DelayedAutoStart bool
}

// CheckName accepts a service name of 1 to 64 letters, digits, '_', '.'
// and '-', starting with a letter or digit: a file name in /etc/init.d,
// a systemd unit name and a Windows service name alike.
func CheckName(name string) error {
	if !validName(name) {
		return fmt.Errorf("service name %q: want 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", name)
	}
	return nil
}

// CheckArg accepts an argument (or executable path) for the installed
// command line. The SysV init script and the systemd unit hold it inside
// double quotes, where a shell expands $, ` and \ and systemd expands $
// and %: such characters, quotes, whitespace and control characters are
// refused rather than escaped. On Windows, where the service manager
// stores the arguments as given, only quotes and control characters are
// refused (paths there hold spaces and backslashes).
func CheckArg(s string) error {
	if s == "" {
		return errors.New("empty argument")
	}
	bad := "\"'`$\\%!*?[]{}<>|&;()#~ \t"
	if runtime.GOOS == "windows" {
		bad = "\"%"
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(bad, r) {
			return fmt.Errorf("%q: the service's command line cannot hold %q (move the file to a path without it)", s, r)
		}
	}
	return nil
}

// Executable returns the absolute path of this process's binary with
// symlinks resolved.
func Executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program's binary: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return exe, nil
}

// Config returns the kardianos config of sp: the name, the command line,
// this package's unit and init script templates and the restart policy
// for every platform. It checks the name, the executable and the
// arguments (CheckName, CheckArg).
func (sp Spec) Config() (*service.Config, error) {
	if err := CheckName(sp.Name); err != nil {
		return nil, err
	}
	for _, t := range []string{sp.DisplayName, sp.Description} {
		// Both go into comments of the init script and lines of the unit.
		if strings.ContainsFunc(t, func(r rune) bool { return r < 0x20 || r == 0x7f }) || strings.ContainsAny(t, "{}%") {
			return nil, fmt.Errorf("service %s: display name or description %q holds a control character, a brace or %%", sp.Name, t)
		}
	}
	exe := sp.Executable
	if exe == "" {
		var err error
		if exe, err = Executable(); err != nil {
			return nil, err
		}
	}
	if !filepath.IsAbs(exe) {
		return nil, fmt.Errorf("executable %q: not an absolute path", exe)
	}
	if err := CheckArg(exe); err != nil {
		return nil, fmt.Errorf("executable: %w", err)
	}
	for _, a := range sp.Arguments {
		if err := CheckArg(a); err != nil {
			return nil, fmt.Errorf("argument: %w", err)
		}
	}
	reload := ""
	if sp.ReloadOnHUP {
		reload = "HUP"
	}
	return &service.Config{
		Name:         sp.Name,
		DisplayName:  sp.DisplayName,
		Description:  sp.Description,
		Executable:   exe,
		Arguments:    append([]string(nil), sp.Arguments...),
		Dependencies: append([]string(nil), sp.Dependencies...),
		Option: service.KeyValue{
			// systemd (our unit; the library's has RestartSec=120).
			"SystemdScript": systemdUnit,
			"Restart":       "always",
			"ReloadSignal":  reload,
			// SysV (our script: start-stop-daemon, LSB status codes).
			"SysvScript": sysvScript(sp.Name, exe, sp.ReloadOnHUP),
			// Windows: LocalSystem (no UserName), automatic start,
			// restarted RestartSec after every failure; the failure
			// count resets after a day without one.
			"StartType":              "automatic",
			"DelayedAutoStart":       sp.DelayedAutoStart,
			"OnFailure":              "restart",
			"OnFailureDelayDuration": fmt.Sprintf("%ds", RestartSec),
			"OnFailureResetPeriod":   24 * 60 * 60,
		},
	}, nil
}

// New returns the service of sp with p as its program.
func New(p service.Interface, sp Spec) (service.Service, error) {
	c, err := sp.Config()
	if err != nil {
		return nil, err
	}
	s, err := service.New(p, c)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", sp.Name, err)
	}
	return s, nil
}

// NewControl returns the control of the service sp describes, for
// installing it.
func NewControl(sp Spec) (*Control, error) {
	s, err := New(&Program{}, sp)
	if err != nil {
		return nil, err
	}
	return &Control{Service: s, Name: sp.Name}, nil
}

// OpenControl returns the control of the service called name, for what
// needs nothing but its name: uninstall, start, stop, restart, status.
func OpenControl(name string) (*Control, error) {
	s, err := NewRunner(&Program{}, name)
	if err != nil {
		return nil, err
	}
	return &Control{Service: s, Name: name}, nil
}

// NewRunner returns the service called name with p as its program, for
// running it (its Run): what it runs is already on the command line.
func NewRunner(p *Program, name string) (service.Service, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	s, err := service.New(p, &service.Config{Name: name})
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	return s, nil
}

// validName is CheckName's rule.
func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '_' || r == '.' || r == '-'):
		default:
			return false
		}
	}
	return true
}
