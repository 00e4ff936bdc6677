package network

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// wlanapi.dll, loaded when first used: it is missing on servers without
// the Wireless LAN service, and its calls fail while the WLAN AutoConfig
// service is stopped.
var (
	modWlanapi = windows.NewLazySystemDLL("wlanapi.dll")

	procWlanOpenHandle           = modWlanapi.NewProc("WlanOpenHandle")
	procWlanCloseHandle          = modWlanapi.NewProc("WlanCloseHandle")
	procWlanEnumInterfaces       = modWlanapi.NewProc("WlanEnumInterfaces")
	procWlanQueryInterface       = modWlanapi.NewProc("WlanQueryInterface")
	procWlanFreeMemory           = modWlanapi.NewProc("WlanFreeMemory")
	procWlanRegisterNotification = modWlanapi.NewProc("WlanRegisterNotification")
)

const (
	wlanClientVersion          = 2 // Vista and later
	wlanIntfOpcodeCurrentConn  = 7 // wlan_intf_opcode_current_connection
	wlanNotificationSourceNone = 0
	wlanNotificationSourceACM  = 0x08
	// ACM notification codes that change what a link is associated
	// with (wlanapi.h, WLAN_NOTIFICATION_ACM).
	wlanACMConnectionComplete = 10
	wlanACMInterfaceArrival   = 13
	wlanACMInterfaceRemoval   = 14
	wlanACMDisconnected       = 21
)

// wlanClient is an open wlanapi handle.
type wlanClient struct {
	mu sync.Mutex // serialises the handle's use and its closing
	h  windows.Handle
}

// openWlan opens a wlanapi client handle.
func openWlan() (*wlanClient, error) {
	if err := procWlanOpenHandle.Find(); err != nil {
		return nil, fmt.Errorf("wlanapi: %w: %w", errors.ErrUnsupported, err)
	}
	for _, p := range []*windows.LazyProc{procWlanCloseHandle, procWlanEnumInterfaces, procWlanQueryInterface, procWlanFreeMemory} {
		if err := p.Find(); err != nil {
			return nil, fmt.Errorf("wlanapi: %w: %w", errors.ErrUnsupported, err)
		}
	}
	var ver uint32
	var h windows.Handle
	if r, _, _ := procWlanOpenHandle.Call(wlanClientVersion, 0, uintptr(unsafe.Pointer(&ver)), uintptr(unsafe.Pointer(&h))); r != 0 {
		return nil, fmt.Errorf("WlanOpenHandle: %w", windows.Errno(r))
	}
	return &wlanClient{h: h}, nil
}

// ssids returns the SSID each wireless interface is connected to, by
// interface GUID (memory order), "" for one that is not connected; errs
// names, by GUID, the interfaces whose connection could not be read.
func (c *wlanClient) ssids() (map[[16]byte]string, map[[16]byte]error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == 0 {
		return nil, nil, errors.New("wlanapi: handle closed")
	}
	var list unsafe.Pointer
	if r, _, _ := procWlanEnumInterfaces.Call(uintptr(c.h), 0, uintptr(unsafe.Pointer(&list))); r != 0 {
		return nil, nil, fmt.Errorf("WlanEnumInterfaces: %w", windows.Errno(r))
	}
	defer procWlanFreeMemory.Call(uintptr(list))
	n := *(*uint32)(list)
	if n > maxWlanInterfaces {
		return nil, nil, fmt.Errorf("WlanEnumInterfaces: %d interfaces: %w", n, ErrWinTable)
	}
	ifs, err := parseWlanInterfaceList(unsafe.Slice((*byte)(list), wlanListHead+int(n)*wlanInfoLen))
	if err != nil {
		return nil, nil, err
	}
	out := map[[16]byte]string{}
	errs := map[[16]byte]error{}
	for _, i := range ifs {
		out[i.GUID] = ""
		if i.State != wlanStateConnected {
			continue
		}
		guid := i.GUID
		var size uint32
		var data unsafe.Pointer
		r, _, _ := procWlanQueryInterface.Call(uintptr(c.h), uintptr(unsafe.Pointer(&guid[0])), wlanIntfOpcodeCurrentConn, 0,
			uintptr(unsafe.Pointer(&size)), uintptr(unsafe.Pointer(&data)), 0)
		if r != 0 {
			errs[i.GUID] = fmt.Errorf("WlanQueryInterface: %w", windows.Errno(r))
			continue
		}
		b := unsafe.Slice((*byte)(data), min(size, 1<<16))
		ssid, err := parseWlanConnection(b)
		procWlanFreeMemory.Call(uintptr(data))
		if err != nil {
			errs[i.GUID] = err
			continue
		}
		out[i.GUID] = ssid
	}
	return out, errs, nil
}

// close unregisters notifications and closes the handle.
func (c *wlanClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == 0 {
		return
	}
	if procWlanRegisterNotification.Find() == nil {
		procWlanRegisterNotification.Call(uintptr(c.h), wlanNotificationSourceNone, 0, 0, 0, 0, 0)
	}
	procWlanCloseHandle.Call(uintptr(c.h), 0)
	c.h = 0
}
