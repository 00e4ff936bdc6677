//go:build !windows

package main

// defaultConfig is the config file used without --config: root's, in a
// directory only root may write.
var defaultConfig = "/etc/mamori/mamori.yaml"
