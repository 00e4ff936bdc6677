package agent

import (
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mamori-agent/mamori/collector/uevent"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/wire"
)

// Version is the agent's version, set at build time with
// -ldflags "-X github.com/mamori-agent/mamori/agent.Version=...".
var Version = "dev"

// AllKinds lists every violation kind (wire.Kinds), so that their counters
// exist from the start (a rate over a counter that appears late misses its
// first increment).
var AllKinds = wire.KindNames()

// Metrics is the Prometheus sink. It owns a registry of its own (no global
// state) holding the go and process collectors and mamori's metrics.
type Metrics struct {
	Registry *prometheus.Registry

	violations    *prometheus.CounterVec
	events        *prometheus.CounterVec
	entries       prometheus.Gauge
	policyVersion prometheus.Gauge
	rescans       prometheus.Counter
	overruns      prometheus.Counter
	uevents       prometheus.Counter
	auditRecords  prometheus.Counter
	auditErrors   prometheus.Counter
	auditPending  prometheus.Gauge
	auditLost     prometheus.Counter
	collectErrors *prometheus.CounterVec
	sinkDropped   *prometheus.CounterVec
	netIfaces     *prometheus.GaugeVec
	lanNeighbours *prometheus.GaugeVec

	mu      sync.Mutex
	devices map[deviceKey]float64 // current snapshot for mamori_usb_devices

	ueventDrops *ueventDropCollector
	open        *openCollector
}

type deviceKey struct{ class, approved string }

var ueventsDroppedDesc = prometheus.NewDesc("mamori_uevents_dropped_total",
	"Datagrams on the kernel uevent socket that were dropped, by reason: foreign (not sent by the kernel), udev (libudev format), malformed, truncated.",
	[]string{"reason"}, nil)

// statsSource is what the uevent socket tells about what it dropped.
type statsSource interface{ Stats() uevent.Stats }

// ueventDropCollector exposes the socket's own counters, read at scrape.
type ueventDropCollector struct {
	mu  sync.Mutex
	src statsSource
}

func (c *ueventDropCollector) set(src statsSource) {
	c.mu.Lock()
	c.src = src
	c.mu.Unlock()
}

func (c *ueventDropCollector) Describe(ch chan<- *prometheus.Desc) { ch <- ueventsDroppedDesc }

func (c *ueventDropCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	var st uevent.Stats
	if c.src != nil {
		st = c.src.Stats()
	}
	c.mu.Unlock()
	for _, r := range []struct {
		reason string
		n      uint64
	}{{"foreign", st.Foreign}, {"malformed", st.Malformed}, {"truncated", st.Truncated}, {"udev", st.Udev}} {
		ch <- prometheus.MustNewConstMetric(ueventsDroppedDesc, prometheus.CounterValue, float64(r.n), r.reason)
	}
}

var violationsOpenDesc = prometheus.NewDesc("mamori_violations_open",
	"Violations whose appearance is still open now, by kind: the device still attached, the network condition not cleared, the LAN device's window not over. Unlike mamori_violations_total it survives a restart of the agent.",
	[]string{"kind"}, nil)

// openCollector reports mamori_violations_open through a function the
// agent sets (it counts under the agent's lock, at scrape time).
type openCollector struct {
	mu sync.Mutex
	fn func() map[string]int
}

func (c *openCollector) set(fn func() map[string]int) {
	c.mu.Lock()
	c.fn = fn
	c.mu.Unlock()
}

func (c *openCollector) Describe(ch chan<- *prometheus.Desc) { ch <- violationsOpenDesc }

func (c *openCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	fn := c.fn
	c.mu.Unlock()
	var n map[string]int
	if fn != nil {
		n = fn()
	}
	for _, k := range AllKinds {
		ch <- prometheus.MustNewConstMetric(violationsOpenDesc, prometheus.GaugeValue, float64(n[k]), k)
	}
}

var usbDevicesDesc = prometheus.NewDesc("mamori_usb_devices",
	"USB devices attached now, by class (of the interfaces, \"composite\" when several) and approval.",
	[]string{"class", "approved"}, nil)

