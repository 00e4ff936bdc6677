package agent

import "github.com/mamori-agent/mamori/collector/network"

// Event sources as the self-test names them on Windows. The network is
// polled (collector/network's portable monitor) until it registers
// NotifyIpInterfaceChange and NotifyUnicastIpAddressChange.
const (
	sourceDevices = "device notifications"
	sourceMounts  = "removable volumes"
	sourceNetwork = "IP change notifications"

	networkState = "polling"
)

var networkDetail = "IP Helper notifications not used yet: interfaces and addresses polled every " + network.PollInterval.String()
