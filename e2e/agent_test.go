//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// requireMamori fails (not skips: a missing agent must fail CI) when the
// agent did not build.
func requireMamori(t *testing.T, e *env) {
	t.Helper()
	if e.Mamori == "" {
		t.Fatalf("mamori did not build, agent scenarios cannot run: %v", e.MamoriErr)
	}
}

// kinds lists the violation kinds of recs.
func kinds(recs []auditRec) []string {
	var out []string
	for _, r := range recs {
		if r.Type == "violation" {
			out = append(out, r.Kind)
		}
	}
	return out
}

func ofType(recs []auditRec, typ string) []auditRec {
	var out []auditRec
	for _, r := range recs {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func dump(recs []auditRec) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString("\n\t" + r.String())
	}
	return b.String()
}

// cycle plugs a device, waits until the agent recorded it, runs during,
// unplugs it and waits for its removal; it returns every record about
// the device's bus path made in between.
func (v *vm) cycle(plug func() string, during func(path string), unplug func()) (string, []auditRec) {
	v.t.Helper()
	seq := v.lastSeq()
	from := v.Agent.mark()
	path := plug()
	v.waitRecorded(from, "device_added of "+path, 30*time.Second, func(l agentLine) bool {
		return l.Type == "device_added" && l.Path == path
	})
	if during != nil {
		during(path)
	}
	from = v.Agent.mark()
	unplug()
	v.waitRecorded(from, "device_removed of "+path, 30*time.Second, func(l agentLine) bool {
		return l.Type == "device_removed" && l.Path == path
	})
	return path, v.auditSince(seq, func(r auditRec) bool { return r.Path == path })
}

