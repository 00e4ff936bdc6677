package network

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// RescanInterval is how often the Windows Monitor reads everything again
// on its own: the safety net under the IP Helper notifications, and the
// only way neighbours are seen to change (Windows has no neighbour
// notification).
const RescanInterval = 5 * time.Second

// initialWait is how long EventSources waits, from Open, for the initial
// notification of each IP Helper source before it calls the source
// silent.
const initialWait = 2 * time.Second

// settleTime gathers a burst of notifications (an address brings several)
// into one read.
const settleTime = 100 * time.Millisecond

// MibInitialNotification is MIB_NOTIFICATION_TYPE's initial notification,
// sent once after registration when asked for.
const mibInitialNotification = 3

// notifyEvent is one callback, as the callback posted it.
type notifyEvent struct {
	src ipSource
	typ uint32
}

// Monitor watches the network on Windows through IP Helper: every read
// (Snapshot, and each wake-up of Receive) lists the adapters
// (GetAdaptersAddresses, GetIfTable2Ex, the PnP tree for the USB device
// an adapter hangs off), the routes (GetIpForwardTable2), the neighbours
// (GetIpNetTable2) and the SSIDs (wlanapi), and Receive reports what
// differs from the read before. It wakes on NotifyIpInterfaceChange,
// NotifyUnicastIpAddressChange, NotifyRouteChange2 and Wi-Fi connection
// events, and every RescanInterval whatever happens (neighbours have no
// notification; Wine 8.0 registers the IP Helper callbacks but never
// calls them). The callbacks never block: they post to a buffered
// channel, and an overflow only means a read is due, which it is.
//
// It is safe for concurrent use: Snapshot may be called while another
// goroutine is blocked in Receive.
type Monitor struct {
	id         uintptr // the callbacks' context: a key of monitors
	noWireless bool
	rescan     time.Duration

	events    chan notifyEvent
	overflows atomic.Uint64 // callbacks dropped on a full channel
	done      chan struct{}
	closed    atomic.Bool
	closeMu   sync.Mutex // Close against itself

	handles [srcWlan]windows.Handle
	// sources is what Open and the callbacks know of each source: they
	// may run at once (an initial notification comes on a thread-pool
	// thread as soon as its source is registered, while Open registers
	// the next).
	sources *sourceStates
	opened  time.Time

	wlan    *wlanClient
	wlanErr error

	mu    sync.Mutex // reads, last, pnp, notes
	last  Snapshot
	pnp   map[string]pnpResult
	notes []string
}

type pnpResult struct {
	chain []string
	ok    bool
}

// monitors maps a callback context to its Monitor.
var (
	monitors  sync.Map
	monitorID atomic.Uintptr
)

// callbacks are made once per process (windows.NewCallback makes a
// trampoline that is never freed, from a limited supply).
var callbacks = sync.OnceValue(func() [numSources]uintptr {
	ip := func(src ipSource) uintptr {
		return windows.NewCallback(func(ctx, row, typ uintptr) uintptr {
			post(ctx, src, uint32(typ))
			return 0
		})
	}
	return [numSources]uintptr{
		srcInterface: ip(srcInterface),
		srcAddress:   ip(srcAddress),
		srcRoute:     ip(srcRoute),
		srcWlan: windows.NewCallback(func(data *wlanNotificationData, ctx uintptr) uintptr {
			if data != nil && data.Source == wlanNotificationSourceACM {
				switch data.Code {
				case wlanACMConnectionComplete, wlanACMDisconnected, wlanACMInterfaceArrival, wlanACMInterfaceRemoval:
					post(ctx, srcWlan, data.Code)
				}
			}
			return 0
		}),
	}
})

// wlanNotificationData is the head of WLAN_NOTIFICATION_DATA.
type wlanNotificationData struct {
	Source uint32
	Code   uint32
	// InterfaceGuid, dwDataSize and pData follow; they are not read.
}

// post hands a callback to its Monitor without blocking.
func post(ctx uintptr, src ipSource, typ uint32) {
	v, ok := monitors.Load(ctx)
	if !ok {
		return
	}
	m := v.(*Monitor)
	if typ == mibInitialNotification && src != srcWlan {
		m.sources.gotInitial(src)
	}
	select {
	case m.events <- notifyEvent{src, typ}:
	default:
		m.overflows.Add(1) // a read is pending anyway
	}
}

