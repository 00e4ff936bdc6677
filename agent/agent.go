// Package agent runs mamori: it drives the collectors, turns what they
// observe into typed events and policy findings, and hands every event to
// the sinks (audit log first, then metrics and the local warning).
//
// Files: agent.go (lifecycle and the main loop), uevents.go (kernel
// hot-plug), devices.go (USB device appearances), medium.go (media judged
// against require_encryption), volumes.go (mounts), replay.go (the open
// appearances rebuilt from the audit log), sinks.go (emit, the pending
// queue), serve.go (the metrics endpoint), inventory.go (Scan).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mamori-agent/mamori/agent/audit"
	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/agent/report"
	"github.com/mamori-agent/mamori/collector/media"
	"github.com/mamori-agent/mamori/collector/uevent"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/policy"
	"github.com/mamori-agent/mamori/wire"
)

// openChunk is how many carried-over subjects one record holds (about
// 200 bytes each: well below audit.MaxLineSize).
const openChunk = 1000

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
	// NoNetwork turns the network source off; Network replaces it (nil:
	// rtnetlink in the agent's network namespace). NetSysfs is the sysfs
	// root for the links' devices (default /sys): the links themselves
	// always come from the agent's network namespace, whatever Roots say.
	NoNetwork bool
	Network   NetworkSource
	NetSysfs  string
	// Ready, when set, is called once the agent has done its first scan,
	// with the metrics URL ("" when metrics are off or could not listen
	// yet).
	Ready func(metricsURL string)
	// MaxPending bounds the events kept in memory while the audit log
	// cannot be written; zero means DefaultMaxPending.
	MaxPending int
	// Sinks receive every event after the audit log, each behind a
	// bounded queue of its own (the hub reporter, the desktop helper).
	Sinks []Sink
	// SinkQueue is the queue length of each sink; zero means
	// DefaultSinkQueue.
	SinkQueue int
	// ListenRetry is the first wait before the metrics endpoint tries to
	// listen again; zero means 2 s (doubling up to 5 min).
	ListenRetry time.Duration
	// Desktop configures the warnings on the desktop of the person at
	// the PC: the local API, the rate limit, the notifiers the agent
	// starts (desktop.go).
	Desktop DesktopOptions
}

// Agent is a running mamori agent. Its state is owned by the Run
// goroutine and the uevent reader, which take mu in turn.
type Agent struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	coll    *sources
	audit   *audit.Log
	metrics *Metrics
	warner  Warner
	bootID  string
	// localAPIErr says why the local API could not be served at start
	// ("" when it was, or none is configured); set by startDesktop
	// before the first record, recorded after agent_started.
	localAPIErr string
	// desk is the desktop sink (nil: desktop warnings off), set by
	// startDesktop before the run loop.
	desk *desktop

	// mu guards everything below.
	mu      sync.Mutex
	cfg     *config.Config
	policy  *policy.USBPolicy
	stopped bool
	// subjects are the open appearances of every source.
	subjects *appearances
	present  map[string]*usbAppearance // by bus path
	// departed remembers, by bus path, the device number of a device the
	// kernel announced as removed. Its sysfs directory outlives the
	// remove uevent for a moment; a read of it then must not bring the
	// device back. A re-plug gets a new device number.
	departed map[string]int
	volumes  map[string]*media.Volume // by volumeKey
	// carried are the USB devices open at the end of the previous run in
	// this boot (their appearances are in subjects), by bus path: what
	// is recorded when they turn out to have left.
	carried map[string]OpenDevice
	// lastErr is the last error logged per collector: a device that stays
	// unreadable is logged once, not at every rescan (it is still counted
	// in mamori_collect_errors_total each time).
	lastErr map[string]string
	pending pendingQueue
	reload  chan reloadRequest
	// sinks run behind their queues (the warner first).
	sinks []*queuedSink

	// The network source (network.go).
	netMon     NetworkSource
	net        *netState
	netPolicy  *policy.NetworkPolicy
	netVerdict *policy.NetworkVerdict
	// lastLinks is each link as last judged, by ifindex: what the records
	// of its end show.
	lastLinks map[int]wire.Link
	// findings are the violation records of the network conditions open
	// in this run, by key: what violation_cleared carries.
	findings map[string]*Event
	// lanWindows is until when each unregistered LAN device is recorded.
	lanWindows map[[6]byte]time.Time
	// clock is the last reading of the wall and monotonic clocks
	// (clock.go).
	clock clockBase
	// trusted is the hub-corrected clock approvals are judged by
	// (trusted.go).
	trusted trustedClock
	// sources is the self-test of the event sources (selftest.go).
	sources []localapi.SourceStatus

	// local is the config as loaded from the file (and reloaded on
	// SIGHUP); cfg is it merged with hub, the hub's approved lists in
	// force (nil: none). See hubpolicy.go.
	local *config.Config
	hub   *report.HubPolicy
	// startPolicy is the copy of the hub's lists read at start, or why
	// it was refused.
	startPolicy    *report.HubPolicy
	startPolicyErr error
	// policyCh takes new versions of the hub's lists from the reporter;
	// clockCh says the hub's time became known or moved.
	policyCh chan policyRequest
	clockCh  chan struct{}
}

