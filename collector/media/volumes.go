package media

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mamori-agent/mamori/internal/safe"
)

// Options are the roots of the OS paths the media collector reads, so the
// collector runs against a fixture tree in tests.
type Options struct {
	SysfsRoot string // "/sys"
	DevRoot   string // "/dev"
	// Known, when set, returns the Volume already described for a mount
	// (same source, mount point and device number), so that a watcher
	// re-reading mountinfo does not probe a mounted medium again at every
	// change: a probe reads the device, and a dying device can stall it.
	Known func(Mount) (Volume, bool)
	// CodePage is the DOS code page FAT labels are decoded in when the
	// mount does not say (see Mount.CodePage): 932 on a Japanese machine
	// (CodePageForLanguage("ja")); 0 reads them as UTF-8, escaping what is
	// not.
	CodePage int
}

// kernelDefaultCodePage is CONFIG_FAT_DEFAULT_CODEPAGE in distribution
// kernels; the vfat driver shows "codepage=437" for every mount that did
// not choose one.
const kernelDefaultCodePage = 437

// labelCodePage chooses the code page for a mounted volume's FAT label:
// the mount's own codepage= option, unless it is the kernel's default 437
// (which the kernel shows whether or not anyone chose it) and the caller
// gave a code page; else the caller's.
func labelCodePage(m Mount, fallback int) int {
	cp := m.CodePage()
	if cp == 0 || cp == kernelDefaultCodePage && fallback != 0 {
		return fallback
	}
	return cp
}

// EncryptionDMCrypt is Volume.Encryption for a mount through a kernel
// dm-crypt mapping whose backing device has no header Probe knows (plain
// dm-crypt, VeraCrypt/TrueCrypt opened by cryptsetup).
const EncryptionDMCrypt = "dm-crypt"

// maxStackDepth bounds the walk down stacked block devices (dm on dm ...).
const maxStackDepth = 8

// Volumes keeps the mounts whose block device sits on USB and describes
// them. blockToUSB maps a kernel block name ("sda", "sda1") to the bus path
// of its USB device ("1-2"); the USB collector provides it. A partition
// whose disk is in blockToUSB counts as well, and so does a device-mapper
// device (dm-crypt, LVM) stacked on one.
//
// A mount's block device is found by its major:minor in
// <sysfs>/dev/block, falling back to the basename of a /dev/NAME source.
// Size comes from sysfs, ReadOnly from the mount options, label and
// encryption from probing <DevRoot>/<name> read-only. A device that cannot
// be read gives a Volume with Error set; it never hides the others.
func Volumes(mounts []Mount, blockToUSB map[string]string, opts Options) []Volume {
	var vols []Volume
	for _, m := range mounts {
		name := blockName(m, opts.SysfsRoot, opts.DevRoot)
		if name == "" {
			continue
		}
		usbPath, backing := onUSB(name, blockToUSB, opts.SysfsRoot, 0)
		if usbPath == "" {
			continue
		}
		if opts.Known != nil {
			if v, ok := opts.Known(m); ok && v.MajorMinor == m.MajorMinor && v.USBDevice == usbPath {
				vols = append(vols, v)
				continue
			}
		}
		vols = append(vols, describe(m, name, usbPath, backing, opts))
	}
	return vols
}

func describe(m Mount, name, usbPath, backing string, opts Options) Volume {
	v := Volume{
		Device:     safe.String(m.Source),
		BlockName:  name,
		MajorMinor: m.MajorMinor,
		MountPoint: m.MountPoint,
		FSType:     safe.String(m.FSType),
		ReadOnly:   m.ReadOnly(),
		USBDevice:  usbPath,
	}
	if backing != name {
		v.Backing = backing
	}
	v.Size, _ = blockSize(opts.SysfsRoot, name) // 0 when unknown
	var errs []error
	info, err := ProbeBlockWith(opts.DevRoot, name, ProbeOptions{CodePage: labelCodePage(m, opts.CodePage)})
	if err != nil {
		errs = append(errs, err)
	}
	v.Label, v.UUID = info.Label, info.UUID
	if backing == name {
		v.Encryption, v.ClearKey = info.Encryption, info.ClearKey
		// The kernel mounted a file system straight from the USB device,
		// so its data is readable without a key whatever the first
		// sectors claim. A BitLocker To Go medium mounted as FAT is its
		// unencrypted discovery volume, and does not contradict.
		if info.Encrypted() && !(info.Encryption == EncryptionBitLockerToGo && isFAT(m.FSType)) {
			errs = append(errs, fmt.Errorf("%s signature, but mounted directly as %s: not counted as encrypted", info.Encryption, v.FSType))
			v.Encryption = EncryptionNone
		}
	} else {
		binfo, err := ProbeBlock(opts.DevRoot, backing)
		if err != nil {
			errs = append(errs, err)
		}
		v.ClearKey = binfo.ClearKey
		if dmCrypt(opts.SysfsRoot, name, 0) {
			v.Encryption = binfo.Encryption
			if v.Encryption == EncryptionNone {
				v.Encryption = EncryptionDMCrypt
			}
		} else if binfo.Encrypted() {
			errs = append(errs, fmt.Errorf("%s on %s, but %s is not a dm-crypt mapping: not counted as encrypted", binfo.Encryption, safe.String(backing), safe.String(name)))
		}
	}
	v.Encrypted = v.Encryption != EncryptionNone
	if len(errs) > 0 {
		v.Error = errors.Join(errs...).Error()
	}
	return v
}

