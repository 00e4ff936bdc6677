package usb

import (
	"slices"
	"testing"
)

func compareFixture() []Device {
	serial := "4C530001"
	empty := ""
	yes := true
	return []Device{
		{
			Path: "usb1", BusNum: 1, DevNum: 1, VendorID: "1d6b", ProductID: "0002", BCDDevice: "0601",
			Manufacturer: "Linux 6.1.0 ehci_hcd", Product: "EHCI Host Controller", Serial: &empty,
			Class: "09", SubClass: "00", Protocol: "00", Speed: "480",
			Interfaces: []Interface{{Number: 0, Class: "09", SubClass: "00", Protocol: "00", Driver: "hub"}},
		},
		{
			Path: "1-1", SysPath: "devices/pci0000:00/0000:00:04.0/usb1/1-1", BusNum: 1, DevNum: 2,
			VendorID: "46f4", ProductID: "0001", BCDDevice: "0000",
			Manufacturer: "QEMU", Product: "QEMU USB HARDDRIVE", Serial: &serial,
			Class: "00", SubClass: "00", Protocol: "00", Speed: "480", Authorized: &yes, Parent: "usb1",
			VendorName: "QEMU",
			Interfaces: []Interface{
				{Number: 1, Class: "03", SubClass: "01", Protocol: "01", Driver: "usbhid"},
				{Number: 0, Class: "08", SubClass: "06", Protocol: "50", Driver: "usb-storage"},
			},
			BlockDevices: []BlockDevice{{Name: "sda", Size: 1 << 20}},
		},
	}
}

// libusbView is what the libusb backend would report for the same devices.
func libusbView(in []Device) []Device {
	out := make([]Device, len(in))
	for i, d := range in {
		d.SysPath, d.Authorized, d.BlockDevices, d.VendorName, d.ProductName = "", nil, nil, "", ""
		ifs := make([]Interface, len(d.Interfaces))
		for j, in := range d.Interfaces {
			in.Driver = ""
			ifs[j] = in
		}
		// libusb sorts interfaces by number.
		slices.SortFunc(ifs, func(a, b Interface) int { return a.Number - b.Number })
		d.Interfaces = ifs
		out[i] = d
	}
	// and the list in another order
	slices.Reverse(out)
	return out
}

func TestCompareDevicesEqual(t *testing.T) {
	a := compareFixture()
	if d := CompareDevices(a, libusbView(a)); d != nil {
		t.Errorf("differences in equal lists: %q", d)
	}
	if d := CompareDevices(nil, nil); d != nil {
		t.Errorf("differences in empty lists: %q", d)
	}
	b := libusbView(a)
	b[0].Speed = "" // unknown speed on one side is not a difference
	if d := CompareDevices(a, b); d != nil {
		t.Errorf("unknown speed counted: %q", d)
	}
}

func TestCompareDevicesDiffers(t *testing.T) {
	other := "OTHER"
	tests := []struct {
		name string
		edit func(b []Device) []Device // b[1] is usb1, b[0] is 1-1
		want []string
	}{
		{"vendor", func(b []Device) []Device { b[0].VendorID = "0781"; return b },
			[]string{`1-1: idVendor: a "46f4", b "0781"`}},
		{"product id", func(b []Device) []Device { b[0].ProductID = "0002"; return b },
			[]string{`1-1: idProduct: a "0001", b "0002"`}},
		{"bcdDevice", func(b []Device) []Device { b[0].BCDDevice = "0100"; return b },
			[]string{`1-1: bcdDevice: a "0000", b "0100"`}},
		{"serial absent", func(b []Device) []Device { b[0].Serial = nil; return b },
			[]string{`1-1: serial: a "\"4C530001\"", b "<none>"`}},
		{"serial value", func(b []Device) []Device { b[0].Serial = &other; return b },
			[]string{`1-1: serial: a "\"4C530001\"", b "\"OTHER\""`}},
		{"empty serial is not absent", func(b []Device) []Device { b[1].Serial = nil; return b },
			[]string{`usb1: serial: a "\"\"", b "<none>"`}},
		{"strings", func(b []Device) []Device { b[0].Manufacturer, b[0].Product = "QEM?", "X"; return b },
			[]string{`1-1: manufacturer: a "QEMU", b "QEM?"`, `1-1: product: a "QEMU USB HARDDRIVE", b "X"`}},
		{"device class", func(b []Device) []Device { b[1].Class, b[1].SubClass, b[1].Protocol = "ff", "01", "02"; return b },
			[]string{`usb1: class: a "09", b "ff"`, `usb1: protocol: a "00", b "02"`, `usb1: subclass: a "00", b "01"`}},
		{"speed", func(b []Device) []Device { b[0].Speed = "12"; return b },
			[]string{`1-1: speed: a "480", b "12"`}},
		{"numbers and parent", func(b []Device) []Device { b[0].DevNum, b[0].BusNum, b[0].Parent = 3, 2, "usb2"; return b },
			[]string{`1-1: busnum: a "1", b "2"`, `1-1: devnum: a "2", b "3"`, `1-1: parent: a "usb1", b "usb2"`}},
		{"interface class", func(b []Device) []Device { b[0].Interfaces[1].SubClass = "05"; return b },
			[]string{`1-1: interfaces: a "0:08/06/50 1:03/01/01", b "0:08/06/50 1:03/05/01"`}},
		{"interface missing", func(b []Device) []Device { b[0].Interfaces = b[0].Interfaces[:1]; return b },
			[]string{`1-1: interfaces: a "0:08/06/50 1:03/01/01", b "0:08/06/50"`}},
		{"device missing", func(b []Device) []Device { return b[1:] },
			[]string{`1-1: only in a (46f4:0001)`}},
		{"device extra and duplicate", func(b []Device) []Device {
			x := b[0]
			x.Path = "1-2"
			return append(b, x, b[1])
		}, []string{`1-2: only in b (46f4:0001)`, `usb1: listed twice in b`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := compareFixture()
			b := tt.edit(libusbView(compareFixture()))
			got := CompareDevices(a, b)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func BenchmarkCompareDevices(b *testing.B) {
	var a []Device
	for i := 0; i < 16; i++ {
		a = append(a, compareFixture()...)
		a[len(a)-1].Path = "1-1." + string(rune('a'+i))
		a[len(a)-2].Path = "usb" + string(rune('a'+i))
	}
	c := libusbView(a)
	for b.Loop() {
		if d := CompareDevices(a, c); d != nil {
			b.Fatal(d)
		}
	}
}
