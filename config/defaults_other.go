//go:build !windows

package config

// DefaultStateDir is agent.state_dir when the file leaves it out.
const DefaultStateDir = "/var/lib/mamori"
