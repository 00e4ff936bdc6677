package network

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// Functions looked up when first used: a missing one (GetIpNetTable2
// before Vista, wlanapi.dll on a server without the WLAN service) is an
// error of its own, never a panic in golang.org/x/sys/windows.
var (
	modIphlpapi = windows.NewLazySystemDLL("iphlpapi.dll")
	modCfgMgr32 = windows.NewLazySystemDLL("cfgmgr32.dll")

	procGetIpNetTable2               = modIphlpapi.NewProc("GetIpNetTable2")
	procGetIfTable2Ex                = modIphlpapi.NewProc("GetIfTable2Ex")
	procGetIpForwardTable2           = modIphlpapi.NewProc("GetIpForwardTable2")
	procNotifyIpInterfaceChange      = modIphlpapi.NewProc("NotifyIpInterfaceChange")
	procNotifyUnicastIpAddressChange = modIphlpapi.NewProc("NotifyUnicastIpAddressChange")
	procNotifyRouteChange2           = modIphlpapi.NewProc("NotifyRouteChange2")
	procCancelMibChangeNotify2       = modIphlpapi.NewProc("CancelMibChangeNotify2")

	procCMLocateDevNodeW = modCfgMgr32.NewProc("CM_Locate_DevNodeW")
	procCMGetParent      = modCfgMgr32.NewProc("CM_Get_Parent")
	procCMGetDeviceIDW   = modCfgMgr32.NewProc("CM_Get_Device_IDW")
)

// gaaFlags asks GetAdaptersAddresses for unicast addresses and gateways,
// and nothing it does not need.
const gaaFlags = windows.GAA_FLAG_INCLUDE_GATEWAYS | windows.GAA_FLAG_SKIP_ANYCAST |
	windows.GAA_FLAG_SKIP_MULTICAST | windows.GAA_FLAG_SKIP_DNS_SERVER

// maxGAABuffer bounds the buffer GetAdaptersAddresses may ask for.
const maxGAABuffer = 16 << 20

// readAdapters lists the adapters bound to IPv4 or IPv6
// (GetAdaptersAddresses, AF_UNSPEC) with their addresses, gateways and
// metrics. Disabled adapters are not listed by Windows.
func readAdapters() ([]winAdapter, error) {
	size := uint32(16 << 10)
	var buf []byte
	for range 4 {
		buf = make([]byte, size)
		err := windows.GetAdaptersAddresses(windows.AF_UNSPEC, gaaFlags, 0, (*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])), &size)
		if err == nil {
			break
		}
		if errors.Is(err, windows.ERROR_NO_DATA) {
			return nil, nil
		}
		if !errors.Is(err, windows.ERROR_BUFFER_OVERFLOW) || size > maxGAABuffer {
			return nil, fmt.Errorf("GetAdaptersAddresses: %w", err)
		}
		buf = nil
	}
	if buf == nil {
		return nil, errors.New("GetAdaptersAddresses: the list kept growing")
	}
	return adaptersFrom((*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])))
}

// Bounds of the lists GetAdaptersAddresses links: far beyond a real
// machine, an end to a list that would not end. A list longer than its
// bound is an error, never cut short: an adapter, address or gateway
// past the bound would go unjudged.
const (
	maxAdapters        = 4096
	maxAdapterAddrs    = 4096 // unicast addresses of one adapter
	maxAdapterGateways = 1024 // gateways of one adapter
)

// adaptersFrom reads the adapters linked from first (GetAdaptersAddresses'
// IP_ADAPTER_ADDRESSES list) into winAdapters. A list longer than
// maxAdapters, or an adapter with more than maxAdapterAddrs unicast
// addresses or maxAdapterGateways gateways, is an error: no list.
func adaptersFrom(first *windows.IpAdapterAddresses) ([]winAdapter, error) {
	var out []winAdapter
	for a := first; a != nil; a = a.Next {
		if len(out) == maxAdapters {
			return nil, fmt.Errorf("GetAdaptersAddresses: more than %d adapters: %w", maxAdapters, ErrWinTable)
		}
		w := winAdapter{
			Index:       int(a.IfIndex),
			GUID:        windows.BytePtrToString(a.AdapterName),
			Alias:       windows.UTF16PtrToString(a.FriendlyName),
			Description: windows.UTF16PtrToString(a.Description),
			MAC:         append([]byte(nil), a.PhysicalAddress[:min(a.PhysicalAddressLength, uint32(len(a.PhysicalAddress)))]...),
			IfType:      a.IfType,
			TunnelType:  a.TunnelType,
			OperStatus:  a.OperStatus,
			Ipv4Metric:  a.Ipv4Metric,
			Ipv6Metric:  a.Ipv6Metric,
		}
		if w.Index == 0 {
			w.Index = int(a.Ipv6IfIndex)
		}
		n := 0
		for u := a.FirstUnicastAddress; u != nil; u = u.Next {
			if n++; n > maxAdapterAddrs {
				return nil, fmt.Errorf("GetAdaptersAddresses: adapter %d: more than %d unicast addresses: %w", w.Index, maxAdapterAddrs, ErrWinTable)
			}
			if ip, ok := netip.AddrFromSlice(u.Address.IP()); ok {
				w.Addrs = append(w.Addrs, winAddr{IP: ip, Bits: int(u.OnLinkPrefixLength), DadState: u.DadState, PrefixOrigin: u.PrefixOrigin})
			}
		}
		n = 0
		for g := a.FirstGatewayAddress; g != nil; g = g.Next {
			if n++; n > maxAdapterGateways {
				return nil, fmt.Errorf("GetAdaptersAddresses: adapter %d: more than %d gateways: %w", w.Index, maxAdapterGateways, ErrWinTable)
			}
			if ip, ok := netip.AddrFromSlice(g.Address.IP()); ok {
				w.Gateways = append(w.Gateways, ip)
			}
		}
		out = append(out, w)
	}
	return out, nil
}

