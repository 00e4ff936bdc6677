package usb

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
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
	// BusType is STORAGE_DEVICE_DESCRIPTOR.BusType (STORAGE_BUS_TYPE,
	// busTypeUSB for USB); BusKnown says the descriptor was read.
	BusType  uint32
	BusKnown bool
	// Ancestors are the instance ids above the disk, its parent first,
	// as far as the walk up the device tree went (walkAncestors: the
	// root, HTREE\ROOT\0, last when it got there); AncestorsErr says why
	// the walk stopped short of the root, "" when it reached it. A disk
	// whose walk was not made (both empty) is not known to be internal.
	Ancestors    []string
	AncestorsErr string
	// Caps are the PnP capabilities of the disk's own node and of its
	// Ancestors, by idKey of the instance id (see hotPlugged). A node
	// missing from it was not read, which counts as a capability that
	// could not be read.
	Caps map[string]nodeCaps
}

// nodeCaps is what was read of one device node's PnP capabilities.
type nodeCaps struct {
	// Flags are the CM_DEVCAP_* bits (cfgmgr32.h) of CM_DRP_CAPABILITIES
	// (SPDRP_CAPABILITIES): the DEVICE_CAPABILITIES its bus driver
	// reported to IRP_MN_QUERY_CAPABILITIES, as the PnP manager keeps
	// them. Valid only when Err is "".
	Flags uint32
	// Err says why the capabilities could not be read; "" when they were.
	Err string
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
//   - a disk goes to the USB device nearest above it (diskOwner).
//
// It fails closed: what is USB but cannot be identified is never left
// out, and becomes a Device whose Path starts with UnknownPathPrefix,
// with no vendor, product or serial (no approval by ids matches it):
//
//   - a node under the USB enumerator whose instance id does not parse
//     (its classes from its ids, so that IsStorage still holds for a
//     storage function);
//   - an interface node whose device was not listed (the interfaces'
//     device, named by the parent's instance id);
//   - a disk not below a USB device that was read, when it may be USB
//     storage or came in through a hot-plug port, Thunderbolt, USB4,
//     eSATA, FireWire or a card slot (diskOwner says when): class mass
//     storage, the disk as its one BlockDevice, and why in Product.
//
// Serial comes from the instance id (nil when generated), VendorID,
// ProductID and BCDDevice from the ids, Manufacturer from the INF (there
// is no string descriptor in SetupAPI: the INF's "(Standard USB Host
// Controller)" and the like are left out), Product from the friendly name
// or description. BusNum and DevNum are 0: Windows has no bus numbers,
// and the device address sits with the hub driver. The errors about
// single nodes (ids that do not parse) are joined and returned with the
// Devices.
func assembleWindows(nodes []winNode, disks []winDisk) ([]Device, error) {
	var errs []error
	devs := map[string]*winDev{} // by idKey of the instance id
	type iface struct {
		parent string // the parent's instance id
		in     Interface
	}
	var ifaces []iface
	for i := range nodes {
		n := &nodes[i]
		hw, herr := ParseUSBHardwareIDs(append(slices.Clone(n.HardwareIDs), n.CompatibleIDs...))
		if herr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", safe.String(n.InstanceID), herr))
		}
		id, err := ParseInstanceID(n.InstanceID)
		if err != nil {
			errs = append(errs, err)
			devs[unknownKey(n.InstanceID)] = unknownDevice(n, hw, "its instance id does not parse")
			continue
		}
		if id.Enumerator != "USB" {
			// Under another enumerator but exposing the USB device
			// interface: ids from the hardware ids only.
			if hw.VendorID == "" {
				devs[unknownKey(n.InstanceID)] = unknownDevice(n, hw, "it exposes the USB device interface, but its ids name no vendor")
				continue
			}
			devs[idKey(n.InstanceID)] = winDevice(n, safePath(id), hw)
			continue
		}
		u, err := ParseUSBInstanceID(n.InstanceID)
		if err != nil {
			errs = append(errs, err)
			devs[unknownKey(n.InstanceID)] = unknownDevice(n, hw, "its USB instance id does not parse")
			continue
		}
		switch {
		case u.RootHub:
			d := winDevice(n, winRootHubPrefix+safePath(id), hw)
			d.Class, d.first = ClassHub, Interface{}
			d.Parent = "" // the host controller: not a USB device
			d.rootHub = true
			devs[idKey(n.InstanceID)] = d
		case u.Interface >= 0:
			in := Interface{Number: u.Interface, Class: hw.Class, SubClass: hw.SubClass, Protocol: hw.Protocol, Driver: safe.String(n.Service)}
			ifaces = append(ifaces, iface{n.ParentID, in})
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
		d, ok := devs[idKey(f.parent)]
		if !ok {
			// The device of these interfaces was not listed (or its
			// parent is unknown): present, but not read.
			k := unknownKey(f.parent)
			if d, ok = devs[k]; !ok {
				d = unknownDevice(&winNode{InstanceID: f.parent}, USBHardwareIDs{Composite: true}, "its interfaces are listed, but it was not read as a USB device")
				devs[k] = d
			}
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
		name := safe.String(k.InstanceID)
		if id, err := ParseInstanceID(k.InstanceID); err == nil {
			name = safePath(id)
		}
		if k.Number >= 0 {
			name = fmt.Sprintf("PhysicalDrive%d", k.Number)
		}
		b := BlockDevice{Name: name, Size: max(k.Size, 0), ReadOnly: k.ReadOnly, Removable: k.Removable}
		owner, why := diskOwner(k, devs)
		switch {
		case owner != nil:
			owner.BlockDevices = append(owner.BlockDevices, b)
		case why != "":
			d := unknownDevice(&k.winNode, USBHardwareIDs{}, why)
			d.Class = ClassMassStorage
			d.BlockDevices = append(d.BlockDevices, b)
			devs[unknownKey(k.InstanceID)] = d
		}
	}
	out := make([]Device, 0, len(devs))
	for _, d := range devs {
		slices.SortFunc(d.BlockDevices, func(a, b BlockDevice) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, d.Device)
	}
	slices.SortFunc(out, func(a, b Device) int { return cmp.Compare(a.Path, b.Path) })
	return out, errors.Join(errs...)
}

// UnknownPathPrefix starts the Path of a Device the Windows backend
// could not identify but will not leave out (see assembleWindows): USB
// storage whose USB device could not be determined, or a USB node whose
// ids do not parse. The rest of the Path is the node's instance id,
// sanitised.
const UnknownPathPrefix = "unknown:"

// unknownKey is the key in assembleWindows' devs of the unknown Device
// made for instance id id: apart from the real devices' keys.
func unknownKey(id string) string { return UnknownPathPrefix + idKey(id) }

// unknownDevice is the Device of node n that cannot be identified, why
// saying so: Path UnknownPathPrefix and the instance id, no vendor,
// product or serial, the classes hw gives, and a Product that names the
// node and why.
func unknownDevice(n *winNode, hw USBHardwareIDs, why string) *winDev {
	hw.VendorID, hw.ProductID = "", ""
	path := safeSegments(n.InstanceID)
	if id, err := ParseInstanceID(n.InstanceID); err == nil {
		path = safePath(id)
	}
	d := winDevice(n, UnknownPathPrefix+path, hw)
	name := safe.String(cmp.Or(n.FriendlyName, n.Description))
	if name != "" {
		name += " "
	}
	d.Product = name + "(USB device not determined: " + why + ")"
	d.Parent = ""
	return d
}

// maxTreeDepth bounds the walk up the device tree from a disk: more
// than any real tree holds (7 USB tiers, the interfaces and storage
// nodes below, a dozen PCI bridges of docks and Thunderbolt above).
const maxTreeDepth = 64

// rootDevNode is the instance id of the device tree's root.
const rootDevNode = `HTREE\ROOT\0`

// ErrDeviceTree is wrapped by walkAncestors' errors: the walk up the
// device tree did not reach its root.
var ErrDeviceTree = errors.New("device tree walk incomplete")

// walkAncestors walks up the device tree from first (a node's parent)
// to the root, HTREE\ROOT\0, asking parentOf for each node's parent
// (CM_Get_Parent, CM_Get_Device_ID on Windows), and returns the instance
// ids met, first first. The walk fails, returning what it met and an
// error wrapping ErrDeviceTree, when first is "" (the parent is
// unknown), parentOf fails or answers "" before the root, a node comes
// back (a loop) or the tree is deeper than maxTreeDepth.
func walkAncestors(first string, parentOf func(id string) (string, error)) ([]string, error) {
	if first == "" {
		return nil, fmt.Errorf("%w: the parent is unknown", ErrDeviceTree)
	}
	var chain []string
	seen := map[string]bool{}
	for id := first; ; {
		k := idKey(id)
		switch {
		case seen[k]:
			return chain, fmt.Errorf("%w: a loop at %s", ErrDeviceTree, safeSegments(id))
		case len(chain) >= maxTreeDepth:
			return chain, fmt.Errorf("%w: more than %d levels", ErrDeviceTree, maxTreeDepth)
		}
		seen[k] = true
		chain = append(chain, id)
		if k == rootDevNode {
			return chain, nil
		}
		p, err := parentOf(id)
		switch {
		case err != nil:
			return chain, fmt.Errorf("%w: the parent of %s: %w", ErrDeviceTree, safeSegments(id), err)
		case p == "":
			return chain, fmt.Errorf("%w: %s has no parent and is not the root", ErrDeviceTree, safeSegments(id))
		}
		id = p
	}
}

// placeDisk reads where disk d sits: the walk up the device tree from
// its parent (walkAncestors, asking parentOf) into d.Ancestors and
// d.AncestorsErr, and, when the walk reached the root, the capabilities
// of the disk's node and of every node above it but the root (capsOf)
// into d.Caps, a failure as that node's nodeCaps.Err. It returns true
// when the walk or a read failed in a way gone says means the disk is
// gone (on Windows: a node is no longer there, CR_NO_SUCH_DEVNODE, and
// neither is the disk): removed since the list was made, not there to
// judge. On Windows parentOf and capsOf are cmParentOf and
// cmCapabilities.
func placeDisk(d *winDisk, parentOf func(string) (string, error), capsOf func(string) (uint32, error), gone func(error) bool, log *slog.Logger) bool {
	chain, werr := walkAncestors(d.ParentID, parentOf)
	d.Ancestors = chain
	if werr != nil {
		if gone(werr) {
			log.Debug("disk gone during the enumeration", "disk", d.InstanceID, "err", werr)
			return true
		}
		d.AncestorsErr = werr.Error()
		log.Debug("disk's place in the device tree unreadable: judged as USB storage whose device is unknown", "disk", d.InstanceID, "err", werr)
		return false
	}
	d.Caps = make(map[string]nodeCaps, len(chain)+1)
	for _, id := range append([]string{d.InstanceID}, chain...) {
		if idKey(id) == rootDevNode {
			continue
		}
		flags, err := capsOf(id)
		if err != nil {
			if gone(err) {
				log.Debug("disk gone during the enumeration", "disk", d.InstanceID, "node", id, "err", err)
				return true
			}
			log.Debug("device node's capabilities unreadable: the disk is judged as USB storage whose device is unknown", "disk", d.InstanceID, "node", id, "err", err)
			d.Caps[idKey(id)] = nodeCaps{Err: err.Error()}
			continue
		}
		d.Caps[idKey(id)] = nodeCaps{Flags: flags}
	}
	return false
}

// diskOwner finds the USB device disk k belongs to: the nearest node
// above it (k.Ancestors) that is a device of devs (one that could not be
// identified included), passing through
// nodes of other enumerators (USBSTOR, SCSI, a card reader's bus) and
// interface nodes (&MI_xx) of composite devices. When none is, why says
// whether k must be taken for USB storage whose device is unknown
// (empty why: an internal disk). It is, failing closed, when:
//
//   - the walk up the tree did not reach the root (AncestorsErr, or not
//     made at all);
//   - the first USB device node above it (under the USB enumerator, not
//     an interface) is not a device of devs, or is a root hub: its own
//     device was left out;
//   - its bus type could not be read, or is USB;
//   - its medium is removable (an SD card reader on another bus, too);
//   - it came in through a hot-plug port, or whether it did could not be
//     determined (hotPlugged: a Thunderbolt or USB4 NVMe SSD, an eSATA or
//     FireWire disk, an SD or MMC card).
func diskOwner(k *winDisk, devs map[string]*winDev) (owner *winDev, why string) {
	for _, id := range k.Ancestors {
		if d, ok := devs[idKey(id)]; ok {
			if d.rootHub {
				return nil, "no USB device between it and root hub " + safeSegments(id)
			}
			return d, ""
		}
		if d, ok := devs[unknownKey(id)]; ok {
			return d, "" // a USB node that could not be identified
		}
		p, err := ParseInstanceID(id)
		if err != nil || !strings.HasPrefix(p.Enumerator, "USB") {
			continue // USBSTOR, SCSI, PCI, ... (a bad id is judged below, if USB)
		}
		if u, err := ParseUSBInstanceID(id); err == nil && u.Interface >= 0 {
			continue
		}
		if p.Enumerator == "USB" {
			return nil, "the USB node above it, " + safeSegments(id) + ", was not read as a device"
		}
	}
	switch {
	case len(k.Ancestors) == 0 && k.AncestorsErr == "":
		return nil, "its place in the device tree was not read"
	case k.AncestorsErr != "":
		return nil, "its place in the device tree could not be read: " + k.AncestorsErr
	case !k.BusKnown:
		return nil, "its bus type could not be read"
	case k.BusType == busTypeUSB:
		return nil, "it is on the USB bus, below no USB device"
	case k.Removable:
		return nil, fmt.Sprintf("its medium is removable (bus type %d), below no USB device", k.BusType)
	}
	for _, id := range k.Ancestors {
		if p, err := ParseInstanceID(id); err == nil && strings.HasPrefix(p.Enumerator, "USB") {
			return nil, "it is below USB node " + safeSegments(id) + ", which was not read as a device"
		}
	}
	return nil, hotPlugged(k)
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
	rootHub   bool      // a root hub: never a disk's owner
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

// Bus types of STORAGE_BUS_TYPE (winioctl.h, ntddstor.h): USB, and those
// of disks that can be plugged in and out while the system runs.
const (
	busType1394 = 0x04 // BusType1394: IEEE 1394 (FireWire), SBP-2
	busTypeUSB  = 0x07 // BusTypeUsb
	busTypeSD   = 0x0C // BusTypeSd: an SD card
	busTypeMMC  = 0x0D // BusTypeMmc: an MMC card, or eMMC
)

// PnP capability bits (CM_DEVCAP_*, cfgmgr32.h; the DEVICE_CAPABILITIES
// bit fields of wdm.h) that say a device can leave while the system
// runs.
const (
	// cmDevcapEjectSupported: the device can be ejected from its slot.
	cmDevcapEjectSupported = 0x00000002
	// cmDevcapRemovable: the device can be removed while the system runs
	// (DEVICE_CAPABILITIES.Removable). Bus drivers set it for a device on
	// a hot-plug port: a USB device, a PCI Express device below a
	// hot-plug slot (Thunderbolt and USB4 tunnel PCIe to such slots;
	// ExpressCard), a disk on a SATA port marked external or hot-plug
	// capable (eSATA), a 1394 device. Windows' Safely Remove Hardware
	// lists the devices that have it.
	cmDevcapRemovable = 0x00000004
	// cmDevcapDockDevice: the device is a docking peripheral.
	cmDevcapDockDevice = 0x00000008

	// hotPlugCaps are the bits that make a node a hot-plug device.
	hotPlugCaps = cmDevcapEjectSupported | cmDevcapRemovable | cmDevcapDockDevice
)

// hotPlugged says why disk k, whose place in the device tree and bus type
// were read and which no USB device holds, must be taken for external
// storage (USB storage whose device is unknown): "" when it is internal.
// It is external when
//
//   - its bus type is IEEE 1394, SD or MMC;
//   - it or a node above it (k.Ancestors, but the tree's root) is
//     hot-pluggable: its capabilities (k.Caps) hold CM_DEVCAP_REMOVABLE,
//     CM_DEVCAP_EJECTSUPPORTED or CM_DEVCAP_DOCKDEVICE. This is what makes
//     a Thunderbolt or USB4 NVMe SSD external (the PCI Express bus driver
//     marks the devices below a hot-plug slot removable), an eSATA disk
//     (storahci marks the disk on an external or hot-plug SATA port) and
//     a 1394 one;
//   - a node above it is a Thunderbolt or USB4 PCI Express bridge or root
//     port (thunderboltBridges), or is on the 1394 or PCMCIA bus (its
//     enumerator 1394, SBP2 or PCMCIA): external whatever the
//     capabilities say;
//   - failing closed, the capabilities of it or a node above it could not
//     be read: whether it is behind a hot-plug port cannot be determined.
//
// The reason names the node (instance id, sanitised) that makes it so.
func hotPlugged(k *winDisk) string {
	const behind = "it is behind a hot-plug port: "
	switch k.BusType {
	case busType1394:
		return behind + "its bus type is IEEE 1394 (FireWire)"
	case busTypeSD:
		return behind + "its bus type is SD (a card slot)"
	case busTypeMMC:
		return behind + "its bus type is MMC (a card slot, or eMMC)"
	}
	nodes := append([]string{k.InstanceID}, k.Ancestors...)
	unread := ""
	for _, id := range nodes {
		key := idKey(id)
		if key == rootDevNode {
			continue // the tree's root: no bus driver, no slot
		}
		if why := hotPlugNode(id); why != "" {
			return behind + why
		}
		c, ok := k.Caps[key]
		switch {
		case !ok || c.Err != "":
			if unread == "" {
				unread = cmp.Or(c.Err, "not read")
				unread = "the capabilities of " + safeSegments(id) + " could not be read: " + safe.String(unread)
			}
		case c.Flags&hotPlugCaps != 0:
			return behind + safeSegments(id) + " can be removed while the system runs (" + capNames(c.Flags&hotPlugCaps) + ")"
		}
	}
	if unread != "" {
		return "whether it is behind a hot-plug port could not be determined: " + unread
	}
	return ""
}

// regDWORD is REG_DWORD (winnt.h): a 32-bit little-endian value.
const regDWORD = 4

// parseCapabilities reads a node's CM_DRP_CAPABILITIES value: regType is
// the registry type CM_Get_DevNode_Registry_Property gave and b the bytes
// it wrote. Anything but a REG_DWORD of exactly 4 bytes is an error.
func parseCapabilities(regType uint32, b []byte) (uint32, error) {
	if regType != regDWORD || len(b) != 4 {
		return 0, fmt.Errorf("%w: CM_DRP_CAPABILITIES of registry type %d and %d bytes, want REG_DWORD (4) of 4 bytes", ErrWinID, regType, len(b))
	}
	return binary.LittleEndian.Uint32(b), nil
}

// capNames names the hot-plug bits set in flags, joined by "|".
func capNames(flags uint32) string {
	var names []string
	for _, c := range []struct {
		bit  uint32
		name string
	}{{cmDevcapRemovable, "CM_DEVCAP_REMOVABLE"}, {cmDevcapEjectSupported, "CM_DEVCAP_EJECTSUPPORTED"}, {cmDevcapDockDevice, "CM_DEVCAP_DOCKDEVICE"}} {
		if flags&c.bit != 0 {
			names = append(names, c.name)
		}
	}
	return strings.Join(names, "|")
}

// hotPlugNode says why node id is a hot-plug port by its instance id
// alone, "" when its id does not say: a Thunderbolt or USB4 PCI Express
// bridge or root port (thunderboltBridges), or a node of the 1394 (1394,
// SBP2) or PCMCIA bus.
func hotPlugNode(id string) string {
	p, err := ParseInstanceID(id)
	if err != nil {
		return ""
	}
	switch p.Enumerator {
	case "1394", "SBP2":
		return safeSegments(id) + " is on the IEEE 1394 (FireWire) bus"
	case "PCMCIA":
		return safeSegments(id) + " is on the PCMCIA bus"
	case "PCI":
		f := parseIDFields(p.Device)
		ven, verr := f.hex("VEN", 4, true)
		dev, derr := f.hex("DEV", 4, true)
		if verr != nil || derr != nil {
			return ""
		}
		if name, ok := thunderboltBridges[strings.ToUpper(ven+":"+dev)]; ok {
			return safeSegments(id) + " is a Thunderbolt/USB4 PCI Express port (" + name + ")"
		}
	}
	return ""
}

// thunderboltBridges are the PCI functions, by vendor and device id
// ("8086:15EF"), through which Thunderbolt and USB4 tunnel PCI Express:
// the PCI bridges of Intel's discrete Thunderbolt controllers (in a PC,
// and in a dock or enclosure, whose controller shows the same bridges),
// the Thunderbolt root ports of Intel processors with Thunderbolt built
// in, and AMD's USB4 PCIe tunnel; names from the PCI ID Repository
// (pci.ids). A device below one of them came in through a Thunderbolt or
// USB4 port. The list is not complete (newer controllers are missing):
// the capabilities (hotPlugged) are what finds the others.
var thunderboltBridges = map[string]string{
	"8086:1513": "Light Ridge", "8086:151A": "Eagle Ridge", "8086:151B": "Light Peak",
	"8086:1547": "Cactus Ridge 4C", "8086:1548": "Cactus Ridge 2C", "8086:1549": "Port Ridge",
	"8086:1567": "Redwood Ridge 2C", "8086:1569": "Redwood Ridge 4C",
	"8086:156B": "Falcon Ridge 2C", "8086:156D": "Falcon Ridge 4C", "8086:157E": "Win Ridge",
	"8086:1576": "Alpine Ridge 2C", "8086:1578": "Alpine Ridge 4C", "8086:15C0": "Alpine Ridge LP",
	"8086:15D3": "Alpine Ridge 4C", "8086:15DA": "Alpine Ridge 2C",
	"8086:15E7": "Titan Ridge 2C", "8086:15EA": "Titan Ridge 4C", "8086:15EF": "Titan Ridge DD",
	"8086:0B26": "Goshen Ridge", "8086:1136": "Maple Ridge 4C",
	"8086:8A1D": "Ice Lake", "8086:8A1F": "Ice Lake", "8086:8A21": "Ice Lake", "8086:8A23": "Ice Lake",
	"8086:9A23": "Tiger Lake-LP", "8086:9A25": "Tiger Lake-LP", "8086:9A27": "Tiger Lake-LP", "8086:9A29": "Tiger Lake-LP",
	"8086:9A2B": "Tiger Lake-H", "8086:9A2D": "Tiger Lake-H", "8086:9A2F": "Tiger Lake-H", "8086:9A31": "Tiger Lake-H",
	"8086:461F": "Alder Lake-P", "8086:462F": "Alder Lake-P", "8086:463F": "Alder Lake-P", "8086:466E": "Alder Lake-P",
	"8086:7EC4": "Meteor Lake-P", "8086:7EC5": "Meteor Lake-P", "8086:7EC6": "Meteor Lake-P", "8086:7EC7": "Meteor Lake-P",
	"1022:14CD": "AMD USB4 PCIe tunnel",
}

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

// storageDescriptorFixed is the length of STORAGE_DEVICE_DESCRIPTOR's
// fixed part, in bytes, up to RawPropertiesLength.
const storageDescriptorFixed = 36

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
	const fixed = storageDescriptorFixed
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

// enumerateAll calls next with 0, 1, 2, ... until next says the list has
// ended (done), and returns how many items came before the end. A list
// is never cut short without an error: it fails when next fails (its
// error, with the index) and when more than limit items come (an error
// wrapping ErrTooManyNodes, once limit+1 items were handed to next).
func enumerateAll(limit int, next func(i int) (done bool, err error)) (int, error) {
	for i := 0; ; i++ {
		done, err := next(i)
		switch {
		case err != nil:
			return i, fmt.Errorf("item %d: %w", i, err)
		case done:
			return i, nil
		case i >= limit:
			return i + 1, fmt.Errorf("%w: more than %d", ErrTooManyNodes, limit)
		}
	}
}

// ErrTooManyNodes is wrapped by the error of an enumeration that lists
// more nodes than it reads (enumerateAll): what was read is incomplete.
var ErrTooManyNodes = errors.New("too many device nodes")
