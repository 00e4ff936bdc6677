package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const encryptionConfig = `version: 1
agent:
  asset_id: PC-TEST
  rescan_interval: 20ms
metrics:
  listen: ""
approved:
  usb:
    - name: Hubs
      classes: [hid, hub]
    - name: Card reader of the work lead
      vendor_id: "058f"
      product_id: "8468"
      owner: 作業責任者
      approved_by: 情報政策課
      require_encryption: true
`

// tool finds a host tool the test needs: in CI a missing one fails the
// test (scripts/test-deps.sh installs it), elsewhere the test skips.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing (scripts/test-deps.sh installs it)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// TestRequireEncryption: an approved reader whose entry requires
// encryption is a violation when its medium (a real FAT file system) is
// plain, recorded once however many rescans follow, and not one when the
// medium is a real LUKS2 volume.
func TestRequireEncryption(t *testing.T) {
	mkfs := tool(t, "mkfs.vfat")
	cryptsetup := tool(t, "cryptsetup")

	t.Run("plain", func(t *testing.T) {
		e := newEnv(t, encryptionConfig, reader)
		img := filepath.Join(e.dev, "sda1")
		os.WriteFile(img, make([]byte, 4<<20), 0o600)
		run(t, mkfs, "-n", "PLAIN", img)
		r := e.start(Options{})
		e.waitFor("media_unencrypted", func(rs []record) bool {
			return count(rs, TypeViolation, "8-1.4", KindMediaUnencrypted) == 1
		})
		e.waitFor("more rescans", func(rs []record) bool { return testutilRescans(r) >= 5 })
		r.stop(t)
		recs := e.records()
		if n := count(recs, TypeViolation, "", ""); n != 1 {
			t.Fatalf("want exactly one violation (media_unencrypted), got %d:\n%s", n, dump(recs))
		}
	})
	t.Run("luks2", func(t *testing.T) {
		e := newEnv(t, encryptionConfig, reader)
		img := filepath.Join(e.dev, "sda1")
		os.WriteFile(img, make([]byte, 20<<20), 0o600)
		key := filepath.Join(t.TempDir(), "key")
		os.WriteFile(key, []byte("mamori test key"), 0o600)
		run(t, cryptsetup, "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
			"--pbkdf-force-iterations", "1000", "--key-file", key, img)
		r := e.start(Options{})
		e.waitFor("rescans", func(rs []record) bool { return testutilRescans(r) >= 5 })
		r.stop(t)
		if recs := e.records(); count(recs, TypeViolation, "", "") != 0 {
			t.Fatalf("encrypted medium flagged:\n%s", dump(recs))
		}
	})
}
