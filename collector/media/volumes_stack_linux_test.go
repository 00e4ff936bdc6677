package media

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// stickTree is the shape of the bug fixtures (testdata/bugs/*): USB stick
// 1-2 with sdb and sdb1, as the kernel lays it out in sysfs.
func stickTree(t *testing.T) *fakeSys {
	s := newFakeSys(t)
	s.block("pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host0/target0:0:0/0:0:0:0/block/sdb", "8:16", 65536, false, nil)
	s.block("pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host0/target0:0:0/0:0:0:0/block/sdb/sdb1", "8:17", 63488, true, nil)
	return s
}

// dm adds a device-mapper device with its dm/name and dm/uuid, stacked on
// lower.
func (s *fakeSys) dm(name, majMin, dmName, dmUUID, lower string) {
	s.block("virtual/block/"+name, majMin, 61440, false, make([]byte, 4096))
	dir := filepath.Join(s.sysfs, "devices/virtual/block", name, "dm")
	s.write(filepath.Join(dir, "name"), []byte(dmName+"\n"))
	s.write(filepath.Join(dir, "uuid"), []byte(dmUUID+"\n"))
	s.slave(name, lower)
}

// devImage makes <dev>/<name> a sparse file of size bytes and returns its
// path, for a real tool to format.
func (s *fakeSys) devImage(name string, size int64) string {
	p := filepath.Join(s.dev, name)
	f, err := os.Create(p)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		s.t.Fatal(err)
	}
	f.Close()
	return p
}

func (s *fakeSys) link(rel, target string) {
	p := filepath.Join(s.dev, rel)
	s.mkdir(filepath.Dir(p))
	if err := os.Symlink(target, p); err != nil {
		s.t.Fatal(err)
	}
}

var stickUSB = map[string]string{"sdb": "1-2"}

// luksStick is fixture btrfs-on-luks-volume: sdb1 a real LUKS2 volume
// (cryptsetup), opened as dm-0 (dm/name storage2, a CRYPT- uuid,
// slaves/sdb1).
func luksStick(t *testing.T) *fakeSys {
	needTool(t, "cryptsetup")
	s := stickTree(t)
	img := s.devImage("sdb1", 20<<20)
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "cryptsetup", "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
		"--uuid", "19a4f5a6-7ef9-4b76-ae95-bc2c4f03d8fe", "--key-file", key, img)
	s.dm("dm-0", "254:0", "storage2", "CRYPT-LUKS2-19a4f5a67ef94b76ae95bc2c4f03d8fe-storage2", "sdb1")
	return s
}

// TestVolumesThroughDeviceMapper: a file system with an anonymous device
// number (btrfs: 0:45) mounted from a device-mapper node is tied to its
// USB stick through dm/name and slaves/, whatever path names the node.
func TestVolumesThroughDeviceMapper(t *testing.T) {
	s := luksStick(t)
	// udev's links, relative as udev makes them.
	s.link("mapper/storage2", "../dm-0")
	s.link("disk/by-uuid/3c1f0d7e-0000-4000-8000-000000000001", "../../dm-0")
	s.link("disk/by-label/storage", "../../dm-0")
	for _, tc := range []struct {
		name, majMin, fstype, source string
	}{
		{"btrfs from /dev/mapper (fixture)", "0:45", "btrfs", "/dev/mapper/storage2"},
		{"ext4 from /dev/mapper (fixture control)", "254:0", "ext4", "/dev/mapper/storage2"},
		{"btrfs from /dev/dm-0", "0:45", "btrfs", "/dev/dm-0"},
		{"btrfs from by-uuid link", "0:45", "btrfs", "/dev/disk/by-uuid/3c1f0d7e-0000-4000-8000-000000000001"},
		{"btrfs from by-label link", "0:45", "btrfs", "/dev/disk/by-label/storage"},
		{"btrfs from /dev/block/254:0", "0:45", "btrfs", "/dev/block/254:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mounts, err := parseMountInfo([]byte("22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n" +
				"98 22 " + tc.majMin + " / /run/media/user/storage rw,nosuid,nodev,relatime shared:50 - " + tc.fstype + " " + tc.source + " rw\n"))
			if err != nil {
				t.Fatal(err)
			}
			vols := Volumes(mounts, stickUSB, Options{SysfsRoot: s.sysfs, DevRoot: s.dev})
			if len(vols) != 1 {
				t.Fatalf("want 1 volume, got %+v", vols)
			}
			v := vols[0]
			if v.Device != tc.source || v.MountPoint != "/run/media/user/storage" || v.USBDevice != "1-2" ||
				v.Encryption != EncryptionLUKS2 || !v.Encrypted || v.Backing != "sdb1" || v.BlockName != "dm-0" ||
				v.FSType != tc.fstype || v.Error != "" {
				t.Errorf("%+v", v)
			}
			// Without udev's links the kernel's own names suffice.
			if !strings.Contains(tc.source, "/disk/") {
				if got := blockName(mounts[1], s.sysfs, t.TempDir()); got != "dm-0" {
					t.Errorf("without /dev links: %q", got)
				}
			}
		})
	}
}

