package agent

// Event sources as the self-test names them on Linux, and how the network
// source tells of changes: rtnetlink notifications (collector/network).
const (
	sourceDevices = "uevents"
	sourceMounts  = "mount watch"
	sourceNetwork = "rtnetlink"

	networkState  = "events"
	networkDetail = ""
)

// The mount table is watched (poll(2) on /proc/self/mountinfo).
const (
	mountState  = "events"
	mountDetail = ""
)
