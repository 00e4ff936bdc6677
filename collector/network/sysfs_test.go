package network

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeSysfs builds a sysfs tree with a USB network adapter (usb0, on the
// interface 1-2:1.0 of the USB device 1-2), a PCI NIC (eth0) and a
// virtual link (veth0, no device).
func fakeSysfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	usbIf := "devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0"
	mk(usbIf)
	mk("devices/pci0000:00/0000:00:14.0/usb1/1-2")
	write("devices/pci0000:00/0000:00:14.0/usb1/busnum", "1\n") // the root hub is no match: "usb1"
	write("devices/pci0000:00/0000:00:14.0/usb1/devnum", "1\n")
	write("devices/pci0000:00/0000:00:14.0/usb1/1-2/busnum", "1\n")
	write("devices/pci0000:00/0000:00:14.0/usb1/1-2/devnum", "5\n")
	mk("bus/usb/drivers/rndis_host")
	link("../../../../../../bus/usb/drivers/rndis_host", usbIf+"/driver")
	mk("class/net/usb0")
	write("class/net/usb0/ifindex", "7\n")
	link("../../../devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0", "class/net/usb0/device")

	mk("devices/pci0000:00/0000:00:1f.6")
	mk("bus/pci/drivers/e1000e")
	link("../../../bus/pci/drivers/e1000e", "devices/pci0000:00/0000:00:1f.6/driver")
	mk("class/net/eth0")
	write("class/net/eth0/ifindex", "2\n")
	link("../../../devices/pci0000:00/0000:00:1f.6", "class/net/eth0/device")

	mk("devices/pci0000:00/0000:00:14.3")
	mk("class/net/wlan0/wireless")
	write("class/net/wlan0/ifindex", "3\n")
	link("../../../devices/pci0000:00/0000:00:14.3", "class/net/wlan0/device")

	mk("class/net/veth0")
	write("class/net/veth0/ifindex", "9\n")
	return root
}

func TestReadSysfsLink(t *testing.T) {
	root := fakeSysfs(t)
	tests := []struct {
		name  string
		index int
		want  sysfsLink
	}{
		{"usb0", 7, sysfsLink{Hardware: true, USB: "1-2", Driver: "rndis_host"}},
		{"eth0", 2, sysfsLink{Hardware: true, Driver: "e1000e"}},
		{"wlan0", 3, sysfsLink{Hardware: true, Wireless: true}},
		{"veth0", 9, sysfsLink{}},
		// Another namespace's link of the same name: not ours.
		{"usb0", 8, sysfsLink{}},
		{"missing", 4, sysfsLink{}},
		{"..", 1, sysfsLink{}},
		{"a/b", 1, sysfsLink{}},
	}
	for _, tt := range tests {
		if got := readSysfsLink(root, tt.name, tt.index); got != tt.want {
			t.Errorf("readSysfsLink(%q, %d) = %+v, want %+v", tt.name, tt.index, got, tt.want)
		}
	}
}

func TestIsUSBBusPath(t *testing.T) {
	for s, want := range map[string]bool{
		"1-2": true, "3-1.4": true, "10-1.2.3": true,
		"1-2:1.0": false, "usb1": false, "1-": false, "-2": false, "1-2.": false, "0000:00:14.0": false, "": false,
	} {
		if got := isUSBBusPath(s); got != want {
			t.Errorf("isUSBBusPath(%q) = %v", s, got)
		}
	}
}
