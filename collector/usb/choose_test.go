package usb

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Ports as usb_choose_configuration sees them (udev->bus_mA).
var (
	usb2Port       = busPower{BudgetMA: fullLoadMA}
	usb2BusPowered = busPower{BudgetMA: unitLoadMA}
	ssPort         = busPower{SuperSpeed: true, BudgetMA: fullLoadSSMA}
)

// tIface is one interface descriptor to build: "num/alt class/sub/proto".
type tIface struct{ num, alt, class, sub, proto byte }

// tConfig is one configuration to build; maxPower is the raw bMaxPower.
type tConfig struct {
	value, maxPower byte
	ifaces          []tIface
}

// buildDescriptors writes a sysfs descriptors attribute: a device
// descriptor (1234:5678, bDeviceClass devClass) and each configuration
// with its interface descriptors in order, each followed by one bulk
// endpoint and a class-specific descriptor to skip.
func buildDescriptors(devClass byte, cfgs ...tConfig) []byte {
	b := []byte{18, descTypeDevice, 0x00, 0x02, devClass, 0, 0, 64, 0x34, 0x12, 0x78, 0x56, 0x00, 0x01, 1, 2, 3, byte(len(cfgs))}
	for _, c := range cfgs {
		start := len(b)
		b = append(b, 9, descTypeConfig, 0, 0, byte(len(c.ifaces)), c.value, 0, 0x80, c.maxPower)
		for _, in := range c.ifaces {
			b = append(b, 9, descTypeInterface, in.num, in.alt, 1, in.class, in.sub, in.proto, 0)
			b = append(b, 5, 0x24, 0x00, 0x10, 0x01) // class-specific header
			b = append(b, 7, 0x05, 0x81, 0x02, 0x00, 0x02, 0)
		}
		binary.LittleEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	return b
}

var (
	ifVendor     = tIface{0, 0, 0xff, 0xff, 0xff}
	ifStorage    = tIface{0, 0, 0x08, 0x06, 0x50}
	ifHID        = tIface{0, 0, 0x03, 0x01, 0x01}
	ifRNDIS      = tIface{0, 0, 0x02, 0x02, 0xff}
	ifRNDISData  = tIface{1, 0, 0x0a, 0x00, 0x00}
	ifECM        = tIface{0, 0, 0x02, 0x06, 0x00}
	ifECMData    = tIface{1, 0, 0x0a, 0x00, 0x00}
	ifActiveSync = tIface{0, 0, 0xef, 0x01, 0x01}
	ifUAC1       = tIface{0, 0, 0x01, 0x01, 0x00}
	ifUAC2       = tIface{0, 0, 0x01, 0x01, 0x20}
	ifUAC3       = tIface{0, 0, 0x01, 0x01, 0x30}
)

func TestChooseConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		devClass byte
		pw       busPower
		cfgs     []tConfig
		want     int // index chosen, -1 none
		ifaces   []Interface
		storage  bool
	}{
		{"vendor then mass storage", 0, usb2Port,
			[]tConfig{{1, 50, []tIface{ifVendor}}, {2, 50, []tIface{ifStorage}}},
			1, ifs("0:08/06/50"), true},
		{"vendor device class keeps the first", 0xff, usb2Port,
			[]tConfig{{1, 50, []tIface{ifVendor}}, {2, 50, []tIface{ifStorage}}},
			0, ifs("0:ff/ff/ff"), false},
		{"all vendor: the first", 0, usb2Port,
			[]tConfig{{1, 50, []tIface{ifVendor}}, {2, 50, []tIface{{0, 0, 0xff, 0x42, 0x01}}}},
			0, ifs("0:ff/ff/ff"), false},
		// g_ether and phones: RNDIS first for Windows, CDC-ECM second.
		{"rndis then cdc-ecm", 0, usb2Port,
			[]tConfig{{1, 1, []tIface{ifRNDIS, ifRNDISData}}, {2, 1, []tIface{ifECM, ifECMData}}},
			1, ifs("0:02/06/00", "1:0a/00/00"), false},
		{"rndis then vendor keeps rndis", 0, usb2Port,
			[]tConfig{{1, 1, []tIface{ifRNDIS, ifRNDISData}}, {2, 1, []tIface{ifVendor}}},
			0, ifs("0:02/02/ff", "1:0a/00/00"), false},
		{"activesync then vendor keeps activesync", 0, usb2Port,
			[]tConfig{{1, 1, []tIface{ifActiveSync}}, {2, 1, []tIface{ifVendor}}},
			0, ifs("0:ef/01/01"), false},
		{"rndis only config", 0, usb2Port,
			[]tConfig{{1, 1, []tIface{ifRNDIS, ifRNDISData}}},
			0, ifs("0:02/02/ff", "1:0a/00/00"), false},
		{"rndis then storage", 0, usb2Port,
			[]tConfig{{1, 1, []tIface{ifRNDIS, ifRNDISData}}, {2, 1, []tIface{ifStorage}}},
			1, ifs("0:08/06/50"), true},
		// Power: 0xfa × 2 mA = 500 mA fits a 500 mA port, 0xfb does not.
		{"500 mA fits", 0, usb2Port,
			[]tConfig{{1, 0xfa, []tIface{ifStorage}}, {2, 50, []tIface{ifHID}}},
			0, ifs("0:08/06/50"), true},
		{"502 mA skipped", 0, usb2Port,
			[]tConfig{{1, 0xfb, []tIface{ifStorage}}, {2, 50, []tIface{ifHID}}},
			1, ifs("0:03/01/01"), false},
		{"bus-powered hub: 102 mA skipped", 0, usb2BusPowered,
			[]tConfig{{1, 51, []tIface{ifStorage}}, {2, 50, []tIface{ifHID}}},
			1, ifs("0:03/01/01"), false},
		{"bus-powered hub: 100 mA fits", 0, usb2BusPowered,
			[]tConfig{{1, 50, []tIface{ifStorage}}, {2, 50, []tIface{ifHID}}},
			0, ifs("0:08/06/50"), true},
		// SuperSpeed counts 8 mA units against 900 mA: 0x70 = 896 mA.
		{"superspeed 896 mA fits", 0, ssPort,
			[]tConfig{{1, 0x70, []tIface{ifStorage}}, {2, 10, []tIface{ifHID}}},
			0, ifs("0:08/06/50"), true},
		{"superspeed 904 mA skipped", 0, ssPort,
			[]tConfig{{1, 0x71, []tIface{ifStorage}}, {2, 10, []tIface{ifHID}}},
			1, ifs("0:03/01/01"), false},
		{"skipped for power, vendor first no longer the fallback", 0, usb2Port,
			[]tConfig{{1, 0xff, []tIface{ifVendor}}, {2, 0xff, []tIface{ifStorage}}, {3, 1, []tIface{ifVendor}}},
			2, ifs("0:ff/ff/ff"), false},
		{"no configuration fits", 0, usb2Port,
			[]tConfig{{1, 0xff, []tIface{ifStorage}}, {2, 0xff, []tIface{ifHID}}},
			-1, nil, false},
		{"uac3 preferred", 0, usb2Port,
			[]tConfig{{1, 50, []tIface{ifUAC1}}, {2, 50, []tIface{ifUAC2}}, {3, 50, []tIface{ifUAC3}}},
			2, ifs("0:01/01/30"), false},
		{"audio first config without uac3", 0, usb2Port,
			[]tConfig{{1, 50, []tIface{ifUAC2}}, {2, 50, []tIface{ifUAC1}}},
			0, ifs("0:01/01/20"), false},
		// The audio rule does not end the walk: a later non-vendor
		// configuration still wins, as in the kernel.
		{"audio then storage", 0, usb2Port,
			[]tConfig{{1, 50, []tIface{ifUAC2}}, {2, 50, []tIface{ifStorage}}},
			1, ifs("0:08/06/50"), true},
		{"vendor then non-uac3 audio", 0, usb2Port,
			[]tConfig{{1, 50, []tIface{ifVendor}}, {2, 50, []tIface{ifUAC2}}},
			0, ifs("0:ff/ff/ff"), false},
		{"uac3 on a vendor-class device", 0xff, usb2Port,
			[]tConfig{{1, 50, []tIface{ifVendor}}, {2, 50, []tIface{ifUAC3}}},
			1, ifs("0:01/01/30"), false},
		// The first interface is the first in the stream, not number 0.
		{"first interface in stream order", 0, usb2Port,
			[]tConfig{{1, 50, []tIface{{1, 0, 0x08, 0x06, 0x50}, ifVendor}}, {2, 50, []tIface{ifHID}}},
			0, ifs("0:ff/ff/ff", "1:08/06/50"), true},
		{"config without interfaces is a fallback", 0, usb2Port,
			[]tConfig{{1, 50, nil}, {2, 50, []tIface{ifVendor}}},
			0, nil, false},
		// An interface without alternate setting 0 is installed with its
		// first one.
		{"interface without alt 0", 0, usb2Port,
			[]tConfig{{1, 50, []tIface{ifHID, {1, 1, 0x08, 0x06, 0x50}, {1, 2, 0xff, 0, 0}}}},
			0, ifs("0:03/01/01", "1:08/06/50"), true},
		{"alt 0 wins over an earlier alt 1", 0, usb2Port,
			[]tConfig{{1, 50, []tIface{{0, 1, 0x08, 0x06, 0x50}, {0, 0, 0xff, 0, 0}}}},
			0, ifs("0:ff/00/00"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parseDescriptors(buildDescriptors(tc.devClass, tc.cfgs...))
			if err != nil {
				t.Fatal(err)
			}
			if got := d.chooseConfig(tc.pw); got != tc.want {
				t.Errorf("chooseConfig = %d, want %d", got, tc.want)
			}
			got := d.interfaces(0, tc.pw)
			if !slices.Equal(got, tc.ifaces) {
				t.Errorf("interfaces(0) = %v, want %v", got, tc.ifaces)
			}
			dev := Device{Class: hex2(tc.devClass), Interfaces: got}
			if dev.IsStorage() != tc.storage {
				t.Errorf("IsStorage = %v, want %v", dev.IsStorage(), tc.storage)
			}
			// A configured device is judged by its active configuration.
			for i, c := range tc.cfgs {
				if got := d.interfaces(int(c.value), tc.pw); !slices.Equal(got, d.Configs[i].Interfaces) {
					t.Errorf("interfaces(%d) = %v, want configuration %d's", c.value, got, i)
				}
			}
		})
	}
}