// Open registers for IP Helper's interface, address and route change
// notifications (asking each for its initial notification, the proof
// that it calls back) and, unless opts.NoWireless, opens wlanapi and
// registers for its connection events. A source that cannot be
// registered is not an error: the Monitor rescans, and EventSources says
// so. opts.Sysfs is not used on Windows.
func Open(opts Options) (*Monitor, error) {
	m := &Monitor{
		id:         monitorID.Add(1),
		noWireless: opts.NoWireless,
		rescan:     RescanInterval,
		events:     make(chan notifyEvent, 256),
		done:       make(chan struct{}),
		sources:    newSourceStates(),
		opened:     time.Now(),
		pnp:        map[string]pnpResult{},
	}
	monitors.Store(m.id, m)
	cbs := callbacks()
	for src, proc := range map[ipSource]*windows.LazyProc{
		srcInterface: procNotifyIpInterfaceChange,
		srcAddress:   procNotifyUnicastIpAddressChange,
		srcRoute:     procNotifyRouteChange2,
	} {
		if err := proc.Find(); err != nil {
			m.sources.failed(src, fmt.Errorf("not in iphlpapi.dll: %w", err))
			continue
		}
		var h windows.Handle
		r, _, _ := proc.Call(windows.AF_UNSPEC, cbs[src], m.id, 1, uintptr(unsafe.Pointer(&h)))
		if r != 0 {
			m.sources.failed(src, windows.Errno(r))
			continue
		}
		m.handles[src] = h
	}
	m.sources.settled()
	if !opts.NoWireless {
		m.wlan, m.wlanErr = openWlan()
		switch {
		case m.wlan == nil:
			m.sources.failed(srcWlan, m.wlanErr)
		case procWlanRegisterNotification.Find() != nil:
			m.sources.failed(srcWlan, fmt.Errorf("not in wlanapi.dll: %w", procWlanRegisterNotification.Find()))
		default:
			var prev uint32
			r, _, _ := procWlanRegisterNotification.Call(uintptr(m.wlan.h), wlanNotificationSourceACM, 1, cbs[srcWlan], m.id, 0, uintptr(unsafe.Pointer(&prev)))
			if r != 0 {
				m.sources.failed(srcWlan, fmt.Errorf("WlanRegisterNotification: %w", windows.Errno(r)))
			}
		}
	} else {
		m.sources.failed(srcWlan, errors.New("turned off (NoWireless)"))
	}
	return m, nil
}

// EventSources says which sources of change events work, waiting (at
// most initialWait from Open) for the initial notifications that show
// the IP Helper callbacks work: the agent's self-test. A source that
// cannot be seen to work falls back to the rescans every RescanInterval,
// which are always listed last.
func (m *Monitor) EventSources() []EventSource {
	select {
	case <-m.sources.Ready():
	case <-m.done:
	case <-time.After(time.Until(m.opened.Add(initialWait))):
	}
	every := fmt.Sprintf("rescans every %s", m.rescan)
	var out []EventSource
	for s := srcInterface; s < srcWlan; s++ {
		e := EventSource{Name: sourceNames[s]}
		regErr, initial := m.sources.state(s)
		switch {
		case regErr != nil:
			e.Detail = fmt.Sprintf("cannot register (%v): changes seen by %s", regErr, every)
		case initial && underWine():
			e.Detail = fmt.Sprintf("initial notification received, but Wine sends no other: changes seen by %s", every)
		case initial:
			e.Working, e.Detail = true, "initial notification received"
		default:
			e.Detail = fmt.Sprintf("registered, but no initial notification within %s (Wine 8.0 only stubs it): changes seen by %s", initialWait, every)
		}
		out = append(out, e)
	}
	w := EventSource{Name: sourceNames[srcWlan]}
	if regErr, _ := m.sources.state(srcWlan); regErr != nil {
		w.Detail = fmt.Sprintf("%v: Wi-Fi changes seen by %s", regErr, every)
	} else {
		w.Working, w.Detail = true, "registered for connection events"
	}
	out = append(out, w)
	m.mu.Lock()
	notes := append([]string(nil), m.notes...)
	m.mu.Unlock()
	neigh := EventSource{Name: "GetIpNetTable2", Working: true, Detail: "neighbours read at each rescan (Windows has no neighbour notification)"}
	for _, n := range notes {
		if strings.HasPrefix(n, "GetIpNetTable2") {
			neigh.Working, neigh.Detail = false, n
		}
	}
	out = append(out, neigh)
	if n := m.overflows.Load(); n > 0 {
		every += fmt.Sprintf("; %d notifications found the queue full (each wakes a read anyway)", n)
	}
	return append(out, EventSource{Name: "rescan", Working: true, Detail: every})
}

