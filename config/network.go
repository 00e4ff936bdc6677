package config

import (
	"net"
	"net/netip"
	"time"
)

// Defaults and bounds of the network: section.
const (
	// DefaultLANReportWindow is network.lan_report_window when not set.
	DefaultLANReportWindow = 24 * time.Hour
	// MinLANReportWindow and MaxLANReportWindow bound it, inclusive.
	MinLANReportWindow = time.Minute
	MaxLANReportWindow = 366 * 24 * time.Hour
	// DefaultContact is agent.contact when not set: the division the
	// remedies name.
	DefaultContact = "情報政策課 (information policy division)"
	// MaxApprovedNetworks and MaxLANDevices cap the lists.
	MaxApprovedNetworks = 10_000
	MaxLANDevices       = 1_000_000
)

// Network is the network: section.
type Network struct {
	// IgnoreInterfaces are shell-glob patterns (path.Match) matched against
	// the whole interface name, case-sensitive (network.ignore_interfaces,
	// default none). They apply only to virtual interfaces.
	IgnoreInterfaces []string
	// WatchLAN turns the neighbour table watch on (network.watch_lan,
	// default true).
	WatchLAN bool
	// LANReportWindow is how long an unregistered LAN device is reported
	// once (network.lan_report_window, default 24h, from 1m to 366 days).
	LANReportWindow time.Duration
}

// NetworkEntry is one entry of approved.networks. It matches a link when
// every field it sets matches: an address of the link in CIDR, and the
// link's Wi-Fi network SSID. Every entry sets CIDR or SSID or both.
type NetworkEntry struct {
	// Name names the network in violations; required and unique.
	Name string
	// CIDR is the network's prefix (masked: 10.20.0.0/16), IPv4 or IPv6;
	// invalid (the zero Prefix) when not set.
	CIDR netip.Prefix
	// SSID is the Wi-Fi network name, exact and case-sensitive; "" when
	// not set.
	SSID string
	// GatewayMAC pins the MAC of every default route's gateway leaving
	// through a link on this network; nil when not set.
	GatewayMAC net.HardwareAddr
	// Zone is a free-text zone ("lgwan", "internet"); "" for none.
	Zone string
	// Line is the entry's line in File, the config file it was read from
	// (0 and "" when not from a file).
	Line int
	File string
}

// LANDevice is one entry of approved.lan_devices: a device registered to
// be on the city's LAN segments.
type LANDevice struct {
	// Name names the device; required and unique.
	Name string
	// MAC is the device's MAC, 6 bytes (as ParseMAC gives it: never
	// all zero, broadcast or multicast).
	MAC net.HardwareAddr
	// Owner and ApprovedBy are informational.
	Owner      string
	ApprovedBy string
	// ValidFrom and ValidUntil bound the registration (inclusive days in
	// local time), nil when open: outside them the device counts as not
	// registered.
	ValidFrom  *Date
	ValidUntil *Date
	// Line is the entry's line in File, the config file it was read from
	// (0 and "" when not from a file).
	Line int
	File string
}
