package agent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/policy"
	"github.com/mamori-agent/mamori/wire"
)

// probeDisks is a diskProbe that answers from units, by disk name; a
// disk not in it cannot be opened. It counts its calls.
type probeDisks struct {
	units map[string][]media.DiskUnit
	calls int
}

func (p *probeDisks) probe(name string) (int64, []media.DiskUnit, error) {
	p.calls++
	u, ok := p.units[name]
	if !ok {
		return 0, nil, errors.New(`probe disk ` + name + `: open: Access is denied.`)
	}
	var size int64
	for _, x := range u {
		size = max(size, x.Offset+x.Length)
	}
	return size, u, nil
}

var (
	infoToGo  = media.Info{Kind: media.KindCrypto, FSType: media.FSBitLocker, Encryption: media.EncryptionBitLockerToGo}
	infoClear = media.Info{Kind: media.KindCrypto, FSType: media.FSBitLocker, ClearKey: true}
	infoFAT   = media.Info{Kind: media.KindFileSystem, FSType: media.FSVFAT, Label: "MY STICK"}
)

// windowsMedia fails closed: a disk that could not be read is never an
// empty slot, and a volume on it is judged.
func TestWindowsMediaFailsClosed(t *testing.T) {
	const path = `USB\VID_0781&PID_5567\4C530001`
	plain := media.Volume{MountPoint: `E:\`, Backing: "PhysicalDrive2", USBDevice: path, FSType: "vfat", Offset: 1 << 20, OffsetKnown: true}
	locked := media.Volume{MountPoint: `E:\`, Backing: "PhysicalDrive2", USBDevice: path,
		Encryption: media.EncryptionBitLockerToGo, Encrypted: true, Offset: 1 << 20, OffsetKnown: true}
	unreadable := func(name string) (string, bool) {
		if name == "PhysicalDrive2" {
			return "open for reading: Access is denied.", true
		}
		return "", false
	}
	togo := &probeDisks{units: map[string][]media.DiskUnit{"PhysicalDrive2": {{Number: 1, Offset: 1 << 20, Length: 16 << 30, Info: infoToGo}}}}
	fat := &probeDisks{units: map[string][]media.DiskUnit{"PhysicalDrive2": {{Number: 1, Offset: 1 << 20, Length: 16 << 30, Info: infoFAT}}}}
	denied := &probeDisks{}
	for _, c := range []struct {
		name       string
		disks      []usb.BlockDevice
		vols       []media.Volume
		probe      *probeDisks
		unreadable func(string) (string, bool)
		want       int // media; -1: none expected
		seen       string
		incomplete string // why the disk list was incomplete
	}{
		{"empty slot", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, nil, togo, nil, -1, "", ""},
		{"size unread, plain volume on it", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, []media.Volume{plain}, fat, nil, 1, "partition 1 (drive E): plain vfat", ""},
		{"size unread, BitLocker volume on it", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, []media.Volume{locked}, togo, unreadable, 1,
			"PhysicalDrive2: could not be read (the disk could not be read: open for reading: Access is denied.)", ""},
		{"unreadable, no volume", []usb.BlockDevice{{Name: "PhysicalDrive2"}}, nil, togo, unreadable, 1, "could not be read", ""},
		{"number unread", []usb.BlockDevice{{Name: `USBSTOR\DISK&VEN_X\1`}}, nil, togo, nil, 1, "its disk number could not be read", ""},
		{"volume on no listed disk", []usb.BlockDevice{{Name: `USBSTOR\DISK&VEN_X\1`}}, []media.Volume{plain}, togo, nil, 2, "drive E: plain vfat", ""},
		// Not an administrator (mamori scan by a user): the disk cannot
		// be opened, so its partitions are unknown, whatever the volume
		// on it shows.
		{"disk cannot be opened, BitLocker volume on it", []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 16 << 30}}, []media.Volume{locked}, denied, nil, 1,
			"PhysicalDrive2: could not be read (its partitions could not be read: probe disk PhysicalDrive2: open: Access is denied.)", ""},
		{"no probe", []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 16 << 30}}, []media.Volume{locked}, nil, nil, 1, "its partitions were not read", ""},
		// The disk list was incomplete: a stick with no disk listed, or
		// only a readable BitLocker one, is still not shown to be
		// encrypted (its disk may be the one missing).
		{"disk list incomplete, no disk", nil, nil, togo, nil, 1, "disks not listed: could not be read (the disks could not all be listed: SetupDiEnumDeviceInfo: boom)", "SetupDiEnumDeviceInfo: boom"},
		{"disk list incomplete, an encrypted disk", []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 16 << 30}}, []media.Volume{locked}, togo, nil, 2, "disks could not all be listed", "boom"},
	} {
		var probe diskProbe
		if c.probe != nil {
			probe = c.probe.probe
		}
		ms := windowsMedia(path, c.disks, c.vols, probe, c.unreadable, c.incomplete)
		if c.want < 0 {
			if len(ms) != 0 {
				t.Errorf("%s: %+v, want no medium", c.name, ms)
			}
			continue
		}
		if len(ms) != c.want {
			t.Errorf("%s: %d media %+v, want %d", c.name, len(ms), ms, c.want)
			continue
		}
		// The medium that says c.seen is not shown to be encrypted; any
		// other is, only when it is the readable BitLocker disk.
		var seen []string
		found := false
		for _, m := range ms {
			if strings.Contains(m.Seen, c.seen) {
				found = true
				if m.Encrypted {
					t.Errorf("%s: %s shown to be encrypted: %+v", c.name, m.Disk, m)
				}
			} else if m.Encrypted && !(c.incomplete != "" && m.Disk == "PhysicalDrive2") {
				t.Errorf("%s: %s shown to be encrypted: %+v", c.name, m.Disk, m)
			}
			seen = append(seen, m.Seen)
		}
		if !found {
			t.Errorf("%s: seen %q, want %q in it", c.name, strings.Join(seen, " | "), c.seen)
		}
	}
	if denied.calls == 0 || togo.calls == 0 {
		t.Error("the disks were not probed")
	}
	// A readable disk whose one partition is BitLocker To Go passes;
	// another device's volume is not this one's.
	other := plain
	other.USBDevice, other.Backing = `USB\VID_1\2`, "PhysicalDrive9"
	ms := windowsMedia(path, []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 16 << 30}}, []media.Volume{locked, other}, togo.probe, unreadable, "")
	if len(ms) != 1 || ms[0].Encrypted { // PhysicalDrive2 is unreadable here
		t.Errorf("unreadable disk with BitLocker: %+v", ms)
	}
	ms = windowsMedia(path, []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 16 << 30}}, []media.Volume{locked, other}, togo.probe, nil, "")
	if len(ms) != 1 || !ms[0].Encrypted || ms[0].Seen != "partition 1 (drive E): bitlocker-to-go" {
		t.Errorf("BitLocker To Go stick: %+v", ms)
	}
	for name, want := range map[string]bool{"PhysicalDrive0": true, "PhysicalDrive12": true, "PhysicalDrive": false,
		"PhysicalDrive-1": false, "PhysicalDrive2x": false, `USBSTOR\DISK`: false, "sda": false} {
		if windowsDiskName(name) != want {
			t.Errorf("windowsDiskName(%q) = %v", name, !want)
		}
	}
}

// TestWindowsMediaEveryPartition is the review's stick: a GPT disk whose
// partition 1 is BitLocker To Go (drive E) and whose partition 2 is plain
// FAT with GPT_BASIC_DATA_ATTRIBUTE_NO_DRIVE_LETTER (no letter: a volume
// reached as \\?\Volume{GUID}\, or, with mountvol, on a folder). Judged
// by its drive letters alone it passed; every partition of the layout is
// judged now, so it is not shown to be encrypted, with or without a
// volume for partition 2, and a partition that could not be read is not
// either. A volume the layout does not show is judged as well.
func TestWindowsMediaEveryPartition(t *testing.T) {
	const path = `USB\VID_0781&PID_5567\4C530001`
	disks := []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 32 << 30}}
	e := media.Volume{Device: `\\?\Volume{00000000-0000-0000-0000-000000000001}`, MountPoint: `E:\`, Backing: "PhysicalDrive2", USBDevice: path,
		FSType: "vfat", Encryption: media.EncryptionBitLockerToGo, Encrypted: true, Offset: 1 << 20, OffsetKnown: true}
	hidden := media.Volume{Device: `\\?\Volume{00000000-0000-0000-0000-000000000002}`, MountPoint: `\\?\Volume{00000000-0000-0000-0000-000000000002}\`,
		Backing: "PhysicalDrive2", USBDevice: path, FSType: "vfat", Offset: 16 << 30, OffsetKnown: true}
	folder := hidden
	folder.MountPoint = `C:\mnt\stick\`
	p := &probeDisks{units: map[string][]media.DiskUnit{"PhysicalDrive2": {
		{Number: 1, Offset: 1 << 20, Length: 16<<30 - 1<<20, Info: infoToGo},
		{Number: 2, Offset: 16 << 30, Length: 16 << 30, Info: infoFAT},
	}}}
	for _, c := range []struct {
		name string
		vols []media.Volume
		seen string
	}{
		{"partition 2 without a volume", []media.Volume{e}, "partition 1 (drive E): bitlocker-to-go; partition 2: plain vfat"},
		{"partition 2 mounted nowhere", []media.Volume{e, hidden},
			"partition 1 (drive E): bitlocker-to-go; partition 2 (volume Volume{00000000-0000-0000-0000-000000000002}): plain vfat"},
		{"partition 2 on a folder", []media.Volume{e, folder}, `partition 1 (drive E): bitlocker-to-go; partition 2 (volume on C:\\mnt\\stick): plain vfat`},
	} {
		ms := windowsMedia(path, disks, c.vols, p.probe, nil, "")
		if len(ms) != 1 || ms[0].Encrypted || ms[0].Seen != c.seen || len(ms[0].Units) != 2 || !ms[0].Units[0].Encrypted || ms[0].Units[1].Encrypted {
			t.Errorf("%s: %+v, want not encrypted, seen %q", c.name, ms, c.seen)
		}
	}

	// Both partitions BitLocker To Go: shown to be encrypted.
	both := &probeDisks{units: map[string][]media.DiskUnit{"PhysicalDrive2": {
		{Number: 1, Offset: 1 << 20, Length: 16<<30 - 1<<20, Info: infoToGo},
		{Number: 2, Offset: 16 << 30, Length: 16 << 30, Info: infoToGo},
	}}}
	ms := windowsMedia(path, disks, []media.Volume{e}, both.probe, nil, "")
	if len(ms) != 1 || !ms[0].Encrypted {
		t.Errorf("two BitLocker To Go partitions: %+v", ms)
	}
	// A partition that could not be read, a layout that could not be
	// listed, suspended protection: not shown to be encrypted.
	for name, u := range map[string]media.DiskUnit{
		"unreadable partition": {Number: 2, Offset: 16 << 30, Length: 16 << 30, Err: errors.New("probe disk PhysicalDrive2 partition 2: read first sector: The device is not ready.")},
		"layout":               {Number: 0, Length: 32 << 30, Err: errors.New("probe disk PhysicalDrive2: partition layout: malformed IOCTL output")},
		"suspended":            {Number: 2, Offset: 16 << 30, Length: 16 << 30, Info: infoClear},
	} {
		p := &probeDisks{units: map[string][]media.DiskUnit{"PhysicalDrive2": {{Number: 1, Offset: 1 << 20, Length: 16<<30 - 1<<20, Info: infoToGo}, u}}}
		ms := windowsMedia(path, disks, []media.Volume{e}, p.probe, nil, "")
		if len(ms) != 1 || ms[0].Encrypted || len(ms[0].Units) != 2 || ms[0].Units[1].Encrypted {
			t.Errorf("%s: %+v, want not encrypted", name, ms)
		}
		if u.Err != nil && !strings.Contains(ms[0].Seen, "could not be read ("+u.Err.Error()+")") {
			t.Errorf("%s: seen %q, want the error", name, ms[0].Seen)
		}
	}
	// A volume at no partition's offset (the layout does not show it), or
	// whose offset is unknown (Wine): judged as it was probed, beside the
	// partitions.
	stray := hidden
	stray.Offset = 40 << 30
	unknown := hidden
	unknown.OffsetKnown = false
	for _, v := range []media.Volume{stray, unknown} {
		ms := windowsMedia(path, disks, []media.Volume{e, v}, both.probe, nil, "")
		if len(ms) != 1 || ms[0].Encrypted || len(ms[0].Units) != 3 ||
			!strings.HasSuffix(ms[0].Seen, "; volume Volume{00000000-0000-0000-0000-000000000002}: plain vfat") {
			t.Errorf("volume at offset %d (known %v): %+v", v.Offset, v.OffsetKnown, ms)
		}
	}
}

// TestWindowsMediaProbedAgain: the disk is read at every judgement (every
// rescan), so BitLocker suspended or turned off in place, which changes
// nothing Windows shows of the volume, is seen at the next one, with a
// medium key of its own.
func TestWindowsMediaProbedAgain(t *testing.T) {
	const path = `USB\VID_0781&PID_5567\4C530001`
	disks := []usb.BlockDevice{{Name: "PhysicalDrive2", Size: 16 << 30}}
	e := media.Volume{MountPoint: `E:\`, Backing: "PhysicalDrive2", USBDevice: path, FSType: "vfat",
		Encryption: media.EncryptionBitLockerToGo, Encrypted: true, Offset: 1 << 20, OffsetKnown: true}
	p := &probeDisks{units: map[string][]media.DiskUnit{"PhysicalDrive2": {{Number: 1, Offset: 1 << 20, Length: 16<<30 - 1<<20, Info: infoToGo}}}}
	var keys []string
	for i, step := range []struct {
		info      media.Info
		encrypted bool
	}{{infoToGo, true}, {infoClear, false}, {infoToGo, true}, {infoFAT, false}} {
		p.units["PhysicalDrive2"][0].Info = step.info
		ms := windowsMedia(path, disks, []media.Volume{e}, p.probe, nil, "")
		if len(ms) != 1 || ms[0].Encrypted != step.encrypted {
			t.Fatalf("step %d: %+v, want encrypted %v", i, ms, step.encrypted)
		}
		keys = append(keys, ms[0].Key)
		if p.calls != i+1 {
			t.Errorf("step %d: %d probes, want %d", i, p.calls, i+1)
		}
	}
	if keys[0] != keys[2] || keys[1] == keys[0] || keys[3] == keys[0] || keys[3] == keys[1] {
		t.Errorf("medium keys %q: want one per state", keys)
	}
}

func TestVolumeName(t *testing.T) {
	for mp, want := range map[string]string{
		`E:\`: "drive E", "E:": "drive E",
		`\\?\Volume{00000000-0000-0000-0000-000000000002}\`: "volume Volume{00000000-0000-0000-0000-000000000002}",
		`C:\mnt\stick\`:  `volume on C:\\mnt\\stick`, // escaped as every path shown (safe.String)
		"C:\\x\x1b[2J\\": `volume on C:\\x\x1b[2J`,
		"/media/stick":   "volume on /media/stick",
	} {
		if got := volumeName(media.Volume{MountPoint: mp}); got != want {
			t.Errorf("volumeName(%q) = %q, want %q", mp, got, want)
		}
	}
}

// TestUnknownUSBStorageJudged: a disk the Windows USB backend cannot
// place below a USB device is a Device of its own (usb.UnknownPathPrefix,
// class mass storage, the disk, no ids): no approval by vendor, product
// or serial holds it, so it is unapproved storage; where storage is
// approved by class on condition of encryption, its plain medium is a
// violation. Never an internal disk, fine.
func TestUnknownUSBStorageJudged(t *testing.T) {
	d := &usb.Device{Path: usb.UnknownPathPrefix + `USBSTOR\Disk&Ven_SanDisk&Prod_Cruzer\4C53&0`, Class: usb.ClassMassStorage,
		Product:    "SanDisk Cruzer USB Device (USB device not determined: its bus type could not be read)",
		Interfaces: []usb.Interface{}, BlockDevices: []usb.BlockDevice{{Name: "PhysicalDrive3", Size: 16 << 30, Removable: true}}}
	if d.IsRootHub() || !d.IsStorage() {
		t.Fatalf("root hub %v, storage %v", d.IsRootHub(), d.IsStorage())
	}
	cfg := func(entries string) *policy.USBPolicy {
		c, err := config.Parse("t.yaml", []byte("version: 1\nagent:\n  asset_id: PC-TEST\napproved:\n  usb:\n"+entries))
		if err != nil {
			t.Fatal(err)
		}
		return policy.NewUSBPolicy(c)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.Local)
	byIDs := cfg(`    - name: SanDisk sticks
      vendor_id: "0781"
    - name: Any device with no serial
      vendor_id: "0000"
      product_id: "0000"
`)
	dec := byIDs.Decide(d, now)
	if dec.Approved || dec.Violation == nil || dec.Violation.Kind != wire.KindUSBStorageUnapproved {
		t.Errorf("approved by ids only: %+v, want usb_storage_unapproved", dec)
	}

	byClass := cfg(`    - name: Encrypted storage
      classes: [mass-storage]
      require_encryption: true
`)
	dec = byClass.Decide(d, now)
	if !dec.Approved || !dec.RequiresEncryption(d) {
		t.Fatalf("storage approved by class on condition of encryption: %+v", dec)
	}
	plain := media.Volume{MountPoint: `E:\`, Backing: "PhysicalDrive3", USBDevice: d.Path, FSType: "vfat", Offset: 1 << 20, OffsetKnown: true}
	p := &probeDisks{units: map[string][]media.DiskUnit{"PhysicalDrive3": {{Number: 1, Offset: 1 << 20, Length: 16<<30 - 1<<20, Info: infoFAT}}}}
	ms := windowsMedia(d.Path, d.BlockDevices, []media.Volume{plain}, p.probe, nil, "")
	if len(ms) != 1 || ms[0].Encrypted || !strings.Contains(ms[0].Seen, "partition 1 (drive E): plain vfat") {
		t.Errorf("plain medium of unknown USB storage: %+v", ms)
	}
}
