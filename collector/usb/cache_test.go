package usb

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/mamori-agent/mamori/internal/sysfstest"
)

// TestRescanIdentityCache: a full rescan re-reads what can change while a
// device stays attached (authorized) and takes its identity from the last
// rescan only while its directory is the same node; the hot-plug path
// (Device) always reads everything.
func TestRescanIdentityCache(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the identity cache keys on inode numbers (Linux)")
	}
	root := t.TempDir()
	sysfstest.Build(t, root, "testdata/umockdev/fido2.umockdev")
	fs := NewFS(root)
	dir := devDir(t, root, "1-2.3")
	find := func(devs []Device) Device {
		for _, d := range devs {
			if d.Path == "1-2.3" {
				return d
			}
		}
		t.Fatal("1-2.3 not found")
		return Device{}
	}
	devs, err := fs.Devices()
	if err != nil {
		t.Fatal(err)
	}
	before := find(devs).Product

	// Changed in place: authorized is read again, the identity is not.
	must(t, os.WriteFile(filepath.Join(dir, "product"), []byte("Changed\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "authorized"), []byte("0\n"), 0o644))
	devs, _ = fs.Devices()
	if d := find(devs); d.Product != before || d.Authorized == nil || *d.Authorized {
		t.Errorf("rescan: product %q authorized %v; want cached %q and false", d.Product, d.Authorized, before)
	}
	if d, err := fs.Device("1-2.3"); err != nil || d.Product != "Changed" {
		t.Errorf("Device: product %q, %v; want a fresh read", d.Product, err)
	}

	// A new directory (a re-plug): read afresh.
	tmp := dir + ".new"
	if out, err := exec.Command("cp", "-a", dir, tmp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	must(t, os.RemoveAll(dir))
	must(t, os.Rename(tmp, dir))
	devs, _ = fs.Devices()
	if d := find(devs); d.Product != "Changed" {
		t.Errorf("after re-plug: product %q, want the new directory's", d.Product)
	}
}

func devDir(t *testing.T, root, bus string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(filepath.Join(root, "bus/usb/devices", bus))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
