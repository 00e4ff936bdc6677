package usb

import (
	"encoding/hex"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// espDescriptors reads the descriptor arrays of
// testdata/esp-usb/cdc_descriptors.hpp (espressif/esp-usb, Apache-2.0:
// raw descriptors of real devices captured by Espressif for their CDC
// host driver tests) by name.
func espDescriptors(tb testing.TB) map[string][]byte {
	tb.Helper()
	src, err := os.ReadFile("testdata/esp-usb/cdc_descriptors.hpp")
	if err != nil {
		tb.Fatal(err)
	}
	re := regexp.MustCompile(`const uint8_t (\w+)\[\] =\s*\{([^}]*)\}`)
	out := map[string][]byte{}
	for _, m := range re.FindAllSubmatch(src, -1) {
		var b []byte
		for f := range strings.FieldsSeq(strings.ReplaceAll(string(m[2]), ",", " ")) {
			v, err := strconv.ParseUint(f, 0, 8)
			if err != nil {
				tb.Fatalf("%s: %q: %v", m[1], f, err)
			}
			b = append(b, byte(v))
		}
		out[string(m[1])] = b
	}
	if len(out) < 40 {
		tb.Fatalf("only %d arrays in cdc_descriptors.hpp", len(out))
	}
	return out
}

// sysfsDescriptors concatenates a device descriptor and configuration
// descriptors as the kernel's descriptors attribute does.
func sysfsDescriptors(tb testing.TB, esp map[string][]byte, names ...string) []byte {
	tb.Helper()
	var out []byte
	for _, n := range names {
		b, ok := esp[n]
		if !ok {
			tb.Fatalf("no array %s", n)
		}
		out = append(out, b...)
	}
	return out
}

func ifs(specs ...string) []Interface {
	var out []Interface
	for _, s := range specs {
		// "0:08/06/50"
		num, cls, _ := strings.Cut(s, ":")
		n, _ := strconv.Atoi(num)
		p := strings.Split(cls, "/")
		out = append(out, Interface{Number: n, Class: p[0], SubClass: p[1], Protocol: p[2]})
	}
	return out
}

func TestParseDescriptorsESP(t *testing.T) {
	esp := espDescriptors(t)
	for _, tc := range []struct {
		name    string
		arrays  []string
		active  int
		vidpid  string
		class   string
		configs int
		want    []Interface
	}{
		{"ftdi dual serial", []string{"ftdi_device_desc_fs_hs", "ftdi_config_desc_hs"}, 1, "0403:6010", "00/00/00", 1,
			ifs("0:ff/ff/ff", "1:ff/ff/ff")},
		{"ax88772a vendor", []string{"premium_cord_device_desc_hs", "premium_cord_config_desc_hs"}, 1, "0b95:772a", "ff/ff/00", 1,
			ifs("0:ff/ff/00")},
		// The AX88772B full-speed configuration descriptor is corrupt
		// (bNumInterfaces 0x95, bConfigurationValue 0x0b, an endpoint
		// with bmAttributes 0xa0): lengths are consistent, so it
		// parses, and active 1 matches no configuration: first one.
		{"ax88772b corrupt config", []string{"i_tec_device_desc_fs", "i_tec_config_desc_fs"}, 1, "0b95:772b", "ff/ff/00", 1,
			ifs("0:ff/ff/00")},
		{"rtl8153 config 1 vendor", []string{"axagon_device_desc_fs_hs", "axagon_config_desc_hs_1", "axagon_config_desc_hs_2"}, 1, "0bda:8153", "00/00/00", 2,
			ifs("0:ff/ff/00")},
		// Configuration 2 is CDC-ECM: interface 1 has alternate
		// settings 0 and 1, both 0a/00/00; only one is kept.
		{"rtl8153 config 2 cdc-ecm", []string{"axagon_device_desc_fs_hs", "axagon_config_desc_hs_1", "axagon_config_desc_hs_2"}, 2, "0bda:8153", "00/00/00", 2,
			ifs("0:02/06/00", "1:0a/00/00")},
		// Unconfigured: usb_choose_configuration passes over the vendor
		// configuration 1 for the CDC-ECM configuration 2.
		{"rtl8153 unconfigured", []string{"axagon_device_desc_fs_hs", "axagon_config_desc_hs_1", "axagon_config_desc_hs_2"}, 0, "0bda:8153", "00/00/00", 2,
			ifs("0:02/06/00", "1:0a/00/00")},
		// CDC + mass storage composite behind an interface association.
		{"tinyusb cdc+msc", []string{"tusb_composite_device_desc", "tusb_composite_config_desc"}, 1, "303a:4001", "ef/02/01", 1,
			ifs("0:02/02/00", "1:0a/00/00", "2:08/06/50")},
		{"tinyusb ncm alt settings", []string{"tusb_ncm_device_desc", "tusb_ncm_config_desc"}, 1, "303a:4000", "00/00/00", 1,
			ifs("0:02/0d/00", "1:0a/00/01")},
		{"device descriptor only", []string{"cp210x_device_desc"}, 1, "10c4:ea60", "00/00/00", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parseDescriptors(sysfsDescriptors(t, esp, tc.arrays...))
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if got := d.VendorID + ":" + d.ProductID; got != tc.vidpid {
				t.Errorf("ids %s, want %s", got, tc.vidpid)
			}
			if got := d.Class + "/" + d.SubClass + "/" + d.Protocol; got != tc.class {
				t.Errorf("class %s, want %s", got, tc.class)
			}
			if len(d.Configs) != tc.configs {
				t.Errorf("%d configs, want %d", len(d.Configs), tc.configs)
			}
			if got := d.interfaces(tc.active, usb2Port); !slices.Equal(got, tc.want) {
				t.Errorf("interfaces\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// Every device and configuration pair of the header parses without error.
func TestParseDescriptorsAllESP(t *testing.T) {
	esp := espDescriptors(t)
	n := 0
	for name, cfg := range esp {
		i := strings.Index(name, "_config_desc")
		if i < 0 {
			continue
		}
		var dev []byte
		for devName, b := range esp {
			if strings.HasPrefix(devName, name[:i]+"_device_desc") {
				dev = b
				break
			}
		}
		if dev == nil {
			t.Errorf("%s: no device descriptor", name)
			continue
		}
		d, err := parseDescriptors(append(slices.Clone(dev), cfg...))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(d.Configs) != 1 || len(d.Configs[0].Interfaces) == 0 {
			t.Errorf("%s: %d configs, %v", name, len(d.Configs), d.Configs)
		}
		n++
	}
	if n < 20 {
		t.Errorf("only %d configurations tried", n)
	}
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// The Kinesis keyboard from umockdev's usbkbd recording.
const kbdDescriptors = "1201100100000008F305070020030000000109023B00020100A020090400000103010100092100012101223F000705810308000809040100010300000009210001000122640007058203040008"

func TestParseDescriptorsMalformed(t *testing.T) {
	kbd := mustHex(t, kbdDescriptors)
	dev := kbd[:18]
	cfg := kbd[18:]
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	set := func(b []byte, i int, v byte) []byte { b = slices.Clone(b); b[i] = v; return b }
	for _, tc := range []struct {
		name    string
		in      []byte
		wantErr string // substring; "" for none
		want    []Interface
	}{
		{"kinesis keyboard", kbd, "", ifs("0:03/01/01", "1:03/00/00")},
		{"empty", nil, "device descriptor: 0 bytes", nil},
		{"17 bytes", dev[:17], "device descriptor: 17 bytes", nil},
		{"not a device descriptor", set(dev, 1, 2), "type 0x02", nil},
		{"device only", dev, "", nil},
		{"trailing byte", cat(kbd, []byte{0}), "config descriptor at byte 77: 1 bytes left", ifs("0:03/01/01", "1:03/00/00")},
		{"config of wrong type", cat(dev, set(cfg, 1, 4)), "config descriptor at byte 18: type 0x04", nil},
		{"wTotalLength below 9", cat(dev, set(cfg, 2, 3)), "wTotalLength 3 < 9", nil},
		{"config truncated", kbd[:60], "wTotalLength 59, only 42 bytes left", ifs("0:03/01/01")},
		{"zero bLength inside", cat(dev, set(cfg, 9+9+9, 0)), "bLength 0", ifs("0:03/01/01")},
		{"bLength past the end", cat(dev, set(cfg, 9+9+9+7+9, 0xff)), "bLength 255", ifs("0:03/01/01", "1:03/00/00")},
		{"short interface descriptor ignored", cat(dev, set(set(cfg, 9, 5), 9+5, 4)), "", ifs("1:03/00/00")},
		// Interface 0 has only alternate setting 1: usb_set_configuration
		// installs it (the first listed), and drivers match it.
		{"alternate setting 1 only", cat(dev, set(cfg, 9+3, 1)), "", ifs("0:03/01/01", "1:03/00/00")},
		{"duplicate interface number", cat(dev, set(cfg, 9+9+9+7+2, 0)), "", ifs("0:03/01/01")},
		{"config bLength below 9", cat(dev, set(cfg, 0, 2)), "", ifs("0:03/01/01", "1:03/00/00")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parseDescriptors(tc.in)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if got := d.interfaces(1, usb2Port); !slices.Equal(got, tc.want) {
				t.Errorf("interfaces\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func FuzzParseDescriptors(f *testing.F) {
	esp := espDescriptors(f)
	for _, pair := range [][]string{
		{"i_tec_device_desc_fs", "i_tec_config_desc_fs"},
		{"axagon_device_desc_fs_hs", "axagon_config_desc_hs_1", "axagon_config_desc_hs_2"},
		{"tusb_composite_device_desc", "tusb_composite_config_desc"},
		{"tusb_midi_device_desc", "tusb_midi_config_desc"},
	} {
		f.Add(sysfsDescriptors(f, esp, pair...), 1)
	}
	f.Add(mustHex(f, kbdDescriptors), 1)
	f.Add(mustHex(f, kbdDescriptors)[:40], 0)
	f.Fuzz(func(t *testing.T, b []byte, active int) {
		d, err := parseDescriptors(b)
		if err == nil && len(b) < 18 {
			t.Fatal("short input accepted")
		}
		for _, pw := range []busPower{usb2Port, usb2BusPowered, ssPort} {
			if i := d.chooseConfig(pw); i < -1 || i >= len(d.Configs) {
				t.Fatalf("chooseConfig = %d of %d", i, len(d.Configs))
			}
		}
		ifaces := d.interfaces(active, usb2Port)
		for i, in := range ifaces {
			if i > 0 && ifaces[i-1].Number >= in.Number {
				t.Fatalf("interfaces not sorted and unique: %v", ifaces)
			}
			for _, s := range []string{in.Class, in.SubClass, in.Protocol} {
				if len(s) != 2 || strings.Trim(s, "0123456789abcdef") != "" {
					t.Fatalf("bad code %q", s)
				}
			}
		}
		if d.VendorID != "" && len(d.VendorID) != 4 {
			t.Fatalf("vendor %q", d.VendorID)
		}
	})
}

func BenchmarkParseDescriptors(b *testing.B) {
	in := mustHex(b, kbdDescriptors)
	b.ReportAllocs()
	for b.Loop() {
		d, _ := parseDescriptors(in)
		_ = d.interfaces(1, usb2Port)
	}
}