func isFAT(fstype string) bool { return fstype == "vfat" || fstype == "msdos" || fstype == "fat" }

// blockName finds the kernel block name of a mount's device, through what
// the kernel and udev themselves hold, never by the shape of a name:
//
//  1. <sysfs>/dev/block/<field 3>: the device number of a block file
//     system. btrfs (and anything with an anonymous 0:N) has none.
//  2. The source (field 10): /dev/NAME with NAME in <sysfs>/class/block;
//     /dev/block/MAJ:MIN through <sysfs>/dev/block; /dev/mapper/NAME as
//     the dm-N whose <sysfs>/class/block/dm-N/dm/name is NAME (the node
//     name may carry libdevmapper's \xNN mangling); /dev/VG/LV as the LVM
//     mapping named "VG-LV" with each '-' in VG and LV doubled and a dm/uuid
//     starting "LVM-".
//  3. A source that is a symbolic link under <DevRoot> (/dev/disk/by-uuid/...,
//     /dev/disk/by-label/..., /dev/VG/LV, /dev/mapper/NAME): the links are
//     followed inside DevRoot to a node whose name is in class/block.
func blockName(m Mount, sysfs, devRoot string) string {
	if target, err := os.Readlink(filepath.Join(sysfs, "dev", "block", m.MajorMinor)); err == nil {
		if name := validBlockName(filepath.Base(target)); name != "" {
			return name
		}
	}
	rel, ok := devRelative(m.Source)
	if !ok {
		return ""
	}
	if name := validBlockName(rel); name != "" && isBlock(sysfs, name) {
		return name
	}
	dir, base := filepath.Split(rel)
	switch dir {
	case "block/":
		if validMajorMinor(base) {
			if target, err := os.Readlink(filepath.Join(sysfs, "dev", "block", base)); err == nil {
				return validBlockName(filepath.Base(target))
			}
		}
	case "mapper/":
		if name := dmByName(sysfs, base, ""); name != "" {
			return name
		}
		if u := unmangleDMName(base); u != base {
			if name := dmByName(sysfs, u, ""); name != "" {
				return name
			}
		}
	}
	if name := followDevLink(devRoot, rel, sysfs); name != "" {
		return name
	}
	if vg, lv, ok := strings.Cut(rel, "/"); ok && vg != "" && lv != "" && !strings.Contains(lv, "/") {
		return dmByName(sysfs, strings.ReplaceAll(vg, "-", "--")+"-"+strings.ReplaceAll(lv, "-", "--"), "LVM-")
	}
	return ""
}

// devRelative returns the part of a mount source after "/dev/", cleaned,
// or false when the source is not a path below /dev.
func devRelative(source string) (string, bool) {
	if !strings.HasPrefix(source, "/dev/") || strings.ContainsRune(source, 0) {
		return "", false
	}
	clean := filepath.Clean(source)
	rel, ok := strings.CutPrefix(clean, "/dev/")
	if !ok || rel == "" {
		return "", false
	}
	return rel, true
}

func isBlock(sysfs, name string) bool {
	_, err := os.Stat(filepath.Join(sysfs, "class", "block", name))
	return err == nil
}

// dmByName returns the kernel name (dm-N) of the device-mapper device whose
// <sysfs>/class/block/<dev>/dm/name is name and, when uuidPrefix is set,
// whose dm/uuid starts with it; "" when there is none.
func dmByName(sysfs, name, uuidPrefix string) string {
	if name == "" {
		return ""
	}
	entries, _ := os.ReadDir(filepath.Join(sysfs, "class", "block"))
	for _, e := range entries {
		dev := validBlockName(e.Name())
		if dev == "" {
			continue
		}
		dm := filepath.Join(sysfs, "class", "block", dev, "dm")
		b, err := os.ReadFile(filepath.Join(dm, "name"))
		if err != nil || strings.TrimSuffix(string(b), "\n") != name {
			continue
		}
		if uuidPrefix != "" {
			u, err := os.ReadFile(filepath.Join(dm, "uuid"))
			if err != nil || !strings.HasPrefix(string(u), uuidPrefix) {
				continue
			}
		}
		return dev
	}
	return ""
}

