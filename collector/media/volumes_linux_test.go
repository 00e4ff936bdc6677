package media

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeSys builds a sysfs and a dev tree in a temp dir.
type fakeSys struct {
	t          *testing.T
	sysfs, dev string
}

func newFakeSys(t *testing.T) *fakeSys {
	root := t.TempDir()
	s := &fakeSys{t: t, sysfs: filepath.Join(root, "sys"), dev: filepath.Join(root, "dev")}
	for _, d := range []string{"dev/block", "class/block", "devices"} {
		s.mkdir(filepath.Join(s.sysfs, d))
	}
	s.mkdir(s.dev)
	return s
}

func (s *fakeSys) mkdir(p string) {
	if err := os.MkdirAll(p, 0o755); err != nil {
		s.t.Fatal(err)
	}
}

func (s *fakeSys) write(p string, b []byte) {
	s.mkdir(filepath.Dir(p))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// block adds a block device: devPath is its directory under devices/
// ("pci0/usb1/1-2/host0/block/sda/sda1"); image (may be nil) becomes
// <dev>/<name>.
func (s *fakeSys) block(devPath, majMin string, sectors int, partition bool, image []byte) {
	name := filepath.Base(devPath)
	dir := filepath.Join(s.sysfs, "devices", devPath)
	s.write(filepath.Join(dir, "size"), []byte(strconv.Itoa(sectors)+"\n"))
	if partition {
		s.write(filepath.Join(dir, "partition"), []byte("1\n"))
	}
	if err := os.Symlink(filepath.Join("..", "..", "devices", devPath), filepath.Join(s.sysfs, "dev", "block", majMin)); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..", "..", "devices", devPath), filepath.Join(s.sysfs, "class", "block", name)); err != nil {
		s.t.Fatal(err)
	}
	if image != nil {
		s.write(filepath.Join(s.dev, name), image)
	}
}

func (s *fakeSys) slave(upper, lower string) {
	dir := filepath.Join(s.sysfs, "class", "block", upper, "slaves")
	s.mkdir(dir)
	if err := os.Symlink(filepath.Join("..", "..", lower), filepath.Join(dir, lower)); err != nil {
		s.t.Fatal(err)
	}
}

func TestVolumes(t *testing.T) {
	s := newFakeSys(t)
	fat := testImage(t, "fat12")
	ext4 := testImage(t, "ext4")
	luks := append([]byte("LUKS\xba\xbe\x00\x02"), make([]byte, 8192)...)
	copy(luks[24:], "stick-label")
	copy(luks[168:], "0f2c7d6e-5b1a-4f4e-9a59-3c8a1f6b2d10")
	// A real BitLocker header and metadata, with an ext4 superblock
	// planted at 1024: Probe says BitLocker, the kernel mounts ext4.
	fakeBitLocker := compactBitLocker(t, "bitlk-aes-xts-128")
	copy(fakeBitLocker[1024:2048], ext4[1024:2048])
	if info, err := Probe(bytes.NewReader(fakeBitLocker), int64(len(fakeBitLocker))); err != nil || !info.Encrypted() {
		t.Fatalf("forged image does not probe as BitLocker: %+v, %v", info, err)
	}

	// sda: USB stick with a FAT partition. sdb: USB stick, LUKS2 on the
	// partition, opened as dm-0 and mounted. sdc: a USB disk without a
	// partition table whose ext4 carries a forged BitLocker sector.
	// vda: the internal disk. sdd1: on USB but its device node is gone.
	s.block("pci0/usb1/1-2/host0/block/sda", "8:0", 2048, false, nil)
	s.block("pci0/usb1/1-2/host0/block/sda/sda1", "8:1", 2047, true, fat)
	s.block("pci0/usb1/1-3/host1/block/sdb", "8:16", 40960, false, nil)
	s.block("pci0/usb1/1-3/host1/block/sdb/sdb1", "8:17", 40000, true, luks)
	s.block("virtual/block/dm-0", "254:0", 30000, false, ext4)
	s.write(filepath.Join(s.sysfs, "devices/virtual/block/dm-0/dm/uuid"), []byte("CRYPT-LUKS2-0f2c7d6e5b1a4f4e9a593c8a1f6b2d10-stick\n"))
	s.slave("dm-0", "sdb1")
	s.block("pci0/usb1/1-4/host2/block/sdc", "8:32", 2048, false, fakeBitLocker)
	s.block("pci0/virtio1/block/vda", "253:0", 1<<20, false, ext4)
	s.block("pci0/usb1/1-5/host3/block/sdd/sdd1", "8:49", 100, true, nil)

	usb := map[string]string{"sda": "1-2", "sdb": "1-3", "sdb1": "1-3", "sdc": "1-4", "sdd1": "1-5"}
	mounts, err := parseMountInfo([]byte(`26 1 253:0 / / rw,relatime - ext4 /dev/vda rw
30 26 8:1 / /media/u/MY\040STICK rw,nosuid,relatime shared:5 - vfat /dev/sda1 rw,fmask=0022
31 26 254:0 / /media/u/stick ro,relatime - ext4 /dev/mapper/stick rw
32 26 8:32 / /mnt/c rw - ext4 /dev/sdc rw
33 26 8:49 / /mnt/d rw - vfat /dev/sdd1 rw
34 26 0:44 / /mnt/bind rw - tmpfs tmpfs rw
`))
	if err != nil {
		t.Fatal(err)
	}
	vols := Volumes(mounts, usb, Options{SysfsRoot: s.sysfs, DevRoot: s.dev})
	byMount := map[string]Volume{}
	for _, v := range vols {
		byMount[v.MountPoint] = v
	}
	if len(vols) != 4 {
		t.Fatalf("want 4 USB volumes, got %d: %+v", len(vols), vols)
	}
	if _, ok := byMount["/"]; ok {
		t.Error("internal disk reported")
	}

	v := byMount["/media/u/MY STICK"]
	if v.BlockName != "sda1" || v.USBDevice != "1-2" || v.FSType != "vfat" || v.Label != "MY STICK" ||
		v.Size != 2047*512 || v.ReadOnly || v.Encrypted || v.Backing != "" || v.Error != "" || v.UUID == "" {
		t.Errorf("sda1: %+v", v)
	}

	v = byMount["/media/u/stick"]
	if v.BlockName != "dm-0" || v.Backing != "sdb1" || v.USBDevice != "1-3" || !v.Encrypted ||
		v.Encryption != EncryptionLUKS2 || v.Label != "backup" || !v.ReadOnly || v.Error != "" {
		t.Errorf("dm-0 over sdb1: %+v", v)
	}

	v = byMount["/mnt/c"]
	if v.Encrypted || v.Encryption != "" || !strings.Contains(v.Error, "mounted directly") {
		t.Errorf("forged BitLocker sector: %+v", v)
	}

	v = byMount["/mnt/d"]
	if v.USBDevice != "1-5" || v.Error == "" || v.Encrypted {
		t.Errorf("unreadable device: %+v", v)
	}
}

