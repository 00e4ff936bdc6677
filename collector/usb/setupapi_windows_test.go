package usb

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/mamori-agent/mamori/internal/wintest"
	"golang.org/x/sys/windows"
)

// TestWindowsGUIDs holds the GUIDs we define to their documented values
// (usbiodef.h, winioctl.h, devguid.h) and to the strings the event-data
// parser compares with.
func TestWindowsGUIDs(t *testing.T) {
	for _, tc := range []struct {
		name, got, want string
	}{
		{"GUID_DEVINTERFACE_USB_DEVICE", GUIDDevInterfaceUSBDevice.String(), "{A5DCBF10-6530-11D2-901F-00C04FB951ED}"},
		{"GUID_DEVINTERFACE_VOLUME", GUIDDevInterfaceVolume.String(), "{53F5630D-B6BF-11D0-94F2-00A0C91EFB8B}"},
		{"GUID_DEVINTERFACE_DISK", GUIDDevInterfaceDisk.String(), "{53F56307-B6BF-11D0-94F2-00A0C91EFB8B}"},
		{"GUID_DEVCLASS_DISKDRIVE", guidDevClassDiskDrive.String(), "{4D36E967-E325-11CE-BFC1-08002BE10318}"},
		{"parser's USB device string", strings.ToUpper(guidStringUSBDevice), GUIDDevInterfaceUSBDevice.String()},
		{"parser's volume string", strings.ToUpper(guidStringVolume), GUIDDevInterfaceVolume.String()},
		{"guidString of memory", guidString((*[16]byte)(unsafe.Pointer(&GUIDDevInterfaceVolume))[:]), guidStringVolume},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, tc.got, tc.want)
		}
	}
	if n := unsafe.Sizeof(cmNotifyFilter{}); n != 416 {
		t.Errorf("sizeof(CM_NOTIFY_FILTER) = %d, want 416", n)
	}
}

// TestSetupAPIDevices runs the real enumeration. Under Wine, SetupAPI has
// no USB devices (at most root hubs), and no error; on real Windows every
// device is checked for what the backend promises.
func TestSetupAPIDevices(t *testing.T) {
	s := NewSetupAPI(nil)
	start := time.Now()
	devs, err := s.Devices()
	t.Logf("%d devices in %v", len(devs), time.Since(start))
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	if devs == nil {
		t.Fatal("Devices returned nil, want an empty list")
	}
	if !slices.IsSortedFunc(devs, func(a, b Device) int { return strings.Compare(a.Path, b.Path) }) {
		t.Error("not sorted by Path")
	}
	for _, d := range devs {
		t.Logf("%s %s:%s %q serial %q interfaces %+v disks %+v", d.Path, d.VendorID, d.ProductID, d.Product, d.SerialString(), d.Interfaces, d.BlockDevices)
		if wintest.IsWine() && !d.IsRootHub() {
			t.Errorf("under Wine %s: only root hubs expected", d.Path)
		}
		if d.IsRootHub() {
			if _, err := ParseInstanceID(strings.TrimPrefix(d.Path, winRootHubPrefix)); err != nil {
				t.Errorf("root hub path %q: %v", d.Path, err)
			}
			continue
		}
		if _, err := ParseInstanceID(d.Path); err != nil {
			t.Errorf("path %q: %v", d.Path, err)
		}
		if len(d.VendorID) != 4 || len(d.ProductID) != 4 {
			t.Errorf("%s: ids %q:%q", d.Path, d.VendorID, d.ProductID)
		}
	}
}

// TestSetupAPIDeviceAbsent: a device that is not there is fs.ErrNotExist
// (the agent's "has it really left" check); a disk no USB device holds
// has no owner.
func TestSetupAPIDeviceAbsent(t *testing.T) {
	s := NewSetupAPI(nil)
	_, err := s.Device(`USB\VID_FFFF&PID_FFFF\MAMORI-NOT-THERE`)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Device of an absent device: %v, want fs.ErrNotExist", err)
	}
	if p, ok := s.OwnerOf(`\\.\PhysicalDrive999`); ok {
		t.Fatalf("OwnerOf(PhysicalDrive999) = %q", p)
	}
}

// TestHotplugWindows registers for notifications. Where that works it
// must close cleanly (and twice); where it does not (Wine 8.0 has no
// CM_Register_Notification), the error must say unsupported, so that
// the agent falls back to rescans.
func TestHotplugWindows(t *testing.T) {
	h, err := NewHotplug()
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("NewHotplug: %v, want success or errors.ErrUnsupported", err)
		}
		t.Logf("device notifications unsupported here (Wine %q): %v", wintest.WineVersion(), err)
		return
	}
	t.Logf("device notifications registered (%d handles)", len(h.sys.handles))
	if len(h.sys.handles) != 2 {
		t.Errorf("%d registrations, want 2 (USB devices, volumes)", len(h.sys.handles))
	}
	// Nothing is plugged in during the test: no change (a volume could
	// be mounted by someone else on a real machine; only log then).
	select {
	case c := <-h.Changes():
		t.Logf("change during the test: %+v", c)
	case <-time.After(200 * time.Millisecond):
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case _, open := <-h.Changes():
		if open {
			t.Fatal("Changes still open after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Changes not closed by Close")
	}
	if _, ok := hotplugs.Load(h.sys.ctx); ok {
		t.Fatal("the callback's registry still holds the closed Hotplug")
	}
}

