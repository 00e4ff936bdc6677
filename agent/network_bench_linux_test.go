package agent

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/mamori-agent/mamori/internal/netnstest"
	"github.com/mamori-agent/mamori/wire"
)

// violationSignal is a Sink that reports when the agent handled the
// violation of an unapproved address, and its end. Sinks run after the
// audit append, so a signal means the record is in the log.
type violationSignal struct {
	found   chan time.Time
	cleared chan struct{}
}

func (violationSignal) Name() string { return "bench" }

func (s violationSignal) Handle(ev *Event) error {
	switch {
	case ev.Type == wire.TypeViolation && ev.Violation != nil && ev.Violation.Kind == wire.KindNetworkUnapproved:
		s.found <- time.Now()
	case ev.Type == wire.TypeViolationCleared && ev.Violation != nil && ev.Violation.Kind == wire.KindNetworkUnapproved:
		s.cleared <- struct{}{}
	}
	return nil
}

// BenchmarkLinkChangeToRecord measures the network issue's latency: from
// an address change made through rtnetlink (the clock starts right before
// the request) until the violation it causes (an address in no approved
// network: network_unapproved) has been appended to the audit log. The
// agent watches a network namespace of the benchmark's own, with its state
// directory on tmpfs and on ext4 (a loop-mounted image; skipped where
// none can be made). Each iteration is a new appearance: the address is
// removed again, untimed, and its violation_cleared awaited. The median
// is reported as median-ns/op beside the mean.
func BenchmarkLinkChangeToRecord(b *testing.B) {
	netnstest.Require(b)
	b.Run("tmpfs", func(b *testing.B) {
		dir := b.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
			b.Skipf("cannot mount a tmpfs: %v: %s", err, out)
		}
		b.Cleanup(func() { exec.Command("umount", dir).Run() })
		benchLinkChange(b, dir)
	})
	b.Run("ext4", func(b *testing.B) {
		dir := b.TempDir()
		img, mnt := filepath.Join(dir, "ext4.img"), filepath.Join(dir, "mnt")
		if err := os.Mkdir(mnt, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.Truncate(img, 64<<20); err != nil {
			b.Fatal(err)
		}
		if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
			b.Skipf("cannot make an ext4 image (mkfs.ext4): %v: %s", err, out)
		}
		if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
			b.Skipf("cannot loop-mount an ext4 image: %v: %s", err, strings.TrimSpace(string(out)))
		}
		b.Cleanup(func() { exec.Command("umount", mnt).Run() })
		benchLinkChange(b, mnt)
	})
}

func benchLinkChange(b *testing.B, fsDir string) {
	pc, sw := newNetns(b, "pc"), newNetns(b, "sw")
	netnstest.VethPair(pc.NS, "pc0", sw.NS, "sw0")
	sw.IP("link", "set", "sw0", "up")
	pc.IP("addr", "add", pcAddr, "dev", "pc0")
	pc.IP("link", "set", "pc0", "up")

	e := newEnvTB(b, netTestConfig(gwMAC))
	for _, d := range []string{"devices", "bus/usb/devices"} {
		if err := os.MkdirAll(filepath.Join(e.sysfs, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	e.state = filepath.Join(fsDir, "state")
	e.cfg.Agent.StateDir = e.state

	var conn *rtnetlink.Conn
	var index uint32
	if err := pc.Do(func() error {
		ifi, err := net.InterfaceByName("pc0")
		if err != nil {
			return err
		}
		index = uint32(ifi.Index)
		conn, err = rtnetlink.Dial(nil)
		return err
	}); err != nil {
		b.Fatalf("rtnetlink in %s: %v", pc.Name(), err)
	}
	defer conn.Close()
	ip := net.IPv4(192, 168, 77, 2).To4()
	msg := &rtnetlink.AddressMessage{Family: unix.AF_INET, PrefixLength: 24, Index: index,
		Attributes: &rtnetlink.AddressAttributes{Address: ip, Local: ip}}

	sig := violationSignal{found: make(chan time.Time, 1), cleared: make(chan struct{}, 1)}
	r := e.start(Options{Network: pc.monitor(), Sinks: []Sink{sig}})
	defer r.stop(b)
	wait := func(what string, c <-chan struct{}) {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			b.Fatalf("no %s within 5s", what)
		}
	}

	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := conn.Address.New(msg); err != nil {
			b.Fatalf("add address: %v", err)
		}
		select {
		case at := <-sig.found:
			lat = append(lat, at.Sub(start))
		case <-time.After(5 * time.Second):
			b.Fatal("no violation within 5s of the address change")
		}
		b.StopTimer()
		if err := conn.Address.Delete(msg); err != nil {
			b.Fatalf("delete address: %v", err)
		}
		wait("violation_cleared", sig.cleared)
		b.StartTimer()
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "median-ns/op")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns/op")
	}
}
