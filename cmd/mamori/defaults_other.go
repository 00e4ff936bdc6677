//go:build !windows

package main

// defaultConfig is the config file used without --config: root's, in a
// directory only root may write.
var defaultConfig = "/etc/mamori/mamori.yaml"

// Words of the help texts that differ by OS.
const (
	// hasFSRoots: the --sysfs, --procfs and --devfs flags are offered.
	hasFSRoots = true
	// needsAdmin is who may run the service commands.
	needsAdmin = "Needs root."
	// stopHow is how the foreground agent is stopped and reloaded.
	stopHow = "Exit: 0 after SIGINT or SIGTERM (agent_stopped recorded first), 2 when it cannot start. SIGHUP reloads the config file\n" +
		"(approved lists, contact, language, rescan interval, network:; the state dir and metrics endpoint stay) and\n" +
		"records config_reloaded, or config_reload_failed keeping the old config"
)
