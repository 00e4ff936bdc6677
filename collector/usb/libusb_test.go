//go:build libusb

package usb

import (
	"errors"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/gousb"

	"github.com/mamori-agent/mamori/collector/usbids"
)

func TestBusPath(t *testing.T) {
	tests := []struct {
		bus, addr    int
		ports        []int
		path, parent string
		wantErr      bool
	}{
		{1, 1, nil, "usb1", "", false},
		{3, 1, []int{}, "usb3", "", false},
		{1, 2, []int{4}, "1-4", "usb1", false},
		{1, 5, []int{4, 1}, "1-4.1", "1-4", false},
		{2, 9, []int{1, 2, 3}, "2-1.2.3", "2-1.2", false},
		{12, 7, []int{10, 11, 12, 13, 14, 15, 7}, "12-10.11.12.13.14.15.7", "12-10.11.12.13.14.15", false},
		// libusb without sysfs: no port numbers for a device.
		{1, 3, nil, "1-addr3", "usb1", true},
	}
	for _, tt := range tests {
		path, parent, err := busPath(tt.bus, tt.addr, tt.ports)
		if path != tt.path || parent != tt.parent || (err != nil) != tt.wantErr {
			t.Errorf("busPath(%d, %d, %v) = %q, %q, %v; want %q, %q, err %v",
				tt.bus, tt.addr, tt.ports, path, parent, err, tt.path, tt.parent, tt.wantErr)
		}
	}
}

