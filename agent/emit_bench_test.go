package agent

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
)

// BenchmarkEmitViolation is the cost of recording one violation: audit
// append (with fsync) and the other sinks. Set TMPDIR to a tmpfs to leave
// the disk's fsync out.
func BenchmarkEmitViolation(b *testing.B) {
	dir := b.TempDir()
	cfg, _ := config.Parse("b.yaml", []byte(testConfig))
	cfg.Agent.StateDir = dir
	a, err := New(Options{Config: cfg, Logger: slog.New(slog.NewJSONHandler(devNull(b), nil)), Warner: &ConsoleWarner{W: devNull(b)}})
	if err != nil {
		b.Fatal(err)
	}
	a.audit, err = audit.Open(dir, audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer a.audit.Close()
	serial := "S1"
	d := &usb.Device{Path: "1-1", BusNum: 1, DevNum: 2, VendorID: "46f4", ProductID: "0001", Serial: &serial,
		Manufacturer: "QEMU", Product: "QEMU USB HARDDRIVE", Interfaces: []usb.Interface{{Class: "08", SubClass: "06", Protocol: "50", Driver: "usb-storage"}}}
	dec := a.policy.Decide(d, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		ev := deviceEvent(TypeViolation, d, "uevent", nil)
		ev.Device, ev.Violation = wireDevice(d), dec.Violation
		a.emit(ev)
	}
}

func devNull(b *testing.B) *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}
