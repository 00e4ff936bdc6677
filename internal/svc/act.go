package svc

import (
	"errors"
	"fmt"
	"io"
)

// Outcome is how a control action ended, for the exit status.
type Outcome int

// Outcomes of Act.
const (
	// Done: the action was done (status: the service runs).
	Done Outcome = iota
	// Stopped: status found the service installed and not running.
	Stopped
	// NotInstalled: there is no such service.
	NotInstalled
	// Failed: the action failed, or status could not tell; see the error.
	Failed
)

// Actions are the control actions Act takes, in the order a help text
// lists them.
var Actions = []string{"uninstall", "start", "stop", "restart", "status"}

// Act takes a control action on the service called name and returns the
// line to print: "uninstall" (stopping it first when it runs), "start",
// "stop", "restart" or "status".
func Act(name, action string) (string, Outcome, error) {
	c, err := OpenControl(name)
	if err != nil {
		return "", Failed, err
	}
	return c.Act(action)
}

// Act is the package's Act on c.
func (c *Control) Act(action string) (string, Outcome, error) {
	fail := func(err error) (string, Outcome, error) {
		if errors.Is(err, ErrNotInstalled) {
			return "", NotInstalled, err
		}
		return "", Failed, err
	}
	switch action {
	case "status":
		st, err := c.Status()
		msg := fmt.Sprintf("%s: %s (%s)", c.Name, st, c.Where())
		switch st {
		case StateRunning:
			return msg, Done, nil
		case StateStopped, StateFailed:
			return msg, Stopped, nil
		case StateNotInstalled:
			return fmt.Sprintf("%s: not installed (no %s)", c.Name, c.Where()), NotInstalled, nil
		}
		return "", Failed, err
	case "start":
		already, err := c.Start()
		if err != nil {
			return fail(err)
		}
		if already {
			return fmt.Sprintf("%s: running already", c.Name), Done, nil
		}
		return fmt.Sprintf("%s: started (%s)", c.Name, c.Where()), Done, nil
	case "stop":
		already, err := c.Stop()
		if err != nil {
			return fail(err)
		}
		if already {
			return fmt.Sprintf("%s: was not running", c.Name), Done, nil
		}
		return fmt.Sprintf("%s: stopped", c.Name), Done, nil
	case "restart":
		if err := c.Restart(); err != nil {
			return fail(err)
		}
		return fmt.Sprintf("%s: restarted (%s)", c.Name, c.Where()), Done, nil
	case "uninstall":
		where := c.Where()
		if err := c.Uninstall(); err != nil {
			return fail(err)
		}
		return fmt.Sprintf("%s: removed (%s; stopped first if it ran)", c.Name, where), Done, nil
	}
	return "", Failed, fmt.Errorf("unknown service action %q", action)
}

// Exit codes of ActExit, shared by both commands: installed and not
// running, and not installed, are those of systemctl and LSB init scripts.
const (
	ExitOK           = 0
	ExitNotRunning   = 3
	ExitNotInstalled = 4
)

// ActExit runs Act for a command line: it prints Act's message on stdout
// and its error on stderr after prog ("mamori service stop: ..."), and
// returns the exit code: ExitOK, ExitNotRunning, ExitNotInstalled, or
// errCode (each command's own code for an error).
func ActExit(prog, name, action string, stdout, stderr io.Writer, errCode int) int {
	msg, out, err := Act(name, action)
	if msg != "" {
		fmt.Fprintln(stdout, msg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s service %s: %v\n", prog, action, err)
	}
	switch out {
	case Done:
		return ExitOK
	case Stopped:
		return ExitNotRunning
	case NotInstalled:
		return ExitNotInstalled
	}
	return errCode
}
