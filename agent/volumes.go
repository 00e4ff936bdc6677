package agent

import (
	"context"
	"log/slog"
	"sort"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/wire"
)

func volumeKeyOf(device, mountPoint string) string { return device + "\x00" + mountPoint }

func volumeKey(v *media.Volume) string { return volumeKeyOf(v.Device, v.MountPoint) }

// refreshVolumes re-reads the mounts on USB block devices.
func (a *Agent) refreshVolumes(trigger string, cause *ueventCause) {
	vols, err := a.coll.volumes(func(m media.Mount) (media.Volume, bool) {
		v, ok := a.volumes[volumeKeyOf(safe.String(m.Source), m.MountPoint)]
		if !ok || v.BlockName == "" {
			return media.Volume{}, false
		}
		return *v, true
	})
	if err != nil {
		a.metrics.collectErrors.WithLabelValues("media").Inc()
		a.warnOnce("media", "media scan incomplete", err)
	} else {
		delete(a.lastErr, "media")
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
