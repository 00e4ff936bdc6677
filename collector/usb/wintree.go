package usb

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mamori-agent/mamori/collector/usbids"
	"github.com/mamori-agent/mamori/internal/safe"
)

// The Windows backend in two halves: setupapi_windows.go reads device
// nodes from SetupAPI and cfgmgr32 into winNode and winDisk values, and
// assembleWindows, here, turns them into Devices. Keeping the second half
// pure lets it be tested on every OS with node tables shaped like real
// ones.

// winNode is one device node as SetupAPI describes it.
type winNode struct {
	// ParentID is the parent's instance id (CM_Get_Parent and
	// CM_Get_Device_ID, or DEVPKEY_Device_Parent), "" when unknown. It
	// links interfaces and disks to their devices.
	ParentID string
	// InstanceID is SetupDiGetDeviceInstanceId.
	InstanceID string
	// HardwareIDs and CompatibleIDs are SPDRP_HARDWAREID and
	// SPDRP_COMPATIBLEIDS (REG_MULTI_SZ), most specific first.
	HardwareIDs, CompatibleIDs []string
	// Class is SPDRP_CLASS ("USB", "HIDClass", "DiskDrive").
	Class string
	// FriendlyName, Description and Manufacturer are SPDRP_FRIENDLYNAME,
	// SPDRP_DEVICEDESC and SPDRP_MFG: names from the driver's INF file,
	// or, for FriendlyName of some devices, from the device.
	FriendlyName, Description, Manufacturer string
	// Service is SPDRP_SERVICE: the function driver ("USBSTOR",
	// "HidUsb", "usbccgp"), "" when none is installed.
	Service string
}

// winDisk is a disk drive found below a USB device: a USBSTOR\ disk, or
// a SCSI\ one for a UASP device.
type winDisk struct {
	winNode
	// Number is the disk number N of \\.\PhysicalDriveN
	// (IOCTL_STORAGE_GET_DEVICE_NUMBER), -1 when it could not be read.
	Number int
	// Size is the disk's length in bytes (IOCTL_DISK_GET_LENGTH_INFO),
	// 0 when unknown.
	Size int64
	// Removable is STORAGE_DEVICE_DESCRIPTOR.RemovableMedia.
	Removable bool
	// ReadOnly is set when IOCTL_DISK_IS_WRITABLE says the medium is
	// write-protected.
	ReadOnly bool
}

// winRootHubPrefix starts the Path of a root hub on Windows: IsRootHub
// looks for a lower-case "usb" prefix (a Linux root hub is "usb1"), and
// a Windows instance id starts with an upper-case "USB\".
const winRootHubPrefix = "usb:"

