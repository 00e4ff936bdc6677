//go:build !windows

package media

import (
	"errors"
	"fmt"
)

// ReadDrives returns an error wrapping errors.ErrUnsupported: drive
// letters are Windows'.
func ReadDrives() ([]Drive, error) {
	return nil, fmt.Errorf("media: drive letters: %w", errors.ErrUnsupported)
}

// WindowsVolumes returns an error wrapping errors.ErrUnsupported: on this
// system volumes come from the mount table (Volumes).
func WindowsVolumes(opts WindowsOptions) ([]Volume, error) {
	return nil, fmt.Errorf("media: drive letters: %w", errors.ErrUnsupported)
}

// ProbeDevice returns an error wrapping errors.ErrUnsupported: use
// ProbeBlock.
func ProbeDevice(path string, opts ProbeOptions) (Info, error) {
	return Info{}, fmt.Errorf("media: windows device %q: %w", truncate(path), errors.ErrUnsupported)
}

// ProbeWindowsDisk returns an error wrapping errors.ErrUnsupported: on
// this system partitions are block devices of their own (ProbeBlock).
func ProbeWindowsDisk(name string, opts ProbeOptions) (int64, []DiskUnit, error) {
	return 0, nil, fmt.Errorf("media: windows disk %q: %w", truncate(name), errors.ErrUnsupported)
}