// ifRow is what readIfRows keeps of a MIB_IF_ROW2.
type ifRow struct {
	AdminStatus, MediaConnectState uint32
	StatusFlags                    uint8
}

// readIfRows reads every interface's MIB_IF_ROW2 (GetIfTable2Ex without
// statistics), by index.
func readIfRows() (map[int]ifRow, error) {
	if err := procGetIfTable2Ex.Find(); err != nil {
		return nil, fmt.Errorf("GetIfTable2Ex: %w: %w", errors.ErrUnsupported, err)
	}
	var t *windows.MibIfTable2
	if err := windows.GetIfTable2Ex(windows.MibIfTableNormalWithoutStatistics, &t); err != nil {
		return nil, fmt.Errorf("GetIfTable2Ex: %w", err)
	}
	defer windows.FreeMibTable(unsafe.Pointer(t))
	n := t.NumEntries
	if n > maxIfRows {
		return nil, fmt.Errorf("GetIfTable2Ex: %d rows, more than %d: %w", n, maxIfRows, ErrWinTable)
	}
	if n == 0 {
		return map[int]ifRow{}, nil
	}
	rows := unsafe.Slice(&t.Table[0], n)
	out := make(map[int]ifRow, n)
	for i := range rows {
		r := &rows[i]
		out[int(r.InterfaceIndex)] = ifRow{AdminStatus: r.AdminStatus, MediaConnectState: r.MediaConnectState, StatusFlags: r.InterfaceAndOperStatusFlags}
	}
	return out, nil
}

// Bounds of the interface and route tables, in rows: a longer table is
// an error, never cut short.
const (
	maxIfRows    = 1 << 16
	maxRouteRows = 1 << 20
)

// readRoutes reads the route table (GetIpForwardTable2, AF_UNSPEC). A
// table longer than maxRouteRows is an error and no routes; rows whose
// destination does not parse are left out and counted in the error
// returned with the others (so a caller that gets routes and an error
// has an incomplete table).
func readRoutes() ([]winRoute, error) {
	if err := procGetIpForwardTable2.Find(); err != nil {
		return nil, fmt.Errorf("GetIpForwardTable2: %w: %w", errors.ErrUnsupported, err)
	}
	var t *windows.MibIpForwardTable2
	if err := windows.GetIpForwardTable2(windows.AF_UNSPEC, &t); err != nil {
		return nil, fmt.Errorf("GetIpForwardTable2: %w", err)
	}
	defer windows.FreeMibTable(unsafe.Pointer(t))
	if t.NumEntries > maxRouteRows {
		return nil, fmt.Errorf("GetIpForwardTable2: %d rows, more than %d: %w", t.NumEntries, maxRouteRows, ErrWinTable)
	}
	if t.NumEntries == 0 {
		return []winRoute{}, nil
	}
	rows := unsafe.Slice(&t.Table[0], t.NumEntries)
	out := make([]winRoute, 0, len(rows))
	bad := 0
	for i := range rows {
		r := &rows[i]
		dst, err := parseSockaddrInet((*[sockaddrInetLen]byte)(unsafe.Pointer(&r.DestinationPrefix.Prefix))[:])
		if err != nil {
			bad++
			continue
		}
		p, err := dst.Prefix(int(r.DestinationPrefix.PrefixLength))
		if err != nil {
			bad++
			continue
		}
		nh, _ := parseSockaddrInet((*[sockaddrInetLen]byte)(unsafe.Pointer(&r.NextHop))[:])
		out = append(out, winRoute{Index: int(r.InterfaceIndex), Dst: p, NextHop: nh, Metric: r.Metric, Loopback: r.Loopback != 0})
	}
	if bad > 0 {
		return out, fmt.Errorf("GetIpForwardTable2: %d of %d rows malformed: %w", bad, len(rows), ErrWinTable)
	}
	return out, nil
}

