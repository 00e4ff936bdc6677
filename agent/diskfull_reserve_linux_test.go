package agent

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/internal/sysfstest"
)

// mountTmpfs mounts a tmpfs of size for the test (root only).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to mount a small tmpfs, and CI=true")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return mnt
}

// TestFullDiskAttackKeepsViolation is the attack as an attacker review
// ran it: the state directory's file system is filled from another file
// while the agent runs, unapproved storage is plugged in and removed, the
// agent is stopped, the space freed and the agent started again. The
// violation must be in the log: it went into the space the audit log
// reserved ahead, with no event waiting in memory.
func TestFullDiskAttackKeepsViolation(t *testing.T) {
	mnt := mountTmpfs(t, "16m")
	e := newEnv(t, testConfig, kbd)
	e.state = filepath.Join(mnt, "state")
	e.cfg.Agent.StateDir = e.state
	e.cfg.Agent.RescanInterval = 20 * time.Millisecond
	r := e.start(Options{})
	filler := filepath.Join(mnt, "filler")
	fillUp(t, filler)

	sysfstest.Build(t, e.sysfs, reader)
	e.waitFor("the violation, on the full disk", func(rs []record) bool {
		return count(rs, TypeViolation, "8-1.4", KindStorageUnapproved) == 1
	})
	if err := sysfstest.Remove(e.sysfs, "8-1.4"); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the removal, on the full disk", func(rs []record) bool { return count(rs, TypeDeviceRemoved, "8-1.4", "") == 1 })
	if n := testutilPending(r); n != 0 {
		t.Errorf("%v events waiting in memory on the full disk", n)
	}
	r.stop(t)
	os.Remove(filler)

	r = e.start(Options{})
	r.stop(t)
	recs := e.records()
	if count(recs, TypeViolation, "8-1.4", KindStorageUnapproved) != 1 || count(recs, TypeAgentUncleanStop, "", "") != 0 ||
		count(recs, TypeAgentStopped, "", "") != 2 {
		t.Fatalf("audit log after the attack:\n%s", dump(recs))
	}
	if rep, err := audit.Verify(e.state); err != nil || !rep.OK() {
		t.Fatalf("Verify: %v %+v", err, rep.Problems)
	}
}

// TestStopWritesHeldEventsOrCountsThem: the reserve is used up (here it
// never was: the disk was full before the agent started, the log's
// space ahead taken back), so events wait in memory. At the stop they go
// into the space kept for it (audit.Options.StopReserve) when it is
// there; when not even that is left, their number is left for the next
// start, which records it (audit_damaged, unwritten_at_stop).
func TestStopWritesHeldEventsOrCountsThem(t *testing.T) {
	for _, tc := range []struct {
		name string
		room int64    // bytes left free for the agent's second start
		plug []string // devices plugged while the disk is full
		held float64  // events to wait for in memory before the stop
	}{
		// Less than the 64 KiB stop reserve: nothing goes in until the
		// stop, and then everything does.
		{"into the stop reserve", 48 << 10, []string{reader}, 4},
		// Nothing free (but the slack in the log's last page): more
		// is held than the stop can write.
		{"counted", 0, []string{reader, camera, phone, finger, fido}, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mnt := mountTmpfs(t, "16m")
			e := newEnv(t, testConfig, kbd)
			e.state = filepath.Join(mnt, "state")
			e.cfg.Agent.StateDir = e.state
			e.cfg.Agent.RescanInterval = 20 * time.Millisecond
			// A first run makes the state directory and its files.
			r := e.start(Options{})
			r.stop(t)
			// No reserve left: the current file cut to its size (which
			// frees its blocks past the end) and the spare removed.
			cur := filepath.Join(e.state, audit.CurrentName)
			fi, err := os.Stat(cur)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(cur, fi.Size()); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(e.state, audit.SpareName))
			filler := filepath.Join(mnt, "filler")
			fillUp(t, filler)
			if tc.room > 0 {
				fi, _ := os.Stat(filler)
				if err := os.Truncate(filler, fi.Size()-tc.room); err != nil {
					t.Fatal(err)
				}
			}

			r = e.start(Options{})
			sysfstest.Build(t, e.sysfs, tc.plug...)
			deadline := time.Now().Add(10 * time.Second)
			for testutilPending(r) < tc.held {
				if time.Now().After(deadline) {
					t.Fatalf("%v events waiting on the full disk; audit log:\n%s", testutilPending(r), dump(e.records()))
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // the rescans settle
			held := testutilPending(r)
			r.stop(t)
			os.Remove(filler)

			r = e.start(Options{})
			r.stop(t)
			recs := e.records()
			var unwritten []string
			for _, m := range auditMessages(t, e.state, TypeAuditDamaged) {
				if strings.Contains(m, string(audit.DamageUnwritten)) {
					unwritten = append(unwritten, m)
				}
			}
			if tc.room > 0 {
				// Everything held went into the stop reserve.
				if count(recs, TypeViolation, "8-1.4", KindStorageUnapproved) != 1 || count(recs, TypeAuditGap, "", "") != 1 ||
					count(recs, TypeAgentUncleanStop, "", "") != 0 || len(unwritten) != 0 {
					t.Fatalf("audit log, %v events held at the stop:\n%s\nunwritten: %v", held, dump(recs), unwritten)
				}
			} else {
				// The stop could not write all: the next start says how
				// many were lost, after the unclean stop.
				if len(unwritten) != 1 || count(recs, TypeAgentUncleanStop, "", "") != 1 ||
					!strings.Contains(unwritten[0], "records it held could not be written") {
					t.Fatalf("audit log, %v events held at the stop:\n%s\nunwritten: %v", held, dump(recs), unwritten)
				}
			}
			if rep, err := audit.Verify(e.state); err != nil || !rep.OK() {
				t.Fatalf("Verify: %v %+v", err, rep.Problems)
			}
		})
	}
}

// auditMessages returns the messages of the records of type typ in the
// current audit file.
func auditMessages(t *testing.T, state, typ string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, audit.CurrentName))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		var r struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(line, &r) == nil && r.Type == typ {
			out = append(out, r.Message)
		}
	}
	return out
}
