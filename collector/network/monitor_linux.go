package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/wifi"
	"golang.org/x/sys/unix"

	"github.com/mamori-agent/mamori/internal/safe"
)

// rtnetlinkGroups are the rtnetlink multicast groups a Monitor listens to
// (the RTMGRP_* bitmask of sockaddr_nl.nl_groups).
const rtnetlinkGroups = unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR |
	unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE | unix.RTMGRP_NEIGH

// readBuffer is the receive buffer asked for the notification socket
// (SO_RCVBUF; the kernel caps it at net.core.rmem_max). A burst bigger
// than this is an overrun (ENOBUFS) and a ChangeOverrun.
const readBuffer = 1 << 20

// Monitor watches the caller's network namespace through rtnetlink and
// nl80211. It is safe for concurrent use: Snapshot may be called while
// another goroutine is blocked in Receive.
type Monitor struct {
	sysfs string

	// events is subscribed to rtnetlinkGroups; dump answers requests.
	events *netlink.Conn
	dumpMu sync.Mutex
	dump   *netlink.Conn

	// wl is the nl80211 side, nil with Options.NoWireless. While nl80211
	// is missing (cfg80211 not loaded yet: a USB Wi-Fi stick plugged into
	// a PC without built-in Wi-Fi loads it later) it is opened again, at
	// most every wlanRetry, when a link is read.
	wl      atomic.Pointer[wlan]
	wlMu    sync.Mutex // serialises reopening nl80211 and Close
	wlTried time.Time

	batches chan batch
	done    chan struct{}
	failed  chan struct{}
	failErr error // set before failed is closed
	failOne sync.Once

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// batch is what one read from a socket gave.
type batch struct {
	changes []Change
}

// wlan is the nl80211 side: the interface list through mdlayher/wifi, the
// associated BSS's SSID through a raw NL80211_CMD_GET_SCAN dump (wifi
// decodes the SSID lossily, replacing invalid UTF-8 with U+FFFD, where
// safe.String keeps every byte), and mlme events.
type wlan struct {
	mu     sync.Mutex
	client *wifi.Client     // nil when nl80211 could not be opened
	genl   *genetlink.Conn  // GET_SCAN dumps
	family genetlink.Family // nl80211
	err    error            // why client or genl is nil

	mlme *genetlink.Conn // subscribed to nl80211 "mlme"; nil when not
}

// Open subscribes to rtnetlink's link, address (IPv4, IPv6), route (IPv4,
// IPv6) and neighbour groups, then opens a second socket for dumps and,
// unless opts.NoWireless, nl80211 (for SSIDs, and subscribed to its "mlme"
// group for connect, roam and disconnect events). Subscribing comes first,
// so that a change made while Snapshot dumps is either in the Snapshot or
// returned by a later Receive. nl80211 failing to open is not an error:
// wireless links then carry the reason in Link.SSIDErr.
//
// The sockets belong to the network namespace of the calling thread at the
// time of Open, and stay in it.
func Open(opts Options) (*Monitor, error) {
	m := &Monitor{
		sysfs:   opts.Sysfs,
		batches: make(chan batch, 8),
		done:    make(chan struct{}),
		failed:  make(chan struct{}),
	}
	if m.sysfs == "" {
		m.sysfs = "/sys"
	}
	var err error
	m.events, err = netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{Groups: rtnetlinkGroups})
	if err != nil {
		return nil, fmt.Errorf("network: subscribe to rtnetlink: %w", err)
	}
	_ = m.events.SetReadBuffer(readBuffer)
	m.dump, err = netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		_ = m.events.Close()
		return nil, fmt.Errorf("network: open rtnetlink: %w", err)
	}
	if !opts.NoWireless {
		w := openWLAN()
		m.wl.Store(w)
		m.wlTried = time.Now()
		if w.mlme != nil {
			m.wg.Add(1)
			go m.readMLME(w)
		}
	}
	m.wg.Add(1)
	go m.readRoute()
	return m, nil
}

// wlanRetry is how often a missing nl80211 is opened again.
const wlanRetry = 5 * time.Second

