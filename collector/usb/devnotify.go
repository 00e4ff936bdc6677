package usb

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"github.com/mamori-agent/mamori/internal/safe"
)

// ChangeAction is what a hot-plug Change says happened.
type ChangeAction int

const (
	// ChangeArrived: a device interface arrived (a device was plugged in
	// or a volume mounted).
	ChangeArrived ChangeAction = iota + 1
	// ChangeRemoved: a device interface went away.
	ChangeRemoved
	// ChangeRescan: changes were lost (the queue overflowed); only a full
	// rescan tells what is there now.
	ChangeRescan
)

func (a ChangeAction) String() string {
	switch a {
	case ChangeArrived:
		return "arrived"
	case ChangeRemoved:
		return "removed"
	case ChangeRescan:
		return "rescan"
	}
	return fmt.Sprintf("action-%d", int(a))
}

// Change is one device notification. The agent treats every Change as a
// reason to rescan (reconcile): a notification says that something
// changed, the enumeration says what is there.
type Change struct {
	Action ChangeAction
	// Interface is "usb" (GUID_DEVINTERFACE_USB_DEVICE) or "volume"
	// (GUID_DEVINTERFACE_VOLUME); "" for ChangeRescan.
	Interface string
	// InstanceID is the device's instance id as the interface path writes
	// it (Windows may lower-case it: compare with strings.EqualFold);
	// sanitised. "" when the path did not parse.
	InstanceID string
	// Path is the device interface path as received, sanitised.
	Path string
}

// Notify event data (cfgmgr32.h): the filter types and actions of
// CM_NOTIFY_EVENT_DATA and CM_Register_Notification's callback.
const (
	cmNotifyFilterTypeDeviceInterface = 0

	cmNotifyActionDeviceInterfaceArrival = 0
	cmNotifyActionDeviceInterfaceRemoval = 1
)

// notifyEvent is a parsed CM_NOTIFY_EVENT_DATA of an interface filter.
type notifyEvent struct {
	Class string // interface class GUID, "{...}" lower-case
	Path  string // the symbolic link, WTF-8 (not sanitised)
}

// parseNotifyEventData parses a CM_NOTIFY_EVENT_DATA for a device
// interface filter:
//
//	0  FilterType  CM_NOTIFY_FILTER_TYPE (DWORD)
//	4  Reserved    DWORD
//	8  ClassGuid   GUID (16 bytes)
//	24 SymbolicLink WCHAR[], NUL-terminated, within the event data size
//
// b is the event data, EventDataSize bytes. Other filter types, a short
// buffer, a link without its NUL and an odd length are errors.
func parseNotifyEventData(b []byte) (notifyEvent, error) {
	if len(b) < 24 {
		return notifyEvent{}, fmt.Errorf("%w: CM_NOTIFY_EVENT_DATA of %d bytes, want at least 24", ErrWinID, len(b))
	}
	if ft := binary.LittleEndian.Uint32(b); ft != cmNotifyFilterTypeDeviceInterface {
		return notifyEvent{}, fmt.Errorf("%w: CM_NOTIFY_EVENT_DATA filter type %d, want %d (device interface)", ErrWinID, ft, cmNotifyFilterTypeDeviceInterface)
	}
	ev := notifyEvent{Class: guidString(b[8:24])}
	link := b[24:]
	if len(link)%2 != 0 {
		link = link[:len(link)-1] // padding after the NUL
	}
	end := -1
	for i := 0; i+1 < len(link); i += 2 {
		if link[i] == 0 && link[i+1] == 0 {
			end = i
			break
		}
	}
	if end < 0 {
		return notifyEvent{}, fmt.Errorf("%w: CM_NOTIFY_EVENT_DATA symbolic link without its NUL", ErrWinID)
	}
	ev.Path = utf16leToWTF8(link[:end])
	return ev, nil
}

