package agent

import "github.com/mamori-agent/mamori/collector/media"

// Event sources as the self-test names them on Windows. The network
// source (collector/network's IP Helper monitor) reports each of its own
// sources (noteNetwork), so the defaults below are for one that does not.
// Drive letters are polled (media.MountWatcher on Windows); volume
// arrivals also come as device notifications.
const (
	sourceDevices = "device notifications"
	sourceMounts  = "drive letters"
	sourceNetwork = "IP change notifications"

	networkState  = "events"
	networkDetail = ""

	mountState = "polling"
)

var mountDetail = "drive letters polled every " + media.DrivePollInterval.String()
