//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRealWorldShapes runs every shape in testdata/bugs (rebuilt from
// public bug reports of udisks, util-linux, dosfstools, f3, usbutils; the
// origin of each is in its README.md) against the built binary: build.sh
// makes the sysfs tree, the real disk images (mkfs.*, cryptsetup) and the
// mountinfo, and check.sh exits 0 only when mamori decides it rightly.
func TestRealWorldShapes(t *testing.T) {
	for _, tool := range []string{"python3", "cryptsetup", "mkfs.vfat", "mkfs.exfat", "mkfs.btrfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing (scripts/test-deps.sh installs it)", tool)
			}
			t.Skipf("%s not installed (scripts/test-deps.sh installs it)", tool)
		}
	}
	bugs, err := filepath.Abs("testdata/bugs")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		shape   string
		variant string // build.sh's and check.sh's extra argument
	}{
		{"btrfs-on-luks-volume", "btrfs"},
		{"btrfs-on-luks-volume", "ext4"},
		{"crw-second-lun-plain", ""},
		{"fat-label-codepage", "cp932"},
		{"fat-label-codepage", "cp850"},
		{"mountpoint-control-chars", ""},
		{"serial-escape-collision", ""},
		{"unknown-fs-require-encryption", "btrfs"},
		{"unknown-fs-require-encryption", "veracrypt"},
		{"unknown-fs-require-encryption", "fat"},
	} {
		name := c.shape
		if c.variant != "" {
			name += "/" + c.variant
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dest := t.TempDir()
			dir := filepath.Join(bugs, c.shape)
			build := []string{filepath.Join(dir, "build.sh"), dest}
			check := []string{filepath.Join(dir, "check.sh"), dest, binary}
			if c.variant != "" {
				build = append(build, c.variant)
				if c.shape == "fat-label-codepage" { // only this check takes the variant
					check = append(check, c.variant)
				}
			}
			if out, err := isolate(exec.Command("sh", build...)).CombinedOutput(); err != nil {
				t.Fatalf("build.sh: %v\n%s", err, out)
			}
			out, err := isolate(exec.Command("sh", check...)).CombinedOutput()
			if err != nil {
				t.Fatalf("check.sh says mamori decided wrongly: %v\n%s", err, out)
			}
			t.Logf("check.sh:\n%s", strings.TrimSpace(string(out)))
		})
	}
}
