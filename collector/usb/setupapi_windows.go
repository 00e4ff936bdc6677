package usb

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Device interface and setup classes the backend asks for (winioctl.h,
// usbiodef.h, devguid.h); golang.org/x/sys/windows does not define them.
var (
	// GUIDDevInterfaceUSBDevice is GUID_DEVINTERFACE_USB_DEVICE
	// {A5DCBF10-6530-11D2-901F-00C04FB951ED}: every USB device (not
	// interface) exposes it.
	GUIDDevInterfaceUSBDevice = windows.GUID{Data1: 0xA5DCBF10, Data2: 0x6530, Data3: 0x11D2, Data4: [8]byte{0x90, 0x1F, 0x00, 0xC0, 0x4F, 0xB9, 0x51, 0xED}}
	// GUIDDevInterfaceVolume is GUID_DEVINTERFACE_VOLUME
	// {53F5630D-B6BF-11D0-94F2-00A0C91EFB8B}.
	GUIDDevInterfaceVolume = windows.GUID{Data1: 0x53F5630D, Data2: 0xB6BF, Data3: 0x11D0, Data4: [8]byte{0x94, 0xF2, 0x00, 0xA0, 0xC9, 0x1E, 0xFB, 0x8B}}
	// GUIDDevInterfaceDisk is GUID_DEVINTERFACE_DISK
	// {53F56307-B6BF-11D0-94F2-00A0C91EFB8B}.
	GUIDDevInterfaceDisk = windows.GUID{Data1: 0x53F56307, Data2: 0xB6BF, Data3: 0x11D0, Data4: [8]byte{0x94, 0xF2, 0x00, 0xA0, 0xC9, 0x1E, 0xFB, 0x8B}}
	// guidDevClassDiskDrive is GUID_DEVCLASS_DISKDRIVE
	// {4D36E967-E325-11CE-BFC1-08002BE10318}, the setup class of disks.
	guidDevClassDiskDrive = windows.GUID{Data1: 0x4D36E967, Data2: 0xE325, Data3: 0x11CE, Data4: [8]byte{0xBF, 0xC1, 0x08, 0x00, 0x2B, 0xE1, 0x03, 0x18}}
)

// Functions golang.org/x/sys/windows lacks, or wraps in a way that loses
// what the parsers want (the raw REG_MULTI_SZ bytes), loaded on first
// use.
var (
	modSetupAPI = windows.NewLazySystemDLL("setupapi.dll")
	modCfgMgr32 = windows.NewLazySystemDLL("cfgmgr32.dll")

	procSetupDiGetDeviceRegistryPropertyW = modSetupAPI.NewProc("SetupDiGetDeviceRegistryPropertyW")
	procCMGetParent                       = modCfgMgr32.NewProc("CM_Get_Parent")
	procCMLocateDevNodeW                  = modCfgMgr32.NewProc("CM_Locate_DevNodeW")
	procCMGetDeviceIDW                    = modCfgMgr32.NewProc("CM_Get_Device_IDW")
	procCMGetDevNodeRegistryPropertyW     = modCfgMgr32.NewProc("CM_Get_DevNode_Registry_PropertyW")
)

// IOCTLs and their structures (winioctl.h).
const (
	ioctlStorageGetDeviceNumber = 0x002D1080 // STORAGE_DEVICE_NUMBER out
	ioctlStorageQueryProperty   = 0x002D1400 // STORAGE_PROPERTY_QUERY in, STORAGE_DEVICE_DESCRIPTOR out
	ioctlDiskGetLengthInfo      = 0x0007405C // GET_LENGTH_INFORMATION out (needs read access)
	ioctlDiskIsWritable         = 0x00070024 // fails with ERROR_WRITE_PROTECT when read-only
)

// SetupAPI lists USB devices through SetupAPI: every present node under
// the USB enumerator (devices, interfaces of composite devices, root
// hubs), every node exposing GUID_DEVINTERFACE_USB_DEVICE, and the disk
// drives below them. It needs no audit policy, registry setting or
// window. Each call enumerates afresh; methods are safe for concurrent
// use.
//
// A Device's Path is its device instance id (USB\VID_0781&PID_5567\<serial>),
// a root hub's "usb:" and its instance id; see assembleWindows for the
// rest of the mapping and what stays empty on Windows (BusNum, DevNum,
// Speed, Authorized, bDeviceClass of single-function devices). It fails
// closed: a USB node it cannot identify, and a disk that may be USB
// storage but is below no USB device it read (its place in the device
// tree unreadable, a loop, deeper than maxTreeDepth; on the USB bus,
// removable, or of a bus type that could not be read), or that came in
// through a hot-plug port (Thunderbolt, USB4, eSATA, FireWire, a card
// slot: hotPlugged) or may have, is a Device whose Path starts with
// UnknownPathPrefix and which carries no ids: it is never left out, nor
// taken for an internal disk.
type SetupAPI struct {
	log *slog.Logger
	// unreadable holds, from the last read of the disks, the disks whose
	// number or size could not be read, by lower-case name
	// ("physicaldrive2"), with why (UnreadableDisk).
	mu         sync.Mutex
	unreadable map[string]string
	// disksIncomplete says why the last list of the disks may lack some
	// ("" when it was whole): SetupAPI failed, or a disk's instance id
	// could not be read (DiskListIncomplete).
	disksIncomplete string
}

var _ Enumerator = (*SetupAPI)(nil)

// NewSetupAPI returns the SetupAPI backend. logger may be nil.
func NewSetupAPI(logger *slog.Logger) *SetupAPI {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &SetupAPI{log: logger.With("collector", "usb", "backend", "setupapi")}
}

// Devices returns every present USB device, root hubs included, sorted by
// Path. A node whose ids do not parse is a Device that cannot be
// identified (UnknownPathPrefix) and is named in the returned error, as
// is a node whose properties could not all be read; a failing SetupAPI
// call gives no list and an error.
func (s *SetupAPI) Devices() ([]Device, error) {
	nodes, nerr := s.usbNodes()
	if nodes == nil && nerr != nil {
		return nil, nerr
	}
	disks, derr := s.disks()
	devs, aerr := assembleWindows(nodes, disks)
	return devs, errors.Join(nerr, derr, aerr)
}

// Device returns the device whose Path is path (compared without regard
// to case, as Windows compares instance ids). A device that is not
// present is an error wrapping fs.ErrNotExist.
func (s *SetupAPI) Device(path string) (Device, error) {
	devs, err := s.Devices()
	for _, d := range devs {
		if strings.EqualFold(d.Path, path) {
			return d, nil
		}
	}
	if err != nil {
		return Device{}, fmt.Errorf("usb device %s: %w", path, err)
	}
	return Device{}, fmt.Errorf("usb device %s: %w", path, fs.ErrNotExist)
}

// OwnerOf returns the Path of the USB device a disk belongs to; disk is
// "PhysicalDriveN" or `\\.\PhysicalDriveN` (what a volume's extents
// name), or a disk's instance id. ok is false when no USB device holds it.
func (s *SetupAPI) OwnerOf(disk string) (path string, ok bool) {
	disk = strings.TrimPrefix(disk, `\\.\`)
	devs, _ := s.Devices()
	for _, d := range devs {
		for _, b := range d.BlockDevices {
			if strings.EqualFold(b.Name, disk) {
				return d.Path, true
			}
		}
	}
	return "", false
}

// usbNodes reads the nodes under the USB enumerator and those exposing
// the USB device interface, each once.
func (s *SetupAPI) usbNodes() ([]winNode, error) {
	all, err := readNodeSet(nil, "USB", windows.DIGCF_PRESENT|windows.DIGCF_ALLCLASSES)
	if all == nil && err != nil {
		return nil, fmt.Errorf("list USB device nodes: %w", err)
	}
	more, merr := readNodeSet(&GUIDDevInterfaceUSBDevice, "", windows.DIGCF_PRESENT|windows.DIGCF_DEVICEINTERFACE)
	for _, n := range more {
		if !slices.ContainsFunc(all, func(m winNode) bool { return strings.EqualFold(m.InstanceID, n.InstanceID) }) {
			all = append(all, n)
		}
	}
	if all == nil {
		all = []winNode{}
	}
	return all, errors.Join(err, merr)
}

// disks reads the present disk drives with their numbers and sizes;
// assembleWindows keeps those below a USB device.
func (s *SetupAPI) disks() ([]winDisk, error) {
	nodes, err := readNodeSet(&guidDevClassDiskDrive, "", windows.DIGCF_PRESENT)
	out := make([]winDisk, 0, len(nodes))
	unreadable := map[string]string{}
	for _, n := range nodes {
		d := winDisk{winNode: n, Number: -1}
		gone := func(err error) bool { return errors.Is(err, crNoSuchDevNode) && !devNodePresent(n.InstanceID) }
		if placeDisk(&d, cmParentOf, cmCapabilities, gone, s.log) {
			continue
		}
		sizeErr, derr := readDiskInfo(&d)
		if derr != nil {
			s.log.Debug("disk details unreadable", "disk", n.InstanceID, "err", derr)
		}
		if sizeErr != nil && d.Number >= 0 {
			// Not an empty slot: a disk that could not be read. (A disk
			// whose number could not be read is named by its instance
			// id instead of PhysicalDriveN, which says so itself.)
			s.log.Warn("disk size unreadable: its media are judged as not shown to be encrypted", "disk", n.InstanceID, "err", sizeErr)
			unreadable[strings.ToLower(fmt.Sprintf("PhysicalDrive%d", d.Number))] = sizeErr.Error()
		}
		out = append(out, d)
	}
	if err != nil {
		err = fmt.Errorf("list disk drives: %w", err)
	}
	incomplete := ""
	if errors.Is(err, errListIncomplete) {
		incomplete = err.Error()
		s.log.Warn("disk list incomplete: the media of storage that requires encryption are judged as not shown to be encrypted", "err", err)
	}
	s.mu.Lock()
	s.unreadable, s.disksIncomplete = unreadable, incomplete
	s.mu.Unlock()
	return out, err
}

// DiskListIncomplete says why the disks listed at the last enumeration
// may not be all the disks there are (SetupAPI failed to list them, or a
// disk's instance id could not be read); ok is false when the list was
// whole. A disk missing from the list is on no USB device, so the media
// of any storage device may be missing too.
func (s *SetupAPI) DiskListIncomplete() (why string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.disksIncomplete, s.disksIncomplete != ""
}

// UnreadableDisk says why the disk name ("PhysicalDrive2") could not be
// read at the last enumeration (its size unknown, and not because its
// slot is empty); ok is false for a disk that was read, or an empty slot.
func (s *SetupAPI) UnreadableDisk(name string) (why string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	why, ok = s.unreadable[strings.ToLower(name)]
	return why, ok
}

// maxDeviceNodes bounds one SetupAPI enumeration, in nodes: far more
// than a machine has (127 devices a host controller, each with a few
// interfaces), yet an end to a list that would never end.
const maxDeviceNodes = 1 << 16

// readNodeSet enumerates one SetupDiGetClassDevsEx set, every node of
// it (enumerateAll: a set of more than maxDeviceNodes is an error, the
// nodes read so far returned with it, never a list silently cut short).
// The error also names the nodes that could not be read in full; it
// wraps errListIncomplete when nodes may be missing from the list (the
// set could not be made or walked to its end, a node's instance id
// could not be read).
func readNodeSet(class *windows.GUID, enumerator string, flags windows.DIGCF) ([]winNode, error) {
	set, err := windows.SetupDiGetClassDevsEx(class, enumerator, 0, flags, 0, "")
	if err != nil {
		return nil, fmt.Errorf("%w: SetupDiGetClassDevsEx(%s): %w", errListIncomplete, enumerator, err)
	}
	defer windows.SetupDiDestroyDeviceInfoList(set)
	var nodes []winNode
	var errs []error
	_, err = enumerateAll(maxDeviceNodes, func(i int) (bool, error) {
		data, err := windows.SetupDiEnumDeviceInfo(set, i)
		if errors.Is(err, windows.ERROR_NO_MORE_ITEMS) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("SetupDiEnumDeviceInfo: %w", err)
		}
		n, err := readNode(set, data)
		switch {
		case n.InstanceID == "":
			if err == nil {
				err = fmt.Errorf("device node %d: an empty instance id", data.DevInst)
			}
			errs = append(errs, fmt.Errorf("%w: %w", errListIncomplete, err))
		case err != nil:
			errs = append(errs, err)
		}
		if n.InstanceID != "" {
			nodes = append(nodes, n)
		}
		return false, nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("%w: SetupDiGetClassDevsEx(%s): %w", errListIncomplete, enumerator, err))
	}
	return nodes, errors.Join(errs...)
}

// errListIncomplete is wrapped by readNodeSet's errors that mean nodes
// may be missing from its list (not only properties from its nodes).
var errListIncomplete = errors.New("node list incomplete")

// readNode reads one node's ids, names and parent. A property that is
// absent stays empty; one that cannot be read is named in the error, and
// the node, with its instance id, is still returned (what was read is
// worth judging).
func readNode(set windows.DevInfo, data *windows.DevInfoData) (winNode, error) {
	id, err := windows.SetupDiGetDeviceInstanceId(set, data)
	if err != nil {
		return winNode{}, fmt.Errorf("device node %d: instance id: %w", data.DevInst, err)
	}
	n := winNode{InstanceID: id}
	var errs []error
	multi := func(p windows.SPDRP) []string {
		b, err := registryProperty(set, data, p)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		ss, err := ParseMultiSZ(b)
		if err != nil {
			errs = append(errs, err)
		}
		return ss
	}
	single := func(p windows.SPDRP) string {
		b, err := registryProperty(set, data, p)
		if err != nil {
			errs = append(errs, err)
			return ""
		}
		s, err := ParseSZ(b)
		if err != nil {
			errs = append(errs, err)
		}
		return s
	}
	n.HardwareIDs = multi(windows.SPDRP_HARDWAREID)
	n.CompatibleIDs = multi(windows.SPDRP_COMPATIBLEIDS)
	n.Class = single(windows.SPDRP_CLASS)
	n.FriendlyName = single(windows.SPDRP_FRIENDLYNAME)
	n.Description = single(windows.SPDRP_DEVICEDESC)
	n.Manufacturer = single(windows.SPDRP_MFG)
	n.Service = single(windows.SPDRP_SERVICE)
	n.ParentID = parentID(set, data)
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("device node %s: %w", clip(id), err)
	}
	return n, nil
}

// registryProperty returns the raw bytes of a node's registry property;
// nil when the node does not have it (ERROR_INVALID_DATA).
func registryProperty(set windows.DevInfo, data *windows.DevInfoData, prop windows.SPDRP) ([]byte, error) {
	buf := make([]byte, 512)
	for range 3 {
		var regType, need uint32
		r, _, e := procSetupDiGetDeviceRegistryPropertyW.Call(uintptr(set), uintptr(unsafe.Pointer(data)), uintptr(prop),
			uintptr(unsafe.Pointer(&regType)), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), uintptr(unsafe.Pointer(&need)))
		if r != 0 {
			return buf[:min(int(need), len(buf))], nil
		}
		switch {
		case errors.Is(e, windows.ERROR_INVALID_DATA), errors.Is(e, windows.ERROR_NOT_FOUND):
			return nil, nil
		case errors.Is(e, windows.ERROR_INSUFFICIENT_BUFFER) && int(need) > len(buf) && need <= maxMultiSZ:
			buf = make([]byte, need)
		default:
			return nil, fmt.Errorf("SetupDiGetDeviceRegistryProperty %d: %w", prop, e)
		}
	}
	return nil, fmt.Errorf("SetupDiGetDeviceRegistryProperty %d: size keeps changing", prop)
}

// devpkeyDeviceParent is DEVPKEY_Device_Parent (devpkey.h): the parent's
// instance id, as a string property.
var devpkeyDeviceParent = windows.DEVPROPKEY{
	FmtID: windows.DEVPROPGUID{Data1: 0x4340a6c5, Data2: 0x93fa, Data3: 0x4706, Data4: [8]byte{0x97, 0x2c, 0x7b, 0x64, 0x80, 0x08, 0xa5, 0xa7}},
	PID:   8,
}

// parentID returns a node's parent's instance id: CM_Get_Parent and
// CM_Get_Device_ID, or DEVPKEY_Device_Parent where those fail (Wine 8.0's
// CM_Get_Parent answers CR_NO_SUCH_DEVNODE for every node); "" when
// neither answers.
func parentID(set windows.DevInfo, data *windows.DevInfoData) string {
	if _, id, err := parentOfDevInst(uint32(data.DevInst)); err == nil && id != "" {
		return id
	}
	if v, err := windows.SetupDiGetDeviceProperty(set, data, &devpkeyDeviceParent); err == nil {
		if id, ok := v.(string); ok {
			return id
		}
	}
	return ""
}

// parentOfDevInst returns a node's parent and the parent's instance id
// (CM_Get_Parent, CM_Get_Device_IDW).
func parentOfDevInst(devInst uint32) (uint32, string, error) {
	if err := procCMGetParent.Find(); err != nil {
		return 0, "", fmt.Errorf("%w: %w", errors.ErrUnsupported, err)
	}
	var parent uint32
	r, _, _ := procCMGetParent.Call(uintptr(unsafe.Pointer(&parent)), uintptr(devInst), 0)
	if r != 0 {
		return 0, "", fmt.Errorf("CM_Get_Parent: %w", crErr(r))
	}
	buf := make([]uint16, MaxDeviceIDLen+1)
	r, _, _ = procCMGetDeviceIDW.Call(uintptr(parent), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0)
	if r != 0 {
		return parent, "", fmt.Errorf("CM_Get_Device_ID: %w", crErr(r))
	}
	return parent, windows.UTF16ToString(buf), nil
}

// cmParentOf returns the instance id of the parent of the present node
// id (CM_Locate_DevNodeW, CM_Get_Parent, CM_Get_Device_IDW): what
// walkAncestors asks on Windows. Wine 8.0's CM_Get_Parent fails for
// every node (CR_NO_SUCH_DEVNODE); it lists no disks either.
func cmParentOf(id string) (string, error) {
	inst, err := locateDevNode(id)
	if err != nil {
		return "", err
	}
	_, pid, err := parentOfDevInst(inst)
	return pid, err
}

// cmDRPCapabilities is CM_DRP_CAPABILITIES (cfgmgr32.h): a node's
// DEVICE_CAPABILITIES as CM_DEVCAP_* bits, a REG_DWORD.
const cmDRPCapabilities = 0x10

// cmCapabilities returns the PnP capabilities (CM_DEVCAP_* bits) of the
// present node id: CM_Locate_DevNodeW, then
// CM_Get_DevNode_Registry_PropertyW(CM_DRP_CAPABILITIES)
// (https://learn.microsoft.com/windows/win32/api/cfgmgr32/nf-cfgmgr32-cm_get_devnode_registry_propertyw).
// A node without the property (CR_NO_SUCH_VALUE), a value that is not a
// 4-byte REG_DWORD and any failure are errors naming the node: what
// cannot be read is never "not hot-pluggable". Wine 8.0 locates no node
// (CR_FAILURE), so every call fails there.
func cmCapabilities(id string) (uint32, error) {
	inst, err := locateDevNode(id)
	if err != nil {
		return 0, fmt.Errorf("capabilities of %s: %w", safeSegments(id), err)
	}
	flags, err := devInstCapabilities(inst)
	if err != nil {
		return 0, fmt.Errorf("capabilities of %s: %w", safeSegments(id), err)
	}
	return flags, nil
}

// devInstCapabilities returns the PnP capabilities (CM_DEVCAP_* bits) of
// device instance inst: CM_Get_DevNode_Registry_PropertyW with
// CM_DRP_CAPABILITIES, parsed by parseCapabilities. A node without the
// property is CR_NO_SUCH_VALUE, an error like any other failure.
func devInstCapabilities(inst uint32) (uint32, error) {
	if err := procCMGetDevNodeRegistryPropertyW.Find(); err != nil {
		return 0, fmt.Errorf("%w: %w", errors.ErrUnsupported, err)
	}
	var typ, size uint32
	var buf [8]byte // room to see a value longer than a DWORD
	size = uint32(len(buf))
	r, _, _ := procCMGetDevNodeRegistryPropertyW.Call(uintptr(inst), cmDRPCapabilities, uintptr(unsafe.Pointer(&typ)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
	if r != 0 {
		return 0, fmt.Errorf("CM_Get_DevNode_Registry_Property(CM_DRP_CAPABILITIES): %w", crErr(r))
	}
	return parseCapabilities(typ, buf[:min(int(size), len(buf))])
}

// locateDevNode returns the device instance handle of the present node
// id (CM_Locate_DevNodeW, CM_LOCATE_DEVNODE_NORMAL).
func locateDevNode(id string) (uint32, error) {
	if err := procCMLocateDevNodeW.Find(); err != nil {
		return 0, fmt.Errorf("%w: %w", errors.ErrUnsupported, err)
	}
	p, err := windows.UTF16PtrFromString(id)
	if err != nil {
		return 0, fmt.Errorf("CM_Locate_DevNode: %w", err)
	}
	var inst uint32
	if r, _, _ := procCMLocateDevNodeW.Call(uintptr(unsafe.Pointer(&inst)), uintptr(unsafe.Pointer(p)), 0); r != 0 {
		return 0, fmt.Errorf("CM_Locate_DevNode: %w", crErr(r))
	}
	return inst, nil
}

// devNodePresent reports whether node id is still present: false only
// when CM_Locate_DevNodeW says there is no such node (a device removed
// while it was being read); any other answer is taken for present.
func devNodePresent(id string) bool {
	_, err := locateDevNode(id)
	var cr crErr
	return !errors.As(err, &cr) || cr != crNoSuchDevNode
}

// crNoSuchDevNode is CR_NO_SUCH_DEVNODE, also named CR_NO_SUCH_DEVINST
// (cfgmgr32.h): the node is not there.
const crNoSuchDevNode crErr = 0x0D

// crErr is a CONFIGRET (cfgmgr32.h) as an error. windows.CONFIGRET's
// Error method asks CM_MapCrToWin32Err, which Wine 8.0 does not have:
// there the method panics, in whatever logs the error.
type crErr uint32

var crNames = map[crErr]string{
	0x01: "CR_DEFAULT", 0x02: "CR_OUT_OF_MEMORY", 0x03: "CR_INVALID_POINTER", 0x04: "CR_INVALID_FLAG",
	0x05: "CR_INVALID_DEVNODE", 0x0D: "CR_NO_SUCH_DEVNODE", 0x13: "CR_FAILURE", 0x1A: "CR_BUFFER_SMALL",
	0x25: "CR_NO_SUCH_VALUE", 0x33: "CR_ACCESS_DENIED", 0x34: "CR_CALL_NOT_IMPLEMENTED",
	0x37: "CR_NO_SUCH_DEVICE_INTERFACE",
}

func (e crErr) Error() string {
	if n, ok := crNames[e]; ok {
		return fmt.Sprintf("%s (0x%02X)", n, uint32(e))
	}
	return fmt.Sprintf("CONFIGRET 0x%02X", uint32(e))
}

// readDiskInfo fills a disk's number, size, removability and write
// protection from its disk interface. Failures leave the defaults
// (number -1, size 0) and are returned joined in err; sizeErr is set
// when the size could not be read for another reason than an empty slot
// (no medium): such a disk must not be taken for an empty slot.
func readDiskInfo(d *winDisk) (sizeErr, err error) {
	paths, err := windows.CM_Get_Device_Interface_List(d.InstanceID, &GUIDDevInterfaceDisk, windows.CM_GET_DEVICE_INTERFACE_LIST_PRESENT)
	if err != nil || len(paths) == 0 || paths[0] == "" {
		err = fmt.Errorf("disk interface of %s: %v", d.InstanceID, err)
		return err, err
	}
	p, err := windows.UTF16PtrFromString(paths[0])
	if err != nil {
		return err, err
	}
	share := uint32(windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE)
	// No access rights: enough for the storage IOCTLs, and possible
	// while another process has the disk open exclusively.
	h, err := windows.CreateFile(p, 0, share, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		err = fmt.Errorf("open %s: %w", paths[0], err)
		return err, err
	}
	defer windows.CloseHandle(h)
	var errs []error
	var num [3]uint32 // STORAGE_DEVICE_NUMBER: DeviceType, DeviceNumber, PartitionNumber
	var n uint32
	if err := windows.DeviceIoControl(h, ioctlStorageGetDeviceNumber, nil, 0, (*byte)(unsafe.Pointer(&num[0])), 12, &n, nil); err == nil && n >= 8 {
		d.Number = int(num[1])
	} else if err != nil {
		errs = append(errs, fmt.Errorf("IOCTL_STORAGE_GET_DEVICE_NUMBER: %w", err))
	}
	query := [12]byte{} // STORAGE_PROPERTY_QUERY{StorageDeviceProperty, PropertyStandardQuery}
	out := make([]byte, 1024)
	if err := windows.DeviceIoControl(h, ioctlStorageQueryProperty, &query[0], uint32(len(query)), &out[0], uint32(len(out)), &n, nil); err == nil {
		desc, perr := parseStorageDescriptor(out[:n])
		if perr != nil {
			errs = append(errs, perr)
		}
		if n >= storageDescriptorFixed {
			// The fixed part was read: its flags and bus type hold even
			// when a string offset is bad.
			d.Removable, d.BusType, d.BusKnown = desc.Removable, desc.BusType, true
		}
	} else {
		errs = append(errs, fmt.Errorf("IOCTL_STORAGE_QUERY_PROPERTY: %w", err))
	}
	if err := windows.DeviceIoControl(h, ioctlDiskIsWritable, nil, 0, nil, 0, &n, nil); errors.Is(err, windows.ERROR_WRITE_PROTECT) {
		d.ReadOnly = true
	}
	// The length needs read access.
	if rh, err := windows.CreateFile(p, windows.GENERIC_READ, share, nil, windows.OPEN_EXISTING, 0, 0); err == nil {
		var length int64
		lerr := windows.DeviceIoControl(rh, ioctlDiskGetLengthInfo, nil, 0, (*byte)(unsafe.Pointer(&length)), 8, &n, nil)
		if lerr == nil && length > 0 {
			d.Size = length
		}
		windows.CloseHandle(rh)
		if lerr != nil && !noMedium(lerr) {
			sizeErr = fmt.Errorf("IOCTL_DISK_GET_LENGTH_INFO: %w", lerr)
		}
	} else {
		sizeErr = fmt.Errorf("open %s for reading: %w", paths[0], err)
	}
	if d.Number < 0 && sizeErr == nil {
		sizeErr = errors.New("its disk number could not be read")
	}
	if sizeErr != nil {
		errs = append(errs, sizeErr)
	}
	return sizeErr, errors.Join(errs...)
}

// noMedium reports whether err says that a disk has no medium in it (an
// empty card-reader slot): the one reason a disk's size may be unknown
// without the disk being unreadable.
func noMedium(err error) bool {
	return errors.Is(err, windows.ERROR_NOT_READY) || errors.Is(err, errorNoMediaInDevice)
}

// errorNoMediaInDevice is ERROR_NO_MEDIA_IN_DEVICE (winerror.h), which
// x/sys/windows does not name.
const errorNoMediaInDevice = windows.Errno(1112)
