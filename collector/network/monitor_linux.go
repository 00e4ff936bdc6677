package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
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

// maxDrain bounds how many datagrams are read and thrown away after an
// overrun before the ChangeOverrun is delivered, so that a flood that
// never stops cannot keep Receive from returning.
const maxDrain = 1 << 16

// dumpTries is how many times a dump is taken when the kernel marks it
// interrupted (NLM_F_DUMP_INTR) before Snapshot gives up with
// ErrDumpInterrupted.
const dumpTries = 5

// ErrDumpInterrupted is wrapped by the error of Snapshot when every one of
// several dumps of a table was interrupted: the kernel flagged the answer
// NLM_F_DUMP_INTR, the table having changed while it was being dumped, so
// the answer may miss entries or hold ones already gone. Nothing is
// wrong with the Monitor: the caller keeps what it had and takes a
// Snapshot again later (at its next rescan); changes keep coming from
// Receive meanwhile.
var ErrDumpInterrupted = errors.New("network: dump interrupted: the table kept changing during the dump")

// Monitor watches the caller's network namespace through rtnetlink and
// nl80211. It is safe for concurrent use: Snapshot may be called while
// another goroutine is blocked in Receive.
type Monitor struct {
	sysfs string

	// events is subscribed to rtnetlinkGroups; dump answers requests.
	events *netlink.Conn
	dumpMu sync.Mutex
	dump   *netlink.Conn
	// execute sends a request on dump and returns the answer; a test
	// replaces it to flag dumps interrupted.
	execute func(netlink.Message) ([]netlink.Message, error)

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
	rb := readBuffer
	if opts.readBuffer > 0 {
		rb = opts.readBuffer
	}
	_ = m.events.SetReadBuffer(rb)
	m.dump, err = netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		_ = m.events.Close()
		return nil, fmt.Errorf("network: open rtnetlink: %w", err)
	}
	m.execute = m.dump.Execute
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
// as in Snapshot (for a deleted link sysfs is gone: Sysfs is false and
// Hardware, USB and Driver stay empty). Routes that Route leaves out are
// dropped, and Receive keeps waiting when nothing is left. After Close it
// returns an error wrapping net.ErrClosed.
//
// When the kernel dropped notifications (ENOBUFS: the socket's receive
// queue was full) Receive returns a single Change of kind ChangeOverrun.
// Before it does, the Monitor reads and throws away whatever was still
// queued on the socket (up to a bound) and the batches it had decoded but
// Receive had not returned yet: all of them are older than the loss, and
// applying them on top of a newer Snapshot would bring back a state that
// is gone. The caller must then take a new Snapshot and replace its whole
// state with it; changes Receive returned before the ChangeOverrun were
// correct when returned and need no undoing, and changes returned after
// it are newer than the drain and apply on top of that Snapshot as usual
// (one that the Snapshot already holds applies again harmlessly, as
// after Open). A message that cannot be decoded ends its batch with a
// ChangeOverrun too, to the same effect.
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

// overrun handles ENOBUFS on c: it reads and throws away what c still
// has queued (until EAGAIN, or maxDrain datagrams), then the batches not
// yet returned by Receive, and only then hands Receive a single
// ChangeOverrun. The kernel reports ENOBUFS once per episode, as soon as
// it drops a message, while the queue is still full of messages older
// than the loss: delivering those after the ChangeOverrun would apply them
// on top of the caller's newer Snapshot, with the messages that undid
// them lost. False when the Monitor is closed.
func (m *Monitor) overrun(c syscall.Conn) bool {
	_, _ = drain(c, maxDrain)
	for discarded := false; !discarded; {
		select {
		case <-m.batches:
		default:
			discarded = true
		}
	}
	return m.send(batch{changes: []Change{{Kind: ChangeOverrun, Time: time.Now()}}})
}

// drain reads datagrams off c without blocking and throws them away until
// none is left (EAGAIN) or limit were read, and returns how many it read.
// Only the goroutine that receives on c may call it.
func drain(c syscall.Conn, limit int) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	buf := make([]byte, nlmsgHdrLen) // MSG_TRUNC: the rest of each datagram is dropped
	err = rc.Read(func(fd uintptr) bool {
		for n < limit {
			_, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT|unix.MSG_TRUNC)
			switch err {
			case nil:
				n++
			case unix.EINTR:
			case unix.ENOBUFS:
				// The queue emptied, the episode ended and another
				// began while draining: keep going.
			case unix.EAGAIN:
				return true
			default:
				rerr = err
				return true
			}
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return n, err
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
			if !m.overrun(m.events) {
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
			if !m.overrun(w.mlme) {
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

// Snapshot dumps the links (RTM_GETLINK), addresses (RTM_GETADDR), routes
// (RTM_GETROUTE; those Route describes) and IPv4 and IPv6 neighbours
// (RTM_GETNEIGH), and enriches the links from sysfs and nl80211. A dump
// the kernel flags interrupted (NLM_F_DUMP_INTR: the table changed during
// it) is taken again, up to 5 times; after that Snapshot returns an error
// wrapping ErrDumpInterrupted, and the caller tries again later.
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
// an all-zero family header of hdrLen bytes) and decodes the answer. An
// answer with NLM_F_DUMP_INTR on any of its messages (the table changed
// while it was dumped; the netlink library does not make that an error)
// is thrown away and the dump taken again, dumpTries times in all; then
// the error wraps ErrDumpInterrupted.
func (m *Monitor) dumpAll(typ uint16, hdrLen int) ([]Change, error) {
	for range dumpTries {
		m.dumpMu.Lock()
		msgs, err := m.execute(netlink.Message{
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
		if dumpInterrupted(msgs) {
			continue
		}
		cs := make([]Change, 0, len(msgs))
		for i, msg := range msgs {
			if cs, err = appendMessage(cs, uint16(msg.Header.Type), uint16(msg.Header.Flags), msg.Data); err != nil {
				return nil, fmt.Errorf("message %d (%s): %w", i, typeName(uint16(msg.Header.Type)), err)
			}
		}
		return cs, nil
	}
	return nil, fmt.Errorf("%d tries: %w", dumpTries, ErrDumpInterrupted)
}

// dumpInterrupted reports whether any message of a dump's answer carries
// NLM_F_DUMP_INTR.
func dumpInterrupted(msgs []netlink.Message) bool {
	for _, msg := range msgs {
		if msg.Header.Flags&netlink.DumpInterrupted != 0 {
			return true
		}
	}
	return false
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
	s := readSysfsLink(m.sysfs, l.rawName, l.Index)
	l.Sysfs, l.Hardware, l.USB, l.Driver = s.Found, s.Hardware, safe.String(s.USB), safe.String(s.Driver)
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
