//go:build e2e

package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// networkModules are loaded at boot in TestNetwork's guest, after
// guestModules: the PCIe NIC (virtio_net pulls failover and net_failover)
// and the USB network classes QEMU's usb-net (RNDIS + CDC Ethernet) and
// phones use.
// The wireless stack (cfg80211, mac80211) is loaded at boot too, as on a
// PC with Wi-Fi: the agent finds nl80211 when it starts.
var networkModules = []string{"virtio_pci", "virtio_net", "usbnet", "cdc_ether", "rndis_host", "cdc_ncm",
	"cfg80211", "mac80211"}

// wifiModules are carried in TestNetwork's guest and loaded by its Wi-Fi
// step (mac80211_hwsim with radios=2), so no other guest has wireless
// links.
var wifiModules = []string{"mac80211_hwsim"}

// wifiPrograms are Debian's hostapd and wpa_supplicant (packages hostapd
// and wpasupplicant), carried with their shared libraries.
var wifiPrograms = []string{"/usr/sbin/hostapd", "/usr/sbin/wpa_supplicant"}

// networkConfig is the agent's config in TestNetwork's guest: a Wi-Fi
// network approved by SSID only, a LAN approved by CIDR.
const networkConfig = `version: 1
agent:
  asset_id: PC-E2E-NET
  state_dir: /var/lib/mamori
  language: en
  contact: "e2e contact"
  rescan_interval: 60s
metrics:
  listen: 127.0.0.1:9868
usb:
  backend: sysfs
approved:
  usb:
    - name: Keyboards and mice
      classes: [hid]
  networks:
    - name: Staff Wi-Fi
      ssid: city-staff
    - name: Office LAN
      cidr: 10.20.0.0/16
network:
  watch_lan: true
`

var (
	netInitOnce sync.Once
	netInitPath string
	netInitErr  error
)

// networkInitramfs builds, once, the shared initramfs plus the network
// modules, the Wi-Fi modules (loaded later), hostapd, wpa_supplicant and
// the regulatory database when the host has one (wireless-regdb; without
// it cfg80211 stays in the world domain and says so on the console).
func networkInitramfs(t testing.TB, e *env) string {
	t.Helper()
	netInitOnce.Do(func() {
		spec := e.Spec
		spec.Modules = append(slices.Clone(e.Spec.Modules), networkModules...)
		spec.Later = wifiModules
		spec.ModuleArgs = maps.Clone(e.Spec.ModuleArgs)
		spec.ModuleArgs["mac80211_hwsim"] = "radios=2"
		for _, p := range wifiPrograms {
			if _, err := os.Stat(p); err != nil {
				netInitErr = fmt.Errorf("%s not found (run scripts/e2e-deps.sh: hostapd, wpasupplicant): %w", p, err)
				return
			}
		}
		spec.Programs = wifiPrograms
		spec.Data = map[string]string{}
		for _, f := range []string{"regulatory.db", "regulatory.db.p7s"} {
			if _, err := os.Stat("/lib/firmware/" + f); err == nil {
				spec.Data["lib/firmware/"+f] = "/lib/firmware/" + f
			}
		}
		netInitPath = filepath.Join(e.Work, "initramfs-network.cpio.gz")
		netInitErr = buildInitramfs(netInitPath, spec)
	})
	if netInitErr != nil {
		t.Fatalf("network initramfs: %v", netInitErr)
	}
	return netInitPath
}

