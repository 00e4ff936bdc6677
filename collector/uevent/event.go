// Package uevent reads kernel uevents from a NETLINK_KOBJECT_UEVENT socket
// (kernel multicast group 1, which needs no udev) and parses them.
//
// Parse turns one datagram into an Event; Listen opens the socket and
// returns a Conn whose Receive yields events one by one. Source is the small
// interface the agent consumes, so that tests can substitute a fake and
// platforms without netlink fall back to periodic rescans.
package uevent

import "time"

// Event is one kernel uevent: "ACTION@DEVPATH\0KEY=VALUE\0...".
type Event struct {
	Action    string            // ACTION: add, remove, change, bind, unbind, move, online, offline
	DevPath   string            // DEVPATH, below the sysfs root: "/devices/pci0000:00/.../1-2"
	Subsystem string            // SUBSYSTEM: usb, block, scsi, ... ("" when absent)
	DevType   string            // DEVTYPE: usb_device, usb_interface, disk, partition ("" when absent)
	Seqnum    uint64            // SEQNUM (0 when absent)
	Env       map[string]string // every KEY=VALUE, the above included; values are raw and untrusted

	// Received is when Conn.Receive got the datagram from the kernel (zero
	// for an Event from Parse).
	Received time.Time
}