// assembleWindows turns the USB nodes and the disks of one enumeration
// into Devices, sorted by Path:
//
//   - a device node (USB\VID_v&PID_p\..., or any node under the USB
//     enumerator that is not an interface) becomes a Device whose Path is
//     its instance id (enumerator upper-cased, parts sanitised), and a
//     root hub's is "usb:" and its instance id, so that IsRootHub holds
//     for it; Parent is the parent's Path ("" for a root hub);
//   - an interface node (USB\VID_v&PID_p&MI_xx\...) of a composite device
//     becomes one of its parent's Interfaces, its class from its
//     compatible ids, its driver from its service;
//   - a single-function device has no interface nodes: its compatible
//     ids (USB\Class_c&SubClass_s&Prot_p) are those of its first
//     interface descriptor (the hub driver's idstring.c), so it gets one
//     Interface, number 0, with that class and its own service as the
//     driver, and its Class (bDeviceClass) stays "": no id carries it;
//   - a composite device's Class is its USB\DevClass_ id (bDeviceClass);
//     a root hub's is 09;
//   - a disk goes to the Device found by walking up its parents.
//
// Serial comes from the instance id (nil when generated), VendorID,
// ProductID and BCDDevice from the ids, Manufacturer from the INF (there
// is no string descriptor in SetupAPI: the INF's "(Standard USB Host
// Controller)" and the like are left out), Product from the friendly name
// or description. BusNum and DevNum are 0: Windows has no bus numbers,
// and the device address sits with the hub driver. Errors about single
// nodes are joined; those nodes are left out (their interfaces and disks
// too), the others returned.
func assembleWindows(nodes []winNode, disks []winDisk) ([]Device, error) {
	var errs []error
	devs := map[string]*winDev{} // by idKey of the instance id
	byID := map[string]*winNode{}
	for i := range nodes {
		byID[idKey(nodes[i].InstanceID)] = &nodes[i]
	}
	type iface struct {
		parent string
		in     Interface
	}
	var ifaces []iface
	for i := range nodes {
		n := &nodes[i]
		id, err := ParseInstanceID(n.InstanceID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hw, herr := ParseUSBHardwareIDs(append(slices.Clone(n.HardwareIDs), n.CompatibleIDs...))
		if herr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", safe.String(n.InstanceID), herr))
		}
		if id.Enumerator != "USB" {
			// Under another enumerator but exposing the USB device
			// interface: ids from the hardware ids only.
			if hw.VendorID == "" {
				continue
			}
			devs[idKey(n.InstanceID)] = winDevice(n, safePath(id), hw)
			continue
		}
		u, err := ParseUSBInstanceID(n.InstanceID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case u.RootHub:
			d := winDevice(n, winRootHubPrefix+safePath(id), hw)
			d.Class, d.first = ClassHub, Interface{}
			d.Parent = "" // the host controller: not a USB device
			devs[idKey(n.InstanceID)] = d
		case u.Interface >= 0:
			in := Interface{Number: u.Interface, Class: hw.Class, SubClass: hw.SubClass, Protocol: hw.Protocol, Driver: safe.String(n.Service)}
			ifaces = append(ifaces, iface{idKey(n.ParentID), in})
		default:
			if hw.VendorID == "" {
				hw.VendorID, hw.ProductID = u.VendorID, u.ProductID
			}
			d := winDevice(n, safePath(id), hw)
			d.VendorID, d.ProductID = u.VendorID, u.ProductID // the instance id is what Windows keys the node by
			d.Serial = u.Serial
			d.VendorName = usbids.Vendor(d.VendorID)
			d.ProductName = usbids.Product(d.VendorID, d.ProductID)
			devs[idKey(n.InstanceID)] = d
		}
	}
	for _, f := range ifaces {
		d, ok := devs[f.parent]
		if !ok {
			continue // the parent was left out, or is not a USB device
		}
		if !d.composite {
			continue
		}
		d.Interfaces = append(d.Interfaces, f.in)
	}
	for _, d := range devs {
		if !d.composite && d.first.Class != "" {
			in := d.first
			in.Driver = d.service
			d.Interfaces = append(d.Interfaces, in)
		}
		slices.SortFunc(d.Interfaces, func(a, b Interface) int { return a.Number - b.Number })
		d.Interfaces = slices.CompactFunc(d.Interfaces, func(a, b Interface) bool { return a.Number == b.Number })
	}
	for i := range disks {
		k := &disks[i]
		owner := findOwner(k.ParentID, devs, byID)
		if owner == nil {
			continue
		}
		name := safe.String(k.InstanceID)
		if id, err := ParseInstanceID(k.InstanceID); err == nil {
			name = safePath(id)
		}
		if k.Number >= 0 {
			name = fmt.Sprintf("PhysicalDrive%d", k.Number)
		}
		owner.BlockDevices = append(owner.BlockDevices, BlockDevice{Name: name, Size: max(k.Size, 0), ReadOnly: k.ReadOnly, Removable: k.Removable})
	}
	out := make([]Device, 0, len(devs))
	for _, d := range devs {
		slices.SortFunc(d.BlockDevices, func(a, b BlockDevice) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, d.Device)
	}
	slices.SortFunc(out, func(a, b Device) int { return cmp.Compare(a.Path, b.Path) })
	return out, errors.Join(errs...)
}

// findOwner walks up from a disk's parent to the first node that is a
// Device (an interface node is skipped through to its device); nil when
// none is within 16 levels.
func findOwner(parentID string, devs map[string]*winDev, nodes map[string]*winNode) *winDev {
	for range 16 {
		if parentID == "" {
			return nil
		}
		if d, ok := devs[idKey(parentID)]; ok {
			return d
		}
		n, ok := nodes[idKey(parentID)]
		if !ok {
			return nil // left the USB nodes: not below a USB device we know
		}
		parentID = n.ParentID
	}
	return nil
}

// idKey is an instance id as a map key: Windows compares them without
// regard to case.
func idKey(id string) string { return strings.ToUpper(id) }

// winDev is a Device being assembled, with what assembly needs besides.
type winDev struct {
	Device
	composite bool      // USB\COMPOSITE or DevClass_: interfaces are child nodes
	first     Interface // of a single-function device: from its Class_ ids
	service   string    // the device node's driver, sanitised
}

