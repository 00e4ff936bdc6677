package usb

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	procCMRegisterNotification   = modCfgMgr32.NewProc("CM_Register_Notification")
	procCMUnregisterNotification = modCfgMgr32.NewProc("CM_Unregister_Notification")
)

// cmNotifyFilter is CM_NOTIFY_FILTER (cfgmgr32.h) for a device interface
// class: cbSize, Flags, FilterType, Reserved, then a union whose largest
// member is WCHAR InstanceId[MAX_DEVICE_ID_LEN]; 416 bytes on amd64 and
// arm64.
type cmNotifyFilter struct {
	size       uint32
	flags      uint32
	filterType uint32
	reserved   uint32
	classGUID  windows.GUID
	_          [2*MaxDeviceIDLen - 16]byte
}

// hotplugSys holds a Hotplug's registrations.
type hotplugSys struct {
	ctx     uintptr   // the callback's context value
	handles []uintptr // HCMNOTIFICATIONs
}

// hotplugs maps the context value given to CM_Register_Notification to
// its Hotplug: the callback receives a number, never a Go pointer.
var (
	hotplugs   sync.Map // uintptr → *Hotplug
	hotplugSeq atomic.Uintptr
)

// notifyCallback is created once for the process: windows.NewCallback
// callbacks are never freed and limited in number.
var notifyCallback = sync.OnceValue(func() uintptr { return windows.NewCallback(cmNotifyCallback) })

// cmNotifyCallback is the CM_NOTIFY_CALLBACK, called on a thread-pool
// thread: it copies the event data, queues a Change and returns at once
// (ERROR_SUCCESS); it never blocks.
func cmNotifyCallback(hNotify, context, action uintptr, data *byte, size uintptr) uintptr {
	v, ok := hotplugs.Load(context)
	if !ok {
		return 0
	}
	h := v.(*Hotplug)
	var b []byte
	if data != nil && size > 0 && size <= maxMultiSZ {
		b = slices.Clone(unsafe.Slice(data, size))
	}
	if c, ok := changeOf(uint32(action), b); ok {
		h.queue.post(c)
	}
	return 0
}

// register registers h for arrivals and removals of USB devices and
// volumes. A missing CM_Register_Notification (before Windows 8, or
// Wine without it) or one that answers CR_CALL_NOT_IMPLEMENTED is an
// error wrapping errors.ErrUnsupported: the caller rescans instead.
func (h *Hotplug) register() error {
	if err := procCMRegisterNotification.Find(); err != nil {
		return fmt.Errorf("device notifications: %w: %w", errors.ErrUnsupported, err)
	}
	h.sys.ctx = hotplugSeq.Add(1)
	hotplugs.Store(h.sys.ctx, h)
	cb := notifyCallback()
	for _, g := range []struct {
		name string
		guid windows.GUID
	}{{"USB devices", GUIDDevInterfaceUSBDevice}, {"volumes", GUIDDevInterfaceVolume}} {
		f := cmNotifyFilter{filterType: cmNotifyFilterTypeDeviceInterface, classGUID: g.guid}
		f.size = uint32(unsafe.Sizeof(f))
		var handle uintptr
		r, _, _ := procCMRegisterNotification.Call(uintptr(unsafe.Pointer(&f)), h.sys.ctx, cb, uintptr(unsafe.Pointer(&handle)))
		if cr := crErr(r); cr != 0 {
			h.unregister()
			if cr == crErr(windows.CR_CALL_NOT_IMPLEMENTED) {
				return fmt.Errorf("device notifications for %s: CM_Register_Notification: %w: %w", g.name, errors.ErrUnsupported, cr)
			}
			return fmt.Errorf("device notifications for %s: CM_Register_Notification: %w", g.name, cr)
		}
		h.sys.handles = append(h.sys.handles, handle)
	}
	return nil
}

// unregister ends every registration of h. CM_Unregister_Notification
// waits for callbacks in flight, so it must never run in one.
func (h *Hotplug) unregister() error {
	var errs []error
	for _, handle := range h.sys.handles {
		r, _, _ := procCMUnregisterNotification.Call(handle)
		if cr := crErr(r); cr != 0 {
			errs = append(errs, fmt.Errorf("CM_Unregister_Notification: %w", cr))
		}
	}
	h.sys.handles = nil
	hotplugs.Delete(h.sys.ctx)
	return errors.Join(errs...)
}