// unmangleDMName undoes libdevmapper's mangling of /dev/mapper node names
// (characters outside its whitelist written as \xNN).
func unmangleDMName(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// maxDevLinks bounds the symbolic links followed from a mount source.
const maxDevLinks = 8

// followDevLink follows <devRoot>/<rel> through symbolic links that stay
// inside devRoot (udev's /dev/disk/by-*/, /dev/mapper/, /dev/VG/ links are
// relative: "../../sdb1", "../dm-0") and returns the kernel block name it
// ends at, or "".
func followDevLink(devRoot, rel, sysfs string) string {
	if devRoot == "" {
		return ""
	}
	followed := false
	for range maxDevLinks {
		target, err := os.Readlink(filepath.Join(devRoot, rel))
		if err != nil {
			break
		}
		followed = true
		if filepath.IsAbs(target) {
			r, ok := devRelative(target)
			if !ok {
				return ""
			}
			rel = r
		} else {
			rel = filepath.Clean(filepath.Join(filepath.Dir(rel), target))
			if rel == ".." || strings.HasPrefix(rel, "../") {
				return ""
			}
		}
	}
	// The name where the links end, never the source's own last element.
	name := validBlockName(filepath.Base(rel))
	if !followed || name == "" || !isBlock(sysfs, name) {
		return ""
	}
	return name
}

// validBlockName returns name if it can be a kernel block name (one path
// element), else "".
func validBlockName(name string) string {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return ""
	}
	return name
}

// onUSB reports the USB bus path under block device name and the name of
// the block device that is on USB (name itself, its disk, or a device it is
// stacked on).
func onUSB(name string, blockToUSB map[string]string, sysfs string, depth int) (usbPath, backing string) {
	if p, ok := blockToUSB[name]; ok {
		return p, name
	}
	// A partition: its sysfs directory sits inside its disk's.
	dir := filepath.Join(sysfs, "class", "block", name)
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		if target, err := filepath.EvalSymlinks(dir); err == nil {
			if p, ok := blockToUSB[filepath.Base(filepath.Dir(target))]; ok {
				return p, name
			}
		}
	}
	if depth >= maxStackDepth {
		return "", ""
	}
	slaves, _ := os.ReadDir(filepath.Join(dir, "slaves"))
	for _, s := range slaves {
		if sub := validBlockName(s.Name()); sub != "" {
			if p, b := onUSB(sub, blockToUSB, sysfs, depth+1); p != "" {
				return p, b
			}
		}
	}
	return "", ""
}

// dmCrypt reports whether name is, or is stacked on, a dm-crypt mapping:
// <sysfs>/class/block/dm-N/dm/uuid starts with "CRYPT-" (cryptsetup's
// naming, "CRYPT-LUKS2-<uuid>-<name>", "CRYPT-PLAIN-<name>").
func dmCrypt(sysfs, name string, depth int) bool {
	dir := filepath.Join(sysfs, "class", "block", name)
	if b, err := os.ReadFile(filepath.Join(dir, "dm", "uuid")); err == nil && strings.HasPrefix(string(b), "CRYPT-") {
		return true
	}
	if depth >= maxStackDepth {
		return false
	}
	slaves, _ := os.ReadDir(filepath.Join(dir, "slaves"))
	for _, s := range slaves {
		if sub := validBlockName(s.Name()); sub != "" && dmCrypt(sysfs, sub, depth+1) {
			return true
		}
	}
	return false
}

// blockSize reads <sysfs>/class/block/<name>/size, in 512-byte sectors
// whatever the device's sector size, and returns bytes.
func blockSize(sysfs, name string) (int64, error) {
	path := filepath.Join(sysfs, "class", "block", name, "size")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", safe.String(path), dropPath(err))
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 || n > 1<<53 {
		return 0, fmt.Errorf("parse %s: %q is not a sector count", safe.String(path), truncate(string(b)))
	}
	return n * 512, nil
}

// ProbeBlock opens <devRoot>/<name> read-only and probes it (see Probe).
// Use it on an unmounted USB disk or partition to know whether its medium
// is encrypted before anyone mounts it. name is a kernel block name such as
// "sdb1"; a name with a path separator is refused.
func ProbeBlock(devRoot, name string) (Info, error) {
	return ProbeBlockWith(devRoot, name, ProbeOptions{})
}

// ProbeBlockWith is ProbeBlock with options (the code page of FAT labels).
func ProbeBlockWith(devRoot, name string, opts ProbeOptions) (Info, error) {
	if validBlockName(name) == "" {
		return Info{}, fmt.Errorf("probe: %q is not a block device name", truncate(name))
	}
	path := filepath.Join(devRoot, name)
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return Info{}, fmt.Errorf("probe %s: %w", safe.String(path), dropPath(err))
	}
	defer f.Close()
	// Block devices report size 0 to stat; seeking to the end tells.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return Info{}, fmt.Errorf("probe %s: size: %w", safe.String(path), err)
	}
	info, err := ProbeWith(f, size, opts)
	if err != nil {
		return info, fmt.Errorf("probe %s: %w", safe.String(path), err)
	}
	return info, nil
}
