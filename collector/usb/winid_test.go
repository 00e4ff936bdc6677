package usb

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mamori-agent/mamori/internal/safe"
)

// Where the real strings below come from:
//
//   [ms-std]   Microsoft, "Standard USB identifiers" (learn.microsoft.com,
//              windows-hardware/drivers/install/standard-usb-identifiers):
//              the forms USB\VID_v&PID_d&REV_r, USB\VID_v&PID_d&MI_z,
//              USB\CLASS_c&SUBCLASS_s&PROT_p, USB\COMPOSITE.
//   [ms-desc]  Microsoft, "USB device descriptors" (usbcon): the ids of a
//              composite device 045E:0840, COMPAT_VID_045E forms included.
//   [ms-dc]    Microsoft Defender for Endpoint device control docs:
//              InstancePathId USBSTOR\DISK&VEN_GENERIC&PROD_FLASH_DISK&REV_8.07\8735B611&0.
//   [hub]      the USB hub driver's id generation (idstring.c of
//              Microsoft's published usbhub sources): DevClass ids for
//              composite devices, Class ids from the first interface.
//   [libusb09] libusb-devel mailing list, 2009-07-25: registry key
//              Enum\USB\Vid_0403&Pid_6010\FTS3IQH4 and its SymbolicName
//              \??\USB#Vid_0403&Pid_6010#FTS3IQH4#{a5dcbf10-...}.
//   [stlink]   libusb's debug log quoted in a public STM32 "Blue Pill"
//              README (st-flash): USB\VID_174F&PID_1176\5&B3F4C82&0&7,
//              USB\VID_8087&PID_0AAA\5&B3F4C82&0&10,
//              USB\ROOT_HUB30\4&1D2E5277&0&0,
//              USB\VID_174F&PID_1176&MI_00\6&29E09720&0&0000.
//   [jtag]     a public hardware-check note listing JTAG cables:
//              parents USB\ROOT_HUB30\5&21d782f4&0&0 (lower-case hex) and
//              USB\VID_05E3&PID_0610\6&1cb538dd&0&2.
//   [uf2]      a public UF2 bootloader note: a USBSTOR id whose instance
//              part is generated,
//              USBSTOR\DISK&VEN_YDKB&PROD_UF2_BOOTLOADER&REV_42.0\7&2DBE8C1F&0&4835574E0700005730001000&0.
//   [jetflash] a public forensics write-up's `reg query` of a Transcend
//              JetFlash: HardwareID and CompatibleIDs as REG_MULTI_SZ.
//   [vbtm]     a public memory-forensics CTF write-up: a Verbatim
//              "Store 'n' Go" (hardware id USBSTOR\DiskVBTM____Store_'n'_Go____1.04,
//              serial 08F0B550E0F29A32&0): apostrophes in an id.
//   [brief]    the examples of issue 10 (SanDisk 0781:5567, Logitech
//              receiver 046D:C52B).

func strp(s string) *string { return &s }

