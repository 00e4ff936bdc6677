package agent

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/wire"
)

func volumeKeyOf(device, mountPoint string) string { return device + "\x00" + mountPoint }

func volumeKey(v *media.Volume) string { return volumeKeyOf(v.Device, v.MountPoint) }

// refreshVolumes re-reads the mounts on USB block devices, and the
// volumes the collector keeps that no USB device claims (Windows: a drive
// that is removable, or whose bus type could not be read, on no disk a
// listed USB device holds). Those are judged as USB storage whose device
// is unknown, as the USB backend's "unknown:" devices are: each gets a
// device of its own (placeVolumes), observed here, so that it is
// unapproved storage unless an approval by class takes it, and then its
// media are judged (judgeAllMedia) with require_encryption. Such a device
// stays while its volumes do, and leaves with the last of them; a read
// that failed with no volumes at all removes none.
func (a *Agent) refreshVolumes(trigger string, cause *ueventCause) {
	known := func(m media.Mount) (media.Volume, bool) {
		v, ok := a.volumes[volumeKeyOf(safe.String(m.Source), m.MountPoint)]
		if !ok || v.BlockName == "" {
			return media.Volume{}, false
		}
		return *v, true
	}
	vols, err := a.coll.volumes(known)
	unplaced := placeVolumes(vols)
	if slices.ContainsFunc(unplaced, func(d usb.Device) bool { return a.present[d.Path] == nil }) {
		// A volume no USB device claims, not seen so before: its USB
		// device may have listed its disk only after the devices were
		// read (they are read before the drives). Read once more: what
		// the backend lists now it listed after the drive was there.
		vols, err = a.coll.volumes(known)
		unplaced = placeVolumes(vols)
	}
	if err != nil {
		a.metrics.collectErrors.WithLabelValues("media").Inc()
		a.warnOnce("media", "media scan incomplete", err)
	} else {
		delete(a.lastErr, "media")
	}
	placed := make(map[string]bool, len(unplaced))
	for i := range unplaced {
		d := &unplaced[i]
		placed[d.Path] = true
		a.observe(d, trigger, cause)
		if ap := a.present[d.Path]; ap != nil {
			ap.unplaced = true
		}
	}
	// Each mount is an appearance of its volume (source media, identity
	// device and mount point); one carried from the previous run in this
	// boot continues.
	seen := map[string]bool{}
	for i := range vols {
		v := &vols[i]
		k := volumeKey(v)
		seen[k] = true
		a.volumes[k] = v
		if _, fresh, _ := a.subjects.begin(wire.SourceMedia, k, ""); fresh {
			a.emit(a.volumeEvent(TypeVolumeMounted, v, trigger, cause))
		}
	}
	for _, ap := range a.subjects.of(wire.SourceMedia) {
		k := ap.key.id
		if seen[k] {
			continue
		}
		a.subjects.end(wire.SourceMedia, k)
		v := a.volumes[k]
		delete(a.volumes, k)
		if v == nil {
			continue
		}
		a.emit(a.volumeEvent(TypeVolumeUnmounted, v, trigger, cause))
	}
	if err != nil && len(vols) == 0 {
		return // nothing read: no device shown to have left
	}
	changed := len(unplaced) > 0
	for _, path := range sortedKeys(a.present) {
		if a.present[path].unplaced && !placed[path] {
			a.removeDevice(path, trigger, cause)
			changed = true
		}
	}
	if changed {
		a.updateDeviceMetrics()
	}
}

// placeVolumes gives each volume that no USB device claims (USBDevice "")
// a device of its own and returns those devices, sorted by Path; it sets
// the volumes' USBDevice to their Paths. Such a device is USB storage
// whose device is unknown, as collector/usb makes for a disk it cannot
// place (usb.UnknownPathPrefix): class mass storage, no vendor, product
// or serial (so no approval by ids takes it, an approval by class may),
// and why in Product. The volumes on one disk ("PhysicalDriveN", their
// Backing) share one device, "unknown:PhysicalDriveN", with the disk as
// its one BlockDevice (size 0: unknown), so that they are judged as the
// units of one medium (every partition of the disk: windowsMedia); a
// volume whose disk is not known is a device of its own, named by its
// volume ("unknown:Volume{GUID}", or "unknown:E:" when Windows gave no
// volume name). A volume without a drive letter (mounted on a folder, or
// nowhere) is placed as a lettered one is, and named by where it is
// reached (volumeName). Pure, so that it is
// tested on every OS; only Windows keeps such volumes (Linux keeps only
// mounts on USB block devices).
func placeVolumes(vols []media.Volume) []usb.Device {
	var out []usb.Device
	index := map[string]int{}
	for i := range vols {
		v := &vols[i]
		if v.USBDevice != "" {
			continue
		}
		var path, what, why string
		var disk []usb.BlockDevice
		// "drive E:" for a letter, else where the volume is reached.
		what, kind := volumeName(*v), "volume"
		if strings.HasPrefix(what, "drive ") {
			what, kind = what+":", "drive"
		}
		if windowsDiskName(v.Backing) {
			path = usb.UnknownPathPrefix + v.Backing
			what, why = what+" on "+v.Backing, "no USB device listed holds this disk"
			disk = []usb.BlockDevice{{Name: v.Backing}}
		} else {
			name := strings.TrimPrefix(strings.TrimPrefix(v.Device, `\\?\`), `\\.\`)
			if name == "" {
				name = safe.String(v.MountPoint)
			}
			path = usb.UnknownPathPrefix + name
			why = "the disk under this " + kind + " could not be determined"
		}
		v.USBDevice = path
		if _, ok := index[path]; ok {
			continue
		}
		index[path] = len(out)
		out = append(out, usb.Device{Path: path, Class: usb.ClassMassStorage, Interfaces: []usb.Interface{}, BlockDevices: disk,
			Product: what + " (USB device not determined: " + why + ")"})
	}
	slices.SortFunc(out, func(a, b usb.Device) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// volumesOf returns the mounted volumes on USB device path.
func (a *Agent) volumesOf(path string) []media.Volume {
	var out []media.Volume
	for _, k := range sortedKeys(a.volumes) {
		if v := a.volumes[k]; v.USBDevice == path {
			out = append(out, *v)
		}
	}
	return out
}

func (a *Agent) volumeEvent(typ string, v *media.Volume, trigger string, cause *ueventCause) *Event {
	ev := &Event{Type: typ, Source: "media", Trigger: trigger, Path: v.USBDevice, Volume: wireVolume(v)}
	if ap, ok := a.present[v.USBDevice]; ok {
		ev.VendorID, ev.ProductID, ev.Serial = ap.dev.VendorID, ap.dev.ProductID, ap.dev.Serial
	}
	cause.apply(ev)
	return ev
}

func watchMounts(ctx context.Context, w *media.MountWatcher, ch chan<- struct{}, log *slog.Logger) {
	for {
		if err := w.Wait(ctx); err != nil {
			if ctx.Err() == nil {
				log.Warn("mount watcher stopped; mounts seen at rescans", "err", err)
			}
			return
		}
		select {
		case ch <- struct{}{}:
		default: // a refresh is already pending
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
