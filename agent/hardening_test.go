package agent

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/config"
)

// luksImage makes a real LUKS2 volume at path.
func luksImage(t *testing.T, path string) {
	t.Helper()
	cryptsetup := tool(t, "cryptsetup")
	os.WriteFile(path, make([]byte, 20<<20), 0o600)
	key := filepath.Join(t.TempDir(), "key")
	os.WriteFile(key, []byte("mamori test key"), 0o600)
	run(t, cryptsetup, "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
		"--pbkdf-force-iterations", "1000", "--key-file", key, path)
}

// TestMediumReformattedInPlace: a medium is its own subject. The approved
// reader (require_encryption) starts with a LUKS2 medium: no violation.
// The medium is re-formatted in place as plain FAT while the USB device
// stays attached: one media_unencrypted for the new medium, naming what was
// seen, however many rescans follow; a restart of the agent records nothing
// again (the log says it was recorded).
func TestMediumReformattedInPlace(t *testing.T) {
	mkfs := tool(t, "mkfs.vfat")
	e := newEnv(t, encryptionConfig, reader)
	img := filepath.Join(e.dev, "sda1")
	luksImage(t, img)
	r := e.start(Options{})
	e.waitFor("rescans", func(rs []record) bool { return testutilRescans(r) >= 3 })
	if n := count(e.records(), TypeViolation, "", ""); n != 0 {
		t.Fatalf("LUKS2 medium flagged:\n%s", dump(e.records()))
	}
	// Made aside and renamed in, so no rescan sees a half-written medium.
	fat := filepath.Join(t.TempDir(), "fat")
	os.WriteFile(fat, make([]byte, 4<<20), 0o600)
	run(t, mkfs, "-n", "PLAIN", fat)
	if err := os.Rename(fat, img); err != nil {
		t.Fatal(err)
	}
	e.waitFor("media_unencrypted for the new medium", func(rs []record) bool {
		return count(rs, TypeViolation, "8-1.4", KindMediaUnencrypted) == 1
	})
	before := testutilRescans(r)
	e.waitFor("more rescans", func(rs []record) bool { return testutilRescans(r) >= before+5 })
	r.stop(t)
	recs := e.records()
	if n := count(recs, TypeViolation, "", ""); n != 1 {
		t.Fatalf("want exactly one violation, got %d:\n%s", n, dump(recs))
	}
	for _, rc := range recs {
		if rc.Kind == KindMediaUnencrypted && !strings.Contains(rc.Violation.MessageEN, "plain vfat") {
			t.Errorf("the violation does not say what was seen: %q", rc.Violation.MessageEN)
		}
	}
	e.start(Options{}).stop(t)
	if n := count(e.records(), TypeViolation, "", ""); n != 1 {
		t.Fatalf("restart recorded the medium again:\n%s", dump(e.records()))
	}
}

// TestUnrecognisedMediumFailsClosed: under require_encryption, a medium
// with no signature (random bytes: a wiped stick, or a locked VeraCrypt
// volume) and one that cannot be read are violations, never "all clear".
func TestUnrecognisedMediumFailsClosed(t *testing.T) {
	for _, c := range []struct {
		name, want string
		make       func(path string)
	}{
		{"random", "no recognised signature", func(p string) {
			b := make([]byte, 4<<20)
			rand.Read(b)
			os.WriteFile(p, b, 0o600)
		}},
		{"unreadable", "could not be read", func(p string) { os.Mkdir(p, 0o700) }},
		{"missing", "could not be read", func(p string) {}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, encryptionConfig, reader)
			c.make(filepath.Join(e.dev, "sda1"))
			rep, err := Scan(ScanOptions{NoNetwork: true, Config: e.cfg, Roots: e.roots()})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Violations) != 1 || rep.Violations[0].Kind != KindMediaUnencrypted || !strings.Contains(rep.Violations[0].MessageEN, c.want) {
				t.Fatalf("scan: want one media_unencrypted saying %q, got %+v", c.want, rep.Violations)
			}
			r := e.start(Options{})
			r.stop(t)
			if n := count(e.records(), TypeViolation, "8-1.4", KindMediaUnencrypted); n != 1 {
				t.Fatalf("run: want one media_unencrypted:\n%s", dump(e.records()))
			}
		})
	}
}

// TestSideFileEditChangesNothing: the open appearances come from the
// hash-chained log, not from a side file. A planted appearances.json that
// claims nothing was recorded (the attack that hid a stick) changes
// nothing, and editing the log itself is recorded as damage.
func TestSideFileEditChangesNothing(t *testing.T) {
	e := newEnv(t, testConfig, reader)
	e.start(Options{}).stop(t)
	first := e.records()
	if count(first, TypeViolation, "8-1.4", "") != 1 {
		t.Fatalf("first run: want one violation:\n%s", dump(first))
	}
	os.WriteFile(filepath.Join(e.state, "appearances.json"), []byte(`{"boot_id":"x","appearances":{}}`), 0o600)
	e.start(Options{}).stop(t)
	second := e.records()[len(first):]
	if n := count(second, TypeDeviceAdded, "", "") + count(second, TypeViolation, "", ""); n != 0 {
		t.Fatalf("a side file decided what is recorded:\n%s", dump(second))
	}
	if _, err := os.Stat(filepath.Join(e.state, "appearances.json")); err == nil {
		t.Errorf("the legacy side file is still there")
	}
}

