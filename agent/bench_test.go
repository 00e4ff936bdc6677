package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/sysfstest"
)

// BenchmarkRescan100 is the agent's whole periodic rescan of a 100-device
// tree: enumerate, decide every device against the approved list, read
// mountinfo and reconcile, update the metrics snapshot. Nothing changes
// between iterations, so it is the steady-state cost.
func BenchmarkRescan100(b *testing.B) {
	dir := b.TempDir()
	sysfs := filepath.Join(dir, "sys")
	rec, err := sysfstest.Load(fido)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sysfstest.Replicate(sysfs, rec, "1-2.3", 100); err != nil {
		b.Fatal(err)
	}
	procfs := filepath.Join(dir, "proc")
	os.MkdirAll(filepath.Join(procfs, "self"), 0o755)
	os.WriteFile(filepath.Join(procfs, "self/mountinfo"), []byte("22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"), 0o644)
	cfg, err := config.Parse("bench.yaml", []byte(testConfig))
	if err != nil {
		b.Fatal(err)
	}
	cfg.Agent.StateDir = filepath.Join(dir, "state")
	a, err := New(Options{Config: cfg, Roots: Roots{Sysfs: sysfs, Procfs: procfs, Dev: dir}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	a.now = func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }
	a.audit = openBenchAudit(b, cfg.Agent.StateDir)
	a.rescan("start")
	if len(a.present) != 100 {
		b.Fatalf("%d devices present, want 100", len(a.present))
	}
	b.ReportAllocs()
	for b.Loop() {
		a.rescan("rescan")
	}
}

func openBenchAudit(b *testing.B, dir string) *audit.Log {
	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}
