//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestGuestUSB checks the harness itself, without mamori: a QEMU stick
// appears with its serial and partition and goes away on unplug, and a
// configfs gadget on dummy_hcd shows the ids and strings it was given.
func TestGuestUSB(t *testing.T) {
	e := setup(t)
	v := boot(t, e)

	t.Run("qemu-stick", func(t *testing.T) {
		v := v.with(t)
		img := v.newStickImage("probe")
		s := v.PlugStick("probe", img, "E2EPROBE01", true)
		path := v.usbPathBySerial(s.Serial, 10*time.Second)
		part := v.partitionUnder(path, 10*time.Second)
		t.Logf("stick %s at %s, partition %s, seen after %v", s.Serial, path, part, time.Since(s.Plugged).Round(time.Millisecond))
		ids := strings.TrimSpace(v.Run("cat /sys/bus/usb/devices/" + path + "/idVendor /sys/bus/usb/devices/" + path + "/idProduct"))
		if ids != "46f4\n0001" {
			v.Errorf("stick ids = %q, want 46f4 0001", ids)
		}
		v.Run("mount -t vfat /dev/" + part + " /mnt && cat /mnt/README.TXT && umount /mnt")
		v.UnplugStick(s)
		v.WaitGuest("USB device "+path+" to go", 5*time.Second, "! [ -e /sys/bus/usb/devices/"+path+" ]")
	})

	t.Run("gadget", func(t *testing.T) {
		v := v.with(t)
		g := gadget{Name: "probe", VendorID: "1209", ProductID: "a001", Serial: "GADGET-1",
			Manufacturer: "mamori e2e", Product: "Probe stick", Storage: true, Keyboard: true}
		v.PlugGadget(g)
		path := v.usbPathBySerial(g.Serial, 10*time.Second)
		got := v.Run("cd /sys/bus/usb/devices/" + path + " && cat idVendor idProduct manufacturer product && cat */bInterfaceClass")
		want := "1209\na001\nmamori e2e\nProbe stick\n03\n08\n"
		if got != want {
			v.Errorf("gadget sysfs = %q, want %q", got, want)
		}
		part := v.WaitGuest("a disk below "+path, 10*time.Second, "ls -d /sys/bus/usb/devices/"+path+"/*/host*/target*/*/block/* | head -n1")
		t.Logf("gadget at %s, disk %s", path, strings.TrimSpace(part))
		v.UnplugGadget(g)
		v.WaitGuest("gadget "+path+" to go", 5*time.Second, "! [ -e /sys/bus/usb/devices/"+path+" ]")
	})
}