func TestParseInstanceID(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    InstanceID
		wantErr string
	}{
		{in: `USB\VID_0781&PID_5567\4C530001230719117094`, want: InstanceID{"USB", "VID_0781&PID_5567", "4C530001230719117094"}},                                     // [brief]
		{in: `usb\Vid_0403&Pid_6010\FTS3IQH4`, want: InstanceID{"USB", "Vid_0403&Pid_6010", "FTS3IQH4"}},                                                             // [libusb09], enumerator lower-cased here
		{in: `USBSTOR\DISK&VEN_GENERIC&PROD_FLASH_DISK&REV_8.07\8735B611&0`, want: InstanceID{"USBSTOR", "DISK&VEN_GENERIC&PROD_FLASH_DISK&REV_8.07", "8735B611&0"}}, // [ms-dc]
		{in: `STORAGE\Volume\_??_USBSTOR#Disk&Ven_SanDisk&Prod_Ultra&Rev_1.00#4C530001230719117094&0#{53f56307-b6bf-11d0-94f2-00a0c91efb8b}`,
			want: InstanceID{"STORAGE", "Volume", "_??_USBSTOR#Disk&Ven_SanDisk&Prod_Ultra&Rev_1.00#4C530001230719117094&0#{53f56307-b6bf-11d0-94f2-00a0c91efb8b}"}},
		{in: "", wantErr: "empty"},
		{in: `USB\VID_0781&PID_5567`, wantErr: "2 parts"},
		{in: `USB\VID_0781&PID_5567\A\B`, wantErr: "4 parts"},
		{in: `USB\\4C53`, wantErr: "empty device id"},
		{in: `\VID_0781&PID_5567\4C53`, wantErr: "empty enumerator"},
		{in: `USB\VID_0781&PID_5567\`, wantErr: "empty instance"},
		{in: "USB\\VID_0781&PID_5567\\4C53\x1b[31m", wantErr: "control character U+001B"},
		{in: "USB\\VID_0781&PID_5567\\4C53\xff", wantErr: "not valid UTF-8"},
		{in: `USB\VID_0781&PID_5567\` + strings.Repeat("A", 180), wantErr: "want fewer than 200"},
		{in: `USB\VID_0781&PID_5567\` + strings.Repeat("é", 180), wantErr: "want fewer than 200"},
		{in: `US#B\VID_0781&PID_5567\4C53`, wantErr: "holds / # or &"},
	} {
		got, err := ParseInstanceID(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrWinID) {
				t.Errorf("ParseInstanceID(%q) = %+v, %v; want error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseInstanceID(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if s := got.String(); !strings.EqualFold(s, tc.in) {
			t.Errorf("String() = %q, want %q up to case", s, tc.in)
		}
	}
}

func TestParseUSBInstanceID(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    USBInstance
		wantErr string
	}{
		// A device with a serial: the instance part is the serial.
		{in: `USB\VID_0781&PID_5567\4C530001230719117094`, // [brief]
			want: USBInstance{VendorID: "0781", ProductID: "5567", Interface: -1, Serial: strp("4C530001230719117094"), Instance: "4C530001230719117094"}},
		{in: `USB\Vid_0403&Pid_6010\FTS3IQH4`, // [libusb09]: older Windows wrote Vid_/Pid_
			want: USBInstance{VendorID: "0403", ProductID: "6010", Interface: -1, Serial: strp("FTS3IQH4"), Instance: "FTS3IQH4"}},
		// Devices without one: a generated part.
		{in: `USB\VID_174F&PID_1176\5&B3F4C82&0&7`, // [stlink]
			want: USBInstance{VendorID: "174f", ProductID: "1176", Interface: -1, Instance: "5&B3F4C82&0&7"}},
		{in: `USB\VID_8087&PID_0AAA\5&B3F4C82&0&10`, // [stlink]
			want: USBInstance{VendorID: "8087", ProductID: "0aaa", Interface: -1, Instance: "5&B3F4C82&0&10"}},
		{in: `USB\VID_05E3&PID_0610\6&1cb538dd&0&2`, // [jtag]: a hub, lower-case hex
			want: USBInstance{VendorID: "05e3", ProductID: "0610", Interface: -1, Instance: "6&1cb538dd&0&2"}},
		// Interfaces of composite devices.
		{in: `USB\VID_046D&PID_C52B&MI_01\7&2A0B5C5&0&0001`, // [brief]
			want: USBInstance{VendorID: "046d", ProductID: "c52b", Interface: 1, Instance: "7&2A0B5C5&0&0001"}},
		{in: `USB\VID_174F&PID_1176&MI_00\6&29E09720&0&0000`, // [stlink]
			want: USBInstance{VendorID: "174f", ProductID: "1176", Interface: 0, Instance: "6&29E09720&0&0000"}},
		{in: `USB\VID_1234&PID_5678&MI_0A\7&1&0&000A`,
			want: USBInstance{VendorID: "1234", ProductID: "5678", Interface: 10, Instance: "7&1&0&000A"}},
		// Root hubs.
		{in: `USB\ROOT_HUB30\4&1D2E5277&0&0`, want: USBInstance{RootHub: true, Interface: -1, Instance: "4&1D2E5277&0&0"}}, // [stlink]
		{in: `USB\ROOT_HUB30\5&21d782f4&0&0`, want: USBInstance{RootHub: true, Interface: -1, Instance: "5&21d782f4&0&0"}}, // [jtag]
		{in: `USB\ROOT_HUB20\4&2A8DF6B&0`, want: USBInstance{RootHub: true, Interface: -1, Instance: "4&2A8DF6B&0"}},
		// Odd characters a device can put in its serial: kept, sanitised.
		{in: "USB\\VID_0781&PID_5567\\S/N:äö#1", want: USBInstance{VendorID: "0781", ProductID: "5567", Interface: -1, Serial: strp("S/N:äö#1"), Instance: "S/N:äö#1"}},
		{in: "USB\\VID_0781&PID_5567\\AB\u202eCD", want: USBInstance{VendorID: "0781", ProductID: "5567", Interface: -1, Serial: strp(`AB\u{202e}CD`), Instance: `AB\u{202e}CD`}},
		{in: `USB\VID_0781&PID_5567\back\slash`, wantErr: "4 parts"},
		// Unknown fields are ignored.
		{in: `USB\VID_0781&PID_5567&XYZ_1\SERIAL`, want: USBInstance{VendorID: "0781", ProductID: "5567", Interface: -1, Serial: strp("SERIAL"), Instance: "SERIAL"}},
		// Errors.
		{in: `USBSTOR\Disk&Ven_SanDisk&Prod_Ultra&Rev_1.00\4C53&0`, wantErr: `enumerator "USBSTOR", want USB`},
		{in: `USB\PID_5567\4C53`, wantErr: "no VID_ field"},
		{in: `USB\VID_0781\4C53`, wantErr: "no PID_ field"},
		{in: `USB\VID_781&PID_5567\4C53`, wantErr: `VID_"781": want 4 hex digits`},
		{in: `USB\VID_078G&PID_5567\4C53`, wantErr: `VID_"078G": want 4 hex digits`},
		{in: `USB\VID_0781&PID_5567&MI_1\4C53`, wantErr: `MI_"1": want 2 hex digits`},
		{in: `USB\VID_0781&VID_0782&PID_5567\4C53`, wantErr: `field VID_ twice`},
		{in: `USB\VID_0781&PID_5567&MS_A&MS_B\4C53`, want: USBInstance{VendorID: "0781", ProductID: "5567", Interface: -1, Serial: strp("4C53"), Instance: "4C53"}},
	} {
		got, err := ParseUSBInstanceID(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrWinID) {
				t.Errorf("ParseUSBInstanceID(%q) = %+v, %v; want error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseUSBInstanceID(%q) =\n  %+v, %v\nwant\n  %+v", tc.in, show(got), err, show(tc.want))
		}
	}
}

