//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// stick is a QEMU usb-storage device backed by a host image.
type stick struct {
	ID      string // QMP device id
	Node    string // block node name
	Image   string
	Serial  string
	Plugged time.Time // when device_add was sent
}

// newStickImage makes a FAT-partitioned image in the test's temp dir.
func (v *vm) newStickImage(name string) string {
	v.t.Helper()
	dir := filepath.Join(v.dir, "img-"+name)
	img := filepath.Join(dir, name+".img")
	if err := mkdirAll(dir); err != nil {
		v.Fatalf("%v", err)
	}
	if err := makeStickImage(img, 16, "MAMORI"); err != nil {
		v.Fatalf("%v", err)
	}
	return img
}

// PlugStick adds a usb-storage device with the given serial on the xHCI
// bus. removable sets the SCSI removable bit.
func (v *vm) PlugStick(id, img, serial string, removable bool) *stick {
	v.t.Helper()
	s := &stick{ID: id, Node: id + "-blk", Image: img, Serial: serial}
	v.Do("blockdev-add", map[string]any{
		"driver": "raw", "node-name": s.Node,
		"file": map[string]any{"driver": "file", "filename": img},
	})
	s.Plugged = time.Now()
	v.Do("device_add", map[string]any{
		"driver": "usb-storage", "id": id, "bus": "xhci.0", "drive": s.Node,
		"serial": serial, "removable": removable,
	})
	return s
}

// Unplug removes a QMP device and waits for DEVICE_DELETED.
func (v *vm) Unplug(id string) time.Time {
	v.t.Helper()
	return v.UnplugWithin(id, 20*time.Second)
}

// UnplugWithin is Unplug with another timeout: a PCIe device leaves only
// when the guest acks the hot-unplug, seconds later under TCG.
func (v *vm) UnplugWithin(id string, timeout time.Duration) time.Time {
	v.t.Helper()
	from := v.QMP.Events.mark()
	sent := time.Now()
	v.Do("device_del", map[string]any{"id": id})
	v.WaitEvent(from, "DEVICE_DELETED", timeout, func(d json.RawMessage) bool {
		var x struct {
			Device string `json:"device"`
		}
		_ = json.Unmarshal(d, &x)
		return x.Device == id
	})
	return sent
}

// UnplugStick removes a stick and its block node.
func (v *vm) UnplugStick(s *stick) time.Time {
	v.t.Helper()
	t := v.Unplug(s.ID)
	v.Do("blockdev-del", map[string]any{"node-name": s.Node})
	return t
}

// PlugKeyboard adds QEMU's usb-kbd (0627:0001).
func (v *vm) PlugKeyboard(id string) time.Time {
	v.t.Helper()
	t := time.Now()
	v.Do("device_add", map[string]any{"driver": "usb-kbd", "id": id, "bus": "xhci.0"})
	return t
}

// PlugSerial adds QEMU's usb-serial (FTDI 0403:6001) on a null chardev.
func (v *vm) PlugSerial(id string) time.Time {
	v.t.Helper()
	v.Do("chardev-add", map[string]any{"id": id + "-chr",
		"backend": map[string]any{"type": "null", "data": map[string]any{}}})
	t := time.Now()
	v.Do("device_add", map[string]any{"driver": "usb-serial", "id": id, "bus": "xhci.0",
		"chardev": id + "-chr", "always-plugged": true})
	return t
}

// UnplugSerial removes a usb-serial and its chardev.
func (v *vm) UnplugSerial(id string) {
	v.t.Helper()
	v.Unplug(id)
	v.Do("chardev-remove", map[string]any{"id": id + "-chr"})
}

// usbPathBySerial waits for the guest's USB device with this serial and
// returns its bus path ("1-1").
func (v *vm) usbPathBySerial(serial string, timeout time.Duration) string {
	v.t.Helper()
	out := v.WaitGuest("a USB device with serial "+serial, timeout, fmt.Sprintf(
		`for d in /sys/bus/usb/devices/*; do [ "$(cat $d/serial 2>/dev/null)" = %q ] && { basename $d; exit 0; }; done; exit 1`, serial))
	return strings.TrimSpace(out)
}

// usbPathByIDs waits for a USB device with these ids (first match).
func (v *vm) usbPathByIDs(vid, pid string, timeout time.Duration) string {
	v.t.Helper()
	out := v.WaitGuest("a USB device "+vid+":"+pid, timeout, fmt.Sprintf(
		`for d in /sys/bus/usb/devices/*; do [ "$(cat $d/idVendor 2>/dev/null):$(cat $d/idProduct 2>/dev/null)" = %q ] && { basename $d; exit 0; }; done; exit 1`, vid+":"+pid))
	return strings.TrimSpace(out)
}

