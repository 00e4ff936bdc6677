//go:build unix

package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mamori-agent/mamori/internal/fsguard/fsguardtest"
)

// inTime fails t if f does not return within two seconds: nothing planted
// in the state directory may hang the log.
func inTime(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatalf("%s: still running after 2s (hung on a FIFO?)", what)
	}
}

// TestFIFOs: FIFOs planted at the log's names are refused without
// hanging Open, Verify or ReadBack.
func TestFIFOs(t *testing.T) {
	for _, name := range []string{CurrentName, HeadName, rotatedName(1), lockName, SpareName, UnwrittenName} {
		t.Run(name, func(t *testing.T) {
			dir, _ := writeLog(t, 3, Options{})
			if name == rotatedName(1) {
				os.Rename(filepath.Join(dir, CurrentName), filepath.Join(dir, rotatedName(4)))
			}
			p := filepath.Join(dir, name)
			os.Remove(p)
			if err := unix.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			inTime(t, "Verify", func() {
				if rep, err := Verify(dir); err == nil && rep.OK() && name != lockName && name != SpareName && name != UnwrittenName {
					t.Errorf("Verify accepted a FIFO as %s", name)
				}
			})
			inTime(t, "Open", func() {
				l, err := Open(dir, Options{})
				if err != nil {
					return
				}
				defer l.Close()
				switch name {
				case CurrentName, lockName:
					t.Errorf("Open accepted a FIFO as %s", name)
				case HeadName:
					if d := l.Damaged(); len(d) != 1 || d[0].Kind != DamageHead || !strings.Contains(d[0].Reason, "FIFO") {
						t.Errorf("Damaged = %v, want the FIFO head reported", d)
					}
				case SpareName, UnwrittenName:
					want := map[string]DamageKind{SpareName: DamageReserveLost, UnwrittenName: DamageUnwritten}[name]
					if d := l.Damaged(); len(d) != 1 || d[0].Kind != want || !strings.Contains(d[0].Reason, "FIFO") {
						t.Errorf("Damaged = %v, want the FIFO reported as %s", d, want)
					}
					if _, err := l.Append(testEvent(4)); err != nil {
						t.Errorf("Append with a FIFO at %s: %v", name, err)
					}
				}
			})
			inTime(t, "ReadBack", func() { ReadBack(dir, func([]byte) bool { return false }) })
		})
	}
}

// TestPlantedSymlinksAsRoot makes the attack real: an unprivileged user
// who can write the state directory plants symlinks to a root-owned file
// at every name the log opens or creates; root's Open, Append, Close and
// Verify never write through them.
func TestPlantedSymlinksAsRoot(t *testing.T) {
	u := fsguardtest.Unprivileged(t)
	base := fsguardtest.ReachableDir(t)
	victim := filepath.Join(base, "shadow")
	os.WriteFile(victim, []byte("root:secret\n"), 0o600)
	for _, name := range []string{CurrentName, HeadName, lockName, rotatedName(1), CurrentName + ".torn-1700000000", SpareName, UnwrittenName} {
		t.Run(name, func(t *testing.T) {
			state := filepath.Join(base, strings.ReplaceAll(name, ".", "_"))
			u.Mkdir(t, state, 0o777)
			u.Run(t, "ln -s "+victim+" "+filepath.Join(state, name))
			if name == CurrentName+".torn-1700000000" {
				// Make Open cut a torn tail into that name.
				os.WriteFile(filepath.Join(state, CurrentName), []byte("{"), 0o600)
			}
			now := func() time.Time { return time.Unix(1700000000, 0) }
			l, err := Open(state, Options{Now: now, MaxSize: 300})
			if err == nil {
				for i := range 3 {
					l.Append(testEvent(i))
				}
				l.Close()
			}
			Verify(state)
			if got, _ := os.ReadFile(victim); string(got) != "root:secret\n" {
				t.Fatalf("root wrote through the symlink at %s: victim holds %q", name, got)
			}
		})
	}
}
