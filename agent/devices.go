package agent

import (
	"slices"
	"strconv"
	"strings"

	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/policy"
	"github.com/mamori-agent/mamori/wire"
)

// usbAppearance is one plug-in of one USB device: its appearance (what
// was recorded in it) with the device as last read and the verdict.
type usbAppearance struct {
	*appearance
	dev      usb.Device
	decision policy.USBDecision
	// unplaced marks the device of volumes no USB device claims
	// (placeVolumes): refreshVolumes, not the USB backend's list, says
	// when it has left.
	unplaced bool
}

// usbInstance tells one plug-in from the next: the kernel gives every
// plug-in a new device number on its bus.
func usbInstance(d *usb.Device) string {
	return strconv.Itoa(d.BusNum) + ":" + strconv.Itoa(d.DevNum)
}

// rescan re-reads everything and reconciles it with what the agent knows.
func (a *Agent) rescan(trigger string) {
	a.metrics.rescans.Inc()
	a.checkClock(trigger)
	a.saveTrustedClock(false)
	a.checkAudit(trigger)
	a.flushPending()
	devs, err := a.coll.devices()
	if err != nil {
		a.metrics.collectErrors.WithLabelValues("usb").Inc()
		a.warnOnce("usb", "USB scan incomplete", err)
	} else {
		delete(a.lastErr, "usb")
	}
	seen := make(map[string]bool, len(devs))
	for path := range a.departed {
		if !slices.ContainsFunc(devs, func(d usb.Device) bool { return d.Path == path }) {
			delete(a.departed, path)
		}
	}
	for i := range devs {
		seen[devs[i].Path] = true
		a.observe(&devs[i], trigger, nil)
	}
	for path, ap := range a.present {
		if !seen[path] && !ap.unplaced && a.gone(path) {
			a.removeDevice(path, trigger, nil)
		}
	}
	// The volumes before the devices carried from the last run are let
	// go: the device of volumes no USB device claims comes from them.
	a.refreshVolumes(trigger, nil)
	if trigger == "start" {
		// Devices that left while the agent was down.
		for _, ap := range a.subjects.carriedOf(wire.SourceUSB) {
			a.subjects.end(ap.key.source, ap.key.id)
			a.emitCarriedRemoved(ap.key.id, trigger)
		}
		clear(a.carried)
	}
	a.judgeAllMedia(trigger, nil)
	a.updateDeviceMetrics()
	a.rescanNetwork(trigger)
}

// gone tells whether a device missing from a scan has really left: a
// device that is there but could not be read this time has not. A
// backend that cannot read one device alone (libusb) goes by the scan.
func (a *Agent) gone(path string) bool {
	_, err := a.coll.usb.Device(path)
	if err == nil || !isGone(err) {
		if err != nil {
			a.log.Debug("device unreadable this scan; kept", "path", path, "err", err)
		}
		return false
	}
	return true
}

// observe reconciles one device read from the system with what is known.
func (a *Agent) observe(d *usb.Device, trigger string, cause *ueventCause) {
	if n, ok := a.departed[d.Path]; ok {
		if n == d.DevNum || d.DevNum == 0 {
			// The remains of a device the kernel has removed (with its
			// devnum file already gone, when 0).
			return
		}
		delete(a.departed, d.Path)
	}
	if d.DevNum == 0 && !d.IsRootHub() && a.coll.usb.Numbered() && !strings.HasPrefix(d.Path, usb.UnknownPathPrefix) {
		// Every attached device has a device number from its first
		// uevent on; a read without one caught the device being torn
		// down (its attributes go before its remove uevent comes). A
		// device that could not be determined has none to read.
		a.log.Debug("partial read of a departing device ignored", "path", d.Path)
		return
	}
	ap := a.present[d.Path]
	if ap != nil && (ap.dev.BusNum != d.BusNum || ap.dev.DevNum != d.DevNum) {
		// Unplugged and plugged again between two looks.
		a.removeDevice(d.Path, trigger, cause)
		ap = nil
	}
	if ap != nil {
		// The same appearance: its identity (ids, serial, strings,
		// class) was fixed at enumeration and cannot change; a later read
		// that lacks parts of it caught the device being torn down. Only
		// what can change is taken: interfaces' drivers, block devices,
		// authorized.
		merged := ap.dev
		if len(d.Interfaces) > 0 {
			merged.Interfaces = d.Interfaces
		}
		merged.BlockDevices = d.BlockDevices
		if d.Authorized != nil {
			merged.Authorized = d.Authorized
		}
		d = &merged
	}
	dec := a.policy.Decide(d, a.trustedNow())
	if ap == nil {
		// Attached before a restart of the agent, in this boot, with the
		// same device number: the same appearance, with what the log
		// says was recorded (not fresh).
		app, fresh, ended := a.subjects.begin(wire.SourceUSB, d.Path, usbInstance(d))
		if ended != nil {
			// Carried from the previous run, but another plug-in.
			a.emitCarriedRemoved(d.Path, trigger)
		}
		delete(a.carried, d.Path)
		ap = &usbAppearance{appearance: app, dev: *d, decision: dec}
		a.present[d.Path] = ap
		if fresh {
			ev := deviceEvent(TypeDeviceAdded, d, trigger, cause)
			ev.Device = wireDevice(d)
			ev.Decision = dec.Record(d)
			a.emit(ev)
		}
	} else {
		ap.dev = *d
		ap.decision = dec
	}
	if v := dec.Violation; v != nil && a.shouldRecord(ap, v.Kind) {
		a.recordViolation(ap, v, nil, trigger, cause)
	}
}