// TestUnconfiguredDevice edits the fido2 tree: the key gets two
// configurations (vendor, then mass storage) and is left unconfigured or
// unauthorized without interface directories, and must be reported with
// the configuration the kernel will choose.
func TestUnconfiguredDevice(t *testing.T) {
	twoConfigs := buildDescriptors(0, tConfig{1, 50, []tIface{ifVendor}}, tConfig{2, 0x4b, []tIface{ifStorage}}) // 150 mA
	for _, tc := range []struct {
		name    string
		edit    func(t *testing.T, hub, key string)
		ifaces  []Interface
		storage bool
	}{
		{"configured 1 is judged by 1", func(t *testing.T, hub, key string) {}, ifs("0:ff/ff/ff"), false},
		{"unconfigured (empty)", func(t *testing.T, hub, key string) {
			writeAttr(t, key, "bConfigurationValue", []byte("\n"))
		}, ifs("0:08/06/50"), true},
		{"unconfigured (0)", func(t *testing.T, hub, key string) {
			writeAttr(t, key, "bConfigurationValue", []byte("0\n"))
		}, ifs("0:08/06/50"), true},
		{"unauthorized", func(t *testing.T, hub, key string) {
			writeAttr(t, key, "authorized", []byte("0\n"))
		}, ifs("0:08/06/50"), true},
		// The hub above says it is bus-powered only: 100 mA a port, and
		// 150 mA does not fit.
		{"unconfigured below a bus-powered hub", func(t *testing.T, hub, key string) {
			writeAttr(t, key, "bConfigurationValue", []byte("\n"))
			writeAttr(t, hub, "bmAttributes", []byte("80\n"))
		}, ifs("0:ff/ff/ff"), false},
		{"unconfigured below a self-powered hub", func(t *testing.T, hub, key string) {
			writeAttr(t, key, "bConfigurationValue", []byte("\n"))
			writeAttr(t, hub, "bmAttributes", []byte("e0\n"))
		}, ifs("0:08/06/50"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, key := malformedTree(t)
			if err := os.RemoveAll(filepath.Join(key, "1-2.3:1.0")); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(root, "bus/usb/devices/1-2.3:1.0")); err != nil {
				t.Fatal(err)
			}
			writeAttr(t, key, "descriptors", twoConfigs)
			tc.edit(t, filepath.Dir(key), key)
			fsys := NewFS(root)
			for _, get := range []func() Device{
				func() Device { return find(t, devices(t, root), "1-2.3") },
				func() Device {
					d, err := fsys.Device("1-2.3")
					if err != nil {
						t.Fatal(err)
					}
					return d
				},
			} {
				d := get()
				if !slices.Equal(d.Interfaces, tc.ifaces) || d.IsStorage() != tc.storage {
					t.Errorf("interfaces %v storage %v, want %v %v", d.Interfaces, d.IsStorage(), tc.ifaces, tc.storage)
				}
			}
		})
	}
}