// TestVolumesMapperNames: other members of the kind: a mangled
// /dev/mapper name, LVM's /dev/VG/LV (dm/name "VG-LV" with '-' doubled)
// over the LUKS mapping, and names that must not resolve.
func TestVolumesMapperNames(t *testing.T) {
	s := luksStick(t)
	s.dm("dm-1", "254:1", "my disk", "CRYPT-PLAIN-my disk", "sdb1")
	s.dm("dm-2", "254:2", "vg--usb-lv--data", "LVM-AbCdEf", "dm-0")
	s.dm("dm-3", "254:3", "vg-x", "CRYPT-PLAIN-vg-x", "sdb1") // a dm named like an LV, not LVM
	for _, tc := range []struct {
		source, want string
	}{
		{`/dev/mapper/my\x20disk`, "dm-1"},
		{"/dev/vg-usb/lv-data", "dm-2"},
		{"/dev/mapper/vg--usb-lv--data", "dm-2"},
		{"/dev/vg/x", ""},           // dm-3's uuid is not LVM-
		{"/dev/mapper/nothere", ""}, // no such dm
		{"/dev/mapper/../../etc/passwd", ""},
		{"/dev/foo/sdb1", ""}, // not a link: the last element is no kernel name
		{"storage2", ""},
	} {
		m := Mount{ID: 1, MajorMinor: "0:45", MountPoint: "/m", FSType: "btrfs", Source: tc.source}
		if got := blockName(m, s.sysfs, s.dev); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.source, got, tc.want)
		}
	}
	// LVM over the LUKS mapping: still the stick, still LUKS2.
	vols := Volumes([]Mount{{ID: 1, MajorMinor: "0:46", MountPoint: "/m", FSType: "btrfs", Source: "/dev/vg-usb/lv-data"}},
		stickUSB, Options{SysfsRoot: s.sysfs, DevRoot: s.dev})
	if len(vols) != 1 || vols[0].BlockName != "dm-2" || vols[0].Backing != "sdb1" || vols[0].Encryption != EncryptionLUKS2 {
		t.Errorf("LVM on LUKS: %+v", vols)
	}
}

