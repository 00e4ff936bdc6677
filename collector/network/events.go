package network

// EventSource says how one source of change events of a Monitor fares:
// the self-test the agent logs at start and shows in `mamori status`, so
// that nobody takes a source that never calls back for a quiet network.
// Only the Windows Monitor reports them (EventSources); elsewhere a
// Monitor's sources are its sockets, and a failure to open one fails
// Open.
type EventSource struct {
	// Name is the system's name for the source: "NotifyIpInterfaceChange",
	// "NotifyUnicastIpAddressChange", "NotifyRouteChange2",
	// "WlanRegisterNotification", "GetIpNetTable2", "rescan".
	Name string
	// Working is set when the source was seen to deliver (its initial
	// notification came) or, for a source with no way to tell, when it
	// was set up without error.
	Working bool
	// Detail says what was seen, and what stands in when the source does
	// not work ("changes seen by rescans every 5s").
	Detail string
}