// guidString formats 16 bytes of a GUID in memory order (Data1..3 little
// endian) as "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}", lower-case.
func guidString(b []byte) string {
	return fmt.Sprintf("{%08x-%04x-%04x-%x-%x}", binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// Interface classes a Hotplug registers for, by GUID string.
const (
	guidStringUSBDevice = "{a5dcbf10-6530-11d2-901f-00c04fb951ed}"
	guidStringVolume    = "{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}"
)

// changeOf turns a notification into a Change; ok is false for actions
// that are neither arrival nor removal.
func changeOf(action uint32, data []byte) (Change, bool) {
	var c Change
	switch action {
	case cmNotifyActionDeviceInterfaceArrival:
		c.Action = ChangeArrived
	case cmNotifyActionDeviceInterfaceRemoval:
		c.Action = ChangeRemoved
	default:
		return Change{}, false
	}
	ev, err := parseNotifyEventData(data)
	if err != nil {
		// Something changed, but not what: rescan.
		return Change{Action: ChangeRescan}, true
	}
	switch ev.Class {
	case guidStringUSBDevice:
		c.Interface = "usb"
	case guidStringVolume:
		c.Interface = "volume"
	default:
		c.Interface = ev.Class
	}
	c.Path = safeSegments(ev.Path)
	if p, err := ParseInterfacePath(ev.Path); err == nil {
		if id, err := ParseInstanceID(p.InstanceID); err == nil {
			c.InstanceID = safePath(id)
		}
	}
	return c, true
}

// Hotplug reports USB device and volume arrivals and removals on
// Windows, through CM_Register_Notification for
// GUID_DEVINTERFACE_USB_DEVICE and GUID_DEVINTERFACE_VOLUME: no window,
// no message loop, no audit policy. Use it as: NewHotplug first, then a
// full enumeration (Devices), then a rescan for every Change, so that
// nothing that arrives between the two is missed. Off Windows, and where
// Windows has no such notifications, NewHotplug fails with an error
// wrapping errors.ErrUnsupported and the caller rescans on a timer.
type Hotplug struct {
	queue  *changeQueue
	out    chan Change
	done   chan struct{}
	closed sync.Once
	sys    hotplugSys // the registrations (per OS)
}

// NewHotplug registers for device notifications.
func NewHotplug() (*Hotplug, error) {
	h := &Hotplug{queue: newChangeQueue(), out: make(chan Change, 16), done: make(chan struct{})}
	if err := h.register(); err != nil {
		return nil, err
	}
	go h.queue.pump(h.out, h.done)
	return h, nil
}

// Changes returns the channel of changes; it is closed by Close. A burst
// that overflows the queue arrives as one ChangeRescan.
func (h *Hotplug) Changes() <-chan Change { return h.out }

// Close ends the registrations and closes the Changes channel (the pump
// gives up a send it is blocked in). It may be called more than once.
func (h *Hotplug) Close() error {
	var err error
	h.closed.Do(func() {
		err = h.unregister()
		close(h.done)
	})
	return err
}

// safeSegments sanitises a path between its backslashes, which it keeps
// single (safe.String would double them), so that `\\?\USB#...` logs
// as written.
func safeSegments(p string) string {
	parts := strings.Split(p, `\`)
	for i, s := range parts {
		parts[i] = safe.String(s)
	}
	return strings.Join(parts, `\`)
}

// changeQueueLen bounds the changes waiting for the consumer: a burst
// longer than this (a hub with many devices plugged at once) becomes one
// ChangeRescan.
const changeQueueLen = 256

// changeQueue takes changes from a callback that must never block and
// hands them to a consumer goroutine. post never blocks: when the queue
// is full it drops what waits and remembers to ask for a rescan.
type changeQueue struct {
	mu       sync.Mutex
	q        []Change
	overflow bool
	wake     chan struct{} // cap 1
}

func newChangeQueue() *changeQueue { return &changeQueue{wake: make(chan struct{}, 1)} }

// post queues c without blocking.
func (cq *changeQueue) post(c Change) {
	cq.mu.Lock()
	if c.Action == ChangeRescan || len(cq.q) >= changeQueueLen {
		cq.overflow, cq.q = true, cq.q[:0]
	} else if !cq.overflow {
		cq.q = append(cq.q, c)
	}
	cq.mu.Unlock()
	select {
	case cq.wake <- struct{}{}:
	default:
	}
}

// take returns what waits: a single ChangeRescan after an overflow (it
// covers everything that was dropped), else the queued changes.
func (cq *changeQueue) take() []Change {
	cq.mu.Lock()
	defer cq.mu.Unlock()
	if cq.overflow {
		cq.overflow, cq.q = false, cq.q[:0]
		return []Change{{Action: ChangeRescan}}
	}
	out := cq.q
	cq.q = nil
	return out
}

// pump moves changes from cq to out until done is closed; it closes out
// when it returns.
func (cq *changeQueue) pump(out chan<- Change, done <-chan struct{}) {
	defer close(out)
	for {
		select {
		case <-done:
			return
		case <-cq.wake:
		}
		for _, c := range cq.take() {
			select {
			case out <- c:
			case <-done:
				return
			}
		}
	}
}