func TestSpeedString(t *testing.T) {
	tests := []struct {
		in   gousb.Speed
		want string
	}{
		{gousb.SpeedUnknown, ""},
		{gousb.SpeedLow, "1.5"},
		{gousb.SpeedFull, "12"},
		{gousb.SpeedHigh, "480"},
		{gousb.SpeedSuper, "5000"},
		{5, "10000"},
		{6, "20000"},
		{7, ""},
		{-1, ""},
	}
	for _, tt := range tests {
		if got := speedString(tt.in); got != tt.want {
			t.Errorf("speedString(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func luAlt(num, alternate int, class, sub, proto uint8) gousb.InterfaceSetting {
	return gousb.InterfaceSetting{Number: num, Alternate: alternate,
		Class: gousb.Class(class), SubClass: gousb.Class(sub), Protocol: gousb.Protocol(proto)}
}

func TestInterfacesOf(t *testing.T) {
	tests := []struct {
		name string
		cfg  gousb.ConfigDesc
		want []Interface
	}{
		{"none", gousb.ConfigDesc{}, []Interface{}},
		{"mass storage", gousb.ConfigDesc{Interfaces: []gousb.InterfaceDesc{
			{Number: 0, AltSettings: []gousb.InterfaceSetting{luAlt(0, 0, 0x08, 0x06, 0x50)}},
		}}, []Interface{{Number: 0, Class: "08", SubClass: "06", Protocol: "50"}}},
		{"alt 0 listed after alt 1", gousb.ConfigDesc{Interfaces: []gousb.InterfaceDesc{
			{Number: 1, AltSettings: []gousb.InterfaceSetting{luAlt(1, 1, 0x01, 0x02, 0x20), luAlt(1, 0, 0x01, 0x02, 0x00)}},
		}}, []Interface{{Number: 1, Class: "01", SubClass: "02", Protocol: "00"}}},
		{"no alt 0: first listed, like the kernel", gousb.ConfigDesc{Interfaces: []gousb.InterfaceDesc{
			{Number: 2, AltSettings: []gousb.InterfaceSetting{luAlt(2, 3, 0xff, 0x42, 0x01), luAlt(2, 4, 0xfe, 0, 0)}},
		}}, []Interface{{Number: 2, Class: "ff", SubClass: "42", Protocol: "01"}}},
		{"unsorted, duplicate number, empty entry", gousb.ConfigDesc{Interfaces: []gousb.InterfaceDesc{
			{Number: 3, AltSettings: []gousb.InterfaceSetting{luAlt(3, 0, 0x03, 0x01, 0x02)}},
			{Number: 0, AltSettings: []gousb.InterfaceSetting{luAlt(0, 0, 0x03, 0x01, 0x01)}},
			{Number: 3, AltSettings: []gousb.InterfaceSetting{luAlt(3, 0, 0x08, 0x06, 0x50)}},
			{Number: 5},
		}}, []Interface{
			{Number: 0, Class: "03", SubClass: "01", Protocol: "01"},
			{Number: 3, Class: "03", SubClass: "01", Protocol: "02"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := interfacesOf(tt.cfg)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("interfacesOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDeviceFromDesc(t *testing.T) {
	desc := &gousb.DeviceDesc{
		Bus: 2, Address: 7, Speed: gousb.SpeedHigh, Port: 3, Path: []int{1, 3},
		Device: 0x0100, Vendor: 0x0781, Product: 0x5567,
		Class: 0, SubClass: 0, Protocol: 0,
	}
	d, err := deviceFromDesc(desc)
	if err != nil {
		t.Fatal(err)
	}
	want := Device{
		Path: "2-1.3", BusNum: 2, DevNum: 7, VendorID: "0781", ProductID: "5567",
		BCDDevice: "0100", Class: "00", SubClass: "00", Protocol: "00", Speed: "480",
		Parent: "2-1", Interfaces: []Interface{},
		VendorName: usbids.Vendor("0781"), ProductName: usbids.Product("0781", "5567"),
	}
	if want.VendorName == "" {
		t.Error("usb.ids has no name for vendor 0781")
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("deviceFromDesc =\n%+v\nwant\n%+v", d, want)
	}
	if d.Serial != nil || d.Authorized != nil {
		t.Error("serial and authorized must stay unknown (nil) without an open device")
	}

	root, err := deviceFromDesc(&gousb.DeviceDesc{Bus: 1, Address: 1, Vendor: 0x1d6b, Product: 2, Device: 0x0601, Class: 9, Protocol: 1, Speed: gousb.SpeedHigh})
	if err != nil {
		t.Fatal(err)
	}
	if root.Path != "usb1" || !root.IsRootHub() || root.Parent != "" || root.Class != "09" || root.BCDDevice != "0601" {
		t.Errorf("root hub = %+v", root)
	}
}

// TestStringIndexFields fails if gousb stops keeping the string indexes in
// the fields stringIndexes reads.
func TestStringIndexFields(t *testing.T) {
	typ := reflect.TypeFor[gousb.DeviceDesc]()
	for _, name := range []string{"iManufacturer", "iProduct", "iSerialNumber"} {
		f, ok := typ.FieldByName(name)
		if !ok {
			t.Errorf("gousb.DeviceDesc has no field %s", name)
			continue
		}
		if f.Type.Kind() != reflect.Int {
			t.Errorf("gousb.DeviceDesc.%s is %s, want int", name, f.Type.Kind())
		}
	}
	if got := stringIndexes(&gousb.DeviceDesc{}); got != (strIdx{}) {
		t.Errorf("stringIndexes(zero) = %+v", got)
	}
}

func TestSameDevice(t *testing.T) {
	a := &gousb.DeviceDesc{Bus: 1, Address: 4, Path: []int{2, 1}, Vendor: 1, Product: 2}
	b := *a
	if !sameDevice(a, &b) {
		t.Error("identical descriptors differ")
	}
	for _, mod := range []func(*gousb.DeviceDesc){
		func(d *gousb.DeviceDesc) { d.Bus = 2 },
		func(d *gousb.DeviceDesc) { d.Address = 5 },
		func(d *gousb.DeviceDesc) { d.Path = []int{2, 2} },
		func(d *gousb.DeviceDesc) { d.Vendor = 9 },
		func(d *gousb.DeviceDesc) { d.Product = 9 },
	} {
		c := *a
		mod(&c)
		if sameDevice(a, &c) {
			t.Errorf("sameDevice(%+v, %+v) = true", a, c)
		}
	}
}

func TestCompareBusPath(t *testing.T) {
	in := []Device{
		{Path: "2-1", BusNum: 2}, {Path: "1-10", BusNum: 1}, {Path: "1-2.1", BusNum: 1},
		{Path: "usb2", BusNum: 2}, {Path: "1-2", BusNum: 1}, {Path: "usb1", BusNum: 1},
		{Path: "1-addr9", BusNum: 1},
	}
	slices.SortFunc(in, compareBusPath)
	var got []string
	for _, d := range in {
		got = append(got, d.Path)
	}
	want := []string{"1-addr9", "usb1", "1-2", "1-2.1", "1-10", "usb2", "2-1"}
	if !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

func TestParseStringDescriptor(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    string
		wantErr string
	}{
		{"ascii", []byte{10, 3, 'Q', 0, 'E', 0, 'M', 0, 'U', 0}, "QEMU", ""},
		{"empty string", []byte{2, 3}, "", ""},
		{"non-ascii", []byte{8, 3, 0xe9, 0x00, 0xac, 0x20, 0x2e, 0x20}, "é€\u202e", ""},
		{"surrogate pair", []byte{6, 3, 0x3d, 0xd8, 0x00, 0xde}, "😀", ""},
		{"unpaired high surrogate dropped", []byte{6, 3, 0x3d, 0xd8, 'A', 0}, "A", ""},
		{"unpaired low surrogate dropped", []byte{6, 3, 0x00, 0xde, 'B', 0}, "B", ""},
		{"ends at NUL", []byte{8, 3, 'A', 0, 0, 0, 'B', 0}, "A", ""},
		{"bLength shorter than transfer", []byte{4, 3, 'A', 0, 'B', 0}, "A", ""},
		{"bLength longer than transfer", []byte{200, 3, 'A', 0, 'B', 0}, "AB", ""},
		{"odd length cut to units", []byte{5, 3, 'A', 0, 'B'}, "A", ""},
		{"escape bytes kept raw", []byte{6, 3, 0x1b, 0, '[', 0}, "\x1b[", ""},
		{"too short", []byte{2}, "", "at least 2"},
		{"nil", nil, "", "at least 2"},
		{"wrong type", []byte{4, 2, 'A', 0}, "", "type 0x02"},
		{"bLength 0", []byte{0, 3, 'A', 0}, "", "bLength 0"},
		{"bLength 1", []byte{1, 3, 'A', 0}, "", "bLength 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStringDescriptor(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("= %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseLangIDs(t *testing.T) {
	tests := []struct {
		in      []byte
		want    uint16
		wantErr bool
	}{
		{[]byte{4, 3, 0x09, 0x04}, 0x0409, false},
		{[]byte{6, 3, 0x07, 0x04, 0x09, 0x04}, 0x0407, false},
		{[]byte{2, 3}, 0, true},
		{[]byte{4, 3, 0x09}, 0, true},
		{[]byte{4, 1, 0x09, 0x04}, 0, true},
		{nil, 0, true},
	}
	for _, tt := range tests {
		got, err := parseLangIDs(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseLangIDs(%v) = %#x, %v; want %#x, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseStringDescriptor(f *testing.F) {
	f.Add([]byte{10, 3, 'Q', 0, 'E', 0, 'M', 0, 'U', 0})
	f.Add([]byte{6, 3, 0x3d, 0xd8, 0x00, 0xde})
	f.Add([]byte{6, 3, 0x3d, 0xd8, 'A', 0})
	f.Add([]byte{255, 3})
	f.Add([]byte{1, 3, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseStringDescriptor(b)
		if err != nil {
			if s != "" {
				t.Fatalf("error %v with a string %q", err, s)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 %q", s)
		}
		if strings.ContainsRune(s, 0) {
			t.Fatalf("NUL in %q", s)
		}
		if n := utf8.RuneCountInString(s); n > (len(b)-2)/2 {
			t.Fatalf("%d runes from %d bytes", n, len(b))
		}
		if _, err := parseLangIDs(b); err != nil && len(b) >= 2 && b[0] >= 4 && len(b) >= 4 {
			t.Fatalf("parseLangIDs rejected a descriptor parseStringDescriptor took: %v", err)
		}
	})
}

func TestCatch(t *testing.T) {
	sentinel := errors.New("boom")
	if err := catch(func() error { panic(sentinel) }); !errors.Is(err, sentinel) {
		t.Errorf("panic(error) = %v", err)
	}
	if err := catch(func() error { panic("index out of range") }); err == nil || !strings.Contains(err.Error(), "index out of range") {
		t.Errorf("panic(string) = %v", err)
	}
	if err := catch(func() error { return sentinel }); err != sentinel {
		t.Errorf("plain error = %v", err)
	}
	if err := catch(func() error { return nil }); err != nil {
		t.Errorf("nil = %v", err)
	}
}

var (
	luHex4   = regexp.MustCompile(`^[0-9a-f]{4}$`)
	luHex2   = regexp.MustCompile(`^[0-9a-f]{2}$`)
	luPathRE = regexp.MustCompile(`^(usb[0-9]+|[0-9]+-[0-9]+(\.[0-9]+)*)$`)
)

// TestLibusbLive runs against whatever this machine has. Without a USB
// bus libusb either fails to initialise (with a clear error) or lists no
// device; on a machine with USB every device must be well-formed.
func TestLibusbLive(t *testing.T) {
	e, err := NewLibusb(nil)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "libusb init: ") {
			t.Fatalf("init error without context: %v", err)
		}
		t.Skipf("no libusb here: %v", err)
	}
	l, ok := e.(*Libusb)
	if !ok {
		t.Fatalf("NewLibusb returned %T", e)
	}
	var _ io.Closer = l

	devs, err := e.Devices()
	t.Logf("%d devices, err %v", len(devs), err)
	for _, d := range devs {
		if !luPathRE.MatchString(d.Path) {
			t.Errorf("bad path %q", d.Path)
		}
		if !luHex4.MatchString(d.VendorID) || !luHex4.MatchString(d.ProductID) || !luHex4.MatchString(d.BCDDevice) {
			t.Errorf("%s: bad ids %q %q %q", d.Path, d.VendorID, d.ProductID, d.BCDDevice)
		}
		if !luHex2.MatchString(d.Class) || !luHex2.MatchString(d.SubClass) || !luHex2.MatchString(d.Protocol) {
			t.Errorf("%s: bad class %q/%q/%q", d.Path, d.Class, d.SubClass, d.Protocol)
		}
		if d.Authorized != nil || d.SysPath != "" {
			t.Errorf("%s: libusb cannot know authorized or the sysfs path", d.Path)
		}
		if d.IsRootHub() != (d.Parent == "") {
			t.Errorf("%s: parent %q", d.Path, d.Parent)
		}
	}
	if !slices.IsSortedFunc(devs, compareBusPath) {
		t.Error("devices not sorted by bus path")
	}

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e.Devices(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Devices after Close = %v, want a closed error", err)
	}
}

func BenchmarkParseStringDescriptor(b *testing.B) {
	desc := []byte{2 + 2*24, 3}
	for _, r := range "SanDisk Cruzer Blade USB" {
		desc = append(desc, byte(r), 0)
	}
	for b.Loop() {
		if _, err := parseStringDescriptor(desc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInterfacesOf(b *testing.B) {
	cfg := gousb.ConfigDesc{Interfaces: []gousb.InterfaceDesc{
		{Number: 0, AltSettings: []gousb.InterfaceSetting{luAlt(0, 0, 1, 1, 0)}},
		{Number: 1, AltSettings: []gousb.InterfaceSetting{luAlt(1, 0, 1, 2, 0), luAlt(1, 1, 1, 2, 0)}},
		{Number: 2, AltSettings: []gousb.InterfaceSetting{luAlt(2, 0, 3, 0, 0)}},
	}}
	for b.Loop() {
		interfacesOf(cfg)
	}
}