// waitAudit polls the audit log until a record after seq satisfies
// match, and returns it. On timeout it shows the records since seq.
func (v *vm) waitAudit(seq int64, what string, timeout time.Duration, match func(auditRec) bool) auditRec {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs := v.auditSince(seq, nil)
		for _, r := range recs {
			if match(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			v.Fatalf("waited %v for the audit log to show %s; records since #%d:%s", timeout, what, seq, dump(recs))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// linkRec matches a record of type typ about the link named name.
func linkRec(typ, name string) func(auditRec) bool {
	return func(r auditRec) bool { return r.Type == typ && r.Link != nil && r.Link.Name == name }
}

// violationOn matches a violation of kind about the interface name.
func violationOn(kind, name string) func(auditRec) bool {
	return func(r auditRec) bool {
		return r.Type == "violation" && r.Kind == kind && r.Violation != nil && r.Violation.Device == name
	}
}

// violationIfaces lists the interfaces a violation names: its
// interfaces, else its device split at commas (multi-homed and zone
// bridges name every interface involved).
func violationIfaces(r auditRec) []string {
	if r.Violation == nil {
		return nil
	}
	if len(r.Violation.Interfaces) > 0 {
		return r.Violation.Interfaces
	}
	return strings.Split(r.Violation.Device, ",")
}

// ifaceBelowUSB waits for the network interface of the USB device at
// usbPath and returns its name.
func (v *vm) ifaceBelowUSB(usbPath string, timeout time.Duration) string {
	v.t.Helper()
	out := v.WaitGuest("a network interface below USB device "+usbPath, timeout, fmt.Sprintf(
		`u=$(readlink -f /sys/bus/usb/devices/%s); for n in /sys/class/net/*; do case $(readlink -f $n/device) in $u/*) basename $n; exit 0;; esac; done; exit 1`, usbPath))
	return strings.TrimSpace(out)
}

// ifaceByMAC waits for the network interface with this MAC.
func (v *vm) ifaceByMAC(mac string, timeout time.Duration) string {
	v.t.Helper()
	out := v.WaitGuest("a network interface with MAC "+mac, timeout, fmt.Sprintf(
		`for n in /sys/class/net/*; do [ "$(cat $n/address)" = %q ] && { basename $n; exit 0; }; done; exit 1`, mac))
	return strings.TrimSpace(out)
}

// hostapdConf is an open access point on channel 1 with this SSID.
func hostapdConf(iface, ssid string) string {
	return fmt.Sprintf("interface=%s\ndriver=nl80211\nssid=%s\nhw_mode=g\nchannel=1\n", iface, ssid)
}

// wpaConf joins the open network with this SSID.
func wpaConf(ssid string) string {
	return fmt.Sprintf("network={\n\tssid=%q\n\tkey_mgmt=NONE\n\tscan_ssid=1\n}\n", ssid)
}

// startWiFi (re)starts hostapd on ap with ssid and wpa_supplicant on sta
// joining it, and waits until the station is associated. The daemons run
// in the foreground of a background job (-P writes a pid file only with
// -B); their output goes to /tmp/hostapd.log and /tmp/wpa.log.
func (v *vm) startWiFi(ap, sta, ssid string) {
	v.t.Helper()
	v.Run(fmt.Sprintf(`for p in /run/hostapd.pid /run/wpa.pid; do [ -e $p ] && kill $(cat $p) 2>/dev/null; done
i=0; while pidof hostapd wpa_supplicant >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
rm -f /run/hostapd.pid /run/wpa.pid
cat >/tmp/hostapd.conf <<'EOF'
%sEOF
cat >/tmp/wpa.conf <<'EOF'
%sEOF
/usr/sbin/hostapd /tmp/hostapd.conf >/tmp/hostapd.log 2>&1 &
echo $! >/run/hostapd.pid
/usr/sbin/wpa_supplicant -D nl80211 -i %s -c /tmp/wpa.conf >/tmp/wpa.log 2>&1 &
echo $! >/run/wpa.pid`, hostapdConf(ap, ssid), wpaConf(ssid), sta))
	v.WaitGuest(sta+" associated with "+ssid, 60*time.Second, fmt.Sprintf(
		`grep -q CTRL-EVENT-CONNECTED /tmp/wpa.log && [ "$(cat /sys/class/net/%s/operstate)" = up ]`, sta))
}

// TestNetwork is the network part of the real-kernel proof: a USB network
// adapter, a hot-plugged PCIe NIC and a Wi-Fi network made with
// mac80211_hwsim, hostapd and wpa_supplicant, each asserted on the
// agent's audit log. The guest's NICs sit on QEMU hubs with no other
// port: nothing leaves the VM.
func TestNetwork(t *testing.T) {
	e := setup(t)
	requireMamori(t, e)
	initrd := networkInitramfs(t, e)
	start := time.Now()
	v := bootVM(t, vmOptions{Kernel: e.Kernel.Vmlinuz, Initramfs: initrd})
	v.startAgentWith(networkConfig)
	timings := map[string]time.Duration{}
	var order []string
	step := func(name string, f func(t *testing.T, v *vm)) {
		s := time.Now()
		t.Run(name, func(t *testing.T) {
			f(t, v.with(t))
			if t.Failed() {
				out, _ := v.Exec(20*time.Second, `dmesg | tail -n 30; echo "--- ip link"; ip link; echo "--- ip addr"; ip addr
for f in /tmp/hostapd.log /tmp/wpa.log; do [ -e $f ] && { echo "--- $f"; tail -n 15 $f; }; done
echo "--- audit.jsonl, last 15 records"; tail -n 15 `+guestStateDir+`/audit.jsonl`)
				t.Logf("guest state:\n%s", out)
			}
		})
		timings[name] = time.Since(s)
		order = append(order, name)
	}
	// settle is how long a step waits for records that must not come
	// (a violation on an approved network, a doubled record).
	const settle = 3 * time.Second

	var usbIF, usbPath, sta string
	var usbSeq int64

	step("usb-net", func(t *testing.T, v *vm) {
		seq := v.lastSeq()
		v.Do("netdev_add", map[string]any{"type": "hubport", "id": "un1-net", "hubid": 1})
		v.Do("device_add", map[string]any{"driver": "usb-net", "id": "un1", "bus": "xhci.0", "netdev": "un1-net"})
		path := v.usbPathByIDs("0525", "a4a2", 30*time.Second)
		ifname := v.ifaceBelowUSB(path, 30*time.Second)
		t.Logf("usb-net at %s is %s", path, ifname)
		usbSeq, usbPath = seq, path
		added := v.waitAudit(seq, "device_added of "+path, 30*time.Second, func(r auditRec) bool {
			return r.Type == "device_added" && r.Path == path
		})
		if added.Source != "usb" {
			v.Errorf("device_added of %s has source %q, want usb", path, added.Source)
		}
		la := v.waitAudit(seq, "link_added of "+ifname, 30*time.Second, linkRec("link_added", ifname))
		if la.Source != "network" || la.Link.Kind != "usb" || la.Link.USB != path {
			v.Errorf("link_added of %s = %v, want source network, link.kind usb, link.usb %s", ifname, la, path)
		}
		usbIF = ifname
		v.Run(fmt.Sprintf("ip link set %s up && ip addr add 192.168.77.2/24 dev %s", ifname, ifname))
		vio := v.waitAudit(seq, "network_usb_adapter for "+ifname, 30*time.Second, func(r auditRec) bool {
			return r.Type == "violation" && r.Kind == "network_usb_adapter"
		})
		if vio.Violation == nil || vio.Violation.Device != ifname || vio.Path != path {
			v.Errorf("network_usb_adapter = %v (violation %+v), want violation.device %s and path %s", vio, vio.Violation, ifname, path)
		} else if !strings.Contains(vio.Violation.RemedyEN, "e2e contact") {
			v.Errorf("network_usb_adapter remedy_en %q does not name agent.contact \"e2e contact\"", vio.Violation.RemedyEN)
		}
		t.Logf("records since #%d:%s", seq, dump(v.auditSince(seq, nil)))
	})

	step("virtio-net-pci", func(t *testing.T, v *vm) {
		seq := v.lastSeq()
		const mac = "52:54:00:20:01:05"
		v.Do("netdev_add", map[string]any{"type": "hubport", "id": "vn1-net", "hubid": 2})
		v.Do("device_add", map[string]any{"driver": "virtio-net-pci", "id": "vn1", "bus": "rp1", "netdev": "vn1-net", "mac": mac})
		ifname := v.ifaceByMAC(mac, 30*time.Second)
		t.Logf("virtio-net-pci is %s", ifname)
		la := v.waitAudit(seq, "link_added of "+ifname, 30*time.Second, linkRec("link_added", ifname))
		if la.Source != "network" || la.Link.Kind != "ethernet" || la.Link.USB != "" {
			v.Errorf("link_added of %s = %v, want source network, link.kind ethernet, no usb", ifname, la)
		}
		v.Run("ip link set " + ifname + " up")
		v.waitAudit(seq, "link_up of "+ifname, 30*time.Second, linkRec("link_up", ifname))
		v.Run("ip addr add 10.20.1.5/16 dev " + ifname)
		aa := v.waitAudit(seq, "address_added 10.20.1.5/16 on "+ifname, 30*time.Second, func(r auditRec) bool {
			return r.Type == "address_added" && r.Address != nil && r.Address.Interface == ifname && r.Address.Prefix == "10.20.1.5/16"
		})
		if aa.Source != "network" {
			v.Errorf("address_added has source %q, want network: %v", aa.Source, aa)
		}
		// usb0 is still up on 192.168.77.0/24: being on the Office LAN
		// at the same time is multi-homed, naming both.
		if usbIF != "" {
			v.waitAudit(seq, "network_multi_homed naming "+ifname+" and "+usbIF, 30*time.Second, func(r auditRec) bool {
				return r.Type == "violation" && r.Kind == "network_multi_homed" &&
					slices.Contains(violationIfaces(r), ifname) && slices.Contains(violationIfaces(r), usbIF)
			})
		}
		time.Sleep(settle)
		if vios := v.auditSince(seq, violationOn("network_unapproved", ifname)); len(vios) > 0 {
			v.Errorf("%s on the approved 10.20.0.0/16 is network_unapproved:%s", ifname, dump(vios))
		}
		seqOn := v.lastSeq()
		v.Run("ip addr add 172.16.0.5/24 dev " + ifname)
		vio := v.waitAudit(seqOn, "network_unapproved on "+ifname, 30*time.Second, violationOn("network_unapproved", ifname))
		t.Logf("network_unapproved: %s", vio.Violation.MessageEN)
		v.Run("ip link set " + ifname + " down")
		v.waitAudit(seqOn, "link_down of "+ifname, 30*time.Second, linkRec("link_down", ifname))
		v.UnplugWithin("vn1", 60*time.Second)
		v.Do("netdev_del", map[string]any{"id": "vn1-net"})
		v.waitAudit(seqOn, "link_removed of "+ifname, 30*time.Second, linkRec("link_removed", ifname))
		t.Logf("records since #%d:%s", seq, dump(v.auditSince(seq, nil)))
	})

	step("wifi-hwsim", func(t *testing.T, v *vm) {
		seq := v.lastSeq()
		v.Run("/bin/e2e-modules-later")
		out := v.WaitGuest("two wireless interfaces", 30*time.Second,
			`n=0; for d in /sys/class/net/*; do [ -e $d/phy80211 ] && { basename $d; n=$((n+1)); }; done; [ $n -ge 2 ]`)
		wl := strings.Fields(out)
		slices.Sort(wl)
		if len(wl) != 2 {
			v.Fatalf("wireless interfaces after mac80211_hwsim radios=2: %q, want two", wl)
		}
		ap := wl[0]
		sta = wl[1]
		for _, n := range wl {
			la := v.waitAudit(seq, "link_added of "+n, 30*time.Second, linkRec("link_added", n))
			if la.Source != "network" || la.Link.Kind != "wireless" {
				v.Errorf("link_added of %s = %v, want source network, link.kind wireless", n, la)
			}
		}
		v.startWiFi(ap, sta, "city-staff")
		v.Run("ip addr add 10.99.0.2/24 dev " + sta)
		v.waitAudit(seq, "ssid_changed of "+sta+" to city-staff", 30*time.Second, func(r auditRec) bool {
			return linkRec("ssid_changed", sta)(r) && r.Link.SSID == "city-staff"
		})
		v.waitAudit(seq, "address_added 10.99.0.2/24 on "+sta, 30*time.Second, func(r auditRec) bool {
			return r.Type == "address_added" && r.Address != nil && r.Address.Interface == sta && r.Address.Prefix == "10.99.0.2/24"
		})
		time.Sleep(settle)
		if vios := v.auditSince(seq, violationOn("network_unapproved", sta)); len(vios) > 0 {
			v.Errorf("%s on city-staff (approved by SSID) has network_unapproved:%s", sta, dump(vios))
		}

		// The address goes first: a station between two networks, holding
		// 10.99.0.2/24 without an SSID, is on no approved network, and
		// that violation is not the one this step is after.
		v.Run("ip addr del 10.99.0.2/24 dev " + sta)
		v.waitAudit(seq, "address_removed 10.99.0.2/24 on "+sta, 30*time.Second, func(r auditRec) bool {
			return r.Type == "address_removed" && r.Address != nil && r.Address.Interface == sta && r.Address.Prefix == "10.99.0.2/24"
		})
		seqCafe := v.lastSeq()
		v.startWiFi(ap, sta, "cafe-free")
		v.Run("ip addr add 10.99.0.2/24 dev " + sta)
		v.waitAudit(seqCafe, "ssid_changed of "+sta+" to cafe-free", 30*time.Second, func(r auditRec) bool {
			return linkRec("ssid_changed", sta)(r) && r.Link.SSID == "cafe-free"
		})
		vio := v.waitAudit(seqCafe, "network_unapproved on "+sta, 30*time.Second, violationOn("network_unapproved", sta))
		if !strings.Contains(vio.Violation.MessageEN, "cafe-free") {
			v.Errorf("network_unapproved on %s: message_en %q does not mention cafe-free", sta, vio.Violation.MessageEN)
		}
		t.Logf("records since #%d:%s", seq, dump(v.auditSince(seq, nil)))
	})

	step("restart-nothing-doubled", func(t *testing.T, v *vm) {
		time.Sleep(settle)
		before := v.audit()
		seen := map[[2]string]bool{} // violation kind, device
		for _, r := range before {
			if r.Type == "violation" && r.Violation != nil {
				seen[[2]string{r.Kind, r.Violation.Device}] = true
			}
		}
		present := map[int]string{}
		for _, l := range strings.Split(strings.TrimSpace(v.Run(`for d in /sys/class/net/*; do echo $(cat $d/ifindex) $(basename $d); done`)), "\n") {
			i, name, _ := strings.Cut(l, " ")
			if n, err := strconv.Atoi(i); err == nil {
				present[n] = name
			}
		}
		seq := v.lastSeq()
		v.stopAgent()
		v.startAgentWith(networkConfig)
		time.Sleep(2 * settle)
		after := v.auditSince(seq, nil)
		started := -1
		for i, r := range after {
			if r.Type == "agent_started" {
				started = i
			}
		}
		if started < 0 {
			v.Fatalf("no agent_started after #%d:%s", seq, dump(after))
		}
		for _, r := range after[started:] {
			if r.Type == "link_added" && r.Link != nil && present[r.Link.Index] != "" {
				v.Errorf("link_added again after the restart for %s (index %d), present before: %v", r.Link.Name, r.Link.Index, r)
			}
			if r.Type == "violation" && r.Violation != nil && seen[[2]string{r.Kind, r.Violation.Device}] {
				v.Errorf("violation %s for %s again after the restart: %v", r.Kind, r.Violation.Device, r)
			}
		}
		t.Logf("records after the restart:%s", dump(after[started:]))
	})

	step("usb-net-unplugged-once", func(t *testing.T, v *vm) {
		if usbIF == "" {
			t.Skip("the usb-net step did not find the interface")
		}
		seq := v.lastSeq()
		v.Unplug("un1")
		v.Do("netdev_del", map[string]any{"id": "un1-net"})
		v.waitAudit(seq, "link_removed of "+usbIF, 30*time.Second, linkRec("link_removed", usbIF))
		v.waitAudit(seq, "device_removed of "+usbPath, 30*time.Second, func(r auditRec) bool {
			return r.Type == "device_removed" && r.Path == usbPath
		})
		if n := len(v.auditSince(usbSeq, func(r auditRec) bool { return r.Type == "violation" && r.Kind == "network_usb_adapter" })); n != 1 {
			v.Errorf("network_usb_adapter violations for the usb-net appearance = %d, want 1:%s", n, dump(v.auditSince(usbSeq, nil)))
		}
	})

	step("chain", func(t *testing.T, v *vm) {
		v.stopAgent()
		if os.Getenv("MAMORI_E2E_KEEP") != "" {
			if err := os.WriteFile(filepath.Join(v.dir, "audit.jsonl"), []byte(v.Run("cat "+guestStateDir+"/audit.jsonl")), 0o644); err != nil {
				t.Logf("keep audit.jsonl: %v", err)
			}
		}
		if out, err := v.Exec(30*time.Second, "/bin/mamori audit verify --state-dir "+guestStateDir); err != nil {
			v.Errorf("mamori audit verify: %v\n%s", err, out)
		}
	})

	var b strings.Builder
	fmt.Fprintf(&b, "TestNetwork timings (setup %v, boot %v):", e.Setup.Round(time.Millisecond), v.Booted.Round(time.Millisecond))
	for _, n := range order {
		fmt.Fprintf(&b, "\n  %-24s %v", n, timings[n].Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "\n  total %v", time.Since(start).Round(time.Millisecond))
	t.Log(b.String())
}