// NewMetrics creates the metrics and registers them on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_violations_total", Help: "Policy violations recorded, by kind.",
		}, []string{"kind"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_events_total", Help: "Events recorded, by source (usb, media, agent) and action.",
		}, []string{"source", "action"}),
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mamori_policy_entries", Help: "Entries in the approved USB list.",
		}),
		policyVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mamori_policy_version", Help: "Version of the hub's approved lists in force (merged with the config file's), 0 when none from the hub.",
		}),
		rescans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_rescans_total", Help: "Full rescans of the USB devices and media.",
		}),
		overruns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_uevent_overruns_total", Help: "Kernel uevent socket overruns (ENOBUFS), each followed by a full rescan.",
		}),
		uevents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_uevents_total", Help: "Kernel uevents received.",
		}),
		auditRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_audit_records_total", Help: "Records appended to the audit log.",
		}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_audit_errors_total", Help: "Events that could not be appended to the audit log.",
		}),
		auditPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mamori_audit_pending_events", Help: "Events waiting, in memory and in order, for the audit log to take records again.",
		}),
		auditLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_audit_lost_events_total", Help: "Events lost because more were waiting for the audit log than the pending queue holds.",
		}),
		collectErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_collect_errors_total", Help: "Errors while reading devices or media, by collector.",
		}, []string{"collector"}),
		sinkDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_sink_dropped_events_total", Help: "Events a sink (warn, report, notify) did not get because its queue was full; they are in the audit log.",
		}, []string{"sink"}),
		netIfaces: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mamori_network_interfaces", Help: "Network interfaces now, except loopback, by kind (ethernet, wireless, usb, tunnel, bridge, virtual) and approved (true, false, none when not on a network, ignored for network.ignore_interfaces).",
		}, []string{"kind", "approved"}),
		lanNeighbours: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mamori_lan_neighbors", Help: "Devices in the neighbour table (ARP, NDP) on approved networks now, by registered.",
		}, []string{"registered"}),
		devices:     map[deviceKey]float64{},
		ueventDrops: &ueventDropCollector{},
		open:        &openCollector{},
	}
	for _, k := range AllKinds {
		m.violations.WithLabelValues(k)
	}
	for _, c := range []string{"usb", "media", "network"} {
		m.collectErrors.WithLabelValues(c)
	}
	m.sinkDropped.WithLabelValues("warn")
	for _, r := range []string{"true", "false"} {
		m.lanNeighbours.WithLabelValues(r)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mamori_build_info", Help: "A metric with a constant '1' value labeled by version, revision and goversion.",
		ConstLabels: prometheus.Labels{"version": Version, "revision": revision(), "goversion": runtime.Version()},
	})
	build.Set(1)
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.violations, m.events, m.entries, m.policyVersion, m.rescans, m.overruns, m.uevents,
		m.auditRecords, m.auditErrors, m.auditPending, m.auditLost, m.collectErrors, m.sinkDropped, m.netIfaces, m.lanNeighbours, build, (*deviceCollector)(m), m.ueventDrops, m.open,
	)
	return m
}

func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Handle counts one recorded event.
func (m *Metrics) Handle(ev *Event) {
	m.events.WithLabelValues(ev.Source, action(ev.Type)).Inc()
	if ev.Violation != nil {
		m.violations.WithLabelValues(ev.Violation.Kind).Inc()
	}
}

// SetDevices replaces the snapshot behind mamori_usb_devices.
func (m *Metrics) SetDevices(devs []*usb.Device, approved func(*usb.Device) bool) {
	snap := map[deviceKey]float64{}
	for _, d := range devs {
		names := d.ClassNames()
		class := "composite"
		if len(names) == 1 {
			class = names[0]
		}
		snap[deviceKey{class, strconv.FormatBool(approved(d))}]++
	}
	m.mu.Lock()
	m.devices = snap
	m.mu.Unlock()
}

// deviceCollector exposes the device snapshot; a collector rather than a
// GaugeVec so that a scrape never sees a half-updated set.
type deviceCollector Metrics

func (c *deviceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- usbDevicesDesc }

func (c *deviceCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	keys := make([]deviceKey, 0, len(c.devices))
	for k := range c.devices {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].class != keys[j].class {
			return keys[i].class < keys[j].class
		}
		return keys[i].approved < keys[j].approved
	})
	vals := make([]float64, len(keys))
	for i, k := range keys {
		vals[i] = c.devices[k]
	}
	c.mu.Unlock()
	for i, k := range keys {
		ch <- prometheus.MustNewConstMetric(usbDevicesDesc, prometheus.GaugeValue, vals[i], k.class, k.approved)
	}
}

// action maps an event type to the action label.
func action(typ string) string {
	switch typ {
	case TypeDeviceAdded:
		return "added"
	case TypeDeviceRemoved:
		return "removed"
	case TypeVolumeMounted:
		return "mounted"
	case TypeVolumeUnmounted:
		return "unmounted"
	case TypeViolation:
		return "violation"
	case TypeAgentStarted:
		return "started"
	case TypeAgentStopped:
		return "stopped"
	case TypeAuditDamaged:
		return "audit_damaged"
	case TypeAgentUncleanStop:
		return "unclean_stop"
	case TypeAuditGap:
		return "audit_gap"
	case TypeConfigReloaded:
		return "config_reloaded"
	case TypeConfigReloadFailed:
		return "config_reload_failed"
	case TypeMetricsUnavailable:
		return "metrics_unavailable"
	case TypeLocalAPIUnavailable:
		return "local_api_unavailable"
	case wire.TypeLinkAdded, wire.TypeAddressAdded:
		return "added"
	case wire.TypeLinkRemoved, wire.TypeAddressRemoved:
		return "removed"
	case wire.TypeLinkUp:
		return "up"
	case wire.TypeLinkDown:
		return "down"
	case wire.TypeRouteChanged, wire.TypeSSIDChanged:
		return "changed"
	case wire.TypeLinkRenamed:
		return "renamed"
	case wire.TypeClockChanged:
		return "clock_changed"
	case wire.TypePolicyChanged:
		return "policy_changed"
	case wire.TypeViolationCleared:
		return "cleared"
	}
	return typ
}
