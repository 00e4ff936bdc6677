package network

import (
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"
)

// TestEnrichRawName decodes RTM_NEWLINK messages of USB tethers whose
// names Link.Name escapes and enriches them against the fake sysfs: the
// lookup must use the kernel's name, find the USB device and set Sysfs;
// links sysfs does not confirm keep Sysfs false.
func TestEnrichRawName(t *testing.T) {
	m := &Monitor{sysfs: fakeSysfs(t)}
	tests := []struct {
		name      string
		index     int
		sysfs     bool
		kind      Kind
		usb       string
		hardware  bool
		escapedTo string
	}{
		{"docker\\", 11, true, KindUSB, "1-3", true, "docker\\\\"},
		{"usb\tx", 12, true, KindUSB, "1-4", true, "usb\\x09x"},
		{"usb\xff", 13, true, KindUSB, "1-5", true, "usb\\xff"},
		{"eth0", 2, true, KindEthernet, "", true, "eth0"},
		{"veth0", 9, true, KindVirtual, "", false, "veth0"},
		{"usb0", 8, false, KindVirtual, "", false, "usb0"}, // another namespace's usb0
		{"gone", 20, false, KindVirtual, "", false, "gone"},
	}
	for _, tt := range tests {
		msg := rtnetlink.LinkMessage{Type: 1, Index: uint32(tt.index), Attributes: &rtnetlink.LinkAttributes{
			Name: tt.name, OperationalState: rtnetlink.OperStateUp,
		}}
		b, err := msg.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		cs, err := appendMessage(nil, rtmNewLink, 0, b)
		if err != nil || len(cs) != 1 || cs[0].Link == nil {
			t.Fatalf("%q: %+v, %v", tt.name, cs, err)
		}
		l := cs[0].Link
		if l.Name != tt.escapedTo || l.Sysfs {
			t.Errorf("%q decoded: Name %q, Sysfs %v; want %q, false", tt.name, l.Name, l.Sysfs, tt.escapedTo)
		}
		m.enrich(l, nil)
		if l.Sysfs != tt.sysfs || l.Kind != tt.kind || l.USB != tt.usb || l.Hardware != tt.hardware || l.Name != tt.escapedTo {
			t.Errorf("%q enriched: %+v; want Sysfs %v, kind %s, USB %q, hardware %v", tt.name, l, tt.sysfs, tt.kind, tt.usb, tt.hardware)
		}
	}
}
