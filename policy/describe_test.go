package policy

import (
	"testing"

	"github.com/mamori-agent/mamori/collector/usb"
)

// TestDescribe: how a device is named in messages, with and without ids.
func TestDescribe(t *testing.T) {
	serial := "4C53"
	for _, tt := range []struct {
		d    usb.Device
		want string
	}{
		{usb.Device{Manufacturer: "SanDisk", Product: "Cruzer", VendorID: "0781", ProductID: "5567", Serial: &serial}, "SanDisk Cruzer (0781:5567, serial 4C53)"},
		{usb.Device{VendorID: "0781", ProductID: "5567"}, "(0781:5567)"},
		{usb.Device{Path: usb.UnknownPathPrefix + "PhysicalDrive1", Product: "drive E: on PhysicalDrive1 (USB device not determined: no USB device listed holds this disk)"},
			"drive E: on PhysicalDrive1 (USB device not determined: no USB device listed holds this disk)"},
		{usb.Device{Path: usb.UnknownPathPrefix + "E:"}, "(unknown:E:)"},
	} {
		if got := Describe(&tt.d); got != tt.want {
			t.Errorf("Describe(%+v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