type reloadRequest struct {
	cfg *config.Config
	err error
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
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.ListenRetry <= 0 {
		opts.ListenRetry = 2 * time.Second
	}
	coll, err := newSources(opts.Config, opts.Roots, opts.Logger)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		opts: opts, cfg: opts.Config, local: opts.Config, log: opts.Logger, now: opts.Now,
		policyCh: make(chan policyRequest, 1), clockCh: make(chan struct{}, 1),
		policy: policy.NewUSBPolicy(opts.Config), coll: coll, metrics: NewMetrics(), warner: opts.Warner,
		subjects: newAppearances(), present: map[string]*usbAppearance{}, volumes: map[string]*media.Volume{}, departed: map[string]int{},
		carried: map[string]OpenDevice{}, lastErr: map[string]string{}, reload: make(chan reloadRequest, 1),
		net: newNetState(), netPolicy: policy.NewNetworkPolicy(opts.Config),
		lastLinks: map[int]wire.Link{}, findings: map[string]*Event{}, lanWindows: map[[6]byte]time.Time{},
	}
	// The config is a.cfg and a.local, which a reload replaces: a copy
	// in opts would keep the first one's approved lists for good.
	a.opts.Config = nil
	a.metrics.entries.Set(float64(a.policy.Entries()))
	a.metrics.open.set(a.openViolations)
	return a, nil
}

// Metrics returns the agent's metrics (for tests and embedding).
func (a *Agent) Metrics() *Metrics { return a.metrics }

// Reload puts cfg in force in the running agent (SIGHUP): the approved
// lists, the language and the rescan interval change at once and every
// attached device is judged again; the state directory and the metrics
// endpoint keep what the agent started with. With err set (the new file
// did not load) the old config stays in force and the failure is recorded.
func (a *Agent) Reload(cfg *config.Config, err error) {
	if err == nil && cfg == nil {
		err = errors.New("no config")
	}
	select {
	case a.reload <- reloadRequest{cfg, err}:
	default:
		// A reload is already waiting; the newest file wins.
		select {
		case <-a.reload:
		default:
		}
		a.reload <- reloadRequest{cfg, err}
	}
}

