package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mamori-agent/mamori/internal/atomicfile"
)

// stateFile is the agent's memory of open appearances across restarts:
// a restart is not a new appearance of the devices that stayed plugged,
// a reboot or a re-plug is. Appearances are keyed by boot id, bus number
// and device number (the kernel never reuses a devnum on a bus within one
// boot until it wraps at 127... and a re-plug always gets a new one).
type stateFile struct {
	BootID      string                 `json:"boot_id"`
	Appearances map[string]savedAppear `json:"appearances"` // by bus path
	Volumes     map[string]savedVolume `json:"volumes"`     // by volumeKey
	path        string
	saved       []byte // what was last written, to skip writes that change nothing
}

type savedAppear struct {
	BusNum    int      `json:"busnum"`
	DevNum    int      `json:"devnum"`
	VendorID  string   `json:"vendor_id"`
	ProductID string   `json:"product_id"`
	Serial    *string  `json:"serial,omitempty"`
	Recorded  []string `json:"recorded,omitempty"` // violation kinds recorded in this appearance
}

type savedVolume struct {
	Device     string `json:"device"`
	MountPoint string `json:"mount_point"`
	USBDevice  string `json:"usb_device"`
}

const stateName = "appearances.json"

// readBootID returns the kernel's boot id, or "" when it cannot be read
// (then every start is a new appearance).
func readBootID(procfs string) string {
	b, err := os.ReadFile(filepath.Join(procfs, "sys/kernel/random/boot_id"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// loadState reads the state file; a missing, unreadable or foreign-boot
// file gives an empty state (and an error to log for a corrupt one).
func loadState(dir, bootID string) (*stateFile, error) {
	st := &stateFile{BootID: bootID, Appearances: map[string]savedAppear{}, Volumes: map[string]savedVolume{}, path: filepath.Join(dir, stateName)}
	b, err := os.ReadFile(st.path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read state: %w", err)
	}
	var saved stateFile
	if err := json.Unmarshal(b, &saved); err != nil {
		return st, fmt.Errorf("parse state %s: %w", st.path, err)
	}
	if bootID == "" || saved.BootID != bootID {
		// Another boot: every device seen now is a new appearance.
		return st, nil
	}
	if saved.Appearances != nil {
		st.Appearances = saved.Appearances
	}
	if saved.Volumes != nil {
		st.Volumes = saved.Volumes
	}
	return st, nil
}

// save writes the state atomically.
func (st *stateFile) save() error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if bytes.Equal(b, st.saved) {
		return nil
	}
	if err := atomicfile.WriteFile(st.path, b); err != nil {
		return fmt.Errorf("save appearances: %w", err)
	}
	st.saved = b
	return nil
}