// readNeighbours reads the neighbour table (GetIpNetTable2). Where
// AF_UNSPEC is refused (Wine 8.0 answers only AF_INET), each family is
// asked alone; a family the system does not serve (ERROR_NOT_SUPPORTED,
// ERROR_INVALID_FUNCTION) is named in missing, and the others returned.
func readNeighbours() (neigh []Neighbour, missing []string, err error) {
	if err := procGetIpNetTable2.Find(); err != nil {
		return nil, []string{"GetIpNetTable2"}, nil
	}
	n, err := ipNetTable2(windows.AF_UNSPEC)
	if err == nil {
		return n, nil, nil
	}
	var errs []error
	for _, fam := range []struct {
		af   uint16
		name string
	}{{windows.AF_INET, "IPv4"}, {windows.AF_INET6, "IPv6"}} {
		n, err := ipNetTable2(fam.af)
		switch {
		case err == nil:
			neigh = append(neigh, n...)
		case errors.Is(err, windows.ERROR_NOT_SUPPORTED), errors.Is(err, windows.ERROR_INVALID_FUNCTION):
			missing = append(missing, "GetIpNetTable2 "+fam.name)
		default:
			errs = append(errs, err)
		}
	}
	return neigh, missing, errors.Join(errs...)
}

func ipNetTable2(family uint16) ([]Neighbour, error) {
	var t unsafe.Pointer
	r, _, _ := procGetIpNetTable2.Call(uintptr(family), uintptr(unsafe.Pointer(&t)))
	if r != 0 {
		return nil, fmt.Errorf("GetIpNetTable2(%d): %w", family, windows.Errno(r))
	}
	if t == nil {
		return nil, nil
	}
	defer windows.FreeMibTable(t)
	n := *(*uint32)(t)
	if n > maxNeighbours {
		return nil, fmt.Errorf("GetIpNetTable2: %d rows: %w", n, ErrWinTable)
	}
	return parseIpNetTable2(unsafe.Slice((*byte)(t), ipnetTableHead+int(n)*ipnetRow2Len))
}

// netAdapterClass is the setup class of network adapters,
// {4D36E972-E325-11CE-BFC1-08002BE10318} (devguid.h).
const netAdapterClass = `{4D36E972-E325-11CE-BFC1-08002BE10318}`

// maxDepth bounds the walk up the device tree: more than any real tree
// holds (USB tiers, a dozen PCI bridges of docks and Thunderbolt).
const maxDepth = 64

// rootDevNode is the instance id of the device tree's root.
const rootDevNode = `HTREE\ROOT\0`

// pnpChain returns the device instance ids from an adapter's PnP node
// (the PnPInstanceId of its Connection key) up through its parents, and
// whether the walk ended at the root of the tree or at a USB device, so
// that the chain is known to be whole where it matters. Wine 8.0 has no
// Connection keys and no parents (CM_Get_Parent answers
// CR_NO_SUCH_DEVNODE for every node): there the walk is never ok.
func pnpChain(guid string) ([]string, bool) {
	if _, ok := guidBytes(guid); !ok {
		return nil, false
	}
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Control\Network\`+netAdapterClass+`\`+guid+`\Connection`, registry.QUERY_VALUE)
	if err != nil {
		return nil, false
	}
	id, _, err := k.GetStringValue("PnPInstanceId")
	k.Close()
	if err != nil || id == "" || len(id) > 400 {
		return nil, false
	}
	chain := []string{id}
	if usbDevicePath(chain) != "" {
		return chain, true
	}
	if procCMLocateDevNodeW.Find() != nil || procCMGetParent.Find() != nil || procCMGetDeviceIDW.Find() != nil {
		return chain, false
	}
	p, err := windows.UTF16PtrFromString(id)
	if err != nil {
		return chain, false
	}
	var inst uint32
	if r, _, _ := procCMLocateDevNodeW.Call(uintptr(unsafe.Pointer(&inst)), uintptr(unsafe.Pointer(p)), 0); r != 0 {
		return chain, false
	}
	seen := map[string]bool{strings.ToUpper(id): true}
	for range maxDepth {
		var parent uint32
		if r, _, _ := procCMGetParent.Call(uintptr(unsafe.Pointer(&parent)), uintptr(inst), 0); r != 0 {
			return chain, false
		}
		buf := make([]uint16, 201) // MAX_DEVICE_ID_LEN + 1
		if r, _, _ := procCMGetDeviceIDW.Call(uintptr(parent), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0); r != 0 {
			return chain, false
		}
		pid := windows.UTF16ToString(buf)
		if seen[strings.ToUpper(pid)] {
			return chain, false // a loop
		}
		seen[strings.ToUpper(pid)] = true
		chain = append(chain, pid)
		if strings.EqualFold(pid, rootDevNode) || usbDevicePath(chain) != "" {
			return chain, true
		}
		inst = parent
	}
	return chain, false
}