// TestVolumesDirectMountNotEncrypted: fixture unknown-fs-require-encryption
// (btrfs): a plain btrfs mounted straight from the stick's partition is a
// plain volume, its fs type carried, and Probe names it.
func TestVolumesDirectMountNotEncrypted(t *testing.T) {
	s := stickTree(t)
	img := s.devImage("sdb1", 120<<20)
	runPkg(t, "mkfs.btrfs", "btrfs-progs", "-q", "-f", "-L", "usb", img)
	mounts, err := parseMountInfo([]byte("40 22 0:45 / /mnt/usb rw,relatime shared:20 - btrfs /dev/sdb1 rw,space_cache=v2,subvolid=5,subvol=/\n"))
	if err != nil {
		t.Fatal(err)
	}
	vols := Volumes(mounts, stickUSB, Options{SysfsRoot: s.sysfs, DevRoot: s.dev})
	if len(vols) != 1 {
		t.Fatalf("%+v", vols)
	}
	v := vols[0]
	if v.Encrypted || v.Encryption != "" || v.FSType != "btrfs" || v.Label != "usb" || v.UUID == "" ||
		v.USBDevice != "1-2" || v.Backing != "" || v.Error != "" {
		t.Errorf("%+v", v)
	}
	if info, err := ProbeBlock(s.dev, "sdb1"); err != nil || info.Kind != KindFileSystem || info.FSType != FSBtrfs {
		t.Errorf("probe: %+v, %v", info, err)
	}

	// A LUKS header on a medium the kernel mounts directly, whatever the
	// fs type: not encrypted, and said so.
	s2 := luksStick(t)
	for _, fstype := range []string{"btrfs", "xfs", "f2fs", "udf", "iso9660", "vfat"} {
		vols := Volumes([]Mount{{ID: 1, MajorMinor: "0:45", MountPoint: "/m", FSType: fstype, Source: "/dev/sdb1"}},
			stickUSB, Options{SysfsRoot: s2.sysfs, DevRoot: s2.dev})
		if len(vols) != 1 || vols[0].Encrypted || vols[0].FSType != fstype || !strings.Contains(vols[0].Error, "mounted directly") {
			t.Errorf("%s: %+v", fstype, vols)
		}
	}
}

