//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// latencyPlugs is how many sticks the latency step plugs
// (MAMORI_E2E_PLUGS overrides; at least 20 count for the report).
func latencyPlugs() int {
	if n, err := strconv.Atoi(os.Getenv("MAMORI_E2E_PLUGS")); err == nil && n > 0 {
		return n
	}
	return 20
}

// percentile returns the nearest-rank percentile p (0-100) of d.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Latency targets of the issue.
const (
	maxAgentShareP50  = 10 * time.Millisecond  // uevent received → record
	maxDeviceToRecP50 = 500 * time.Millisecond // USB device uevent → violation recorded
)

// measureLatency plugs sticks one after the other and measures, per plug:
// (a) QMP device_add sent → the violation's "recorded" line arrives on
// ttyS1 (host clock, includes QEMU, the guest kernel and the UART);
// (b) the violation record's uevent_time → its time (the agent's share,
// guest clock); (c) the uevent_time of the device_added record (the USB
// device's add uevent) → the violation's time.
func measureLatency(t *testing.T, v *vm) {
	n := latencyPlugs()
	img := v.newStickImage("lat")
	type plug struct {
		sent    time.Time
		serial  string
		arrived map[int64]time.Time // violation seq → when its line arrived
	}
	var plugs []plug
	for i := range n {
		from := v.Agent.mark()
		serial := fmt.Sprintf("E2E-LAT-%02d", i)
		s := v.PlugStick(fmt.Sprintf("lat%d", i), img, serial, true)
		v.waitRecorded(from, fmt.Sprintf("a violation after plugging latency stick %d", i), 30*time.Second, func(l agentLine) bool {
			return l.Type == "violation"
		})
		// Let the stick settle (disk and partition read) before pulling
		// it: a stick pulled while it is being probed is another scenario.
		path := v.usbPathBySerial(serial, 15*time.Second)
		v.partitionUnder(path, 15*time.Second)
		mid := v.Agent.mark()
		v.UnplugStick(s)
		v.waitRecorded(mid, "device_removed of latency stick "+path, 30*time.Second, func(x agentLine) bool {
			return x.Type == "device_removed" && x.Path == path
		})
		p := plug{sent: s.Plugged, serial: serial, arrived: map[int64]time.Time{}}
		for _, it := range v.Agent.since(from) {
			if l, ok := parseAgentLine(it.Val); ok && l.Msg == "recorded" && l.Type == "violation" {
				p.arrived[l.Seq] = it.At
			}
		}
		plugs = append(plugs, p)
	}
	recs := v.audit()
	var qmpToLine, agentShare, devToRec, readShare, addedToViol []time.Duration
	for _, p := range plugs {
		// The plug's violation is the first one naming its serial.
		i := slices.IndexFunc(recs, func(r auditRec) bool {
			_, ours := p.arrived[r.Seq]
			return ours && r.Type == "violation" && r.serial() == p.serial
		})
		if i < 0 {
			v.Errorf("no violation naming %s among the records made while it was plugged", p.serial)
			continue
		}
		viol := recs[i]
		qmpToLine = append(qmpToLine, p.arrived[viol.Seq].Sub(p.sent))
		if viol.UeventTime == nil {
			v.Errorf("violation %v has no uevent_time", viol)
			continue
		}
		agentShare = append(agentShare, viol.Time.Sub(*viol.UeventTime))
		for j := i; j >= 0; j-- {
			if recs[j].Type == "device_added" && recs[j].Path == viol.Path {
				if recs[j].UeventTime != nil {
					devToRec = append(devToRec, viol.Time.Sub(*recs[j].UeventTime))
					readShare = append(readShare, recs[j].Time.Sub(*recs[j].UeventTime))
				}
				addedToViol = append(addedToViol, viol.Time.Sub(recs[j].Time))
				break
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "detection latency over %d stick plugs (nearest-rank percentiles)\n", n)
	fmt.Fprintf(&b, "  %-52s %10s %10s %10s\n", "", "p50", "p99", "max")
	row := func(name string, d []time.Duration) {
		fmt.Fprintf(&b, "  %-52s %10v %10v %10v\n", name, percentile(d, 50).Round(10*time.Microsecond),
			percentile(d, 99).Round(10*time.Microsecond), percentile(d, 100).Round(10*time.Microsecond))
	}
	row("(a) QMP device_add → recorded line on ttyS1 (host)", qmpToLine)
	row("(b) uevent received → violation record (agent)", agentShare)
	row("(c) USB device add uevent → violation record", devToRec)
	row("    of which uevent → device_added record", readShare)
	row("    of which device_added record → violation record", addedToViol)
	fmt.Fprintf(&b, "  guest CPU speed: %s\n", v.calibrate())
	// The 10 ms target is for the agent on a real PC. Under TCG every
	// syscall, page fault and instruction is emulated, so the agent's work
	// is measured again, the same binary on the same audit log, in the
	// guest and on the host, and the target stretches by that factor.
	// Under KVM it stays 10 ms. (BenchmarkUeventToRecord measures the
	// same path natively.)
	bound := maxAgentShareP50
	if !useKVM() {
		factor, desc := v.agentSlowdown(shared.Mamori)
		fmt.Fprintf(&b, "  agent work (mamori audit verify ×10, same binary and log): %s\n", desc)
		if factor > 1 {
			bound = time.Duration(float64(bound) * factor)
		}
		fmt.Fprintf(&b, "  agent-share target under TCG: %v (10 ms × %.1f)\n", bound.Round(10*time.Microsecond), max(factor, 1))
	}
	t.Log("\n" + b.String())
	if p := percentile(agentShare, 50); p > bound {
		v.Errorf("agent's share (uevent → record) p50 %v exceeds %v (p99 %v)", p, bound, percentile(agentShare, 99))
	}
	if p := percentile(devToRec, 50); len(devToRec) == 0 || p > maxDeviceToRecP50 {
		v.Errorf("USB device event → violation record p50 %v exceeds %v (p99 %v, %d samples)", p, maxDeviceToRecP50, percentile(devToRec, 99), len(devToRec))
	}
}

// calibrate runs the same static busybox over the same work on the host
// and in the guest, to tell how much slower the guest (TCG, and a host
// that may be busy) is than native: latencies measured inside the guest
// stretch by about that factor.
func (v *vm) calibrate() string {
	const work = "dd if=/dev/zero bs=1M count=32 2>/dev/null | busybox sha256sum >/dev/null"
	bb, err := findBusybox()
	if err != nil {
		return err.Error()
	}
	hs := time.Now()
	if out, err := exec.Command("sh", "-c", strings.Replace(work, "busybox", bb, 1)).CombinedOutput(); err != nil {
		return fmt.Sprintf("host calibration failed: %v %s", err, out)
	}
	host := time.Since(hs)
	out, err := v.Exec(120*time.Second, "s=$(cut -d' ' -f1 /proc/uptime); "+work+"; e=$(cut -d' ' -f1 /proc/uptime); echo $s $e")
	if err != nil {
		return fmt.Sprintf("guest calibration failed: %v", err)
	}
	var s, e float64
	if _, err := fmt.Sscan(out, &s, &e); err != nil {
		return fmt.Sprintf("guest calibration: bad output %q", out)
	}
	guest := time.Duration((e - s) * float64(time.Second))
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("sha256 of 32 MiB: host %v, guest %v (%.1fx slower); host loadavg %s",
		host.Round(time.Millisecond), guest.Round(time.Millisecond), float64(guest)/float64(host), strings.Join(strings.Fields(string(load))[:3], " "))
}

// agentSlowdown times the agent's own kind of work, `mamori audit verify`
// over the guest's audit log (process start, JSON, SHA-256, file reads),
// ten times in the guest and ten times on the host with the same binary
// and a copy of the same log, and returns guest time / host time.
func (v *vm) agentSlowdown(hostBin string) (float64, string) {
	const runs = 10
	// The head goes with the log (read first, so it never names a record
	// the copy lacks): a log with records and no head is damage, and
	// verify would stop early instead of doing the work.
	head, err := v.Exec(60*time.Second, "cat "+guestStateDir+"/audit.head")
	if err != nil {
		return 0, fmt.Sprintf("copy of the audit head failed: %v", err)
	}
	log, err := v.Exec(60*time.Second, "cat "+guestStateDir+"/audit.jsonl")
	if err != nil {
		return 0, fmt.Sprintf("copy of the audit log failed: %v", err)
	}
	dir, err := os.MkdirTemp("", "mamori-slowdown")
	if err != nil {
		return 0, err.Error()
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "audit.jsonl"), []byte(log), 0o600); err != nil {
		return 0, err.Error()
	}
	if err := os.WriteFile(filepath.Join(dir, "audit.head"), []byte(head), 0o600); err != nil {
		return 0, err.Error()
	}
	hs := time.Now()
	for range runs {
		if out, err := exec.Command(hostBin, "audit", "verify", "--state-dir", dir).CombinedOutput(); err != nil {
			return 0, fmt.Sprintf("host audit verify: %v %s", err, out)
		}
	}
	host := time.Since(hs)
	script := fmt.Sprintf("s=$(cut -d' ' -f1 /proc/uptime); i=0; while [ $i -lt %d ]; do /bin/mamori audit verify --state-dir %s >/dev/null; i=$((i+1)); done; e=$(cut -d' ' -f1 /proc/uptime); echo $s $e", runs, guestStateDir)
	out, err := v.Exec(120*time.Second, script)
	if err != nil {
		return 0, fmt.Sprintf("guest audit verify failed: %v", err)
	}
	var s, e float64
	if _, err := fmt.Sscan(out, &s, &e); err != nil {
		return 0, fmt.Sprintf("guest timing: bad output %q", out)
	}
	guest := time.Duration((e - s) * float64(time.Second))
	factor := float64(guest) / float64(host)
	return factor, fmt.Sprintf("host %v, guest %v (%.1fx slower), %d bytes of log", host.Round(time.Millisecond), guest.Round(time.Millisecond), factor, len(log))
}
