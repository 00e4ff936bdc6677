//go:build e2e

package e2e

import (
	"path/filepath"
	"testing"

	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/internal/sysfstest"
)

// TestFixturesReadable loads each recorded fixture into a sysfs tree and
// reads it back with the real sysfs collector: the recordings must stay
// usable as unit-test input. No VM needed.
func TestFixturesReadable(t *testing.T) {
	cases := []struct {
		file, path, vid, pid, serial string
		storage                      bool
		classes                      []string // interface classes, in order
		blocks                       int
	}{
		{"qemu-usb-storage", "2-1", "46f4", "0001", "E2ESTICK0001", true, []string{"08"}, 2},
		{"qemu-usb-storage-unauthorized", "2-1", "46f4", "0001", "E2ESTICK0001", true, nil, 0},
		{"qemu-usb-kbd", "1-2", "0627", "0001", "68284-0000:00:01.0-2", false, []string{"03"}, 0},
		{"qemu-usb-serial-ftdi", "1-3", "0403", "6001", "1-0000:00:01.0-3", false, []string{"ff"}, 0},
		{"gadget-composite-hid-storage", "3-1", "1209", "c0de", "COMPOSITE-0001", true, []string{"03", "08"}, 1},
		{"gadget-storage-no-serial", "3-1", "1209", "0001", "", true, []string{"08"}, 1},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			root := t.TempDir()
			sysfstest.Build(t, root, filepath.Join("testdata", "sysfs", c.file+".umockdev"))
			d, err := usb.NewFS(root).Device(c.path)
			if err != nil {
				t.Fatalf("Device(%s): %v", c.path, err)
			}
			if d.VendorID != c.vid || d.ProductID != c.pid || d.SerialString() != c.serial {
				t.Errorf("ids %s:%s serial %q, want %s:%s %q", d.VendorID, d.ProductID, d.SerialString(), c.vid, c.pid, c.serial)
			}
			if c.serial == "" && d.Serial != nil {
				t.Errorf("serial = %q, want none (no serial file)", *d.Serial)
			}
			if d.IsStorage() != c.storage {
				t.Errorf("IsStorage = %v, want %v (%+v)", d.IsStorage(), c.storage, d)
			}
			var classes []string
			for _, in := range d.Interfaces {
				classes = append(classes, in.Class)
			}
			if c.classes != nil && !equal(classes, c.classes) {
				t.Errorf("interface classes %v, want %v", classes, c.classes)
			}
			if len(d.BlockDevices) != c.blocks {
				t.Errorf("block devices %+v, want %d", d.BlockDevices, c.blocks)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