// wlan returns the nl80211 side, opening it again when it failed before
// and wlanRetry has passed; nil with Options.NoWireless.
func (m *Monitor) wlan() *wlan {
	w := m.wl.Load()
	if w == nil || w.genl != nil {
		return w
	}
	m.wlMu.Lock()
	defer m.wlMu.Unlock()
	if w = m.wl.Load(); w.genl != nil || m.closed.Load() || time.Since(m.wlTried) < wlanRetry {
		return w
	}
	m.wlTried = time.Now()
	nw := openWLAN()
	if nw.genl == nil {
		_ = nw.close()
		return w
	}
	m.wl.Store(nw)
	_ = w.close()
	if nw.mlme != nil {
		m.wg.Add(1)
		go m.readMLME(nw)
	}
	return nw
}

// openWLAN opens what it can of nl80211.
func openWLAN() *wlan {
	w := &wlan{}
	c, err := wifi.New()
	if err != nil {
		w.err = fmt.Errorf("nl80211: %w", err)
		return w
	}
	g, err := genetlink.Dial(nil)
	if err != nil {
		_ = c.Close()
		w.err = fmt.Errorf("nl80211: %w", err)
		return w
	}
	f, err := g.GetFamily("nl80211")
	if err != nil {
		_ = c.Close()
		_ = g.Close()
		w.err = fmt.Errorf("nl80211: %w", err)
		return w
	}
	w.client, w.genl, w.family = c, g, f

	for _, grp := range f.Groups {
		if grp.Name != "mlme" {
			continue
		}
		ml, err := genetlink.Dial(nil)
		if err == nil {
			if err = ml.JoinGroup(grp.ID); err != nil {
				_ = ml.Close()
			}
		}
		if err != nil {
			return w // no events; RTM_NEWLINK still tells of associations
		}
		_ = ml.SetReadBuffer(readBuffer)
		w.mlme = ml
		return w
	}
	return w
}

func (w *wlan) close() error {
	var errs []error
	if w.client != nil {
		errs = append(errs, w.client.Close())
	}
	if w.genl != nil {
		errs = append(errs, w.genl.Close())
	}
	if w.mlme != nil {
		errs = append(errs, w.mlme.Close())
	}
	return errors.Join(errs...)
}

// Close closes the sockets. A Receive blocked in another goroutine returns
// an error wrapping net.ErrClosed, and so do later calls.
func (m *Monitor) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.done)
		errs := []error{m.events.Close(), m.dump.Close()}
		m.wlMu.Lock()
		if w := m.wl.Load(); w != nil {
			errs = append(errs, w.close())
		}
		m.wlMu.Unlock()
		m.wg.Wait()
		if err := errors.Join(errs...); err != nil {
			m.closeErr = fmt.Errorf("network: close: %w", err)
		}
	})
	return m.closeErr
}

var errClosed = fmt.Errorf("network: monitor closed: %w", net.ErrClosed)

// Receive blocks until notifications arrive and returns them decoded, in
// the kernel's order, each with the time it was read. Links are enriched
// as in Snapshot (for a deleted link sysfs is gone: Hardware, USB and
// Driver stay empty). Routes other than unicast default routes of the main
// table are dropped, and Receive keeps waiting when nothing is left. When
// the kernel dropped notifications (ENOBUFS) it returns a single
// ChangeOverrun, after which the caller takes a new Snapshot; Receive
// carries on afterwards. After Close it returns an error wrapping
// net.ErrClosed.
func (m *Monitor) Receive() ([]Change, error) {
	if m.closed.Load() {
		return nil, errClosed
	}
	select {
	case b := <-m.batches:
		return b.changes, nil
	case <-m.done:
		return nil, errClosed
	case <-m.failed:
		select {
		case b := <-m.batches:
			return b.changes, nil
		default:
		}
		return nil, m.failErr
	}
}

// send hands a batch to Receive; false when the Monitor is closed.
func (m *Monitor) send(b batch) bool {
	select {
	case m.batches <- b:
		return true
	case <-m.done:
		return false
	}
}

// fail makes Receive return err from now on.
func (m *Monitor) fail(err error) {
	m.failOne.Do(func() {
		m.failErr = err
		close(m.failed)
	})
}

