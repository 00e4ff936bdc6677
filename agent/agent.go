// Package agent runs mamori: it drives the collectors, turns what they
// observe into typed events and policy findings, and hands every event to
// the sinks (audit log, metrics, local warning).
package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/uevent"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/safe"
)

// Options configures an Agent.
type Options struct {
	Config *config.Config
	Roots  Roots
	Logger *slog.Logger
	// Warner shows violations to the person at the PC; nil logs them only.
	Warner Warner
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Uevents replaces the kernel uevent socket when set (tests feed
	// synthesized datagrams through a socket pair with the same code path).
	Uevents uevent.Source
	// NoUevents turns the uevent socket off: rescans only.
	NoUevents bool
	// NoMountWatch turns the mountinfo watcher off: rescans only.
	NoMountWatch bool
	// Ready, when set, is called once the agent has done its first scan,
	// with the metrics URL ("" when metrics are off).
	Ready func(metricsURL string)
}

// Agent is a running mamori agent. Its state is owned by the Run
// goroutine; nothing else touches it.
type Agent struct {
	opts    Options
	cfg     *config.Config
	log     *slog.Logger
	now     func() time.Time
	policy  *Policy
	coll    *sources
	audit   *audit.Log
	metrics *Metrics
	warner  Warner
	state   *stateFile
	bootID  string

	// mu guards everything below; the uevent reader and the main loop
	// take it in turn.
	mu      sync.Mutex
	stopped bool
	present map[string]*appearance // by bus path
	// departed remembers, by bus path, the device number of a device the
	// kernel announced as removed. Its sysfs directory outlives the
	// remove uevent for a moment; a read of it then must not bring the
	// device back. A re-plug gets a new device number.
	departed map[string]int
	volumes  map[string]*media.Volume // by volumeKey
	// lastErr is the last error logged per collector: a device that stays
	// unreadable is logged once, not at every rescan (it is still counted
	// in mamori_collect_errors_total each time).
	lastErr map[string]string
}

// appearance is one plug-in of one device: from the moment it appears to
// the moment it leaves. Violations are recorded once per appearance.
type appearance struct {
	dev      usb.Device
	decision Decision
	recorded map[string]bool
	// mediumKnown is set once the medium's encryption has been read; it
	// is read once per appearance (a probe reads the device).
	mediumKnown bool
}

// New prepares an agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if opts.Config == nil {
		return nil, errors.New("agent: no config")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Warner == nil {
		opts.Warner = &ConsoleWarner{Logger: opts.Logger}
	}
	coll, err := newSources(opts.Config, opts.Roots, opts.Logger)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		opts: opts, cfg: opts.Config, log: opts.Logger, now: opts.Now,
		policy: NewPolicy(opts.Config), coll: coll, metrics: NewMetrics(), warner: opts.Warner,
		present: map[string]*appearance{}, volumes: map[string]*media.Volume{}, departed: map[string]int{}, lastErr: map[string]string{},
	}
	a.metrics.entries.Set(float64(a.policy.Entries()))
	return a, nil
}

// Metrics returns the agent's metrics (for tests and embedding).
func (a *Agent) Metrics() *Metrics { return a.metrics }

