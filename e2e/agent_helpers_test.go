//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// guestConfig is the agent's configuration in the guest. Gadgets use the
// pid.codes test vendor 1209; dummy_hcd's bus is usb3 (xhci_pci loads
// first and takes usb1 and usb2), so the first gadget sits at port 3-1.
const guestConfig = `version: 1
agent:
  asset_id: PC-E2E
  state_dir: /var/lib/mamori
  language: en
  rescan_interval: 60s
metrics:
  listen: 127.0.0.1:9868
usb:
  backend: sysfs
approved:
  usb:
    - name: Keyboards and mice
      classes: [hid]
    - name: Stick approved by serial
      vendor_id: "1209"
      product_id: "5001"
      serial: "APPROVED-SN-1"
      owner: e2e
      approved_by: e2e
      valid_from: 2020-01-01
      valid_until: 2099-12-31
    - name: Sticks approved by vendor and product
      vendor_id: "1209"
      product_id: "5002"
      approved_by: e2e
    - name: Stick whose approval expired
      vendor_id: "1209"
      product_id: "5003"
      serial: "EXPIRED-SN-1"
      approved_by: e2e
      valid_from: 2020-01-01
      valid_until: 2021-12-31
    - name: Stick without serial on port 3-1
      vendor_id: "1209"
      product_id: "5004"
      port: "3-1"
      approved_by: e2e
`

const (
	guestStateDir = "/var/lib/mamori"
	guestMetrics  = "http://127.0.0.1:9868/metrics"
)

// agentLine is one JSON log line of `mamori run --log-format json`.
type agentLine struct {
	Msg  string `json:"msg"`
	Seq  int64  `json:"seq"`
	Type string `json:"type"`
	Kind string `json:"kind"`
	Path string `json:"path"`
}

func parseAgentLine(s string) (agentLine, bool) {
	var l agentLine
	if !strings.HasPrefix(s, "{") || json.Unmarshal([]byte(s), &l) != nil {
		return l, false
	}
	return l, true
}

// auditRec is the part of an audit record the scenarios look at.
type auditRec struct {
	Seq        int64      `json:"seq"`
	Time       time.Time  `json:"time"`
	Type       string     `json:"type"`
	Source     string     `json:"source"`
	Trigger    string     `json:"trigger"`
	AssetID    string     `json:"asset_id"`
	Path       string     `json:"path"`
	VendorID   string     `json:"vendor_id"`
	ProductID  string     `json:"product_id"`
	Serial     *string    `json:"serial"`
	Kind       string     `json:"kind"`
	UeventTime *time.Time `json:"uevent_time"`
	Device     *struct {
		Serial     *string `json:"serial"`
		Interfaces []struct {
			Class string `json:"class"`
		} `json:"interfaces"`
		BlockDevices []struct {
			Name      string `json:"name"`
			Removable bool   `json:"removable"`
		} `json:"block_devices"`
	} `json:"device"`
	Volume *struct {
		Device     string `json:"device"`
		MountPoint string `json:"mount_point"`
		USBDevice  string `json:"usb_device"`
	} `json:"volume"`
	Link    *auditLink `json:"link"`
	Address *struct {
		Interface string `json:"interface"`
		Index     int    `json:"index"`
		Prefix    string `json:"prefix"`
	} `json:"address"`
	Violation *struct {
		Kind       string   `json:"kind"`
		Device     string   `json:"device"`
		Severity   string   `json:"severity"`
		Article    string   `json:"article"`
		MessageEN  string   `json:"message_en"`
		MessageJA  string   `json:"message_ja"`
		RemedyEN   string   `json:"remedy_en"`
		RemedyJA   string   `json:"remedy_ja"`
		Interface  string   `json:"interface"`
		Interfaces []string `json:"interfaces"`
	} `json:"violation"`
}

// auditLink is a network link as records show it (wire.Link).
type auditLink struct {
	Name      string   `json:"name"`
	Index     int      `json:"index"`
	Kind      string   `json:"kind"`
	MAC       *string  `json:"mac"`
	AdminUp   bool     `json:"admin_up"`
	OperState string   `json:"oper_state"`
	Carrier   bool     `json:"carrier"`
	USB       string   `json:"usb"`
	SSID      string   `json:"ssid"`
	Addresses []string `json:"addresses"`
}

func (r auditRec) serial() string {
	if r.Serial == nil {
		return ""
	}
	return *r.Serial
}

func (r auditRec) String() string {
	s := "<none>"
	if r.Serial != nil {
		s = fmt.Sprintf("%q", *r.Serial)
	}
	out := fmt.Sprintf("#%d %s %s/%s %s path=%s %s:%s serial=%s trigger=%s", r.Seq, r.Time.Format("15:04:05.000000"), r.Source, r.Type, r.Kind, r.Path, r.VendorID, r.ProductID, s, r.Trigger)
	if r.UeventTime != nil {
		out += " uevent_time=" + r.UeventTime.Format("15:04:05.000000")
	}
	if r.Link != nil {
		out += fmt.Sprintf(" link=%s#%d kind=%s usb=%q ssid=%q admin_up=%v oper=%s carrier=%v addrs=%v",
			r.Link.Name, r.Link.Index, r.Link.Kind, r.Link.USB, r.Link.SSID, r.Link.AdminUp, r.Link.OperState, r.Link.Carrier, r.Link.Addresses)
	}
	if r.Address != nil {
		out += fmt.Sprintf(" address=%s#%d %s", r.Address.Interface, r.Address.Index, r.Address.Prefix)
	}
	if r.Violation != nil && r.Violation.Device != "" {
		out += fmt.Sprintf(" device=%q", r.Violation.Device)
	}
	if r.Device != nil {
		var cl []string
		for _, in := range r.Device.Interfaces {
			cl = append(cl, in.Class)
		}
		out += fmt.Sprintf(" interfaces=%v blocks=%d", cl, len(r.Device.BlockDevices))
	}
	return out
}