func TestVolumesStackedNotCrypt(t *testing.T) {
	// LVM (dm without CRYPT- uuid) over a LUKS-looking USB partition: the
	// mapping does not decrypt, so the medium is not counted as encrypted.
	s := newFakeSys(t)
	luks := append([]byte("LUKS\xba\xbe\x00\x01"), make([]byte, 8192)...)
	s.block("pci0/usb1/1-3/host1/block/sdb/sdb1", "8:17", 40000, true, luks)
	s.block("virtual/block/dm-1", "254:1", 30000, false, testImage(t, "ext4"))
	s.write(filepath.Join(s.sysfs, "devices/virtual/block/dm-1/dm/uuid"), []byte("LVM-abc\n"))
	s.slave("dm-1", "sdb1")
	mounts := []Mount{{ID: 1, MajorMinor: "254:1", MountPoint: "/m", FSType: "ext4", Source: "/dev/mapper/vg-lv"}}
	vols := Volumes(mounts, map[string]string{"sdb": "1-3"}, Options{SysfsRoot: s.sysfs, DevRoot: s.dev})
	if len(vols) != 1 || vols[0].Encrypted || vols[0].Backing != "sdb1" || !strings.Contains(vols[0].Error, "not a dm-crypt") {
		t.Errorf("%+v", vols)
	}
}

func TestVolumesFallbackToSource(t *testing.T) {
	// No dev/block link for the major:minor (btrfs-style anonymous dev):
	// the /dev/NAME source decides.
	s := newFakeSys(t)
	s.block("pci0/usb1/1-2/host0/block/sda/sda1", "8:1", 2047, true, testImage(t, "exfat"))
	mounts := []Mount{
		{ID: 1, MajorMinor: "0:77", MountPoint: "/m", FSType: "exfat", Source: "/dev/sda1"},
		{ID: 2, MajorMinor: "0:78", MountPoint: "/n", FSType: "exfat", Source: "/dev/../../etc"},
	}
	vols := Volumes(mounts, map[string]string{"sda": "1-2"}, Options{SysfsRoot: s.sysfs, DevRoot: s.dev})
	if len(vols) != 1 || vols[0].BlockName != "sda1" || vols[0].Label != "Données" {
		t.Errorf("%+v", vols)
	}
}

func TestProbeBlock(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sdb"), testImage(t, "ntfs"), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := ProbeBlock(dir, "sdb")
	if err != nil || info.FSType != FSNTFS || info.Label != "Win Daten" {
		t.Errorf("%+v, %v", info, err)
	}
	for _, bad := range []string{"", ".", "..", "../sdb", "a/b"} {
		if _, err := ProbeBlock(dir, bad); err == nil || !strings.Contains(err.Error(), "not a block device name") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := ProbeBlock(dir, "sdz"); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "sdz")) {
		t.Errorf("missing device: %v", err)
	}
	// A real block device when one is readable here (loop devices exist on
	// this kind of machine, usually unbound: reading them gives EOF).
	if _, err := os.Stat("/dev/loop0"); err == nil {
		if _, err := ProbeBlock("/dev", "loop0"); err == nil {
			t.Log("loop0 probed without error")
		}
	}
}