// winDevice fills what every Device node gives.
func winDevice(n *winNode, path string, hw USBHardwareIDs) *winDev {
	d := &winDev{service: safe.String(n.Service)}
	d.Device = Device{
		Path:         path,
		VendorID:     hw.VendorID,
		ProductID:    hw.ProductID,
		BCDDevice:    hw.Revision,
		Manufacturer: winManufacturer(n.Manufacturer),
		Product:      safe.String(cmp.Or(n.FriendlyName, n.Description)),
		Parent:       parentPath(n.ParentID),
		Interfaces:   []Interface{},
		BlockDevices: []BlockDevice{},
	}
	if hw.Composite || hw.DevClass != "" {
		d.composite = true
		d.Class, d.SubClass, d.Protocol = hw.DevClass, hw.DevSubClass, hw.DevProtocol
	} else {
		d.first = Interface{Number: 0, Class: hw.Class, SubClass: hw.SubClass, Protocol: hw.Protocol}
	}
	if d.VendorID != "" {
		d.VendorName = usbids.Vendor(d.VendorID)
		d.ProductName = usbids.Product(d.VendorID, d.ProductID)
	}
	return d
}

// parentPath turns a parent's instance id into the Path its Device has:
// a root hub's gets the "usb:" prefix.
func parentPath(id string) string {
	if id == "" {
		return ""
	}
	p, err := ParseInstanceID(id)
	if err != nil {
		return safe.String(id)
	}
	if u, err := ParseUSBInstanceID(id); err == nil && u.RootHub {
		return winRootHubPrefix + safePath(p)
	}
	return safePath(p)
}

// safePath is the instance id as a Path: its parts sanitised one by one
// (a device's serial is in the instance part), joined by backslashes,
// the enumerator upper-cased. Valid USB ids come out unchanged.
func safePath(id InstanceID) string {
	return id.Enumerator + `\` + safe.String(id.Device) + `\` + safe.String(id.Instance)
}

// winManufacturer keeps an INF's manufacturer unless it is one of the
// generic names Windows gives every device of a class driver, which say
// nothing about who made the device.
func winManufacturer(m string) string {
	if strings.HasPrefix(m, "(") && strings.HasSuffix(m, ")") {
		return "" // "(Standard USB Host Controller)", "(Standard disk drives)"
	}
	return safe.String(m)
}

// Bus types of STORAGE_BUS_TYPE (winioctl.h) that mean USB.
const (
	busTypeUSB = 7
)

// storageDescriptor is what STORAGE_DEVICE_DESCRIPTOR
// (IOCTL_STORAGE_QUERY_PROPERTY, StorageDeviceProperty) says about a disk.
type storageDescriptor struct {
	Removable bool
	BusType   uint32
	// Vendor, Product, Revision and Serial are the INQUIRY strings and
	// serial the storage driver reports, sanitised and trimmed; "" when
	// absent.
	Vendor, Product, Revision, Serial string
}

// parseStorageDescriptor parses a STORAGE_DEVICE_DESCRIPTOR:
//
//	0  Version       DWORD
//	4  Size          DWORD  (bytes of the whole descriptor)
//	8  DeviceType    BYTE
//	9  DeviceTypeModifier BYTE
//	10 RemovableMedia BOOLEAN
//	11 CommandQueueing BOOLEAN
//	12 VendorIdOffset, 16 ProductIdOffset, 20 ProductRevisionOffset,
//	24 SerialNumberOffset  DWORD (0: absent; offsets of NUL-terminated
//	   ASCII strings within the descriptor)
//	28 BusType       DWORD (STORAGE_BUS_TYPE)
//	32 RawPropertiesLength DWORD
//
// b is what DeviceIoControl returned; a string offset outside b or the
// descriptor's Size is an error, as is a descriptor shorter than 36
// bytes.
func parseStorageDescriptor(b []byte) (storageDescriptor, error) {
	const fixed = 36
	if len(b) < fixed {
		return storageDescriptor{}, fmt.Errorf("%w: STORAGE_DEVICE_DESCRIPTOR of %d bytes, want at least %d", ErrWinID, len(b), fixed)
	}
	size := int(binary.LittleEndian.Uint32(b[4:]))
	if size < fixed || size > len(b) {
		size = len(b) // a Size larger than what came back: bound by what came
	}
	d := storageDescriptor{Removable: b[10] != 0, BusType: binary.LittleEndian.Uint32(b[28:])}
	str := func(at int) (string, error) {
		off := int(binary.LittleEndian.Uint32(b[at:]))
		if off == 0 {
			return "", nil
		}
		if off < fixed || off >= size {
			return "", fmt.Errorf("%w: STORAGE_DEVICE_DESCRIPTOR string offset %d outside %d..%d", ErrWinID, off, fixed, size)
		}
		s := b[off:size]
		if i := slices.Index(s, 0); i >= 0 {
			s = s[:i]
		}
		return safe.String(strings.TrimSpace(string(s))), nil
	}
	var errs []error
	for _, f := range []struct {
		at  int
		dst *string
	}{{12, &d.Vendor}, {16, &d.Product}, {20, &d.Revision}, {24, &d.Serial}} {
		v, err := str(f.at)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*f.dst = v
	}
	return d, errors.Join(errs...)
}
