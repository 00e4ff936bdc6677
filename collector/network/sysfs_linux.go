package network

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sysfsLink is what sysfs says about a link.
type sysfsLink struct {
	// Found: /sys/class/net/<name>/ifindex was read and held the link's
	// index; every other field is zero when it is not set.
	Found bool
	// Hardware: /sys/class/net/<name>/device exists.
	Hardware bool
	// USB is the base name of the nearest USB device directory (one with
	// busnum and devnum files, named like "1-2" or "3-1.4") on the
	// resolved device path, "" when none.
	USB string
	// Driver is the base name of the /sys/class/net/<name>/device/driver
	// symlink.
	Driver string
	// Wireless: /sys/class/net/<name>/wireless or .../phy80211 exists.
	Wireless bool
}

// readSysfsLink reads /sys/class/net/<name> under the sysfs root; name is
// the link's name as the kernel has it (raw IFLA_IFNAME bytes, not the
// escaped Link.Name). sysfs shows the links of the network namespace it
// was mounted from, which need not be the caller's: unless
// /sys/class/net/<name>/ifindex can be read and holds index, the directory
// is missing or another namespace's link of the same name, nothing is read
// from it, and Found stays false (what the link is stays unknown). Errors
// count as absence: the kernel may remove the directory at any time.
func readSysfsLink(root, name string, index int) sysfsLink {
	var s sysfsLink
	if root == "" || name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return s
	}
	dir := filepath.Join(root, "class", "net", name)
	b, err := os.ReadFile(filepath.Join(dir, "ifindex"))
	if err != nil {
		return s
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || n != index {
		return s
	}
	s.Found = true
	s.Wireless = exists(filepath.Join(dir, "wireless")) || exists(filepath.Join(dir, "phy80211"))
	dev := filepath.Join(dir, "device")
	if !exists(dev) {
		return s
	}
	s.Hardware = true
	if t, err := os.Readlink(filepath.Join(dev, "driver")); err == nil {
		s.Driver = filepath.Base(t)
	}
	s.USB = usbParent(root, dev)
	return s
}

// usbParent walks up the resolved path of dev, a device directory, and
// returns the base name of the first USB device directory on the way, ""
// when there is none before the sysfs root.
func usbParent(root, dev string) string {
	r, err := filepath.EvalSymlinks(root)
	if err != nil {
		return ""
	}
	p, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return ""
	}
	for len(p) > len(r) && strings.HasPrefix(p, r+string(filepath.Separator)) {
		if b := filepath.Base(p); isUSBBusPath(b) && exists(filepath.Join(p, "busnum")) && exists(filepath.Join(p, "devnum")) {
			return b
		}
		p = filepath.Dir(p)
	}
	return ""
}

// isUSBBusPath reports whether s is a USB device's bus path: the bus
// number, "-", and the port numbers on the way joined by "." ("1-2",
// "3-1.4"). Interfaces ("1-2:1.0") and root hubs ("usb1") are not.
func isUSBBusPath(s string) bool {
	bus, ports, ok := strings.Cut(s, "-")
	if !ok || !digits(bus) {
		return false
	}
	for p := range strings.SplitSeq(ports, ".") {
		if !digits(p) {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
