package media

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/windows"
)

// DrivePollInterval is how often a MountWatcher on Windows looks at the
// drive letters.
const DrivePollInterval = time.Second

// MountWatcher tells when the drive letters change: a letter appears or
// goes (GetLogicalDrives), a letter's drive type changes, or another
// volume takes a letter (GetVolumeNameForVolumeMountPoint); or when the
// volumes change: one appears or goes, or is mounted on a folder or taken
// off one (FindFirstVolumeW, GetVolumePathNamesForVolumeNameW), as a
// partition without a drive letter does. Windows sends
// no event for this without a window; the watcher polls every
// DrivePollInterval, and costs no more than those calls. The USB
// backend's device notifications (collector/usb Hotplug) and the agent's
// rescans see volumes too; this is what works everywhere, Wine included.
//
// Wait may be called from one goroutine at a time; Close may be called
// from any goroutine, also while Wait blocks.
type MountWatcher struct {
	done     chan struct{}
	once     sync.Once
	interval time.Duration

	mu       sync.Mutex // guards last and lastVols
	last     []driveSig
	lastVols []string
}

// driveSig is what MountWatcher compares of one letter.
type driveSig struct {
	letter byte
	typ    uint32
	volume string
	// What identifies the medium behind the letter: the volume GUID,
	// letter and type stay the same when a card reader's card is swapped
	// or a stick is reformatted in place. infoOK says
	// GetVolumeInformation answered.
	infoOK bool
	serial uint32
	fsName string
	label  string
	size   uint64
}

// NewMountWatcher starts watching the drive letters; procfs is not used on
// Windows. Changes made before it returns are not reported: read the
// volumes after creating the watcher, then Wait.
func NewMountWatcher(procfs string) (*MountWatcher, error) {
	w := &MountWatcher{done: make(chan struct{}), interval: DrivePollInterval}
	w.last, w.lastVols = driveSignature(), volumeSignature()
	return w, nil
}

// volumeSignature is every volume's GUID path and the paths it is mounted
// on, one string each, in the order listed; what could not be read is
// left out (the next look that can read it is a change).
func volumeSignature() []string {
	listed, _ := listVolumes()
	out := make([]string, 0, len(listed))
	for _, lv := range listed {
		out = append(out, lv.Name+"\x00"+strings.Join(lv.Paths, "\x00"))
	}
	return out
}

// driveSignature reads the letters, their types and volume names, and
// what GetVolumeInformation and GetDiskFreeSpaceEx say of the medium
// (serial, file system, label, size), so that a medium swapped or
// reformatted behind the same letter and volume is a change. Network
// drives are named by type only (asking more can hang on a lost server).
func driveSignature() []driveSig {
	mask, err := windows.GetLogicalDrives()
	if err != nil {
		return nil
	}
	var out []driveSig
	for _, l := range driveLetters(mask) {
		s := driveSig{letter: l}
		root, _ := windows.UTF16PtrFromString(string(l) + `:\`)
		s.typ = windows.GetDriveType(root)
		if s.typ != windows.DRIVE_REMOTE {
			name := make([]uint16, 64)
			if windows.GetVolumeNameForVolumeMountPoint(root, &name[0], uint32(len(name))) == nil {
				s.volume = windows.UTF16ToString(name)
			}
			label := make([]uint16, windows.MAX_PATH+1)
			fsName := make([]uint16, windows.MAX_PATH+1)
			var maxLen, flags uint32
			if windows.GetVolumeInformation(root, &label[0], uint32(len(label)), &s.serial, &maxLen, &flags, &fsName[0], uint32(len(fsName))) == nil {
				s.infoOK = true
				s.label = windows.UTF16ToString(label)
				s.fsName = windows.UTF16ToString(fsName)
				var free, total, totalFree uint64
				if windows.GetDiskFreeSpaceEx(root, &free, &total, &totalFree) == nil {
					s.size = total
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// Wait blocks until the drive letters change, ctx is done, or the watcher
// is closed. Several changes may be reported by one return: read all the
// volumes again after Wait returns nil. It returns ctx.Err() or
// ErrWatcherClosed when woken for those reasons.
func (w *MountWatcher) Wait(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return ErrWatcherClosed
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now, vols := driveSignature(), volumeSignature()
		w.mu.Lock()
		changed := !slices.Equal(now, w.last) || !slices.Equal(vols, w.lastVols)
		w.last, w.lastVols = now, vols
		w.mu.Unlock()
		if changed {
			return nil
		}
	}
}

// Close stops the watcher: a blocked Wait returns ErrWatcherClosed.
func (w *MountWatcher) Close() error {
	w.once.Do(func() { close(w.done) })
	return nil
}
