package agent

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mamori-agent/mamori/collector/uevent"
	"github.com/mamori-agent/mamori/internal/sysfstest"
)

func TestRunUeventThroughSocketPath(t *testing.T) {
	e := newEnv(t, testConfig, kbd)
	conn, peer, err := uevent.SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(peer)
	r := e.start(Options{Uevents: conn})
	defer r.stop(t)
	before := len(e.records())

	// The camera arrives: its sysfs directory first, then the kernel's
	// uevent for the usb_device, synthesized here.
	sysfstest.Build(t, e.sysfs, reader)
	ev := uevent.Event{Action: "add", DevPath: "/devices/pci0000:00/0000:00:14.0/usb8/8-1/8-1.4", Subsystem: "usb",
		DevType: "usb_device", Seqnum: 4711, Env: map[string]string{"PRODUCT": "58f/8468/100", "BUSNUM": "008", "DEVNUM": "004"}}
	devpath := findDevPath(t, e.sysfs, "8-1.4")
	ev.DevPath = devpath
	b, err := ev.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(peer, b); err != nil {
		t.Fatal(err)
	}
	recs := e.waitFor("violation from one uevent", func(rs []record) bool {
		return count(rs, TypeViolation, "8-1.4", KindStorageUnapproved) == 1
	})
	var got *record
	for i := range recs[before:] {
		if recs[before+i].Type == TypeViolation {
			got = &recs[before+i]
		}
	}
	if got.Trigger != "uevent" || got.UeventSeqnum != 4711 || got.UeventTime == nil {
		t.Fatalf("violation not attributed to the uevent: %+v", got)
	}

	// Its removal, by uevent only. The kernel sends the device's remove
	// uevent before its sysfs directory goes: events handled in between
	// (an interface's remove) must not bring the dying device back.
	ev.Action, ev.Seqnum = "remove", 4712
	b, _ = ev.MarshalBinary()
	unix.Write(peer, b)
	e.waitFor("removal from one uevent", func(rs []record) bool { return count(rs, TypeDeviceRemoved, "8-1.4", "") == 1 })
	iface := uevent.Event{Action: "remove", DevPath: devpath + "/8-1.4:1.0", Subsystem: "usb", DevType: "usb_interface", Seqnum: 4713,
		Env: map[string]string{"INTERFACE": "8/6/80"}}
	b, _ = iface.MarshalBinary()
	unix.Write(peer, b)
	sysfstest.Remove(e.sysfs, "8-1.4")
	// A later event proves the one above was handled.
	sysfstest.Build(t, e.sysfs, camera)
	cam := uevent.Event{Action: "add", DevPath: findDevPath(t, e.sysfs, "1-1.5.2.3"), Subsystem: "usb", DevType: "usb_device", Seqnum: 4714}
	b, _ = cam.MarshalBinary()
	unix.Write(peer, b)
	recs = e.waitFor("camera", func(rs []record) bool { return count(rs, TypeDeviceAdded, "1-1.5.2.3", "") == 1 })
	if n := count(recs, TypeDeviceAdded, "8-1.4", ""); n != 1 {
		t.Fatalf("dying device brought back: %d device_added records for 8-1.4:\n%s", n, dump(recs))
	}

	// Garbage on the socket is dropped without harm.
	unix.Write(peer, []byte("not a uevent"))
	unix.Write(peer, []byte("add@/devices/x\x00ACTION=remove\x00"))
}

// findDevPath returns the device's DEVPATH (below /sys) in a fixture tree.
func findDevPath(t testing.TB, sysfs, bus string) string {
	t.Helper()
	target, err := filepath.EvalSymlinks(filepath.Join(sysfs, "bus/usb/devices", bus))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(sysfs, target)
	if err != nil {
		t.Fatal(err)
	}
	return "/" + rel
}

// TestTeardownReadsDoNotGhost: the kernel removes a device's attributes
// before its remove uevent; uevents handled meanwhile (an interface's
// unbind) read a partial device. Such reads must neither look like a
// re-plug nor change the verdict of the appearance.
func TestTeardownReadsDoNotGhost(t *testing.T) {
	cfg := testConfig + `    - name: Reader by serial
      vendor_id: "058f"
      product_id: "8468"
      port: "8-1.4"
`
	e := newEnv(t, cfg, reader)
	conn, peer, err := uevent.SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(peer)
	r := e.start(Options{Uevents: conn})
	defer r.stop(t)
	devpath := findDevPath(t, e.sysfs, "8-1.4")
	dir := filepath.Join(e.sysfs, devpath)
	send := func(ev uevent.Event) {
		b, err := ev.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(peer, b); err != nil {
			t.Fatal(err)
		}
	}
	unbind := uevent.Event{Action: "unbind", DevPath: devpath + "/8-1.4:1.0", Subsystem: "usb", DevType: "usb_interface"}
	// Teardown, step by step: devnum gone (the rest readable), then the
	// identity too (the device unreadable).
	for i, attrs := range [][]string{{"devnum"}, {"descriptors", "idVendor"}} {
		for _, attr := range attrs {
			os.Remove(filepath.Join(dir, attr))
		}
		unbind.Seqnum = uint64(100 + i)
		send(unbind)
	}
	// A later event proves the ones above were handled.
	sysfstest.Build(t, e.sysfs, camera)
	send(uevent.Event{Action: "add", DevPath: findDevPath(t, e.sysfs, "1-1.5.2.3"), Subsystem: "usb", DevType: "usb_device", Seqnum: 200})
	recs := e.waitFor("camera", func(rs []record) bool { return count(rs, TypeDeviceAdded, "1-1.5.2.3", "") == 1 })
	if count(recs, TypeDeviceAdded, "8-1.4", "") != 1 || count(recs, TypeDeviceRemoved, "8-1.4", "") != 0 || count(recs, TypeViolation, "8-1.4", "") != 0 {
		t.Fatalf("partial reads during teardown changed the appearance:\n%s", dump(recs))
	}
}