// TestReadNodesAllClasses reads every present device node of the system
// through the same code as the USB enumeration (raw registry properties,
// ParseMultiSZ, ParseSZ, CM_Get_Parent, CM_Get_Device_ID): under Wine
// there are no USB devices, but there are other nodes (the display, the
// root-enumerated drivers), so this is where that code meets a real
// SetupAPI here.
func TestReadNodesAllClasses(t *testing.T) {
	nodes, err := readNodeSet(nil, "", windows.DIGCF_PRESENT|windows.DIGCF_ALLCLASSES)
	if err != nil {
		t.Fatalf("readNodeSet: %v", err)
	}
	if len(nodes) == 0 {
		t.Fatal("no device nodes at all")
	}
	withParent := 0
	for _, n := range nodes {
		t.Logf("%s class %q name %q hw %q compat %q service %q parent %q", n.InstanceID, n.Class, cmpOr(n.FriendlyName, n.Description), n.HardwareIDs, n.CompatibleIDs, n.Service, n.ParentID)
		if _, err := ParseInstanceID(n.InstanceID); err != nil {
			t.Errorf("instance id: %v", err)
		}
		if n.ParentID != "" {
			withParent++
		}
	}
	switch {
	case withParent > 0:
	case wintest.IsWine():
		// Wine 8.0 keeps no device tree: CM_Get_Parent answers
		// CR_NO_SUCH_DEVNODE and DEVPKEY_Device_Parent is absent. The
		// walk from disks and interfaces to their devices is tested by
		// TestAssembleWindows on every OS; here only on real Windows.
		t.Logf("Wine %s: no node has a parent", wintest.WineVersion())
	default:
		t.Error("no node has a parent: neither CM_Get_Parent nor DEVPKEY_Device_Parent answered")
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestSetupAPIWalkAncestors walks up the real device tree from every present
// node (cmParentOf, as the disks are walked): on Windows each walk
// reaches the root; under Wine, which keeps no tree, none may be taken
// for whole. A node that is there is present, one made up is not.
func TestSetupAPIWalkAncestors(t *testing.T) {
	nodes, err := readNodeSet(nil, "", windows.DIGCF_PRESENT|windows.DIGCF_ALLCLASSES)
	if err != nil || len(nodes) == 0 {
		t.Fatalf("readNodeSet: %d nodes, %v", len(nodes), err)
	}
	for _, n := range nodes {
		chain, err := walkAncestors(n.InstanceID, cmParentOf)
		t.Logf("%s: %q, %v", n.InstanceID, chain, err)
		switch {
		case err == nil && (len(chain) < 2 || chain[len(chain)-1] != rootDevNode):
			t.Errorf("%s: walk %q taken for whole", n.InstanceID, chain)
		case err != nil && !errors.Is(err, ErrDeviceTree):
			t.Errorf("%s: %v does not wrap ErrDeviceTree", n.InstanceID, err)
		case err != nil && !wintest.IsWine():
			t.Errorf("%s: walk failed on Windows: %v", n.InstanceID, err)
		}
		if !devNodePresent(n.InstanceID) {
			t.Errorf("%s: listed as present, but devNodePresent says not", n.InstanceID)
		}
	}
	// Wine 8.0's CM_Locate_DevNodeW answers CR_FAILURE for every node:
	// not "no such node", so every node is taken for present there.
	switch present := devNodePresent(`USB\VID_FFFF&PID_FFFF\MAMORI-NOT-THERE`); {
	case present && wintest.IsWine():
		t.Logf("Wine %s: CM_Locate_DevNode does not tell a node that is not there", wintest.WineVersion())
	case present:
		t.Error("a made-up node is present")
	}
}

// TestSetupAPIDiskPlace reads the place of every present node as if it
// were a disk, through the code the disks go through (placeDisk with
// cmParentOf, cmCapabilities and devNodePresent), with a bus type read
// and internal (NVMe), and judges it with assembleWindows. Under Wine,
// which keeps no device tree and locates no node, none may be taken for
// an internal disk: the walk and the capabilities fail, and a disk whose
// place cannot be read is USB storage whose device is unknown. On
// Windows a node is internal exactly when its walk reached the root and
// it and every node above it but the root have capabilities that were
// read and say no hot-plug.
func TestSetupAPIDiskPlace(t *testing.T) {
	nodes, err := readNodeSet(nil, "", windows.DIGCF_PRESENT|windows.DIGCF_ALLCLASSES)
	if err != nil || len(nodes) == 0 {
		t.Fatalf("readNodeSet: %d nodes, %v", len(nodes), err)
	}
	log := slog.New(slog.DiscardHandler)
	for i, n := range nodes {
		flags, cerr := cmCapabilities(n.InstanceID)
		t.Logf("%s: capabilities %#x, %v", n.InstanceID, flags, cerr)
		if wintest.IsWine() && cerr == nil {
			t.Logf("Wine %s reads the capabilities of %s", wintest.WineVersion(), n.InstanceID)
		}
		d := winDisk{winNode: winNode{InstanceID: n.InstanceID, ParentID: n.ParentID, FriendlyName: "node"}, Number: 900 + i,
			BusType: busTypeNVMe, BusKnown: true}
		gone := func(err error) bool { return errors.Is(err, crNoSuchDevNode) && !devNodePresent(n.InstanceID) }
		if placeDisk(&d, cmParentOf, cmCapabilities, gone, log) {
			t.Errorf("%s: gone, but listed as present", n.InstanceID)
			continue
		}
		devs, _ := assembleWindows(nil, []winDisk{d})
		internal := len(devs) == 0
		whole := d.AncestorsErr == "" && len(d.Ancestors) > 0
		hot := false
		for _, id := range append([]string{d.InstanceID}, d.Ancestors...) {
			if idKey(id) == rootDevNode {
				continue
			}
			c, ok := d.Caps[idKey(id)]
			if !ok || c.Err != "" || c.Flags&hotPlugCaps != 0 || hotPlugNode(id) != "" {
				hot = true
			}
		}
		t.Logf("%s: ancestors %q (%s), internal %v", n.InstanceID, d.Ancestors, d.AncestorsErr, internal)
		switch {
		case wintest.IsWine() && internal:
			t.Errorf("under Wine %s was taken for an internal disk (ancestors %q, caps %+v)", n.InstanceID, d.Ancestors, d.Caps)
		case internal != (whole && !hot):
			t.Errorf("%s: internal %v, but walk whole %v and hot-plug or unread %v (caps %+v)", n.InstanceID, internal, whole, hot, d.Caps)
		case !internal && (len(devs) != 1 || !strings.EqualFold(devs[0].Path, UnknownPathPrefix+n.InstanceID) ||
			len(devs[0].BlockDevices) != 1 || devs[0].BlockDevices[0].Name != fmt.Sprintf("PhysicalDrive%d", 900+i)):
			t.Errorf("%s: devices %+v, want one unknown device holding PhysicalDrive%d", n.InstanceID, devs, 900+i)
		}
	}
}

// TestSetupAPICapabilities reads the capabilities of every present node
// through CM_Get_DevNode_Registry_Property (devInstCapabilities) and
// through SetupAPI (SPDRP_CAPABILITIES). On Windows both must answer,
// and agree, for every node: a node whose capabilities cannot be read
// makes every disk below it external (fail closed), so one that lacks
// them here would be a finding. Wine 8.0 has neither (CR_FAILURE, and no
// Capabilities value): there every read is an error, never a value taken
// for "not hot-pluggable".
func TestSetupAPICapabilities(t *testing.T) {
	set, err := windows.SetupDiGetClassDevsEx(nil, "", 0, windows.DIGCF_PRESENT|windows.DIGCF_ALLCLASSES, 0, "")
	if err != nil {
		t.Fatalf("SetupDiGetClassDevsEx: %v", err)
	}
	defer windows.SetupDiDestroyDeviceInfoList(set)
	n, err := enumerateAll(maxDeviceNodes, func(i int) (bool, error) {
		data, err := windows.SetupDiEnumDeviceInfo(set, i)
		if errors.Is(err, windows.ERROR_NO_MORE_ITEMS) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		id, err := windows.SetupDiGetDeviceInstanceId(set, data)
		if err != nil {
			return false, err
		}
		flags, cerr := devInstCapabilities(uint32(data.DevInst))
		raw, rerr := registryProperty(set, data, windows.SPDRP_CAPABILITIES)
		t.Logf("%s: CM %#x %v; SPDRP %x %v", id, flags, cerr, raw, rerr)
		switch {
		case wintest.IsWine():
			if cerr == nil {
				t.Errorf("Wine %s read the capabilities of %s (%#x): Wine 8.0 was measured to have none; check what it gives", wintest.WineVersion(), id, flags)
			}
		case cerr != nil:
			t.Errorf("%s: %v", id, cerr)
		case rerr != nil || raw == nil:
			t.Errorf("%s: SPDRP_CAPABILITIES %x, %v", id, raw, rerr)
		default:
			if v, err := parseCapabilities(regDWORD, raw); err != nil || v != flags {
				t.Errorf("%s: SPDRP_CAPABILITIES %#x (%v), CM_DRP_CAPABILITIES %#x", id, v, err, flags)
			}
		}
		return false, nil
	})
	if err != nil || n == 0 {
		t.Fatalf("%d nodes, %v", n, err)
	}
}