// Run runs the agent until ctx is done, then records a stop event, flushes
// and returns nil. It returns an error only when it cannot start: a state
// directory that others can write, an audit log that cannot be opened.
func (a *Agent) Run(ctx context.Context) (err error) {
	defer a.coll.close()
	// A root that is not a sysfs, or no procfs, means watching nothing.
	if err := a.coll.check(); err != nil {
		return err
	}
	state, err := prepareStateDir(a.cfg.Agent.StateDir, a.log)
	if err != nil {
		return err
	}
	a.useStateDir(state)
	dir := state.Path
	a.bootID = a.coll.bootID()
	prior, rdamage, rerr := replay(dir, a.bootID)
	if rerr != nil {
		a.log.Warn("could not read back the audit log; devices attached now count as new appearances", "err", rerr)
	}
	// The lock file stays from every earlier run: a log without records
	// beside it was emptied (with its head removed or reset).
	_, lockErr := os.Lstat(filepath.Join(dir, "audit.lock"))
	emptied := lockErr == nil && prior.records == 0 && rerr == nil
	a.audit, err = audit.Open(dir, audit.Options{Logger: a.log})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer a.audit.Close()
	if rep := a.startReporter(); rep != nil {
		// Closed after the sinks drained (agent_stopped is queued):
		// it flushes for a moment and says the agent is stopping.
		defer rep.Close()
	}
	// After the reporter (the status shows its queue), before the sinks
	// start (the desktop sink is one of them); stopped after them.
	defer a.startDesktop()()
	a.startSinks()
	defer a.stopSinks()

	a.mu.Lock()
	carried := prior.thisBoot()
	for _, d := range carried.Devices {
		a.carried[d.Path] = d
		a.subjects.restore([]wire.OpenSubject{{Source: wire.SourceUSB, ID: d.Path,
			Instance: strconv.Itoa(d.BusNum) + ":" + strconv.Itoa(d.DevNum), Recorded: d.Recorded}})
	}
	a.subjects.restore(carried.Subjects)
	for _, o := range carried.Subjects {
		if o.Source == wire.SourceLAN && o.Until != nil {
			a.noteLANWindow(o.ID, *o.Until)
		}
	}
	for _, v := range carried.Volumes {
		k := volumeKeyOf(v.Device, v.MountPoint)
		a.volumes[k] = &media.Volume{Device: v.Device, MountPoint: v.MountPoint, USBDevice: v.USBDevice}
		a.subjects.restore([]wire.OpenSubject{{Source: wire.SourceMedia, ID: k}})
	}
	a.startHubPolicy()
	rec := a.agentRecord()
	// The subjects carried over go in parts of openChunk: a record has
	// a size limit, and a large LAN has thousands of devices in their
	// windows.
	first, rest := carried, carried.Subjects
	if len(rest) > openChunk {
		first.Subjects, rest = rest[:openChunk], rest[openChunk:]
	} else {
		rest = nil
	}
	rec.Open = &first
	a.emit(&Event{Type: TypeAgentStarted, Source: "agent", Trigger: "start", Agent: rec,
		Message: fmt.Sprintf("mamori %s started; %d approved USB entries; config digest %s", Version, a.policy.Entries(), shortDigest(a.cfg))})
	for len(rest) > 0 {
		part := rest[:min(openChunk, len(rest))]
		rest = rest[len(part):]
		a.emit(&Event{Type: wire.TypeAgentOpenState, Source: "agent", Trigger: "start",
			Open:    &OpenState{Devices: []OpenDevice{}, Volumes: []OpenVolume{}, Subjects: part},
			Message: fmt.Sprintf("%d more appearances carried over", len(part))})
	}
	a.recordStartPolicy()
	if msg := prior.uncleanStop(); msg != "" {
		a.log.Warn("the previous run did not stop cleanly", "detail", msg)
		a.emit(&Event{Type: TypeAgentUncleanStop, Source: "agent", Trigger: "start", Message: msg})
	}
	// Damage found when the log was opened or read back (a torn tail after
	// a crash, an edited record, records cut off the end, a missing head)
	// is itself recorded.
	// What Open found comes first; the read-back reports a record Open
	// already named (the same seq) only once.
	damage := a.audit.Damaged()
	for _, d := range rdamage {
		if !slices.ContainsFunc(damage, func(o audit.Damage) bool { return d.Seq != 0 && o.Seq == d.Seq }) {
			a.log.Warn("audit log damaged", "kind", d.Kind, "file", d.File, "seq", d.Seq, "reason", d.Reason)
			damage = append(damage, d)
		}
	}
	if emptied && len(damage) == 0 {
		d := audit.Damage{Kind: audit.DamageLogEmptied, File: audit.CurrentName,
			Reason: "the log has no records, but the lock file of earlier runs is still there: the log and its head were removed or emptied"}
		a.log.Warn("audit log damaged", "kind", d.Kind, "file", d.File, "reason", d.Reason)
		damage = append(damage, d)
	}
	for _, d := range damage {
		a.recordDamage(d, "start")
	}
	a.recordStateDir(state, "start")
	if a.localAPIErr != "" {
		a.emit(&Event{Type: TypeLocalAPIUnavailable, Source: "agent", Trigger: "start", Message: safe.String(a.localAPIErr)})
	}
	a.closePreviousBoot(prior)
	a.mu.Unlock()

	metricsURL := a.startMetrics(ctx)

	// Open the event sources before the first scan, so that nothing that
	// happens between the scan and the first Receive is missed. Uevents
	// are handled on the reader's goroutine, under the agent's lock: no
	// hand-off between receiving an event and acting on it.
	a.mu.Lock()
	src := a.opts.Uevents
	switch {
	case src != nil:
		a.noteSource(sourceDevices, localapi.SourceEvents, "")
	case a.opts.NoUevents:
		a.noteSource(sourceDevices, localapi.SourceRescans, "turned off")
	default:
		conn, err := a.coll.listenDevices()
		if err != nil {
			a.log.Warn(sourceDevices+" unavailable; relying on rescans", "err", err,
				"rescan_interval", a.cfg.Agent.RescanInterval)
			a.noteSource(sourceDevices, localapi.SourceRescans, err.Error())
		} else {
			src = conn
			a.noteSource(sourceDevices, localapi.SourceEvents, "")
		}
	}
	if src != nil {
		if st, ok := src.(statsSource); ok {
			a.metrics.ueventDrops.set(st)
		}
		defer src.Close()
		go a.readUevents(ctx, src)
	}
	// The network source subscribes before the first dump (in the
	// first rescan), so no change between the two is missed.
	a.netMon = a.openNetwork()
	if a.netMon != nil {
		defer a.netMon.Close()
		go a.readNetwork(ctx, a.netMon)
	}
	a.checkClock("start")
	go a.watchClock(ctx)
	mountCh := make(chan struct{}, 1)
	if !a.opts.NoMountWatch {
		w, err := a.coll.mountWatcher()
		if err != nil {
			a.log.Warn("mount watcher unavailable; mounts seen at rescans", "err", err)
			a.noteSource(sourceMounts, localapi.SourceRescans, err.Error())
		} else {
			defer w.Close()
			go watchMounts(ctx, w, mountCh, a.log)
			a.noteSource(sourceMounts, mountState, mountDetail)
		}
	} else {
		a.noteSource(sourceMounts, localapi.SourceRescans, "turned off")
	}

	a.rescan("start")
	a.logSelfTest()
	interval := a.cfg.Agent.RescanInterval
	a.mu.Unlock()
	if a.opts.Ready != nil {
		a.opts.Ready(metricsURL)
	}

	tick := time.NewTicker(interval)
	defer tick.Stop()
	retry := time.NewTicker(pendingRetry)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			if a.desk != nil {
				// What the desktop sink still counts goes in before
				// agent_stopped.
				a.desk.flushLeftOver()
			}
			a.mu.Lock()
			a.saveTrustedClock(true)
			a.stopped = true
			// The events still waiting for a full disk, and this one,
			// may use the space the log kept back for the stop; what it
			// still cannot take is counted for the next start, which
			// records it (audit_damaged, unwritten_at_stop).
			a.audit.UseStopReserve()
			a.emit(&Event{Type: TypeAgentStopped, Source: "agent", Trigger: "signal", Message: "mamori stopped"})
			a.audit.SetUnwritten(len(a.pending.events), a.pending.lost)
			a.mu.Unlock()
			return nil
		case <-mountCh:
			a.locked(func() { a.refreshVolumes("mount", nil); a.judgeAllMedia("mount", nil) })
		case <-tick.C:
			a.locked(func() { a.rescan("rescan") })
		case <-retry.C:
			a.locked(func() { a.flushPending() })
		case r := <-a.reload:
			a.locked(func() {
				if a.applyReload(r) && a.cfg.Agent.RescanInterval != interval {
					interval = a.cfg.Agent.RescanInterval
					tick.Reset(interval)
				}
			})
			// The replaced lists and the load's garbage: give them back
			// now (an idle agent may not collect for minutes).
			debug.FreeOSMemory()
		case p := <-a.policyCh:
			a.locked(func() { a.applyPolicy(p) })
		case <-a.clockCh:
			// The hub's time became known or moved: approvals are judged
			// again by it.
			a.locked(func() { a.rescan("clock") })
		}
	}
}