// readRoute reads the rtnetlink notifications until Close.
func (m *Monitor) readRoute() {
	defer m.wg.Done()
	for {
		msgs, err := m.events.Receive()
		now := time.Now()
		if m.closed.Load() {
			return
		}
		if errors.Is(err, unix.ENOBUFS) {
			if !m.send(batch{changes: []Change{{Kind: ChangeOverrun, Time: now}}}) {
				return
			}
			continue
		}
		if err != nil {
			m.fail(fmt.Errorf("network: receive: %w", err))
			return
		}
		var cs []Change
		for _, msg := range msgs {
			if cs, err = appendMessage(cs, uint16(msg.Header.Type), uint16(msg.Header.Flags), msg.Data); err != nil {
				// One bad message must not stop the watch: the caller
				// learns of it as an overrun and takes a new snapshot.
				cs = append(cs, Change{Kind: ChangeOverrun})
				break
			}
		}
		if len(cs) == 0 {
			continue
		}
		var wireless map[int]bool
		for i := range cs {
			cs[i].Time = now
			if cs[i].Link != nil {
				if wireless == nil {
					wireless = m.wirelessIndexes()
				}
				m.enrich(cs[i].Link, wireless)
			}
		}
		if !m.send(batch{changes: cs}) {
			return
		}
	}
}

// readMLME reads nl80211 mlme events until Close and turns connect, roam
// and disconnect into ChangeWireless with the link re-read.
func (m *Monitor) readMLME(w *wlan) {
	defer m.wg.Done()
	for {
		msgs, _, err := w.mlme.Receive()
		now := time.Now()
		if m.closed.Load() {
			return
		}
		if errors.Is(err, unix.ENOBUFS) {
			if !m.send(batch{changes: []Change{{Kind: ChangeOverrun, Time: now}}}) {
				return
			}
			continue
		}
		if err != nil {
			// Wireless events are a bonus over RTM_NEWLINK: losing them
			// is not fatal to the Monitor.
			return
		}
		var cs []Change
		for _, msg := range msgs {
			switch msg.Header.Command {
			case nl80211CmdConnect, nl80211CmdRoam, nl80211CmdDisconnect:
			default:
				continue
			}
			idx, ok := nl80211Ifindex(msg.Data)
			if !ok {
				continue
			}
			cs = append(cs, Change{Kind: ChangeWireless, Link: m.linkByIndex(idx), Time: now})
		}
		if len(cs) > 0 && !m.send(batch{changes: cs}) {
			return
		}
	}
}

// linkByIndex reads one link (RTM_GETLINK by index) and enriches it; a
// link that cannot be read is returned with its index alone, as wireless.
func (m *Monitor) linkByIndex(index int) *Link {
	req := make([]byte, sizeofIfInfomsg)
	binary.NativeEndian.PutUint32(req[4:8], uint32(index))
	m.dumpMu.Lock()
	msgs, err := m.dump.Execute(netlink.Message{
		Header: netlink.Header{Type: rtmGetLink, Flags: netlink.Request},
		Data:   req,
	})
	m.dumpMu.Unlock()
	var cs []Change
	for _, msg := range msgs {
		if err == nil {
			cs, err = appendMessage(cs, uint16(msg.Header.Type), uint16(msg.Header.Flags), msg.Data)
		}
	}
	if err != nil || len(cs) == 0 || cs[0].Link == nil {
		return &Link{Index: index, Kind: KindWireless, OperState: "unknown"}
	}
	l := cs[0].Link
	m.enrich(l, m.wirelessIndexes())
	return l
}