// Snapshot reads the whole network state. It is also the state the next
// Receive reports changes against.
func (m *Monitor) Snapshot() (Snapshot, error) {
	if m.closed.Load() {
		return Snapshot{}, fmt.Errorf("network: monitor closed: %w", net.ErrClosed)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.read()
	if err != nil {
		return Snapshot{}, err
	}
	m.last = s
	return s, nil
}

// Receive blocks until a notification comes (or RescanInterval passes),
// reads everything and returns what changed since the last Snapshot or
// Receive (see diffSnapshots for the order), as ChangeLink, ChangeAddr,
// ChangeRoute and ChangeNeighbour; an SSID change is a ChangeLink. It
// returns only when something changed. After Close it returns an error
// wrapping net.ErrClosed; a failed read is returned as an error, the
// state kept for the next try.
func (m *Monitor) Receive() ([]Change, error) {
	t := time.NewTicker(m.rescan)
	defer t.Stop()
	for {
		select {
		case <-m.done:
			return nil, fmt.Errorf("network: monitor closed: %w", net.ErrClosed)
		case <-m.events:
			m.settle()
		case <-t.C:
		}
		if m.closed.Load() {
			return nil, fmt.Errorf("network: monitor closed: %w", net.ErrClosed)
		}
		now := time.Now()
		m.mu.Lock()
		s, err := m.read()
		if err != nil {
			m.mu.Unlock()
			return nil, err
		}
		changes := diffSnapshots(&m.last, &s, now)
		m.last = s
		m.mu.Unlock()
		if len(changes) > 0 {
			return changes, nil
		}
	}
}

// settle waits until notifications stop coming for settleTime (at most
// ten times that), draining them.
func (m *Monitor) settle() {
	limit := time.After(10 * settleTime)
	for {
		select {
		case <-m.events:
		case <-time.After(settleTime):
			return
		case <-limit:
			return
		case <-m.done:
			return
		}
	}
}

// read reads everything once. m.mu is held.
func (m *Monitor) read() (Snapshot, error) {
	adapters, err := readAdapters()
	if err != nil {
		return Snapshot{}, fmt.Errorf("network: %w", err)
	}
	var notes []string
	rows, rerr := readIfRows()
	if rerr != nil {
		notes = append(notes, rerr.Error())
	}
	var ssids map[[16]byte]string
	var ssidErrs map[[16]byte]error
	var wlanErr error = m.wlanErr
	if m.wlan != nil {
		ssids, ssidErrs, wlanErr = m.wlan.ssids()
	}
	seen := map[string]bool{}
	for i := range adapters {
		a := &adapters[i]
		if r, ok := rows[a.Index]; ok {
			a.Row, a.AdminStatus, a.MediaConnectState, a.StatusFlags = true, r.AdminStatus, r.MediaConnectState, r.StatusFlags
		}
		seen[a.GUID] = true
		// A walk that ended well is kept while the adapter is there; one
		// that did not is tried again at the next read (the registry
		// key of an adapter that has just come may not be written yet).
		p, ok := m.pnp[a.GUID]
		if !ok {
			p.chain, p.ok = pnpChain(a.GUID)
			if p.ok {
				m.pnp[a.GUID] = p
			}
		}
		a.PnP, a.PnPOK = p.chain, p.ok
		if a.IfType != ifTypeIEEE80211 || m.noWireless {
			continue
		}
		g, _ := guidBytes(a.GUID)
		switch {
		case wlanErr != nil:
			a.SSIDErr = wlanErr.Error()
		case ssidErrs[g] != nil:
			a.SSIDErr = ssidErrs[g].Error()
		default:
			a.SSID = ssids[g]
		}
	}
	for g := range m.pnp {
		if !seen[g] {
			delete(m.pnp, g)
		}
	}
	routes, rerr := readRoutes()
	switch {
	case rerr != nil && routes == nil:
		notes = append(notes, rerr.Error()+": default routes from the adapters' gateways")
	case rerr != nil:
		// Some rows did not parse: the others are kept, and the
		// adapters' gateways stand for default routes beside them.
		notes = append(notes, rerr.Error()+": the others kept, with default routes from the adapters' gateways")
		routes = append(routes, gatewayWinRoutes(adapters, routes)...)
	case routes == nil:
		routes = []winRoute{}
	}
	neigh, missing, nerr := readNeighbours()
	for _, f := range missing {
		notes = append(notes, f+" not served by this system: those neighbours are not seen")
	}
	if nerr != nil {
		// Keep the neighbours read before rather than have every LAN
		// device leave and come back.
		notes = append(notes, fmt.Sprintf("GetIpNetTable2 failed (%v): neighbours of the read before kept", nerr))
		neigh = append([]Neighbour(nil), m.last.Neighbours...)
	}
	m.notes = notes
	return winSnapshot(adapters, routes, neigh), nil
}

// Close cancels the notifications (CancelMibChangeNotify2 returns once no
// callback runs) and stops Receive.
func (m *Monitor) Close() error {
	m.closeMu.Lock()
	defer m.closeMu.Unlock()
	if m.closed.Swap(true) {
		return nil
	}
	var errs []error
	for src, h := range m.handles {
		if h == 0 || procCancelMibChangeNotify2.Find() != nil {
			continue
		}
		if r, _, _ := procCancelMibChangeNotify2.Call(uintptr(h)); r != 0 {
			errs = append(errs, fmt.Errorf("CancelMibChangeNotify2(%s): %w", sourceNames[src], windows.Errno(r)))
		}
	}
	if m.wlan != nil {
		m.wlan.close()
	}
	monitors.Delete(m.id)
	close(m.done)
	return errors.Join(errs...)
}

// underWine reports whether the process runs under Wine, whose ntdll
// exports wine_get_version. Wine 8.0 sends NotifyUnicastIpAddressChange's
// initial notification and no other, so the initial notification proves
// nothing there.
var underWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})
