//go:build !linux && !windows

package agent

import (
	"github.com/mamori-agent/mamori/collector/network"
)

// Event sources as the self-test names them here; the network is polled
// (collector/network's portable monitor).
const (
	sourceDevices = "uevents"
	sourceMounts  = "mount watch"
	sourceNetwork = "network"

	networkState = "polling"
)

var networkDetail = "interfaces and addresses polled every " + network.PollInterval.String()

// There is no mount watcher here (media.ErrWatchUnsupported).
const (
	mountState  = "events"
	mountDetail = ""
)
