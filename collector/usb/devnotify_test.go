package usb

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
	"unicode/utf16"
)

// eventData builds a CM_NOTIFY_EVENT_DATA for an interface filter.
func eventData(filterType uint32, class [16]byte, link string) []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b, filterType)
	copy(b[8:], class[:])
	for _, u := range utf16.Encode([]rune(link)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return append(b, 0, 0)
}

// usbClassBytes is GUID_DEVINTERFACE_USB_DEVICE in memory order.
var usbClassBytes = [16]byte{0x10, 0xbf, 0xdc, 0xa5, 0x30, 0x65, 0xd2, 0x11, 0x90, 0x1f, 0x00, 0xc0, 0x4f, 0xb9, 0x51, 0xed}

// volumeClassBytes is GUID_DEVINTERFACE_VOLUME in memory order.
var volumeClassBytes = [16]byte{0x0d, 0x63, 0xf5, 0x53, 0xbf, 0xb6, 0xd0, 0x11, 0x94, 0xf2, 0x00, 0xa0, 0xc9, 0x1e, 0xfb, 0x8b}

func TestParseNotifyEventData(t *testing.T) {
	link := `\\?\USB#VID_0781&PID_5567#4C530001230719117094#{a5dcbf10-6530-11d2-901f-00c04fb951ed}`
	ev, err := parseNotifyEventData(eventData(0, usbClassBytes, link))
	if err != nil || ev.Class != guidStringUSBDevice || ev.Path != link {
		t.Fatalf("got %+v, %v", ev, err)
	}
	// Padding after the NUL (event data sizes are rounded up).
	b := append(eventData(0, volumeClassBytes, `\\?\STORAGE#Volume#{x}#{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}`), 0, 0, 0)
	if ev, err := parseNotifyEventData(b); err != nil || ev.Class != guidStringVolume {
		t.Fatalf("padded: %+v, %v", ev, err)
	}
	for name, b := range map[string][]byte{
		"short":       make([]byte, 20),
		"handle":      eventData(1, usbClassBytes, "x"),
		"no NUL":      eventData(0, usbClassBytes, "abc")[:24+6],
		"empty after": make([]byte, 24),
	} {
		if _, err := parseNotifyEventData(b); err == nil || !errors.Is(err, ErrWinID) {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

func TestChangeOf(t *testing.T) {
	link := `\\?\usb#vid_0781&pid_5567#4c530001230719117094#{a5dcbf10-6530-11d2-901f-00c04fb951ed}`
	c, ok := changeOf(cmNotifyActionDeviceInterfaceArrival, eventData(0, usbClassBytes, link))
	want := Change{Action: ChangeArrived, Interface: "usb", InstanceID: `USB\vid_0781&pid_5567\4c530001230719117094`, Path: link}
	if !ok || c != want {
		t.Fatalf("arrival: %+v, %v; want %+v", c, ok, want)
	}
	c, ok = changeOf(cmNotifyActionDeviceInterfaceRemoval, eventData(0, volumeClassBytes, "\\\\?\\STORAGE#Volume#\u202e#{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}"))
	if !ok || c.Action != ChangeRemoved || c.Interface != "volume" || c.Path != `\\?\STORAGE#Volume#\u{202e}#{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}` {
		t.Fatalf("removal: %+v, %v", c, ok)
	}
	if _, ok := changeOf(5, nil); ok {
		t.Fatal("an action other than arrival or removal made a change")
	}
	if c, ok := changeOf(cmNotifyActionDeviceInterfaceArrival, []byte{1, 2}); !ok || c.Action != ChangeRescan {
		t.Fatalf("broken event data: %+v, %v; want a rescan", c, ok)
	}
}

// TestChangeQueue: post never blocks; an overflow turns into exactly one
// ChangeRescan; the pump ends on done and closes its channel.
func TestChangeQueue(t *testing.T) {
	cq := newChangeQueue()
	out := make(chan Change)
	done := make(chan struct{})
	go cq.pump(out, done)

	cq.post(Change{Action: ChangeArrived, Path: "a"})
	if c := <-out; c.Path != "a" {
		t.Fatalf("got %+v", c)
	}
	// Nobody reads: the pump holds at most one change, the queue the
	// rest, and then it overflows without blocking the poster.
	posted := make(chan struct{})
	go func() {
		for i := 0; i < 10*changeQueueLen; i++ {
			cq.post(Change{Action: ChangeArrived})
		}
		close(posted)
	}()
	select {
	case <-posted:
	case <-time.After(10 * time.Second):
		t.Fatal("post blocked")
	}
	// What comes out: at most two batches, each what one take found
	// (the pump takes once before it blocks on a send nobody reads, and
	// once more when it is read): each a queue's worth of changes at most,
	// or a rescan for an overflow; and, 10*changeQueueLen posts being
	// more than two queues hold, at least one rescan. The first rescan is
	// waited for (a loaded machine may not run the pump for a while);
	// what follows is read until a quiet spell, then while the pump ends.
	var got []ChangeAction
	count := func() (changes, rescans int) {
		for _, a := range got {
			if a == ChangeRescan {
				rescans++
			} else {
				changes++
			}
		}
		return changes, rescans
	}
	for quiet := false; !quiet; {
		wait := 200 * time.Millisecond
		if _, r := count(); r == 0 {
			wait = 10 * time.Second
		}
		select {
		case c := <-out:
			got = append(got, c.Action)
		case <-time.After(wait):
			quiet = true
		}
	}
	if _, r := count(); r == 0 {
		t.Fatalf("no rescan after an overflow: %d changes", len(got))
	}
	close(done)
	// The pump ends: its channel closes (after at most what it was
	// already offering when done closed).
	deadline := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case c, ok := <-out:
			if open = ok; ok {
				got = append(got, c.Action)
			}
		case <-deadline:
			t.Fatal("pump did not end")
		}
	}
	if changes, rescans := count(); rescans > 2 || changes > 2*changeQueueLen {
		t.Fatalf("after an overflow: %d changes, %d rescans; want at most %d changes and one or two rescans", changes, rescans, 2*changeQueueLen)
	}
}

// TestNewHotplugOffWindows: off Windows, registration says unsupported.
func TestNewHotplugUnsupported(t *testing.T) {
	h, err := NewHotplug()
	if err == nil {
		h.Close()
		t.Skip("device notifications work here (Windows): see TestHotplugWindows")
	}
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("NewHotplug: %v, want errors.ErrUnsupported", err)
	}
}

func FuzzParseNotifyEventData(f *testing.F) {
	f.Add(eventData(0, usbClassBytes, `\\?\USB#VID_0781&PID_5567#4C53#{a5dcbf10-6530-11d2-901f-00c04fb951ed}`))
	f.Add(eventData(0, volumeClassBytes, `\\?\STORAGE#Volume#{x}#{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, action := range []uint32{0, 1} {
			c, ok := changeOf(action, b)
			if !ok {
				t.Fatal("arrival or removal gave no change")
			}
			checkSanitised(t, "path", c.Path)
			checkSanitised(t, "instance id", c.InstanceID)
		}
	})
}
