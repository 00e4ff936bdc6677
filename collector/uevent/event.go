// Package uevent reads kernel uevents from a NETLINK_KOBJECT_UEVENT socket
// (kernel multicast group 1, which needs no udev) and parses them.
package uevent

// Event is one kernel uevent: "ACTION@DEVPATH\0KEY=VALUE\0...".
type Event struct {
	Action    string            // ACTION: add, remove, change, bind, unbind, move, online, offline
	DevPath   string            // DEVPATH, below the sysfs root: "/devices/pci0000:00/.../1-2"
	Subsystem string            // SUBSYSTEM: usb, block, scsi, ...
	DevType   string            // DEVTYPE: usb_device, usb_interface, disk, partition
	Seqnum    uint64            // SEQNUM
	Env       map[string]string // every KEY=VALUE, the above included
}