// Snapshot dumps the links (RTM_GETLINK), addresses (RTM_GETADDR), default
// routes of the main table (RTM_GETROUTE) and IPv4 and IPv6 neighbours
// (RTM_GETNEIGH), and enriches the links from sysfs and nl80211.
func (m *Monitor) Snapshot() (Snapshot, error) {
	var s Snapshot
	if m.closed.Load() {
		return s, errClosed
	}
	for _, d := range []struct {
		what string
		typ  uint16
		req  int // size of the request's family header
	}{
		{"links", rtmGetLink, sizeofIfInfomsg},
		{"addresses", rtmGetAddr, sizeofIfAddrmsg},
		{"routes", rtmGetRoute, sizeofRtMsg},
		{"neighbours", rtmGetNeigh, sizeofNdMsg},
	} {
		cs, err := m.dumpAll(d.typ, d.req)
		if err != nil {
			return Snapshot{}, fmt.Errorf("network: dump %s: %w", d.what, err)
		}
		for _, c := range cs {
			switch {
			case c.Link != nil:
				s.Links = append(s.Links, *c.Link)
			case c.Addr != nil:
				s.Addrs = append(s.Addrs, *c.Addr)
			case c.Route != nil:
				s.Routes = append(s.Routes, *c.Route)
			case c.Neighbour != nil:
				s.Neighbours = append(s.Neighbours, *c.Neighbour)
			}
		}
	}
	wireless := m.wirelessIndexes()
	for i := range s.Links {
		m.enrich(&s.Links[i], wireless)
	}
	return s, nil
}

// dumpAll sends a dump request of type typ for every family (AF_UNSPEC,
// an all-zero family header of hdrLen bytes) and decodes the answer.
func (m *Monitor) dumpAll(typ uint16, hdrLen int) ([]Change, error) {
	m.dumpMu.Lock()
	msgs, err := m.dump.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, hdrLen),
	})
	m.dumpMu.Unlock()
	if err != nil {
		if m.closed.Load() {
			return nil, errClosed
		}
		return nil, err
	}
	cs := make([]Change, 0, len(msgs))
	for i, msg := range msgs {
		if cs, err = appendMessage(cs, uint16(msg.Header.Type), uint16(msg.Header.Flags), msg.Data); err != nil {
			return nil, fmt.Errorf("message %d (%s): %w", i, typeName(uint16(msg.Header.Type)), err)
		}
	}
	return cs, nil
}

// wirelessIndexes returns the ifindexes nl80211 knows, nil when nl80211
// is off or failed.
func (m *Monitor) wirelessIndexes() map[int]bool {
	w := m.wlan()
	if w == nil || w.client == nil {
		return nil
	}
	w.mu.Lock()
	ifis, err := w.client.Interfaces()
	w.mu.Unlock()
	if err != nil {
		return nil
	}
	set := make(map[int]bool, len(ifis))
	for _, ifi := range ifis {
		set[ifi.Index] = true
	}
	return set
}

// enrich adds what sysfs and nl80211 know to a decoded link and classifies
// it again: Hardware, USB and Driver from sysfs, wireless from sysfs or
// nl80211 (the ifindex in wireless), and the SSID of a wireless link.
func (m *Monitor) enrich(l *Link, wireless map[int]bool) {
	s := readSysfsLink(m.sysfs, l.Name, l.Index)
	l.Hardware, l.USB, l.Driver = s.Hardware, safe.String(s.USB), safe.String(s.Driver)
	isWireless := s.Wireless || wireless[l.Index]
	l.Kind = classify(l, isWireless)
	if !isWireless {
		return
	}
	w := m.wlan()
	switch {
	case w == nil:
		l.SSIDErr = "nl80211 turned off"
	case w.genl == nil:
		l.SSIDErr = w.err.Error()
	default:
		ssid, err := w.ssid(l.Index)
		if err != nil {
			l.SSIDErr = err.Error()
		} else {
			l.SSID = safe.String(ssid)
		}
	}
}

// ssid dumps nl80211's BSS list for the interface (NL80211_CMD_GET_SCAN)
// and returns the SSID information element of the BSS the interface is
// associated with or has joined (NL80211_BSS_STATUS), as raw bytes; ""
// when none.
func (w *wlan) ssid(index int) (string, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(nl80211AttrIfindex, uint32(index))
	attrs, err := ae.Encode()
	if err != nil {
		return "", fmt.Errorf("nl80211: get scan: %w", err)
	}
	w.mu.Lock()
	msgs, err := w.genl.Execute(genetlink.Message{
		Header: genetlink.Header{Command: nl80211CmdGetScan, Version: w.family.Version},
		Data:   attrs,
	}, w.family.ID, netlink.Request|netlink.Dump)
	w.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("nl80211: get scan: %w", err)
	}
	for _, msg := range msgs {
		if s, ok := associatedSSID(msg.Data); ok {
			return s, nil
		}
	}
	return "", nil
}
