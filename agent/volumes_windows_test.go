package agent

import (
	"context"
	"github.com/mamori-agent/mamori/internal/gztest"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows/registry"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/wintest"
)

// volRecord is what these tests read of an audit record.
type volRecord struct {
	Seq     uint64 `json:"seq"`
	Type    string `json:"type"`
	Trigger string `json:"trigger"`
	Path    string `json:"path"`
	Message string `json:"message"`
	Volume  *struct {
		MountPoint string `json:"mount_point"`
		Label      string `json:"label"`
	} `json:"volume"`
	Violation *struct {
		Kind string `json:"kind"`
	} `json:"violation"`
	Medium *struct {
		Disk string `json:"disk"`
		Seen string `json:"seen"`
	} `json:"medium"`
}

func (r volRecord) String() string {
	s := r.Type + " " + r.Trigger + " " + r.Path
	if r.Volume != nil {
		s += " " + r.Volume.MountPoint
	}
	if r.Violation != nil {
		s += " " + r.Violation.Kind
	}
	if r.Medium != nil {
		s += " [" + r.Medium.Disk + ": " + r.Medium.Seen + "]"
	}
	return s
}

func volRecords(t *testing.T, state string) []volRecord {
	t.Helper()
	return readAuditLog[volRecord](t, state)
}

func dumpVol(recs []volRecord) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.String() + "\n")
	}
	return b.String()
}

// winAgent is an agent started by runAgentOn: the agent, the config it
// was given, its log (JSON) and the function that stops it.
type winAgent struct {
	a    *Agent
	cfg  *config.Config
	logs *syncBuffer
	stop func()
}

// runAgentOn runs an agent on state with the config body (state_dir
// set) until it is ready. Its stop is also called when the test ends,
// before its folders are removed. Rescans only (no device notifications,
// no drive-letter watch), no network, no local API.
func runAgentOn(t *testing.T, state, body string) *winAgent {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Agent.StateDir = state
	cfg.Agent.LocalSocket = ""
	w := &winAgent{cfg: cfg, logs: &syncBuffer{}}
	ready := make(chan struct{})
	w.a, err = New(Options{Config: cfg, Logger: slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		NoUevents: true, NoMountWatch: true, NoNetwork: true, Ready: func(string) { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.a.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("the agent ended before it was ready: %v\nlog:\n%v", err, w.logs.lines(t))
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("the agent not ready after 30 s")
	}
	stopped := false
	w.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the agent did not stop")
		}
	}
	t.Cleanup(w.stop) // a test that failed half-way stops it too
	return w
}

// startAgent runs an agent on state with the config body (runAgentOn)
// and returns the function that stops it.
func startAgent(t *testing.T, state, body string) (stop func()) {
	t.Helper()
	return runAgentOn(t, state, body).stop
}

