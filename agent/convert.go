package agent

import (
	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/wire"
)

// The one place where what the collectors observe becomes what is
// recorded: a field added to a collector changes no record until it is
// added here and to package wire.

// wireDevice is d as records show it.
func wireDevice(d *usb.Device) *wire.USBDevice {
	w := &wire.USBDevice{Path: d.Path, BusNum: d.BusNum, DevNum: d.DevNum,
		VendorID: d.VendorID, ProductID: d.ProductID, BCDDevice: d.BCDDevice,
		Serial: d.Serial, Manufacturer: d.Manufacturer, Product: d.Product,
		VendorName: d.VendorName, ProductName: d.ProductName,
		Class: d.Class, SubClass: d.SubClass, Protocol: d.Protocol,
		Speed: d.Speed, Authorized: d.Authorized, Parent: d.Parent,
		Interfaces: make([]wire.USBInterface, len(d.Interfaces)), BlockDevices: make([]wire.USBBlockDevice, len(d.BlockDevices))}
	for i, in := range d.Interfaces {
		w.Interfaces[i] = wire.USBInterface{Number: in.Number, Class: in.Class, SubClass: in.SubClass, Protocol: in.Protocol, Driver: in.Driver}
	}
	for i, b := range d.BlockDevices {
		w.BlockDevices[i] = wire.USBBlockDevice{Name: b.Name, Size: b.Size, ReadOnly: b.ReadOnly, Removable: b.Removable, Partition: b.Partition}
	}
	return w
}

// wireVolume is v as records show it.
func wireVolume(v *media.Volume) *wire.Volume {
	return &wire.Volume{Device: v.Device, MountPoint: v.MountPoint, FSType: v.FSType, ReadOnly: v.ReadOnly,
		Size: v.Size, Label: v.Label, UUID: v.UUID, Encrypted: v.Encrypted, Encryption: v.Encryption,
		ClearKey: v.ClearKey, Backing: v.Backing, Error: v.Error, USBDevice: v.USBDevice}
}
