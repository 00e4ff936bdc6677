package network

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mamori-agent/mamori/internal/safe"
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

	// USB tethers whose names Link.Name escapes: a backslash, a tab (the
	// kernel refuses whitespace, a sysfs mounted elsewhere may not) and
	// the byte 0xff (not UTF-8), on the USB devices 1-3, 1-4 and 1-5.
	for i, name := range []string{"docker\\", "usb\tx", "usb\xff"} {
		dev := fmt.Sprintf("devices/pci0000:00/0000:00:14.0/usb1/1-%d", 3+i)
		mk(dev + "/" + fmt.Sprintf("1-%d:1.0", 3+i))
		write(dev+"/busnum", "1\n")
		write(dev+"/devnum", fmt.Sprint(6+i)+"\n")
		link("../../../../../../../bus/usb/drivers/rndis_host", fmt.Sprintf("%s/1-%d:1.0/driver", dev, 3+i))
		mk("class/net/" + name)
		write("class/net/"+name+"/ifindex", fmt.Sprint(11+i)+"\n")
		link(fmt.Sprintf("../../../%s/1-%d:1.0", dev, 3+i), "class/net/"+name+"/device")
	}
	// A directory without ifindex: not trusted.
	mk("class/net/noindex")
	return root
}

func TestReadSysfsLink(t *testing.T) {
	root := fakeSysfs(t)
	tests := []struct {
		name  string
		index int
		want  sysfsLink
	}{
		{"usb0", 7, sysfsLink{Found: true, Hardware: true, USB: "1-2", Driver: "rndis_host"}},
		{"eth0", 2, sysfsLink{Found: true, Hardware: true, Driver: "e1000e"}},
		{"wlan0", 3, sysfsLink{Found: true, Hardware: true, Wireless: true}},
		{"veth0", 9, sysfsLink{Found: true}},
		{"docker\\", 11, sysfsLink{Found: true, Hardware: true, USB: "1-3", Driver: "rndis_host"}},
		{"usb\tx", 12, sysfsLink{Found: true, Hardware: true, USB: "1-4", Driver: "rndis_host"}},
		{"usb\xff", 13, sysfsLink{Found: true, Hardware: true, USB: "1-5", Driver: "rndis_host"}},
		// The escaped names are not the directories'.
		{safe.String("docker\\"), 11, sysfsLink{}},
		{safe.String("usb\xff"), 13, sysfsLink{}},
		// Another namespace's link of the same name: not ours.
		{"usb0", 8, sysfsLink{}},
		{"missing", 4, sysfsLink{}},
		{"noindex", 5, sysfsLink{}},
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
