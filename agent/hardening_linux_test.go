package agent

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/internal/sysfstest"
)

// TestPendingEventsSurviveDiskFull: a violation raised while the disk is
// full is not lost: it is written, in order, once space returns, followed
// by an audit_gap record that says so.
func TestPendingEventsSurviveDiskFull(t *testing.T) {
	// Full before the agent starts: the audit log gets no space reserved
	// ahead (audit.Options.Reserve), so its records wait in memory.
	e, filler := fullStateDisk(t)
	r := e.start(Options{})
	defer r.stop(t)
	sysfstest.Build(t, e.sysfs, reader, camera, phone, finger, fido)
	deadline := time.Now().Add(10 * time.Second)
	for testutilPending(r) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no event waiting while the disk is full")
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(filler)
	e.waitFor("the violation and the gap record", func(rs []record) bool {
		return count(rs, TypeViolation, "8-1.4", KindStorageUnapproved) == 1 && count(rs, TypeAuditGap, "", "") == 1
	})
	// The head, which could not be written while the disk was full, is
	// written after the records that waited: the log verifies once it is.
	deadline = time.Now().Add(10 * time.Second)
	for {
		rep, err := audit.Verify(e.state)
		if err == nil && len(rep.Problems) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log after a full disk: %v %+v", err, rep.Problems)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fullStateDisk is an agent environment whose state dir is on a private
// 256 KiB tmpfs that filler fills (remove filler to free it). Skips
// without root.
func fullStateDisk(t *testing.T) (e *testEnv, filler string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	e = newEnv(t, testConfig, kbd)
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	e.state = filepath.Join(mnt, "state")
	e.cfg.Agent.StateDir = e.state
	e.cfg.Agent.RescanInterval = 20 * time.Millisecond
	filler = filepath.Join(mnt, "filler")
	fillUp(t, filler)
	return e, filler
}

func fillUp(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
	}
}

// TestPendingQueueKeepsViolations: while the disk is full and more events
// wait than Options.MaxPending, the events lost are not violations: one
// who filled the disk cannot push a violation out with device_added
// records of devices they plug.
func TestPendingQueueKeepsViolations(t *testing.T) {
	e, filler := fullStateDisk(t)
	r := e.start(Options{MaxPending: 3})
	defer r.stop(t)
	sysfstest.Build(t, e.sysfs, reader)
	deadline := time.Now().Add(10 * time.Second)
	for testutilPending(r) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the reader's events are not waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sysfstest.Build(t, e.sysfs, camera, phone, finger, fido)
	time.Sleep(300 * time.Millisecond) // rescans
	os.Remove(filler)
	e.waitFor("the reader's violation and the gap record", func(rs []record) bool {
		return count(rs, TypeAuditGap, "", "") == 1
	})
	rs := e.records()
	if n := count(rs, TypeViolation, "8-1.4", KindStorageUnapproved); n != 1 {
		t.Errorf("%d violations of the reader in the log, want 1 (a violation pushed out by device_added records)", n)
	}
	for _, rec := range rs {
		if rec.Type == TypeAuditGap && rec.Count == 0 {
			t.Errorf("gap record %+v: nothing lost, the test proves nothing", rec)
		}
	}
}