// TestAgent runs the scenarios of the issue against `mamori run` in one
// guest: every assertion is on the audit log or the metrics.
func TestAgent(t *testing.T) {
	e := setup(t)
	requireMamori(t, e)
	start := time.Now()
	v := boot(t, e)
	v.startAgent()
	timings := map[string]time.Duration{}
	step := func(name string, f func(t *testing.T, v *vm)) {
		s := time.Now()
		t.Run(name, func(t *testing.T) {
			f(t, v.with(t))
			if t.Failed() {
				out, _ := v.Exec(20*time.Second, "dmesg | tail -n 40")
				t.Logf("guest dmesg, last 40 lines:\n%s", out)
			}
		})
		timings[name] = time.Since(s)
	}

	step("started", func(t *testing.T, v *vm) {
		recs := v.audit()
		if len(recs) == 0 || recs[0].Type != "agent_started" || recs[0].AssetID != "PC-E2E" {
			v.Errorf("first audit record = %v, want agent_started for PC-E2E", dump(recs[:min(1, len(recs))]))
		}
	})

	step("stick-yanked-while-mounted", func(t *testing.T, v *vm) {
		img := v.newStickImage("yank")
		var s *stick
		path, recs := v.cycle(func() string {
			s = v.PlugStick("yank", img, "E2E-YANK-0001", true)
			return v.usbPathBySerial(s.Serial, 15*time.Second)
		}, func(path string) {
			part := v.partitionUnder(path, 15*time.Second)
			from := v.Agent.mark()
			v.Run("mkdir -p /mnt/stick && mount -t vfat /dev/" + part + " /mnt/stick")
			v.waitRecorded(from, "volume_mounted of "+path, 15*time.Second, func(l agentLine) bool {
				return l.Type == "volume_mounted" && l.Path == path
			})
		}, func() { v.UnplugStick(s) })
		v.Run("umount -l /mnt/stick || true")
		if k := kinds(recs); len(k) != 1 || k[0] != "usb_storage_unapproved" {
			v.Errorf("violations for the yanked stick %s = %v, want exactly one usb_storage_unapproved:%s", path, k, dump(recs))
		}
		for _, r := range ofType(recs, "violation") {
			if r.serial() != s.Serial || r.VendorID != "46f4" || r.ProductID != "0001" || r.Violation == nil || r.Violation.MessageEN == "" {
				v.Errorf("violation record does not name the stick: %+v", r)
			}
		}
		mounted := ofType(recs, "volume_mounted")
		if len(mounted) != 1 || mounted[0].Volume == nil || mounted[0].Volume.MountPoint != "/mnt/stick" {
			v.Errorf("volume_mounted records = %v, want one with mount point /mnt/stick", dump(mounted))
		}
		if n := len(ofType(recs, "device_removed")); n != 1 {
			v.Errorf("device_removed records = %d, want 1:%s", n, dump(recs))
		}
	})

	step("gadgets-by-serial-ids-expiry-port", func(t *testing.T, v *vm) {
		cases := []struct {
			name string
			g    gadget
			want string // violation kind, "" for approved
		}{
			{"approved-by-serial", gadget{VendorID: "1209", ProductID: "5001", Serial: "APPROVED-SN-1"}, ""},
			{"approved-by-ids", gadget{VendorID: "1209", ProductID: "5002", Serial: "ANY-SERIAL-77"}, ""},
			{"approval-expired", gadget{VendorID: "1209", ProductID: "5003", Serial: "EXPIRED-SN-1"}, "usb_approval_expired"},
			{"same-ids-other-serial", gadget{VendorID: "1209", ProductID: "5001", Serial: "NOT-APPROVED-9"}, "usb_storage_unapproved"},
			{"no-serial-approved-by-port", gadget{VendorID: "1209", ProductID: "5004"}, ""},
		}
		for i, c := range cases {
			g := c.g
			g.Name = fmt.Sprintf("g%d", i)
			g.Manufacturer, g.Product, g.Storage = "mamori e2e", c.name, true
			path, recs := v.cycle(func() string {
				v.PlugGadget(g)
				if g.Serial == "" {
					return v.usbPathByIDs(g.VendorID, g.ProductID, 15*time.Second)
				}
				return v.usbPathBySerial(g.Serial, 15*time.Second)
			}, nil, func() { v.UnplugGadget(g) })
			got := kinds(recs)
			switch {
			case c.want == "" && len(got) != 0:
				v.Errorf("%s (%s:%s serial %q at %s): violations %v, want none:%s", c.name, g.VendorID, g.ProductID, g.Serial, path, got, dump(recs))
			case c.want != "" && (len(got) != 1 || got[0] != c.want):
				v.Errorf("%s (%s:%s serial %q at %s): violations %v, want [%s]:%s", c.name, g.VendorID, g.ProductID, g.Serial, path, got, c.want, dump(recs))
			}
			if c.name == "no-serial-approved-by-port" && path != "3-1" {
				v.Errorf("gadget without serial came up at %s, the config approves port 3-1", path)
			}
			if g.Serial == "" {
				for _, r := range recs {
					if r.Serial != nil {
						v.Errorf("device without serial recorded with serial %q: %v", *r.Serial, r)
					}
				}
			}
		}
	})

	step("composite-keyboard-with-storage", func(t *testing.T, v *vm) {
		g := gadget{Name: "comp", VendorID: "1209", ProductID: "c0de", Serial: "COMPOSITE-1",
			Manufacturer: "mamori e2e", Product: "Keyboard with storage", Keyboard: true, Storage: true}
		path, recs := v.cycle(func() string {
			v.PlugGadget(g)
			return v.usbPathBySerial(g.Serial, 15*time.Second)
		}, nil, func() { v.UnplugGadget(g) })
		if k := kinds(recs); len(k) != 1 || k[0] != "usb_storage_unapproved" {
			v.Errorf("composite HID+storage at %s against classes [hid]: violations %v, want [usb_storage_unapproved]:%s", path, k, dump(recs))
		}
	})

	step("keyboard-approved-serial-adapter-not", func(t *testing.T, v *vm) {
		seq := v.lastSeq()
		from := v.Agent.mark()
		v.PlugKeyboard("kbd")
		kp := v.usbPathByIDs("0627", "0001", 15*time.Second)
		v.waitRecorded(from, "device_added of the keyboard "+kp, 30*time.Second, func(l agentLine) bool {
			return l.Type == "device_added" && l.Path == kp
		})
		from = v.Agent.mark()
		v.PlugSerial("ser")
		sp := v.usbPathByIDs("0403", "6001", 15*time.Second)
		v.waitRecorded(from, "a violation for the serial adapter "+sp, 30*time.Second, func(l agentLine) bool {
			return l.Type == "violation" && l.Path == sp
		})
		m := v.metrics()
		if n, _ := m.sum("mamori_usb_devices", map[string]string{"class": "hid", "approved": "true"}); n < 1 {
			v.Errorf("mamori_usb_devices{class=\"hid\",approved=\"true\"} = %v with the keyboard plugged, want ≥ 1", n)
		}
		if n, _ := m.sum("mamori_usb_devices", map[string]string{"approved": "false"}); n < 1 {
			v.Errorf("mamori_usb_devices{approved=\"false\"} = %v with the serial adapter plugged, want ≥ 1", n)
		}
		v.Unplug("kbd")
		v.UnplugSerial("ser")
		kb := v.auditSince(seq, func(r auditRec) bool { return r.Path == kp })
		if k := kinds(kb); len(k) != 0 {
			v.Errorf("keyboard %s (approved by class hid): violations %v, want none:%s", kp, k, dump(kb))
		}
		sr := v.auditSince(seq, func(r auditRec) bool { return r.Path == sp })
		if k := kinds(sr); len(k) != 1 || k[0] != "usb_device_unapproved" {
			v.Errorf("serial adapter %s: violations %v, want [usb_device_unapproved]:%s", sp, k, dump(sr))
		}
	})

	step("plugged-while-agent-down", func(t *testing.T, v *vm) {
		v.stopAgent()
		seq := v.lastSeq()
		img := v.newStickImage("down")
		s := v.PlugStick("down", img, "E2E-WHILE-DOWN", false)
		path := v.usbPathBySerial(s.Serial, 15*time.Second)
		v.partitionUnder(path, 15*time.Second)
		from := v.Agent.mark()
		v.startAgent()
		// The start scan runs after agent_started is recorded.
		v.waitRecorded(from, "the start scan's violation for "+path, 30*time.Second, func(l agentLine) bool {
			return l.Type == "violation" && l.Path == path
		})
		recs := v.auditSince(seq, func(r auditRec) bool { return r.Path == path })
		vs := ofType(recs, "violation")
		if len(vs) != 1 || vs[0].Kind != "usb_storage_unapproved" || vs[0].Trigger != "start" || vs[0].serial() != s.Serial {
			v.Errorf("stick plugged while the agent was down: violations%s\nwant one usb_storage_unapproved with trigger start and serial %s", dump(vs), s.Serial)
		}
		from = v.Agent.mark()
		v.UnplugStick(s)
		v.waitRecorded(from, "device_removed of "+path, 30*time.Second, func(l agentLine) bool {
			return l.Type == "device_removed" && l.Path == path
		})
	})

	step("plugged-during-burst", func(t *testing.T, v *vm) {
		seq := v.lastSeq()
		img := v.newStickImage("burst")
		var s *stick
		const cycles = 20
		for i := range cycles {
			id := fmt.Sprintf("bk%d", i)
			v.PlugKeyboard(id)
			if i == cycles/2 {
				s = v.PlugStick("burst", img, "E2E-DURING-BURST", true)
			}
			// Unplug once the guest enumerated it, so that every cycle
			// makes real add and remove uevents.
			v.WaitGuest("keyboard "+id+" enumerated", 10*time.Second,
				`grep -l "^0627$" /sys/bus/usb/devices/*/idVendor >/dev/null`)
			v.Unplug(id)
			v.WaitGuest("keyboard "+id+" gone", 10*time.Second,
				`! grep -l "^0627$" /sys/bus/usb/devices/*/idVendor >/dev/null 2>&1`)
		}
		path := v.usbPathBySerial(s.Serial, 15*time.Second)
		v.waitRecorded(0, "a violation for the stick plugged during the burst at "+path, 30*time.Second, func(l agentLine) bool {
			return l.Type == "violation" && l.Path == path && l.Seq > seq
		})
		// Let the agent settle: the last keyboard removal must be in.
		time.Sleep(2 * time.Second)
		recs := v.auditSince(seq, nil)
		var stickViol, stickAdded, kbdAdded, kbdRemoved int
		for _, r := range recs {
			switch {
			case r.Path == path && r.Type == "violation":
				stickViol++
			case r.Path == path && r.Type == "device_added":
				stickAdded++
			case r.VendorID == "0627" && r.Type == "device_added":
				kbdAdded++
			case r.VendorID == "0627" && r.Type == "device_removed":
				kbdRemoved++
			}
		}
		t.Logf("burst of %d keyboard plug/unplug cycles: %d keyboard adds, %d removals recorded; stick: %d added, %d violations",
			cycles, kbdAdded, kbdRemoved, stickAdded, stickViol)
		if stickViol != 1 || stickAdded != 1 {
			v.Errorf("stick plugged during the burst: %d device_added, %d violations; want 1 and 1:%s", stickAdded, stickViol, dump(recs))
		}
		if kbdAdded != cycles || kbdRemoved != cycles {
			v.Errorf("keyboards during the burst: %d added and %d removed, want %d each:%s", kbdAdded, kbdRemoved, cycles, dump(recs))
		}
		from := v.Agent.mark()
		v.UnplugStick(s)
		v.waitRecorded(from, "device_removed of "+path, 30*time.Second, func(l agentLine) bool {
			return l.Type == "device_removed" && l.Path == path
		})
	})

	step("removable-false-and-true", func(t *testing.T, v *vm) {
		img := v.newStickImage("rem")
		for _, removable := range []bool{false, true} {
			var s *stick
			path, recs := v.cycle(func() string {
				s = v.PlugStick("rem", img, "E2E-REMOVABLE", removable)
				p := v.usbPathBySerial(s.Serial, 15*time.Second)
				part := v.partitionUnder(p, 15*time.Second)
				// The variation must be real: the guest's disk says so.
				disk := strings.TrimRight(part, "0123456789")
				want := map[bool]string{false: "0", true: "1"}[removable]
				if got := strings.TrimSpace(v.Run("cat /sys/class/block/" + disk + "/removable")); got != want {
					v.Errorf("QEMU removable=%v but the guest's %s/removable is %s", removable, disk, got)
				}
				return p
			}, nil, func() { v.UnplugStick(s) })
			if k := kinds(recs); len(k) != 1 || k[0] != "usb_storage_unapproved" {
				v.Errorf("stick with removable=%v at %s: violations %v, want [usb_storage_unapproved]:%s", removable, path, k, dump(recs))
			}
		}
	})

	step("yanked-while-being-probed", func(t *testing.T, v *vm) {
		// Sticks pulled right after they appear, while the kernel and
		// the agent still read them: each must give one device_added,
		// at most one approval violation, and nothing after its
		// device_removed (no re-added ghost of a dying device).
		img := v.newStickImage("quick")
		for i := range 5 {
			seq := v.lastSeq()
			from := v.Agent.mark()
			serial := fmt.Sprintf("E2E-QUICK-%d", i)
			s := v.PlugStick(fmt.Sprintf("quick%d", i), img, serial, true)
			added := v.waitRecorded(from, "device_added of quick stick "+serial, 30*time.Second, func(l agentLine) bool {
				return l.Type == "device_added" && strings.HasPrefix(l.Path, "2-")
			})
			l, _ := parseAgentLine(added.Val)
			mid := v.Agent.mark()
			v.UnplugStick(s)
			v.waitRecorded(mid, "device_removed of quick stick at "+l.Path, 30*time.Second, func(x agentLine) bool {
				return x.Type == "device_removed" && x.Path == l.Path
			})
			time.Sleep(time.Second) // anything late would be recorded by now
			recs := v.auditSince(seq, func(r auditRec) bool { return r.Path == l.Path })
			nAdded := len(ofType(recs, "device_added"))
			last := recs[len(recs)-1]
			k := kinds(recs)
			if nAdded != 1 || last.Type != "device_removed" || len(k) > 1 || len(ofType(recs, "device_removed")) != 1 {
				v.Errorf("stick %s pulled while being probed: want one device_added, at most one violation, and device_removed last; got:%s", serial, dump(recs))
			}
		}
	})

	step("latency", measureLatency)

	step("metrics-and-chain", func(t *testing.T, v *vm) {
		m := v.metrics()
		recs := v.audit()
		want := map[string]float64{}
		started := 0
		for _, r := range recs {
			if r.Type == "agent_started" {
				started++
			}
		}
		// Counters restart with the agent: count since the last start.
		last := 0
		for i, r := range recs {
			if r.Type == "agent_started" {
				last = i
			}
		}
		for _, r := range recs[last:] {
			if r.Type == "violation" {
				want[r.Kind]++
			}
		}
		for kind, n := range want {
			got, _ := m.sum("mamori_violations_total", map[string]string{"kind": kind})
			if got != n {
				v.Errorf("mamori_violations_total{kind=%q} = %v, audit log since the last start has %v", kind, got, n)
			}
		}
		if _, ok := m.sum("mamori_events_total", nil); !ok {
			v.Errorf("no mamori_events_total in /metrics")
		}
		if _, ok := m.sum("mamori_rescans_total", nil); !ok {
			v.Errorf("no mamori_rescans_total in /metrics")
		}
		v.stopAgent()
		if out, err := v.Exec(30*time.Second, "/bin/mamori audit verify --state-dir "+guestStateDir); err != nil {
			v.Errorf("mamori audit verify: %v\n%s", err, out)
		}
		recs = v.audit()
		if last := recs[len(recs)-1]; last.Type != "agent_stopped" {
			v.Errorf("last audit record %v, want agent_stopped", last)
		}
		t.Logf("audit log: %d records, %d agent starts", len(recs), started)
	})

	var b strings.Builder
	fmt.Fprintf(&b, "boot %v", v.Booted.Round(time.Millisecond))
	for _, name := range []string{"stick-yanked-while-mounted", "gadgets-by-serial-ids-expiry-port",
		"composite-keyboard-with-storage", "keyboard-approved-serial-adapter-not", "plugged-while-agent-down",
		"plugged-during-burst", "removable-false-and-true", "yanked-while-being-probed", "latency", "metrics-and-chain"} {
		fmt.Fprintf(&b, ", %s %v", name, timings[name].Round(time.Millisecond))
	}
	t.Logf("timings: %s; total %v", b.String(), time.Since(start).Round(time.Millisecond))
}