// blockUnder waits for a partition below the USB device and returns its
// name ("sda1").
func (v *vm) partitionUnder(usbPath string, timeout time.Duration) string {
	v.t.Helper()
	out := v.WaitGuest("a partition below USB device "+usbPath, timeout, fmt.Sprintf(
		`d=$(readlink -f /sys/bus/usb/devices/%s); for p in /sys/class/block/*; do r=$(readlink -f $p); case $r in $d/*) [ -e $p/partition ] && { basename $p; exit 0; };; esac; done; exit 1`, usbPath))
	return strings.TrimSpace(out)
}

// gadget describes a configfs gadget on dummy_hcd inside the guest.
type gadget struct {
	Name         string
	VendorID     string // "1d6b"
	ProductID    string
	Serial       string // "" for a device without a serial
	Manufacturer string
	Product      string
	Storage      bool // usb_f_mass_storage backed by a FAT file
	Keyboard     bool // usb_f_hid boot keyboard
}

// hidKeyboardReport is the boot keyboard report descriptor.
var hidKeyboardReport = []byte{
	0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01,
	0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x03, 0x95, 0x05, 0x75, 0x01,
	0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02, 0x95, 0x01, 0x75, 0x03, 0x91, 0x03, 0x95, 0x06,
	0x75, 0x08, 0x15, 0x00, 0x25, 0x65, 0x05, 0x07, 0x19, 0x00, 0x29, 0x65, 0x81, 0x00, 0xc0,
}

// script returns the guest shell script that creates and binds g.
func (g gadget) script() string {
	var b strings.Builder
	G := "/sys/kernel/config/usb_gadget/" + g.Name
	fmt.Fprintf(&b, "set -e\nmkdir -p %s\ncd %s\n", G, G)
	fmt.Fprintf(&b, "echo 0x%s > idVendor\necho 0x%s > idProduct\necho 0x0100 > bcdDevice\necho 0x0200 > bcdUSB\n", g.VendorID, g.ProductID)
	b.WriteString("mkdir -p strings/0x409\n")
	if g.Serial != "" {
		fmt.Fprintf(&b, "echo %q > strings/0x409/serialnumber\n", g.Serial)
	}
	fmt.Fprintf(&b, "echo %q > strings/0x409/manufacturer\necho %q > strings/0x409/product\n", g.Manufacturer, g.Product)
	b.WriteString("mkdir -p configs/c.1/strings/0x409\necho e2e > configs/c.1/strings/0x409/configuration\necho 100 > configs/c.1/MaxPower\n")
	if g.Keyboard {
		b.WriteString("mkdir -p functions/hid.kbd\necho 1 > functions/hid.kbd/protocol\necho 1 > functions/hid.kbd/subclass\necho 8 > functions/hid.kbd/report_length\n")
		fmt.Fprintf(&b, "echo %s | base64 -d > functions/hid.kbd/report_desc\n", base64.StdEncoding.EncodeToString(hidKeyboardReport))
		b.WriteString("ln -s functions/hid.kbd configs/c.1/\n")
	}
	if g.Storage {
		img := "/tmp/gadget-" + g.Name + ".img"
		fmt.Fprintf(&b, "[ -e %s ] || { dd if=/dev/zero of=%s bs=1M count=4 2>/dev/null; mkfs.vfat %s >/dev/null 2>&1 || true; }\n", img, img, img)
		fmt.Fprintf(&b, "mkdir -p functions/mass_storage.0\necho 1 > functions/mass_storage.0/lun.0/removable\necho %s > functions/mass_storage.0/lun.0/file\n", img)
		b.WriteString("ln -s functions/mass_storage.0 configs/c.1/\n")
	}
	b.WriteString("echo $(ls /sys/class/udc | head -n1) > UDC\n")
	return b.String()
}

// PlugGadget creates and binds a gadget in the guest.
func (v *vm) PlugGadget(g gadget) time.Time {
	v.t.Helper()
	t := time.Now()
	v.Run(g.script())
	return t
}

// UnplugGadget unbinds a gadget and removes it from configfs.
func (v *vm) UnplugGadget(g gadget) {
	v.t.Helper()
	G := "/sys/kernel/config/usb_gadget/" + g.Name
	v.Run(fmt.Sprintf(`cd %s
echo "" > UDC
for l in configs/c.1/*.*; do [ -L "$l" ] && rm "$l"; done
rmdir configs/c.1/strings/0x409 configs/c.1 2>/dev/null || true
for f in functions/*; do rmdir "$f"; done
rmdir strings/0x409
cd / && rmdir %s`, G, G))
}
