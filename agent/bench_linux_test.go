package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mamori-agent/mamori/collector/uevent"
)

// signalWarner reports each violation on a channel; it is called after the
// violation is flushed to the audit log.
type signalWarner chan *Event

func (s signalWarner) Warn(ev *Event) error { s <- ev; return nil }

// BenchmarkUeventToRecord measures the agent's share of detection latency
// on this machine: a kernel uevent datagram for a USB stick's usb_device
// is written into the socket the agent reads (the same receive and parse
// code as the netlink socket), and the clock stops when the violation has
// been flushed to the audit log. Each iteration is a new appearance (the
// device number changes, as on a re-plug); the remove uevent in between is
// not timed. Set TMPDIR to a tmpfs to leave the disk's fsync out.
func BenchmarkUeventToRecord(b *testing.B) {
	e := newEnvB(b, reader)
	conn, peer, err := uevent.SocketPair()
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(peer)
	warned := make(signalWarner, 16)
	r := e.start(Options{Uevents: conn, Warner: warned})
	defer r.stop(e.t)
	<-warned // the violation found by the start scan
	devpath := findDevPath(e.t, e.sysfs, "8-1.4")
	devnumFile := filepath.Join(e.sysfs, devpath, "devnum")
	add := uevent.Event{Action: "add", DevPath: devpath, Subsystem: "usb", DevType: "usb_device", Env: map[string]string{"PRODUCT": "58f/8468/100"}}
	remove := add
	remove.Action = "remove"
	send := func(ev uevent.Event) {
		raw, err := ev.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := unix.Write(peer, raw); err != nil {
			b.Fatal(err)
		}
	}
	devnum := 10
	for b.Loop() {
		b.StopTimer()
		send(remove)
		devnum = devnum%120 + 10
		os.WriteFile(devnumFile, []byte(strconv.Itoa(devnum)+"\n"), 0o644)
		time.Sleep(time.Millisecond) // let the removal be handled
		b.StartTimer()
		send(add)
		<-warned
	}
}
