package main

import (
	"path/filepath"

	"golang.org/x/sys/windows"
)

// defaultConfig is the config file used without --config:
// %ProgramFiles%\mamori\mamori.yaml, where the MSI installs it. Like
// osquery and Wazuh, the config lives under Program Files, where a
// standard user can create nothing, and not in %ProgramData%, where any
// user may create the mamori folder first and own it (the state folder
// there is the agent's own, made private or taken back at its start).
var defaultConfig = filepath.Join(programFiles(), "mamori", "mamori.yaml")

// fallbackProgramFiles is the Program Files folder of a standard install,
// used when the known folder cannot be read.
const fallbackProgramFiles = `C:\Program Files`

// programFiles returns the Program Files folder of this (64-bit) process:
// the known folder FOLDERID_ProgramFiles (SHGetKnownFolderPath,
// KF_FLAG_DEFAULT), which is per machine and not redirected per user nor
// read from the environment (a user can set %ProgramFiles% for their own
// processes), else C:\Program Files. The MSI (x64) installs into the same
// folder, ProgramFiles64Folder.
func programFiles() string {
	p, err := windows.KnownFolderPath(windows.FOLDERID_ProgramFiles, windows.KF_FLAG_DEFAULT)
	if err != nil || !filepath.IsAbs(p) {
		return fallbackProgramFiles
	}
	return p
}

// Words of the help texts that differ by OS.
const (
	// hasFSRoots: the --sysfs, --procfs and --devfs flags mean nothing
	// on Windows and are not offered.
	hasFSRoots = false
	// needsAdmin is who may run the service commands.
	needsAdmin = "Needs an administrator (an elevated prompt)."
	// stopHow is how the foreground agent is stopped and reloaded.
	stopHow = "Exit: 0 after Ctrl+C or Ctrl+Break (agent_stopped recorded first), 2 when it cannot start. Windows has no SIGHUP:\n" +
		"to reload the config, restart the service (mamori service restart); the audit log carries on"
)