// fatCodePageImage is fixture fat-label-codepage: a FAT16 made by
// mkfs.vfat whose boot-sector and root-directory labels are then set to
// code-page bytes, as Windows writes them (mkfs.vfat's own --codepage needs
// iconv modules not always installed).
func fatCodePageImage(t *testing.T, path string, boot, dirent []byte) {
	t.Helper()
	run(t, "mkfs.vfat", "-n", "XXXXXXXXXXX", "-i", "2A3B4C5D", path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bps := int(binary.LittleEndian.Uint16(b[11:]))
	root := (int(binary.LittleEndian.Uint16(b[14:])) + int(b[16])*int(binary.LittleEndian.Uint16(b[22:]))) * bps
	if string(b[root:root+11]) != "XXXXXXXXXXX" {
		t.Fatalf("no label entry at %#x", root)
	}
	pad := func(x []byte) []byte { return append(append([]byte(nil), x...), []byte("           ")[len(x):]...) }
	copy(b[0x2B:], pad(boot))
	copy(b[root:], pad(dirent))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVolumesFATCodePage(t *testing.T) {
	cp932 := []byte{0x83, 0x65, 0x83, 0x58, 0x83, 0x67}
	e5 := []byte{0xE5, 0xE5, 0xE5}
	for _, tc := range []struct {
		name         string
		boot, dirent []byte
		superOpts    string
		optCodePage  int
		want         string
	}{
		{"cp932 mount option (fixture)", cp932, cp932, "codepage=932,iocharset=utf8", 0, "テスト"},
		{"cp850 mount option, 05 for E5 (fixture)", e5, []byte{0x05, 0xE5, 0xE5}, "codepage=850,iocharset=utf8", 932, "ÕÕÕ"},
		{"kernel default 437 shown, agent says 932", cp932, cp932, "codepage=437,iocharset=utf8", 932, "テスト"},
		{"no option, agent says 932", cp932, cp932, "", 932, "テスト"},
		{"437 chosen, nothing else known", e5, []byte{0x05, 0xE5, 0xE5}, "codepage=437", 0, "σσσ"},
		{"no code page known: lossless bytes", cp932, cp932, "", 0, `\x83e\x83X\x83g`},
		{"lone lead byte in cp932: kept as \\xNN", cp932, []byte{0x83, 0x65, 0x83}, "codepage=932", 0, `テ\x83`},
		{"unsupported code page: lossless", e5, []byte{0x05, 0xE5, 0xE5}, "codepage=737", 0, `\xe5\xe5\xe5`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := stickTree(t)
			fatCodePageImage(t, s.devImage("sdb1", 32<<20), tc.boot, tc.dirent)
			mounts, err := parseMountInfo([]byte("36 22 8:17 / /media/user/x rw,nosuid,nodev,relatime shared:2 - vfat /dev/sdb1 rw,fmask=0022," + tc.superOpts + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			vols := Volumes(mounts, stickUSB, Options{SysfsRoot: s.sysfs, DevRoot: s.dev, CodePage: tc.optCodePage})
			if len(vols) != 1 {
				t.Fatalf("%+v", vols)
			}
			if got := vols[0].Label; got != tc.want || strings.ContainsRune(got, utf8.RuneError) {
				t.Errorf("label %q, want %q", got, tc.want)
			}
		})
	}
}

// TestLabelDecoders: the lossless decoders on their own.
func TestLabelDecoders(t *testing.T) {
	for _, tc := range []struct{ name, got, want string }{
		{"utf-8", utf8Label([]byte("Données")), "Données"},
		{"bad utf-8", utf8Label([]byte("a\xff\xfeb\xe3\x81")), `a\xff\xfeb\xe3\x81`},
		{"control", utf8Label([]byte("a\x1b[2Jb")), `a\x1b[2Jb`},
		{"utf-16 pair", utf16Label([]uint16{0xD83D, 0xDE00, 'x'}), "😀x"},
		{"utf-16 lone high", utf16Label([]uint16{'a', 0xD800, 'b'}), `a\u{d800}b`},
		{"utf-16 lone low", utf16Label([]uint16{0xDC00}), `\u{dc00}`},
		{"utf-16 high at end", utf16Label([]uint16{'a', 0xDBFF, 0, 0}), `a\u{dbff}`},
		{"cp932 half-width kana", codePageLabel([]byte{0xB1, 0xB2}, 932), "ｱｲ"},
		{"cp932 bad trail", codePageLabel([]byte{0x83, 0x20, 0x41}, 932), `\x83 A`},
		{"cp437", codePageLabel([]byte{0x80, 0x81}, 437), "Çü"},
		{"cp936", codePageLabel([]byte{0xD6, 0xD0, 0xCE, 0xC4}, 936), "中文"},
		{"cp949", codePageLabel([]byte{0xC7, 0xD1}, 949), "한"},
		{"cp950", codePageLabel([]byte{0xA4, 0xA4}, 950), "中"},
		{"cp874 unassigned", codePageLabel([]byte{0xDB}, 874), `\xdb`},
		{"dstring latin-1", dstring(append([]byte{8, 'a', 0xE9}, append(make([]byte, 124), 3)...)), "aé"},
		{"dstring utf-16", dstring(append([]byte{16, 0x30, 0xC6, 0xD8, 0x00}, append(make([]byte, 122), 5)...)), `テ\u{d800}`},
	} {
		if tc.got != tc.want || strings.ContainsRune(tc.got, utf8.RuneError) {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	for lang, want := range map[string]int{"ja": 932, "ja_JP.UTF-8": 932, "en": 437, "de-DE": 850, "zh-TW": 950, "zh_CN": 936, "zh-Hant": 950, "ko": 949, "xx": 0} {
		if got := CodePageForLanguage(lang); got != want {
			t.Errorf("CodePageForLanguage(%q) = %d, want %d", lang, got, want)
		}
		if want != 0 && !KnownCodePage(want) {
			t.Errorf("%d not known", want)
		}
	}
}