// judgeAllMedia judges the media of every attached device whose approval
// requires encryption.
func (a *Agent) judgeAllMedia(trigger string, cause *ueventCause) {
	for _, path := range sortedKeys(a.present) {
		a.judgeMedia(a.present[path], trigger, cause)
	}
}

// judgeMedia records media_unencrypted once for each medium of ap that is
// not shown to be encrypted, when its approval requires encryption. Every
// medium is looked at each time: a card swapped, a second LUN, a stick
// re-formatted in place is a new medium.
func (a *Agent) judgeMedia(ap *usbAppearance, trigger string, cause *ueventCause) {
	for _, f := range a.coll.judgeMedia(a.policy, &ap.dev, ap.decision, a.volumesOf(ap.dev.Path)) {
		if !ap.recorded[mediumViolationKey(f.medium)] {
			a.recordViolation(ap, f.violation, f.medium, trigger, cause)
		}
	}
}

// shouldRecord tells whether violation kind is still to be recorded in
// ap: a device gets one of the approval kinds per appearance, except that
// a device first judged a plain device and then found to be storage (its
// interfaces came later) is recorded again as storage.
func (a *Agent) shouldRecord(ap *usbAppearance, kind string) bool {
	if ap.recorded[kind] {
		return false
	}
	if !slices.Contains(policy.ApprovalKinds, kind) {
		return true
	}
	for _, k := range policy.ApprovalKinds {
		if ap.recorded[k] && !(k == KindDeviceUnapproved && kind == KindStorageUnapproved) {
			return false
		}
	}
	return true
}

func (a *Agent) recordViolation(ap *usbAppearance, v *Violation, m *MediumRecord, trigger string, cause *ueventCause) {
	key := v.Kind
	if m != nil {
		key = mediumViolationKey(m)
	}
	ap.recorded[key] = true
	ev := deviceEvent(TypeViolation, &ap.dev, trigger, cause)
	ev.Violation = v
	ev.Device = wireDevice(&ap.dev)
	ev.Medium = m
	a.emit(ev)
}

func (a *Agent) removeDevice(path, trigger string, cause *ueventCause) {
	ap, ok := a.present[path]
	if !ok {
		return
	}
	delete(a.present, path)
	a.subjects.end(wire.SourceUSB, path)
	ev := deviceEvent(TypeDeviceRemoved, &ap.dev, trigger, cause)
	a.emit(ev)
}

func deviceEvent(typ string, d *usb.Device, trigger string, cause *ueventCause) *Event {
	ev := &Event{Type: typ, Source: "usb", Trigger: trigger, Path: d.Path,
		VendorID: d.VendorID, ProductID: d.ProductID, Serial: d.Serial}
	cause.apply(ev)
	return ev
}

func (a *Agent) updateDeviceMetrics() {
	devs := make([]*usb.Device, 0, len(a.present))
	approved := make(map[*usb.Device]bool, len(a.present))
	for _, ap := range a.present {
		devs = append(devs, &ap.dev)
		approved[&ap.dev] = ap.decision.Approved
	}
	a.metrics.SetDevices(devs, func(d *usb.Device) bool { return approved[d] })
}

// emitCarriedRemoved records the end of a device appearance carried from
// the previous run: the device left while the agent was not running.
func (a *Agent) emitCarriedRemoved(path, trigger string) {
	s := a.carried[path]
	delete(a.carried, path)
	a.emit(&Event{Type: TypeDeviceRemoved, Source: wire.SourceUSB, Trigger: trigger, Path: path,
		VendorID: s.VendorID, ProductID: s.ProductID, Serial: s.Serial,
		Message: "removed while the agent was not running"})
}
