package agent

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/collector/uevent"
)

func (a *Agent) readUevents(ctx context.Context, src uevent.Source) {
	for {
		ev, err := src.Receive()
		if uevent.IsTerminal(err) {
			if ctx.Err() == nil && !errors.Is(err, uevent.ErrClosed) {
				a.locked(func() { a.handleUevent(uevent.Event{}, err) })
			}
			return
		}
		a.locked(func() { a.handleUevent(ev, err) })
	}
}

// handleUevent re-reads just the device a kernel uevent is about.
func (a *Agent) handleUevent(ev uevent.Event, err error) {
	if err != nil {
		if errors.Is(err, uevent.ErrOverrun) {
			a.metrics.overruns.Inc()
			a.log.Warn("uevent socket overrun; full rescan")
			a.rescan("overrun")
			return
		}
		if uevent.IsTerminal(err) {
			a.log.Warn("kernel uevent socket failed; relying on rescans", "err", err,
				"rescan_interval", a.cfg.Agent.RescanInterval)
			a.noteSource(sourceDevices, localapi.SourceRescans, "failed: "+err.Error())
			return
		}
		// A dropped datagram may have been about a device: look again.
		a.log.Warn("uevent dropped; full rescan", "err", err)
		a.rescan("uevent-error")
		return
	}
	a.metrics.uevents.Inc()
	if ev.Subsystem != "usb" && ev.Subsystem != "block" && ev.Subsystem != "scsi" {
		return
	}
	bus, ok, err := a.coll.usb.OwnerOf(ev.DevPath)
	if errors.Is(err, errors.ErrUnsupported) {
		// The backend cannot map the event to a device (libusb, device
		// notifications on Windows): look at everything again.
		a.rescan(deviceTrigger)
		return
	}
	if !ok {
		return
	}
	cause := &ueventCause{seq: ev.Seqnum, at: ev.Received}
	if ev.Action == "remove" && ev.Subsystem == "usb" && ev.DevType == "usb_device" {
		if ap, ok := a.present[bus]; ok {
			a.departed[bus] = ap.dev.DevNum
		}
		a.removeDevice(bus, "uevent", cause)
	} else {
		d, err := a.coll.usb.Device(bus)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			a.removeDevice(bus, "uevent", cause)
		case err != nil:
			a.metrics.collectErrors.WithLabelValues("usb").Inc()
			a.log.Warn("read USB device", "path", bus, "err", err)
		default:
			a.observe(&d, "uevent", cause)
		}
	}
	if ev.Subsystem == "block" {
		a.refreshVolumes("uevent", cause)
	}
	if ap, ok := a.present[bus]; ok {
		a.judgeMedia(ap, "uevent", cause)
	}
	a.updateDeviceMetrics()
}

type ueventCause struct {
	seq uint64
	at  time.Time
}

func (c *ueventCause) apply(ev *Event) {
	if c == nil || c.at.IsZero() {
		return
	}
	t := c.at
	ev.UeventTime, ev.UeventSeqnum = &t, c.seq
}