// waitVol polls the audit log of state (every 100 ms, up to d) until
// cond holds for its records, and returns them.
func waitVol(t *testing.T, state string, d time.Duration, what string, cond func([]volRecord) bool) []volRecord {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		recs := volRecords(t, state)
		if cond(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s:\n%s", what, d, dumpVol(recs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func countVol(recs []volRecord, typ, path, kind string) int {
	n := 0
	for _, r := range recs {
		if r.Type == typ && r.Path == path && (kind == "" || r.Violation != nil && r.Violation.Kind == kind) {
			n++
		}
	}
	return n
}

// TestWindowsUnplacedVolumeJudged maps a plain FAT image as a fixed drive
// (Wine answers no storage IOCTL for it: its bus type is unknown, and no
// USB device holds its disk) and runs the agent on it. The drive is kept
// and judged as USB storage whose device is unknown: a device of its own
// ("unknown:PhysicalDriveN"), added once however many rescans see it,
// unapproved storage under approvals by ids; removed when the drive goes.
// Under an approval by class that requires encryption, its plain medium
// is media_unencrypted; a restart of the agent continues the device's
// appearance (not removed and added again, its violation not recorded
// twice). Before, the drive was left out (or, removable, recorded as
// volume_mounted only) and never judged.
func TestWindowsUnplacedVolumeJudged(t *testing.T) {
	if !wintest.IsWine() {
		t.Skip("defines drive letters through Wine's mount manager: runs under Wine only (scripts/wine/test.sh)")
	}
	// Windows counts its boots in BootId, which tells a restart of the
	// agent from a reboot; Wine has none (every start is a new boot), so
	// this throw-away prefix gets one.
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, bootIDKey, registry.QUERY_VALUE|registry.SET_VALUE)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.GetIntegerValue(bootIDValue); err != nil {
		if err := k.SetDWordValue(bootIDValue, 7); err != nil {
			k.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { k.DeleteValue(bootIDValue); k.Close() })
	} else {
		k.Close()
	}
	dir := wintest.TempDir(t)
	letter := mapFixedFAT(t)
	mount := string(letter) + `:\`
	const head = "version: 1\nagent:\n  asset_id: PC-WIN\n  language: en\n  rescan_interval: 1s\nmetrics:\n  listen: \"\"\n"

	// Approvals by ids only.
	state := filepath.Join(dir, "state-ids")
	stop := startAgent(t, state, head+"approved:\n  usb:\n    - name: SanDisk sticks\n      vendor_id: \"0781\"\n")
	recs := waitVol(t, state, 30*time.Second, "volume_mounted of "+mount, func(recs []volRecord) bool {
		for _, r := range recs {
			if r.Type == TypeVolumeMounted && r.Volume != nil && r.Volume.MountPoint == mount {
				return true
			}
		}
		return false
	})
	var path string
	for _, r := range recs {
		if r.Type == TypeVolumeMounted && r.Volume.MountPoint == mount {
			path = r.Path
			if r.Volume.Label != "MY STICK" {
				t.Errorf("volume_mounted %+v, want label MY STICK", *r.Volume)
			}
		}
	}
	if !strings.HasPrefix(path, "unknown:PhysicalDrive") {
		t.Fatalf("the drive's volume is on device %q, want unknown:PhysicalDriveN:\n%s", path, dumpVol(recs))
	}
	time.Sleep(3500 * time.Millisecond) // three rescans
	recs = volRecords(t, state)
	if n := countVol(recs, TypeDeviceAdded, path, ""); n != 1 {
		t.Errorf("%d device_added for %s over rescans, want 1:\n%s", n, path, dumpVol(recs))
	}
	if n := countVol(recs, TypeDeviceRemoved, path, ""); n != 0 {
		t.Errorf("%s removed while its drive is there:\n%s", path, dumpVol(recs))
	}
	if n := countVol(recs, TypeViolation, path, KindStorageUnapproved); n != 1 {
		t.Errorf("%d usb_storage_unapproved for %s, want 1:\n%s", n, path, dumpVol(recs))
	}
	wintest.UnmapDrive(t, letter)
	waitVol(t, state, 30*time.Second, "device_removed of "+path, func(recs []volRecord) bool {
		return countVol(recs, TypeDeviceRemoved, path, "") == 1 && countVol(recs, TypeVolumeUnmounted, path, "") == 1
	})
	stop()

	// An approval by class that requires encryption: the plain medium is
	// the violation, the device approved. The drive comes back first.
	letter = mapFixedFAT(t)
	mount = string(letter) + `:\`
	state = filepath.Join(dir, "state-class")
	body := head + "approved:\n  usb:\n    - name: Encrypted storage\n      classes: [mass-storage]\n      require_encryption: true\n"
	stop = startAgent(t, state, body)
	recs = waitVol(t, state, 30*time.Second, "media_unencrypted", func(recs []volRecord) bool {
		for _, r := range recs {
			if r.Type == TypeViolation && r.Violation != nil && r.Violation.Kind == KindMediaUnencrypted && strings.HasPrefix(r.Path, "unknown:PhysicalDrive") {
				path = r.Path
				return true
			}
		}
		return false
	})
	stop()
	// The disk is read for its partitions (media.ProbeWindowsDisk).
	// Wine cannot: the disk of a drive mapped as fixed does not open
	// ("File not found"; a removable one's opens, and its sectors read
	// "Invalid function"), so it is a unit that could not be read,
	// beside the drive as it was probed (its offset unknown under Wine).
	for _, r := range recs {
		if r.Type == TypeViolation && r.Path == path && r.Violation.Kind == KindMediaUnencrypted &&
			(r.Medium == nil || !strings.Contains(r.Medium.Seen, "drive "+string(letter)+": plain vfat") ||
				!strings.Contains(r.Medium.Seen, ": could not be read (") || !strings.Contains(r.Medium.Seen, "probe disk PhysicalDrive")) {
			t.Errorf("media_unencrypted %s, want the drive's plain vfat medium and its disk read", r)
		}
	}
	if n := countVol(recs, TypeViolation, path, KindStorageUnapproved); n != 0 {
		t.Errorf("usb_storage_unapproved under a class approval:\n%s", dumpVol(recs))
	}
	before := len(volRecords(t, state))

	// A restart: the same appearance goes on.
	stop = startAgent(t, state, body)
	time.Sleep(1500 * time.Millisecond)
	stop()
	recs = volRecords(t, state)
	after := recs[before:]
	if countVol(after, TypeDeviceAdded, path, "") != 0 || countVol(after, TypeDeviceRemoved, path, "") != 0 || countVol(after, TypeViolation, path, "") != 0 {
		t.Errorf("after a restart, %s was recorded again:\n%s", path, dumpVol(after))
	}
	if rep, err := audit.Verify(state); err != nil || len(rep.Problems) != 0 {
		t.Errorf("audit verify: %+v, %v", rep, err)
	}
}

// mapFixedFAT maps a free drive letter as a fixed drive on
// collector/media's FAT12 image (mkfs.vfat -n "MY STICK"); the letter is
// removed when the test ends (if wintest.UnmapDrive did not).
func mapFixedFAT(t *testing.T) byte {
	t.Helper()
	img := gztest.Read(t, filepath.Join("..", "collector", "media", "testdata", "images", "fat12.img.gz"))
	return wintest.MapImage(t, wintest.DriveFixed, img)
}

// TestWindowsScanJudgesUnplacedVolume: mamori scan judges a drive that no
// USB device claims as the agent does: on an unknown:PhysicalDriveN
// device of its own, unapproved storage under approvals by ids.
func TestWindowsScanJudgesUnplacedVolume(t *testing.T) {
	if !wintest.IsWine() {
		t.Skip("defines drive letters through Wine's mount manager: runs under Wine only (scripts/wine/test.sh)")
	}
	dir := wintest.TempDir(t)
	letter := mapFixedFAT(t)
	mount := string(letter) + `:\`
	cfg, err := config.Parse("test.yaml", []byte("version: 1\nagent:\n  asset_id: PC-WIN\n  language: en\n"+
		"approved:\n  usb:\n    - name: SanDisk sticks\n      vendor_id: \"0781\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Agent.StateDir = filepath.Join(dir, "state")
	rep, err := Scan(ScanOptions{Config: cfg, NoNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	var path string
	for _, v := range rep.Volumes {
		if v.MountPoint == mount {
			path = v.USBDevice
		}
	}
	if !strings.HasPrefix(path, "unknown:PhysicalDrive") {
		t.Fatalf("scan: the volume of %s is on device %q, want unknown:PhysicalDriveN: %+v", mount, path, rep.Volumes)
	}
	found := false
	for _, v := range rep.Violations {
		if v.Device == path && v.Kind == KindStorageUnapproved {
			found = true
		}
	}
	if !found {
		t.Errorf("scan: no %s for %s: %+v", KindStorageUnapproved, path, rep.Violations)
	}
	// policy suggest says why it suggests nothing for that drive.
	out, err := SuggestFromSystem(SuggestOptions{ScanOptions: ScanOptions{Config: cfg, NoNetwork: true}})
	if err != nil {
		t.Logf("suggest: %v", err)
	}
	if !strings.Contains(string(out), "# not suggested: "+path+", ") {
		t.Errorf("suggest: no note for %s:\n%s", path, out)
	}
}