// TestUncleanStopAndGrounds: agent_started carries the config digest and
// boot id; device_added names the entry that allowed the device; a run
// that ended without agent_stopped is recorded as such at the next start.
func TestUncleanStopAndGrounds(t *testing.T) {
	e := newEnv(t, testConfig, camera)
	e.start(Options{}).stop(t)
	raw := readLog(t, e.state)
	if !strings.Contains(raw, `"config_digest":"`+e.cfg.Digest+`"`) || e.cfg.Digest == "" {
		t.Errorf("agent_started lacks the config digest %q:\n%s", e.cfg.Digest, raw)
	}
	if !strings.Contains(raw, `"decision":{"status":"approved","entry":"Camera of the work lead"`) {
		t.Errorf("device_added does not name the entry that allowed it:\n%s", raw)
	}
	// Cut the agent_stopped record as a crash would leave the log (the
	// head is rewritten to match, so only the missing stop tells).
	cutLastRecord(t, e.state)
	e.start(Options{}).stop(t)
	if n := count(e.records(), TypeAgentUncleanStop, "", ""); n != 1 {
		t.Fatalf("want one agent_unclean_stop:\n%s", dump(e.records()))
	}
}

func readLog(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, audit.CurrentName))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cutLastRecord removes the last record and points the head at the one
// before, as if the run had been killed before writing it.
func cutLastRecord(t *testing.T, dir string) {
	t.Helper()
	raw := readLog(t, dir)
	lines := strings.SplitAfter(strings.TrimSuffix(raw, "\n"), "\n")
	kept := strings.Join(lines[:len(lines)-1], "")
	os.WriteFile(filepath.Join(dir, audit.CurrentName), []byte(kept), 0o600)
	os.Remove(filepath.Join(dir, audit.HeadName))
	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// TestReloadPutsNewListInForce: a reload with a list that no longer
// approves the camera records config_reloaded and then the violation; a
// reload that fails keeps the old list and records why.
func TestReloadPutsNewListInForce(t *testing.T) {
	e := newEnv(t, testConfig, camera)
	r := e.start(Options{})
	defer r.stop(t)
	r.agent.Reload(nil, os.ErrPermission)
	e.waitFor("config_reload_failed", func(rs []record) bool { return count(rs, TypeConfigReloadFailed, "", "") == 1 })
	stricter := strings.Replace(testConfig, `serial: "C767F1C714174C309255F70E4A7B2EE2"`, `serial: "OTHER"`, 1)
	cfg, err := config.Parse("reloaded.yaml", []byte(stricter))
	if err != nil {
		t.Fatal(err)
	}
	r.agent.Reload(cfg, nil)
	e.waitFor("the camera judged by the new list", func(rs []record) bool {
		return count(rs, TypeConfigReloaded, "", "") == 1 && count(rs, TypeViolation, "", KindDeviceUnapproved) == 1
	})
}

// TestMetricsPortTakenDoesNotStopDetection: another process holds the
// metrics port. The agent starts anyway, records metrics_unavailable,
// detects and records devices, and serves metrics once the port is free.
func TestMetricsPortTakenDoesNotStopDetection(t *testing.T) {
	e := newEnv(t, testConfig, reader)
	ln, addr := takePort(t)
	e.cfg.Metrics.Listen = addr
	r := e.start(Options{ListenRetry: 20 * time.Millisecond})
	defer r.stop(t)
	e.waitFor("violation and metrics_unavailable", func(rs []record) bool {
		return count(rs, TypeMetricsUnavailable, "", "") == 1 && count(rs, TypeViolation, "8-1.4", "") == 1
	})
	ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !metricsUp("http://" + addr + "/metrics") {
		if time.Now().After(deadline) {
			t.Fatal("metrics never served after the port was freed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEmptiedLogIsDamage: the log and its head removed between two runs
// (the lock file of the earlier run stays) is recorded as damage.
func TestEmptiedLogIsDamage(t *testing.T) {
	e := newEnv(t, testConfig, kbd)
	e.start(Options{}).stop(t)
	os.Remove(filepath.Join(e.state, audit.CurrentName))
	os.Remove(filepath.Join(e.state, audit.HeadName))
	e.start(Options{}).stop(t)
	if n := count(e.records(), TypeAuditDamaged, "", ""); n != 1 {
		t.Fatalf("want one audit_damaged for the emptied log:\n%s", dump(e.records()))
	}
}

// TestEditedLastRecordRecordedOnce: one edit is one audit_damaged record,
// though both the open of the log and the read-back see it.
func TestEditedLastRecordRecordedOnce(t *testing.T) {
	e := newEnv(t, testConfig, kbd)
	e.start(Options{}).stop(t)
	p := filepath.Join(e.state, audit.CurrentName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte(strings.Replace(string(b), `"mamori stopped"`, `"mamori stoppex"`, 1)), 0o600)
	e.start(Options{}).stop(t)
	if n := count(e.records(), TypeAuditDamaged, "", ""); n != 1 {
		t.Fatalf("want one audit_damaged for one edit, got %d:\n%s", n, dump(e.records()))
	}
}