// applyReload puts a reloaded config in force, or records why not.
func (a *Agent) applyReload(r reloadRequest) bool {
	if r.err != nil {
		a.log.Error("config reload refused; the previous config stays in force", "err", r.err)
		a.emit(&Event{Type: TypeConfigReloadFailed, Source: "agent", Trigger: "reload",
			Message: safe.String("config reload refused, the previous config stays in force: " + r.err.Error())})
		return false
	}
	a.local = r.cfg
	merged, replaced := a.merged(r.cfg)
	a.putInForce(merged)
	msg := fmt.Sprintf("config reloaded; %d approved USB entries; config digest %s", a.policy.Entries(), shortDigest(a.cfg))
	if a.hub != nil {
		msg += fmt.Sprintf("; with the hub's approved lists v%d%s", a.hub.Bundle.Version, replacedText(replaced))
	}
	a.emit(&Event{Type: TypeConfigReloaded, Source: "agent", Trigger: "reload", Agent: a.agentRecord(), Message: safe.String(msg)})
	a.rejudge("reload")
	return true
}

// putInForce makes cfg (a config merged with the hub's lists) the one in
// force: the approved lists, the language and the rescan interval.
// What the running agent was started with stays: where it records, and
// where it serves metrics.
func (a *Agent) putInForce(c *config.Config) {
	cfg := *c
	cfg.Agent.StateDir = a.cfg.Agent.StateDir
	cfg.Metrics = a.cfg.Metrics
	a.cfg = &cfg
	a.policy = policy.NewUSBPolicy(&cfg)
	a.netPolicy = policy.NewNetworkPolicy(&cfg)
	a.metrics.entries.Set(float64(a.policy.Entries()))
}

// rejudge judges every attached device, medium and network again (a
// rescan) with the lists in force and the trusted time.
func (a *Agent) rejudge(trigger string) {
	now := a.trustedNow()
	for _, ap := range a.present {
		ap.decision = a.policy.Decide(&ap.dev, now)
	}
	a.rescan(trigger)
}

func (a *Agent) agentRecord() *AgentRecord {
	return &AgentRecord{Version: Version, Schema: wire.SchemaVersion, PID: os.Getpid(), BootID: a.bootID,
		ConfigFiles: a.cfg.Files, ConfigDigest: a.cfg.Digest, Entries: a.policy.Entries(),
		Networks: len(a.cfg.Approved.Networks), LANDevices: len(a.cfg.Approved.LANDevices)}
}

func shortDigest(cfg *config.Config) string {
	if len(cfg.Digest) < 12 {
		return "(built-in defaults)"
	}
	return cfg.Digest[:12]
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