// Run runs the agent until ctx is done, then records a stop event, flushes
// and returns nil. It returns an error only when it cannot start.
func (a *Agent) Run(ctx context.Context) (err error) {
	defer a.coll.close()
	dir := a.cfg.Agent.StateDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	a.audit, err = audit.Open(dir, audit.Options{Logger: a.log})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer a.audit.Close()

	a.bootID = readBootID(a.coll.roots.Procfs)
	a.state, err = loadState(dir, a.bootID)
	if err != nil {
		a.log.Warn("state of open appearances lost; devices attached now count as new", "err", err)
	}

	metricsURL := ""
	if listen := a.cfg.Metrics.Listen; listen != "" {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("metrics listen %s: %w", listen, err)
		}
		srv := a.metricsServer()
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("metrics server", "err", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		metricsURL = "http://" + ln.Addr().String() + "/metrics"
	}

	a.emit(&Event{Type: TypeAgentStarted, Source: "agent", Trigger: "start",
		Message: fmt.Sprintf("mamori %s started; %d approved USB entries", Version, a.policy.Entries())})
	// Damage found when the log was opened (a torn tail after a crash, an
	// edited last record, records cut off the end) is itself recorded.
	for _, d := range a.audit.Damaged() {
		a.log.Warn("audit log damaged", "kind", d.Kind, "file", d.File, "seq", d.Seq, "reason", d.Reason)
		a.emit(&Event{Type: TypeAuditDamaged, Source: "agent", Trigger: "start",
			Message: fmt.Sprintf("%s in %s (seq %d): %s", d.Kind, d.File, d.Seq, d.Reason)})
	}

	// Open the event sources before the first scan, so that nothing that
	// happens between the scan and the first Receive is missed. Uevents
	// are handled on the reader's goroutine, under the agent's lock: no
	// hand-off between receiving an event and acting on it.
	a.mu.Lock()
	src := a.opts.Uevents
	if src == nil && !a.opts.NoUevents {
		conn, err := uevent.Listen()
		if err != nil {
			a.log.Warn("kernel uevent socket unavailable; relying on rescans", "err", err,
				"rescan_interval", a.cfg.Agent.RescanInterval)
		} else {
			src = conn
		}
	}
	if src != nil {
		if st, ok := src.(statsSource); ok {
			a.metrics.ueventDrops.set(st)
		}
		defer src.Close()
		go a.readUevents(ctx, src)
	}
	mountCh := make(chan struct{}, 1)
	if !a.opts.NoMountWatch {
		w, err := media.NewMountWatcher(a.coll.roots.Procfs)
		if err != nil {
			a.log.Warn("mount watcher unavailable; mounts seen at rescans", "err", err)
		} else {
			defer w.Close()
			go watchMounts(ctx, w, mountCh, a.log)
		}
	}

	a.rescan("start")
	a.mu.Unlock()
	if a.opts.Ready != nil {
		a.opts.Ready(metricsURL)
	}

	tick := time.NewTicker(a.cfg.Agent.RescanInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			a.mu.Lock()
			a.stopped = true
			a.emit(&Event{Type: TypeAgentStopped, Source: "agent", Trigger: "signal", Message: "mamori stopped"})
			a.saveState()
			a.mu.Unlock()
			return nil
		case <-mountCh:
			a.locked(func() { a.refreshVolumes("mount", nil) })
		case <-tick.C:
			a.locked(func() { a.rescan("rescan") })
		}
	}
}

// warnOnce logs err at Warn the first time it is seen for collector, and
// at Debug while it repeats.
func (a *Agent) warnOnce(collector, msg string, err error) {
	text := safe.String(err.Error())
	if a.lastErr[collector] == text {
		a.log.Debug(msg, "err", text, "repeated", true)
		return
	}
	a.lastErr[collector] = text
	a.log.Warn(msg, "err", text)
}

// locked runs f under the agent's lock unless the agent has stopped.
func (a *Agent) locked(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.stopped {
		f()
	}
}

func (a *Agent) readUevents(ctx context.Context, src uevent.Source) {
	for {
		ev, err := src.Receive()
		if uevent.IsTerminal(err) {
			if ctx.Err() == nil && !errors.Is(err, uevent.ErrClosed) {
				a.locked(func() { a.handleUevent(uevent.Event{}, err) })
			}
			return
		}
		a.locked(func() { a.handleUevent(ev, err) })
	}
}

func watchMounts(ctx context.Context, w *media.MountWatcher, ch chan<- struct{}, log *slog.Logger) {
	for {
		if err := w.Wait(ctx); err != nil {
			if ctx.Err() == nil {
				log.Warn("mount watcher stopped; mounts seen at rescans", "err", err)
			}
			return
		}
		select {
		case ch <- struct{}{}:
		default: // a refresh is already pending
		}
	}
}