// startAgent writes the config (first time) and starts the agent in the
// background with its output on ttyS1, then waits for agent_started.
// The output goes through a pipe (64 KiB) and cat: writing straight to the
// emulated UART would make the agent wait for it, byte by byte under TCG,
// which is no part of the agent's latency on a real PC.
func (v *vm) startAgent() {
	v.t.Helper()
	v.startAgentWith(guestConfig)
}

// startAgentWith is startAgent with another config (written only when
// /etc/mamori.yaml does not exist yet).
func (v *vm) startAgentWith(config string) {
	v.t.Helper()
	from := v.Agent.mark()
	v.Run(fmt.Sprintf(`mkdir -p /etc %s
[ -e /etc/mamori.yaml ] || echo %s | base64 -d > /etc/mamori.yaml
[ -p /run/agent.fifo ] || mkfifo /run/agent.fifo
cat /run/agent.fifo > /dev/ttyS1 &
/bin/mamori run --config /etc/mamori.yaml --sysfs /sys --procfs /proc --log-format json </dev/null >/run/agent.fifo 2>&1 &
echo $! > /run/mamori.pid`, guestStateDir, base64.StdEncoding.EncodeToString([]byte(config))))
	v.waitRecorded(from, "agent_started", 30*time.Second, func(l agentLine) bool { return l.Type == "agent_started" })
}

// stopAgent sends SIGTERM and waits for agent_stopped and the exit.
func (v *vm) stopAgent() {
	v.t.Helper()
	from := v.Agent.mark()
	v.Run(`kill -TERM $(cat /run/mamori.pid)`)
	v.waitRecorded(from, "agent_stopped", 30*time.Second, func(l agentLine) bool { return l.Type == "agent_stopped" })
	v.WaitGuest("mamori to exit", 15*time.Second, `! kill -0 $(cat /run/mamori.pid) 2>/dev/null`)
}

// waitRecorded waits for a "recorded" line on ttyS1 matching match.
func (v *vm) waitRecorded(from int, what string, timeout time.Duration, match func(agentLine) bool) stamped[string] {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	it, _, err := v.Agent.wait(ctx, from, func(s string) bool {
		l, ok := parseAgentLine(s)
		return ok && l.Msg == "recorded" && match(l)
	})
	if err != nil {
		v.Fatalf("waited %v for the agent to record %s (a \"recorded\" line on ttyS1): %v", timeout, what, err)
	}
	return it
}

// audit reads the guest's audit log.
func (v *vm) audit() []auditRec {
	v.t.Helper()
	out := v.Run("cat " + guestStateDir + "/audit.jsonl")
	var recs []auditRec
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var r auditRec
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			v.Fatalf("audit.jsonl line %d: %v: %q", n, err, sc.Text())
		}
		recs = append(recs, r)
	}
	return recs
}

// lastSeq returns the highest seq in the audit log (0 when empty).
func (v *vm) lastSeq() int64 {
	v.t.Helper()
	recs := v.audit()
	if len(recs) == 0 {
		return 0
	}
	return recs[len(recs)-1].Seq
}

// auditSince returns the records after seq that satisfy match.
func (v *vm) auditSince(seq int64, match func(auditRec) bool) []auditRec {
	v.t.Helper()
	var out []auditRec
	for _, r := range v.audit() {
		if r.Seq > seq && (match == nil || match(r)) {
			out = append(out, r)
		}
	}
	return out
}

// metrics fetches and parses the agent's /metrics.
func (v *vm) metrics() metricSet {
	v.t.Helper()
	out := v.Run("wget -qO- " + guestMetrics)
	return parseMetrics(out)
}

// metricSample is one line of the Prometheus text format.
type metricSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

type metricSet []metricSample

// parseMetrics reads the Prometheus text exposition format (no escapes
// inside label values are needed for mamori's labels).
func parseMetrics(text string) metricSet {
	var out metricSet
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		s := metricSample{Labels: map[string]string{}}
		rest := line
		if i := strings.IndexByte(line, '{'); i >= 0 {
			s.Name = line[:i]
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			for _, kv := range strings.Split(line[i+1:j], ",") {
				k, val, ok := strings.Cut(kv, "=")
				if ok {
					s.Labels[k] = strings.Trim(val, `"`)
				}
			}
			rest = strings.TrimSpace(line[j+1:])
		} else {
			name, val, _ := strings.Cut(line, " ")
			s.Name, rest = name, val
		}
		f, err := strconv.ParseFloat(strings.Fields(rest + " x")[0], 64)
		if err != nil {
			continue
		}
		s.Value = f
		out = append(out, s)
	}
	return out
}

// sum adds the samples of name whose labels include all of want.
func (m metricSet) sum(name string, want map[string]string) (float64, bool) {
	var total float64
	found := false
	for _, s := range m {
		if s.Name != name {
			continue
		}
		ok := true
		for k, v := range want {
			if s.Labels[k] != v {
				ok = false
			}
		}
		if ok {
			total += s.Value
			found = true
		}
	}
	return total, found
}