// show prints a USBInstance with its serial dereferenced.
func show(u USBInstance) string {
	serial := deref(u.Serial)
	u.Serial = nil
	return fmt.Sprintf("%+v serial=%s", u, serial)
}

func TestParseUSBStorInstanceID(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    USBStorInstance
		wantErr string
	}{
		{in: `USBSTOR\Disk&Ven_SanDisk&Prod_Ultra&Rev_1.00\4C530001230719117094&0`, // [brief]
			want: USBStorInstance{Type: "Disk", Vendor: "SanDisk", Product: "Ultra", Revision: "1.00", Serial: strp("4C530001230719117094"), LUN: 0, Instance: "4C530001230719117094&0"}},
		{in: `USBSTOR\DISK&VEN_GENERIC&PROD_FLASH_DISK&REV_8.07\8735B611&0`, // [ms-dc]
			want: USBStorInstance{Type: "DISK", Vendor: "GENERIC", Product: "FLASH_DISK", Revision: "8.07", Serial: strp("8735B611"), Instance: "8735B611&0"}},
		{in: `USBSTOR\DISK&VEN_YDKB&PROD_UF2_BOOTLOADER&REV_42.0\7&2DBE8C1F&0&4835574E0700005730001000&0`, // [uf2]: generated
			want: USBStorInstance{Type: "DISK", Vendor: "YDKB", Product: "UF2_BOOTLOADER", Revision: "42.0", Instance: "7&2DBE8C1F&0&4835574E0700005730001000&0"}},
		{in: `USBSTOR\Disk&Ven_VBTM&Prod_Store_'n'_Go&Rev_1.04\08F0B550E0F29A32&0`, // [vbtm]: apostrophes
			want: USBStorInstance{Type: "Disk", Vendor: "VBTM", Product: "Store_'n'_Go", Revision: "1.04", Serial: strp("08F0B550E0F29A32"), Instance: "08F0B550E0F29A32&0"}},
		// A card reader's second slot.
		{in: `USBSTOR\Disk&Ven_Generic-&Prod_SD/MMC&Rev_1.00\000000000819&1`,
			want: USBStorInstance{Type: "Disk", Vendor: "Generic-", Product: "SD/MMC", Revision: "1.00", Serial: strp("000000000819"), LUN: 1, Instance: "000000000819&1"}},
		// A CD-ROM with no revision.
		{in: `USBSTOR\CdRom&Ven_HL-DT-ST&Prod_DVDRAM_GP57EB40\KZ3B9GE0011&0`,
			want: USBStorInstance{Type: "CdRom", Vendor: "HL-DT-ST", Product: "DVDRAM_GP57EB40", Serial: strp("KZ3B9GE0011"), Instance: "KZ3B9GE0011&0"}},
		// A forged product string holding "&" and "Ven_": it continues the product.
		{in: `USBSTOR\Disk&Ven_Evil&Prod_A&B&Ven_X&Rev_1.00\SER&0`,
			want: USBStorInstance{Type: "Disk", Vendor: "Evil", Product: "A&B&Ven_X", Revision: "1.00", Serial: strp("SER"), Instance: "SER&0"}},
		// An empty serial before the LUN: none.
		{in: `USBSTOR\Disk&Ven_A&Prod_B&Rev_1\&0`, want: USBStorInstance{Type: "Disk", Vendor: "A", Product: "B", Revision: "1", Instance: "&0"}},
		{in: `USB\VID_0781&PID_5567\4C53`, wantErr: `enumerator "USB", want USBSTOR`},
		{in: `USBSTOR\Ven_SanDisk&Prod_Ultra\4C53&0`, wantErr: "no device type"},
		{in: `USBSTOR\Disk&Prod_Ultra\4C53&0`, wantErr: `field "Prod_Ultra" before Ven_`},
		{in: `USBSTOR\Disk\4C53&0`, wantErr: "no Ven_ field"},
		{in: `USBSTOR\Disk&Ven_A&Prod_B\4C53`, wantErr: "no &LUN suffix"},
		{in: `USBSTOR\Disk&Ven_A&Prod_B\4C53&x`, wantErr: `LUN "x"`},
		{in: `USBSTOR\Disk&Ven_A&Prod_B\4C53&256`, wantErr: `LUN "256"`},
		{in: `USBSTOR\Disk&Ven_A&Prod_B\4C53&+1`, wantErr: `LUN "+1"`},
	} {
		got, err := ParseUSBStorInstanceID(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrWinID) {
				t.Errorf("ParseUSBStorInstanceID(%q) = %+v, %v; want error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseUSBStorInstanceID(%q) =\n  %+v (serial %v), %v\nwant\n  %+v (serial %v)", tc.in, got, deref(got.Serial), err, tc.want, deref(tc.want.Serial))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestParseUSBHardwareIDs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ids     []string
		want    USBHardwareIDs
		wantErr string
	}{
		{name: "mass storage, single function [ms-std][brief]",
			ids:  []string{`USB\VID_0781&PID_5567&REV_0100`, `USB\VID_0781&PID_5567`, `USB\Class_08&SubClass_06&Prot_50`, `USB\Class_08&SubClass_06`, `USB\Class_08`},
			want: USBHardwareIDs{VendorID: "0781", ProductID: "5567", Revision: "0100", Interface: -1, Class: "08", SubClass: "06", Protocol: "50"}},
		{name: "composite parent [hub][ms-desc]",
			ids: []string{`USB\VID_045E&PID_0840&REV_0215`, `USB\VID_045E&PID_0840`,
				`USB\COMPAT_VID_045E&DevClass_00&SubClass_00&Prot00`, `USB\COMPAT_VID_045E&DevClass_00&SubClass_00`, `USB\COMPAT_VID_045E&DevClass_00`,
				`USB\DevClass_00&SubClass_00&Prot_00`, `USB\DevClass_00&SubClass_00`, `USB\DevClass_00`, `USB\COMPOSITE`},
			want: USBHardwareIDs{VendorID: "045e", ProductID: "0840", Revision: "0215", Interface: -1, DevClass: "00", DevSubClass: "00", DevProtocol: "00", Composite: true}},
		{name: "interface of a composite device [ms-std][brief]",
			ids:  []string{`USB\VID_046D&PID_C52B&REV_1211&MI_01`, `USB\VID_046D&PID_C52B&MI_01`, `USB\Class_03&SubClass_00&Prot_00`, `USB\Class_03&SubClass_00`, `USB\Class_03`},
			want: USBHardwareIDs{VendorID: "046d", ProductID: "c52b", Revision: "1211", Interface: 1, Class: "03", SubClass: "00", Protocol: "00"}},
		{name: "MS OS descriptor compatible ids are ignored [hub]",
			ids:  []string{`USB\VID_1234&PID_5678&REV_0001`, `USB\MS_COMP_WINUSB&MS_SUBCOMP_`, `USB\MS_COMP_WINUSB`, `USB\Class_FF&SubClass_00&Prot_00`},
			want: USBHardwareIDs{VendorID: "1234", ProductID: "5678", Revision: "0001", Interface: -1, Class: "ff", SubClass: "00", Protocol: "00"}},
		{name: "USBSTOR ids of other enumerators are ignored [jetflash]",
			ids: []string{`USBSTOR\DiskJetFlashTranscend_16GB__8.07`, `USBSTOR\DiskJetFlashTranscend_16GB__`, `USBSTOR\DiskJetFlash`,
				`USBSTOR\JetFlashTranscend_16GB__8`, `JetFlashTranscend_16GB__8`, `USBSTOR\GenDisk`, `GenDisk`, `USBSTOR\Disk`, `USBSTOR\RAW`},
			want: USBHardwareIDs{Interface: -1}},
		{name: "hub of the USB 3 kind",
			ids:  []string{`USB\VID_05E3&PID_0610&REV_9223`, `USB\VID_05E3&PID_0610`, `USB\USB20_HUB`, `USB\Class_09&SubClass_00&Prot_02`, `USB\Class_09&SubClass_00`, `USB\Class_09`},
			want: USBHardwareIDs{VendorID: "05e3", ProductID: "0610", Revision: "9223", Interface: -1, Class: "09", SubClass: "00", Protocol: "02"}},
		{name: "the first id holding a field wins",
			ids:  []string{`USB\Class_08&SubClass_06&Prot_50`, `USB\Class_03`},
			want: USBHardwareIDs{Interface: -1, Class: "08", SubClass: "06", Protocol: "50"}},
		{name: "a malformed id is left out and named",
			ids:     []string{`USB\VID_0781&PID_55G7&REV_0100`, `USB\VID_0781&PID_5567`, `USB\Class_8&SubClass_06`, `USB\Class_08`},
			want:    USBHardwareIDs{VendorID: "0781", ProductID: "5567", Interface: -1, Class: "08"},
			wantErr: `"USB\\VID_0781&PID_55G7&REV_0100": PID_"55G7": want 4 hex digits`},
		{name: "empty", ids: nil, want: USBHardwareIDs{Interface: -1}},
		{name: "too long", ids: []string{`USB\VID_0781&PID_5567&` + strings.Repeat("X", 2000)}, want: USBHardwareIDs{Interface: -1}, wantErr: "want at most 1024"},
	} {
		got, err := ParseUSBHardwareIDs(tc.ids)
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: error %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrWinID)):
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestParseInterfacePath(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    InterfacePath
		wantErr string
	}{
		{in: `\\?\USB#VID_0781&PID_5567#4C530001230719117094#{a5dcbf10-6530-11d2-901f-00c04fb951ed}`,
			want: InterfacePath{InstanceID: `USB\VID_0781&PID_5567\4C530001230719117094`, Class: "{a5dcbf10-6530-11d2-901f-00c04fb951ed}"}},
		{in: `\??\USB#Vid_0403&Pid_6010#FTS3IQH4#{a5dcbf10-6530-11d2-901f-00c04fb951ed}`, // [libusb09]
			want: InterfacePath{InstanceID: `USB\Vid_0403&Pid_6010\FTS3IQH4`, Class: "{a5dcbf10-6530-11d2-901f-00c04fb951ed}"}},
		{in: `\\?\usb#vid_046d&pid_c52b#5&1e2a5b3c&0&2#{A5DCBF10-6530-11D2-901F-00C04FB951ED}`, // lower-cased by Windows
			want: InterfacePath{InstanceID: `USB\vid_046d&pid_c52b\5&1e2a5b3c&0&2`, Class: "{a5dcbf10-6530-11d2-901f-00c04fb951ed}"}},
		// A volume: the instance part holds its disk's path, "#" and all.
		{in: `\\?\STORAGE#Volume#_??_USBSTOR#Disk&Ven_SanDisk&Prod_Ultra&Rev_1.00#4C530001230719117094&0#{53f56307-b6bf-11d0-94f2-00a0c91efb8b}#{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}`,
			want: InterfacePath{InstanceID: `STORAGE\Volume\_??_USBSTOR#Disk&Ven_SanDisk&Prod_Ultra&Rev_1.00#4C530001230719117094&0#{53f56307-b6bf-11d0-94f2-00a0c91efb8b}`, Class: "{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}"}},
		// A reference string after the class.
		{in: `\\?\SWD#MMDEVAPI#{0.0.0.00000000}.{f2c1}#{e6327cad-dcec-4949-ae8a-991e976a79d2}\wave`,
			want: InterfacePath{InstanceID: `SWD\MMDEVAPI\{0.0.0.00000000}.{f2c1}`, Class: "{e6327cad-dcec-4949-ae8a-991e976a79d2}"}},
		{in: `\\?\ROOT#MEDIA#0000#{e6327cad-dcec-4949-ae8a-991e976a79d2}\wave`,
			want: InterfacePath{InstanceID: `ROOT\MEDIA\0000`, Class: "{e6327cad-dcec-4949-ae8a-991e976a79d2}"}},
		{in: `USB#VID_0781&PID_5567#4C53#{a5dcbf10-6530-11d2-901f-00c04fb951ed}`, wantErr: `no \\?\ prefix`},
		{in: `\\?\USB#VID_0781&PID_5567#4C53`, wantErr: "is not a {GUID}"},
		{in: `\\?\USB-VID_0781`, wantErr: "no #{class GUID}"},
		{in: `\\?\USB#VID_0781&PID_5567#{a5dcbf10-6530-11d2-901f-00c04fb951ed}`, wantErr: "want enumerator#device#instance"},
		{in: "\\\\?\\USB#VID_0781&PID_5567#4C\x0053#{a5dcbf10-6530-11d2-901f-00c04fb951ed}", wantErr: "control character U+0000"},
	} {
		got, err := ParseInterfacePath(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrWinID) {
				t.Errorf("ParseInterfacePath(%q) = %+v, %v; want error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseInterfacePath(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// utf16le encodes s as UTF-16LE with no terminator.
func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

func TestParseMultiSZ(t *testing.T) {
	nul := []byte{0, 0}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []string
		wantErr string
	}{
		// [jetflash]: the CompatibleIDs value as the registry holds it.
		{name: "three strings", in: cat(utf16le(`USBSTOR\Disk`), nul, utf16le(`USBSTOR\RAW`), nul, utf16le("GenDisk"), nul, nul),
			want: []string{`USBSTOR\Disk`, `USBSTOR\RAW`, "GenDisk"}},
		{name: "empty list", in: nul, want: []string{}},
		{name: "nothing", in: nil, want: []string{}},
		{name: "no final NUL", in: cat(utf16le("A"), nul, utf16le("B"), nul), want: []string{"A", "B"}},
		{name: "no NUL at all", in: utf16le("AB"), want: []string{"AB"}},
		{name: "stops at the empty string", in: cat(utf16le("A"), nul, nul, utf16le("hidden"), nul, nul), want: []string{"A"}},
		{name: "non-ASCII and a surrogate pair", in: cat(utf16le("日本語"), nul, utf16le("😀"), nul, nul), want: []string{"日本語", "😀"}},
		{name: "unpaired surrogates stay apart", in: []byte{0x00, 0xd8, 0x41, 0x00, 0, 0, 0x01, 0xdc, 0, 0, 0, 0},
			want: []string{"\xed\xa0\x80A", "\xed\xb0\x81"}},
		{name: "odd length", in: []byte{'A', 0, 'B'}, wantErr: "odd"},
		{name: "too long", in: make([]byte, 70000), wantErr: "want at most 65536"},
	} {
		got, err := ParseMultiSZ(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrWinID) {
				t.Errorf("%s: %q, %v; want error with %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	// The WTF-8 of unpaired surrogates shows as escapes, not as U+FFFD.
	if got := safe.String("\xed\xa0\x80A"); got != `\xed\xa0\x80A` {
		t.Errorf("safe.String of a lone surrogate = %q", got)
	}
}

func TestParseSZ(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want string
		err  bool
	}{
		{in: append(utf16le("SanDisk Cruzer Blade USB Device"), 0, 0), want: "SanDisk Cruzer Blade USB Device"},
		{in: utf16le("no terminator"), want: "no terminator"},
		{in: append(append(utf16le("A"), 0, 0), utf16le("B")...), want: "A"},
		{in: nil, want: ""},
		{in: []byte{1}, err: true},
	} {
		got, err := ParseSZ(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseSZ(% x) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestEncodeMultiSZRoundTrip(t *testing.T) {
	in := []string{`USB\VID_0781&PID_5567&REV_0100`, "日本語", "\xed\xa0\x80x"}
	got, err := ParseMultiSZ(EncodeMultiSZ(in))
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip: %q, %v; want %q", got, err, in)
	}
}

// checkSanitised fails t when s is not what safe.String leaves: valid
// UTF-8 with no control characters.
func checkSanitised(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		t.Fatalf("%s %q is not sanitised", what, s)
	}
}

func FuzzParseInstanceID(f *testing.F) {
	for _, s := range []string{
		`USB\VID_0781&PID_5567\4C530001230719117094`,
		`USB\VID_046D&PID_C52B&MI_01\7&2A0B5C5&0&0001`,
		`USB\ROOT_HUB30\4&1D2E5277&0&0`,
		`USBSTOR\Disk&Ven_SanDisk&Prod_Ultra&Rev_1.00\4C530001230719117094&0`,
		`USBSTOR\DISK&VEN_YDKB&PROD_UF2_BOOTLOADER&REV_42.0\7&2DBE8C1F&0&4835574E0700005730001000&0`,
		"USB\\VID_0781&PID_5567\\AB\u202eCD",
		`\\?\USB#VID_0781&PID_5567#4C53#{a5dcbf10-6530-11d2-901f-00c04fb951ed}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := ParseInstanceID(s); err == nil {
			if !strings.EqualFold(id.String(), s) {
				t.Fatalf("String() = %q, want %q up to case", id.String(), s)
			}
			if id.Enumerator == "" || id.Device == "" || id.Instance == "" {
				t.Fatalf("empty part in %+v", id)
			}
		} else if !errors.Is(err, ErrWinID) {
			t.Fatalf("error %v does not wrap ErrWinID", err)
		}
		if u, err := ParseUSBInstanceID(s); err == nil {
			checkSanitised(t, "instance", u.Instance)
			if !u.RootHub && (len(u.VendorID) != 4 || len(u.ProductID) != 4 || strings.ToLower(u.VendorID) != u.VendorID) {
				t.Fatalf("ids %q:%q", u.VendorID, u.ProductID)
			}
			if u.Serial != nil {
				checkSanitised(t, "serial", *u.Serial)
				if strings.Contains(*u.Serial, "&") || u.Interface >= 0 || u.RootHub {
					t.Fatalf("serial %q of a generated or interface id", *u.Serial)
				}
			}
			if u.Interface > 255 || u.Interface < -1 {
				t.Fatalf("interface %d", u.Interface)
			}
		}
		if st, err := ParseUSBStorInstanceID(s); err == nil {
			for _, v := range []string{st.Type, st.Vendor, st.Product, st.Revision, st.Instance} {
				checkSanitised(t, "USBSTOR field", v)
			}
			if st.Serial != nil && (*st.Serial == "" || strings.Contains(*st.Serial, "&")) {
				t.Fatalf("serial %q", *st.Serial)
			}
			if st.LUN < 0 || st.LUN > 255 {
				t.Fatalf("LUN %d", st.LUN)
			}
		}
		if p, err := ParseInterfacePath(s); err == nil {
			if _, err := ParseInstanceID(p.InstanceID); err != nil {
				t.Fatalf("instance id %q of a parsed path does not parse: %v", p.InstanceID, err)
			}
			if !isGUIDString(p.Class) || strings.ToLower(p.Class) != p.Class {
				t.Fatalf("class %q", p.Class)
			}
		}
	})
}

func FuzzParseHardwareIDs(f *testing.F) {
	for _, s := range []string{
		"USB\\VID_0781&PID_5567&REV_0100\x00USB\\VID_0781&PID_5567\x00USB\\Class_08&SubClass_06&Prot_50",
		"USB\\DevClass_00&SubClass_00&Prot_00\x00USB\\COMPOSITE",
		"USB\\VID_046D&PID_C52B&REV_1211&MI_01\x00USB\\Class_03&SubClass_00&Prot_00",
		"USB\\COMPAT_VID_045E&DevClass_00&SubClass_00&Prot00",
		"USBSTOR\\DiskVBTM____Store_'n'_Go____1.04\x00GenDisk",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := strings.Split(s, "\x00")
		h, err := ParseUSBHardwareIDs(ids)
		if err != nil && !errors.Is(err, ErrWinID) {
			t.Fatalf("error %v does not wrap ErrWinID", err)
		}
		for _, v := range []struct {
			s string
			n int
		}{{h.VendorID, 4}, {h.ProductID, 4}, {h.Revision, 4}, {h.Class, 2}, {h.SubClass, 2}, {h.Protocol, 2}, {h.DevClass, 2}, {h.DevSubClass, 2}, {h.DevProtocol, 2}} {
			if v.s != "" && (len(v.s) != v.n || !isHex(v.s) || strings.ToLower(v.s) != v.s) {
				t.Fatalf("field %q: want %d lower-case hex digits", v.s, v.n)
			}
		}
		if h.Interface < -1 || h.Interface > 255 {
			t.Fatalf("interface %d", h.Interface)
		}
		// The ids through a REG_MULTI_SZ give the same answer.
		var clean []string
		for _, id := range ids {
			if id != "" && utf8.ValidString(id) {
				clean = append(clean, id)
			} else {
				break
			}
		}
		back, err := ParseMultiSZ(EncodeMultiSZ(clean))
		if err == nil && len(EncodeMultiSZ(clean)) <= maxMultiSZ && !reflect.DeepEqual(back, clean) && len(clean) > 0 {
			t.Fatalf("multi-string round trip %q → %q", clean, back)
		}
	})
}

func FuzzParseMultiSZ(f *testing.F) {
	f.Add(EncodeMultiSZ([]string{`USBSTOR\Disk`, `USBSTOR\RAW`, "GenDisk"}))
	f.Add([]byte{0x00, 0xd8, 0x41, 0x00, 0, 0, 0x01, 0xdc, 0, 0, 0, 0})
	f.Add([]byte{'A', 0, 'B'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := ParseMultiSZ(b)
		if err != nil {
			if !errors.Is(err, ErrWinID) {
				t.Fatalf("error %v does not wrap ErrWinID", err)
			}
			return
		}
		for _, s := range ss {
			if s == "" || strings.Contains(s, "\x00") {
				t.Fatalf("string %q: empty or holds NUL", s)
			}
		}
		// Re-encoding gives the input's strings back.
		again, err := ParseMultiSZ(EncodeMultiSZ(ss))
		if err != nil || !reflect.DeepEqual(again, ss) {
			t.Fatalf("round trip %q → %q, %v", ss, again, err)
		}
		if len(b)%2 == 0 {
			if _, err := ParseSZ(b); err != nil {
				t.Fatalf("ParseSZ: %v", err)
			}
		}
	})
}
