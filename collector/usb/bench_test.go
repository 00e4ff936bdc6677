package usb

import (
	"testing"

	"github.com/mamori-agent/mamori/internal/sysfstest"
)

// tree100 builds a tree of 100 USB devices: the fido2 recording (root
// hub, hub, security key) and 97 copies of the key on the same hub.
func tree100(tb testing.TB) string {
	tb.Helper()
	root := tb.TempDir()
	rec, err := sysfstest.Load("testdata/umockdev/fido2.umockdev")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := sysfstest.Replicate(root, rec, "1-2.3", 100); err != nil {
		tb.Fatal(err)
	}
	return root
}

func BenchmarkDevices100(b *testing.B) {
	fs := NewFS(tree100(b))
	devs, err := fs.Devices()
	if err != nil || len(devs) != 100 {
		b.Fatalf("got %d devices, %v", len(devs), err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fs.Devices(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDevice(b *testing.B) {
	fs := NewFS(tree100(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fs.Device("1-2.3"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDevices100Cold is the first rescan of a 100-device tree, every
// device read in full (no identity from an earlier rescan).
func BenchmarkDevices100Cold(b *testing.B) {
	root := tree100(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewFS(root).Devices(); err != nil {
			b.Fatal(err)
		}
	}
}