func (a *Agent) metricsServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.metrics.Registry, promhttp.HandlerOpts{
		Registry: a.metrics.Registry, ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<html><head><title>mamori</title></head><body><h1>mamori</h1><p><a href="/metrics">Metrics</a></p></body></html>`)
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// handleUevent re-reads just the device a kernel uevent is about.
func (a *Agent) handleUevent(ev uevent.Event, err error) {
	if err != nil {
		if errors.Is(err, uevent.ErrOverrun) {
			a.metrics.overruns.Inc()
			a.log.Warn("uevent socket overrun; full rescan")
			a.rescan("overrun")
			return
		}
		if uevent.IsTerminal(err) {
			a.log.Warn("kernel uevent socket failed; relying on rescans", "err", err,
				"rescan_interval", a.cfg.Agent.RescanInterval)
			return
		}
		// A dropped datagram may have been about a device: look again.
		a.log.Warn("uevent dropped; full rescan", "err", err)
		a.rescan("uevent-error")
		return
	}
	a.metrics.uevents.Inc()
	if ev.Subsystem != "usb" && ev.Subsystem != "block" && ev.Subsystem != "scsi" {
		return
	}
	if a.cfg.USB.Backend == "libusb" {
		a.rescan("uevent")
		return
	}
	bus, ok := a.coll.sysfs.OwnerOf(ev.DevPath)
	if !ok {
		return
	}
	cause := &ueventCause{seq: ev.Seqnum, at: ev.Received}
	if ev.Action == "remove" && ev.Subsystem == "usb" && ev.DevType == "usb_device" {
		if ap, ok := a.present[bus]; ok {
			a.departed[bus] = ap.dev.DevNum
		}
		a.removeDevice(bus, "uevent", cause)
	} else {
		d, err := a.coll.sysfs.Device(bus)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			a.removeDevice(bus, "uevent", cause)
		case err != nil:
			a.metrics.collectErrors.WithLabelValues("usb").Inc()
			a.log.Warn("read USB device", "path", bus, "err", err)
		default:
			a.observe(&d, "uevent", cause)
		}
	}
	if ev.Subsystem == "block" {
		a.refreshVolumes("uevent", cause)
	}
	a.updateDeviceMetrics()
	a.saveState()
}

type ueventCause struct {
	seq uint64
	at  time.Time
}

func (c *ueventCause) apply(ev *Event) {
	if c == nil || c.at.IsZero() {
		return
	}
	t := c.at
	ev.UeventTime, ev.UeventSeqnum = &t, c.seq
}

// rescan re-reads everything and reconciles it with what the agent knows.
func (a *Agent) rescan(trigger string) {
	a.metrics.rescans.Inc()
	devs, err := a.coll.devices()
	if err != nil {
		a.metrics.collectErrors.WithLabelValues("usb").Inc()
		a.warnOnce("usb", "USB scan incomplete", err)
	} else {
		delete(a.lastErr, "usb")
	}
	seen := make(map[string]bool, len(devs))
	for path := range a.departed {
		if !slices.ContainsFunc(devs, func(d usb.Device) bool { return d.Path == path }) {
			delete(a.departed, path)
		}
	}
	for i := range devs {
		seen[devs[i].Path] = true
		a.observe(&devs[i], trigger, nil)
	}
	for path := range a.present {
		if !seen[path] && a.gone(path) {
			a.removeDevice(path, trigger, nil)
		}
	}
	if trigger == "start" {
		// Devices that left while the agent was down.
		for path, s := range a.state.Appearances {
			if _, ok := a.present[path]; !ok {
				a.emit(&Event{Type: TypeDeviceRemoved, Source: "usb", Trigger: trigger, Path: path,
					VendorID: s.VendorID, ProductID: s.ProductID, Serial: s.Serial,
					Message: "removed while the agent was not running"})
				delete(a.state.Appearances, path)
			}
		}
	}
	a.refreshVolumes(trigger, nil)
	a.updateDeviceMetrics()
	a.saveState()
}

// gone tells whether a device missing from a scan has really left: a
// device that is there but could not be read this time has not.
func (a *Agent) gone(path string) bool {
	if a.cfg.USB.Backend == "libusb" {
		return true
	}
	_, err := a.coll.sysfs.Device(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		if err != nil {
			a.log.Debug("device unreadable this scan; kept", "path", path, "err", err)
		}
		return false
	}
	return true
}

// observe reconciles one device read from the system with what is known.
func (a *Agent) observe(d *usb.Device, trigger string, cause *ueventCause) {
	if n, ok := a.departed[d.Path]; ok {
		if n == d.DevNum || d.DevNum == 0 {
			// The remains of a device the kernel has removed (with its
			// devnum file already gone, when 0).
			return
		}
		delete(a.departed, d.Path)
	}
	if d.DevNum == 0 && !d.IsRootHub() {
		// Every attached device has a device number from its first
		// uevent on; a read without one caught the device being torn
		// down (its attributes go before its remove uevent comes).
		a.log.Debug("partial read of a departing device ignored", "path", d.Path)
		return
	}
	ap := a.present[d.Path]
	if ap != nil && (ap.dev.BusNum != d.BusNum || ap.dev.DevNum != d.DevNum) {
		// Unplugged and plugged again between two looks.
		a.removeDevice(d.Path, trigger, cause)
		ap = nil
	}
	if ap != nil {
		// The same appearance: its identity (ids, serial, strings,
		// class) was fixed at enumeration and cannot change; a later read
		// that lacks parts of it caught the device being torn down. Only
		// what can change is taken: interfaces' drivers, block devices,
		// authorized.
		merged := ap.dev
		if len(d.Interfaces) > 0 {
			merged.Interfaces = d.Interfaces
		}
		merged.BlockDevices = d.BlockDevices
		if d.Authorized != nil {
			merged.Authorized = d.Authorized
		}
		d = &merged
	}
	now := a.now()
	dec := a.policy.Decide(d, now)
	if ap == nil {
		ap = &appearance{dev: *d, decision: dec, recorded: map[string]bool{}}
		a.present[d.Path] = ap
		if s, ok := a.state.Appearances[d.Path]; ok && s.BusNum == d.BusNum && s.DevNum == d.DevNum && a.bootID != "" {
			// Attached before a restart of the agent: the same appearance.
			for _, k := range s.Recorded {
				ap.recorded[k] = true
			}
		} else {
			a.state.Appearances[d.Path] = savedAppear{BusNum: d.BusNum, DevNum: d.DevNum,
				VendorID: d.VendorID, ProductID: d.ProductID, Serial: d.Serial}
			ev := deviceEvent(TypeDeviceAdded, d, trigger, cause)
			ev.Device = d
			a.emit(ev)
		}
	} else {
		ap.dev = *d
		ap.decision = dec
	}
	if v := dec.Violation; v != nil && a.shouldRecord(ap, v.Kind) {
		a.recordViolation(ap, d, v, trigger, cause)
	}
	if dec.Approved && dec.Entry != nil && dec.Entry.RequireEncryption && d.IsStorage() && !ap.mediumKnown {
		enc, known := a.coll.mediumEncrypted(d)
		ap.mediumKnown = known
		if known && !enc && !ap.recorded[KindMediaUnencrypted] {
			a.recordViolation(ap, d, a.policy.Unencrypted(d, dec.Entry), trigger, cause)
		}
	}
}

// approvalKinds are the violations about a device's approval; a device gets
// one of them per appearance, except that a device first judged a plain
// device and then found to be storage (its interfaces came later) is
// recorded again as storage.
var approvalKinds = []string{KindStorageUnapproved, KindDeviceUnapproved, KindApprovalExpired, KindApprovalNotYet}

func (a *Agent) shouldRecord(ap *appearance, kind string) bool {
	if ap.recorded[kind] {
		return false
	}
	if !slices.Contains(approvalKinds, kind) {
		return true
	}
	for _, k := range approvalKinds {
		if ap.recorded[k] && !(k == KindDeviceUnapproved && kind == KindStorageUnapproved) {
			return false
		}
	}
	return true
}

func (a *Agent) recordViolation(ap *appearance, d *usb.Device, v *Violation, trigger string, cause *ueventCause) {
	ap.recorded[v.Kind] = true
	s := a.state.Appearances[d.Path]
	s.Recorded = append(s.Recorded, v.Kind)
	a.state.Appearances[d.Path] = s
	ev := deviceEvent(TypeViolation, d, trigger, cause)
	ev.Violation = v
	ev.Device = d
	a.emit(ev)
}

func (a *Agent) removeDevice(path, trigger string, cause *ueventCause) {
	ap, ok := a.present[path]
	if !ok {
		return
	}
	delete(a.present, path)
	delete(a.state.Appearances, path)
	ev := deviceEvent(TypeDeviceRemoved, &ap.dev, trigger, cause)
	a.emit(ev)
}

func deviceEvent(typ string, d *usb.Device, trigger string, cause *ueventCause) *Event {
	ev := &Event{Type: typ, Source: "usb", Trigger: trigger, Path: d.Path,
		VendorID: d.VendorID, ProductID: d.ProductID, Serial: d.Serial}
	cause.apply(ev)
	return ev
}

func volumeKey(v *media.Volume) string { return v.Device + "\x00" + v.MountPoint }

// refreshVolumes re-reads the mounts on USB block devices.
func (a *Agent) refreshVolumes(trigger string, cause *ueventCause) {
	vols, err := a.coll.volumes(func(m media.Mount) (media.Volume, bool) {
		v, ok := a.volumes[safe.String(m.Source)+"\x00"+m.MountPoint]
		if !ok {
			return media.Volume{}, false
		}
		return *v, true
	})
	if err != nil {
		a.metrics.collectErrors.WithLabelValues("media").Inc()
		a.warnOnce("media", "media scan incomplete", err)
	} else {
		delete(a.lastErr, "media")
	}
	seen := map[string]bool{}
	for i := range vols {
		v := &vols[i]
		k := volumeKey(v)
		seen[k] = true
		if _, ok := a.volumes[k]; ok {
			continue
		}
		a.volumes[k] = v
		if _, ok := a.state.Volumes[k]; ok {
			continue // mounted before a restart of the agent
		}
		a.state.Volumes[k] = savedVolume{Device: v.Device, MountPoint: v.MountPoint, USBDevice: v.USBDevice}
		a.emit(a.volumeEvent(TypeVolumeMounted, v, trigger, cause))
	}
	keys := make([]string, 0, len(a.volumes))
	for k := range a.volumes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if seen[k] {
			continue
		}
		v := a.volumes[k]
		delete(a.volumes, k)
		delete(a.state.Volumes, k)
		a.emit(a.volumeEvent(TypeVolumeUnmounted, v, trigger, cause))
	}
	if trigger == "start" {
		for k, s := range a.state.Volumes {
			if !seen[k] {
				delete(a.state.Volumes, k)
				v := &media.Volume{Device: s.Device, MountPoint: s.MountPoint, USBDevice: s.USBDevice}
				a.emit(a.volumeEvent(TypeVolumeUnmounted, v, trigger, cause))
			}
		}
	}
}

func (a *Agent) volumeEvent(typ string, v *media.Volume, trigger string, cause *ueventCause) *Event {
	ev := &Event{Type: typ, Source: "media", Trigger: trigger, Path: v.USBDevice, Volume: v}
	if ap, ok := a.present[v.USBDevice]; ok {
		ev.VendorID, ev.ProductID, ev.Serial = ap.dev.VendorID, ap.dev.ProductID, ap.dev.Serial
	}
	cause.apply(ev)
	return ev
}

func (a *Agent) updateDeviceMetrics() {
	devs := make([]*usb.Device, 0, len(a.present))
	approved := make(map[*usb.Device]bool, len(a.present))
	for _, ap := range a.present {
		devs = append(devs, &ap.dev)
		approved[&ap.dev] = ap.decision.Approved
	}
	a.metrics.SetDevices(devs, func(d *usb.Device) bool { return approved[d] })
}

func (a *Agent) saveState() {
	if err := a.state.save(); err != nil {
		a.log.Warn("save appearances", "err", err)
	}
}

// auditRecord is one line of the audit log: the event, with the violation
// kind lifted to the top so that every record names what it is about.
type auditRecord struct {
	*Event
	Kind string `json:"kind,omitempty"`
}

// emit sends one event to every sink. The audit log comes first: the event
// counts as recorded only once it is flushed there.
func (a *Agent) emit(ev *Event) {
	ev.Time = a.now()
	ev.AssetID = a.cfg.Agent.AssetID
	rec := auditRecord{Event: ev}
	if ev.Violation != nil {
		rec.Kind = ev.Violation.Kind
	}
	r, err := a.audit.Append(rec)
	if err != nil {
		a.metrics.auditErrors.Inc()
		a.log.Error("audit log append failed; event not recorded", "type", ev.Type, "path", ev.Path, "err", err)
	} else {
		a.metrics.auditRecords.Inc()
		attrs := []any{"seq", r.Seq, "type", ev.Type}
		if ev.Path != "" {
			attrs = append(attrs, "path", ev.Path)
		}
		if rec.Kind != "" {
			attrs = append(attrs, "kind", rec.Kind)
		}
		a.log.Info("recorded", attrs...)
	}
	a.metrics.Handle(ev)
	if ev.Violation != nil {
		if err := a.warner.Warn(ev); err != nil {
			a.log.Warn("local warning", "err", err)
		}
	}
}
