package usb

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mamori-agent/mamori/collector/usbids"
	"github.com/mamori-agent/mamori/internal/safe"
)

// Enumerator lists the USB devices present. FS reads them from sysfs; a
// libusb backend (build tag libusb) is the other implementation.
type Enumerator interface {
	// Devices returns every device, root hubs included, sorted by bus
	// path. Errors about single devices are joined into the error and
	// do not stop the others from being returned.
	Devices() ([]Device, error)
}

// maxAttrSize caps every attribute read. The largest real USB attribute,
// descriptors, is at most a few KiB; anything larger is not sysfs.
const maxAttrSize = 64 << 10

// maxWorkers bounds the goroutines of one rescan. Reading sysfs is system
// call bound, so a few readers in parallel shorten a rescan of many
// devices; more only contend.
const maxWorkers = 4

var errTooLarge = errors.New("attribute larger than 64 KiB")

// FS reads USB devices from a sysfs tree rooted at a directory ("/sys" on
// a live system, a fixture tree in tests). Its methods are safe for
// concurrent use; each call reads sysfs afresh.
type FS struct {
	root string
	ids  *identityCache // shared by copies of the FS; nil: no cache
}

var _ Enumerator = FS{}

// NewFS returns an FS reading the sysfs tree at sysfsRoot.
func NewFS(sysfsRoot string) FS {
	return FS{root: filepath.Clean(sysfsRoot), ids: &identityCache{m: map[string]identity{}}}
}

// identity is what cannot change while a device stays attached: it comes
// from enumeration (descriptors, strings, speed, device number). A
// re-plug, even at the same port, makes a new sysfs directory, a new
// kernfs node with a new inode number.
type identity struct {
	ino      uint64
	dev      Device // identity fields only
	desc     descriptors
	haveDesc bool
}

// identityCache lets a full rescan skip re-reading the identity of a
// device whose sysfs directory is the same node as at the last rescan.
// What can change (authorized, interface drivers, block devices) is read
// every time; Device, the hot-plug path, never uses the cache.
type identityCache struct {
	mu sync.Mutex
	m  map[string]identity // by bus path
}

func (c *identityCache) get(busPath string, ino uint64) (identity, bool) {
	if c == nil {
		return identity{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.m[busPath]
	return id, ok && id.ino == ino
}

func (c *identityCache) put(busPath string, id identity) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.m[busPath] = id
	c.mu.Unlock()
}

// keep drops the entries of devices that were not seen.
func (c *identityCache) keep(seen map[string]bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	for k := range c.m {
		if !seen[k] {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

// ErrNotSysfs is wrapped by the error of Check, and of Devices, when the
// root is not a sysfs tree: what cannot be seen must not read as an
// empty, compliant inventory.
var ErrNotSysfs = errors.New("not a sysfs tree")

// Check reports whether the root is a sysfs tree, and why not in an
// error wrapping ErrNotSysfs (and fs.ErrNotExist when the root is
// missing). A directory whose file system is sysfs (statfs f_type
// SYSFS_MAGIC, 0x62656572, on Linux) is one when it holds devices/ (the
// root, not a directory inside it). Any other directory, a fixture tree
// or a copy, must have the structure the kernel creates: a devices/
// directory and a bus/ or class/ directory.
func (f FS) Check() error {
	fi, err := os.Stat(f.root)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotSysfs, f.root, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrNotSysfs, f.root)
	}
	magic, _ := isSysfsMount(f.root) // a failing statfs leaves the structure to decide
	if !f.isDir("devices") {
		if magic {
			return fmt.Errorf("%w: %s is a directory inside sysfs, not its root (no devices/)", ErrNotSysfs, f.root)
		}
		return fmt.Errorf("%w: %s has no devices/ directory", ErrNotSysfs, f.root)
	}
	if !magic && !f.isDir("bus") && !f.isDir("class") {
		return fmt.Errorf("%w: %s has devices/ but neither bus/ nor class/", ErrNotSysfs, f.root)
	}
	return nil
}

// HasUSBBus reports whether the sysfs has a USB bus (bus/usb): without
// one (no USB controller, or a kernel built without USB) Devices finds
// nothing, and a caller should say so rather than show an empty list.
func (f FS) HasUSBBus() bool { return f.isDir("bus/usb") }

func (f FS) isDir(rel string) bool {
	fi, err := os.Stat(f.path(rel))
	return err == nil && fi.IsDir()
}

// Root returns the sysfs root the FS reads.
func (f FS) Root() string { return f.root }

func (f FS) path(rel ...string) string {
	return filepath.Join(append([]string{f.root}, rel...)...)
}

// busDevicesDir is where the kernel links every USB device and interface.
const busDevicesDir = "bus/usb/devices"

// Devices reads every USB device under bus/usb/devices, root hubs
// included, sorted by bus then port numbers ("usb1" < "1-2" < "1-2.1" <
// "1-10"). A root that is not a sysfs tree (Check) is an error wrapping
// ErrNotSysfs, with no list; a sysfs without bus/usb (no USB controller,
// a container) gives an empty list and no error (HasUSBBus tells the
// two empty cases apart). A device that cannot be read is left out and named in the
// returned error (errors.Join, one per device); a device that vanished
// during the scan (unplugged) is left out silently.
func (f FS) Devices() ([]Device, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	s := newScanner(f)
	s.cached = true
	defer s.release()
	busDir, err := openDir(f.path(busDevicesDir))
	if errors.Is(err, fs.ErrNotExist) {
		return []Device{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list USB devices: %w", err)
	}
	ents, err := busDir.entries(s.dirBuf, false)
	busDir.close()
	if err != nil {
		return nil, fmt.Errorf("list USB devices: %w", err)
	}
	var names []string
	for _, e := range ents {
		if isDeviceName(e.name) {
			names = append(names, e.name)
		}
	}

	blocks, berr := f.blockIndex(s)
	var errs []error
	if berr != nil {
		errs = append(errs, berr)
	}

	devs := make([]Device, len(names))
	found := make([]bool, len(names))
	derrs := make([]error, len(names))
	read := func(s *scanner, i int) {
		d, err := s.device(names[i], blocks)
		switch {
		case err == nil:
			devs[i], found[i] = d, true
		case errors.Is(err, errGone):
			// Unplugged while we looked: not an error.
		default:
			derrs[i] = err
		}
	}
	workers := min(runtime.GOMAXPROCS(0), maxWorkers, len(names)/8)
	if workers <= 1 {
		for i := range names {
			read(s, i)
		}
	} else {
		var wg sync.WaitGroup
		var mu sync.Mutex
		next := 0
		for w := 0; w < workers; w++ {
			ws := s
			if w > 0 {
				ws = newScanner(f)
				ws.cached = true
			}
			wg.Go(func() {
				if ws != s {
					defer ws.release()
				}
				for {
					mu.Lock()
					i := next
					next++
					mu.Unlock()
					if i >= len(names) {
						return
					}
					read(ws, i)
				}
			})
		}
		wg.Wait()
	}

	out := make([]Device, 0, len(names))
	seen := make(map[string]bool, len(names))
	for i := range names {
		if found[i] {
			out = append(out, devs[i])
			seen[names[i]] = true
		}
		if derrs[i] != nil {
			errs = append(errs, derrs[i])
		}
	}
	f.ids.keep(seen)
	slices.SortFunc(out, func(a, b Device) int { return comparePath(a.Path, b.Path) })
	return out, errors.Join(errs...)
}

// Device reads one device by bus path ("1-4.1.3", "usb1"): what a
// hot-plug handler calls. When the device is not (or no longer) there the
// error wraps fs.ErrNotExist.
func (f FS) Device(busPath string) (Device, error) {
	if !isDeviceName(busPath) {
		return Device{}, fmt.Errorf("usb device %q: not a bus path: %w", busPath, fs.ErrNotExist)
	}
	s := newScanner(f)
	defer s.release()
	// A class/block entry that cannot be read belongs to some other
	// device or none; it must not stop this one from being reported.
	blocks, _ := f.blockIndex(s)
	d, err := s.device(busPath, blocks)
	if errors.Is(err, errGone) {
		return Device{}, fmt.Errorf("usb device %s: %w", busPath, fs.ErrNotExist)
	}
	if err != nil {
		return Device{}, err
	}
	return d, nil
}

// errGone marks a device whose directory disappeared while it was read.
// It wraps fs.ErrNotExist.
var errGone = fmt.Errorf("device gone: %w", fs.ErrNotExist)

// OwnerOf returns the bus path of the USB device that owns devpath, a
// kernel DEVPATH ("/devices/pci0000:00/.../usb1/1-2/1-2:1.0/host0/...
// /block/sda/sda1") or a path below the sysfs root: the deepest path
// component that names a USB device ("1-2", or "usb1" for a root hub),
// checked to lie below the root hub of its bus. It works from the path
// alone, so it answers for a device that is already gone (a remove
// event). ok is false when no USB device owns the path.
func (f FS) OwnerOf(devpath string) (busPath string, ok bool) {
	p := filepath.ToSlash(devpath)
	if root := filepath.ToSlash(f.root); root != "/" && strings.HasPrefix(p, root+"/") {
		p = p[len(root):]
	}
	return ownerOf(p)
}

func ownerOf(p string) (string, bool) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		name := parts[i]
		if !isDeviceName(name) {
			continue
		}
		bus := busOf(name)
		if strings.HasPrefix(name, "usb") {
			return name, true
		}
		// A device must hang below its bus's root hub: this keeps
		// names like an I²C "1-0050" from passing as USB devices.
		hub := "usb" + strconv.Itoa(bus)
		if slices.Contains(parts[:i], hub) {
			return name, true
		}
	}
	return "", false
}

// USBBlockDevices maps every block device (disk or partition, "sda",
// "sda1") that sits below a USB device to that device's bus path. It
// walks class/block and resolves each link into the devices tree; a
// sysfs without class/block gives an empty map.
func (f FS) USBBlockDevices() (map[string]string, error) {
	s := newScanner(f)
	defer s.release()
	idx, err := f.blockIndex(s)
	out := make(map[string]string)
	for bus, refs := range idx {
		for _, r := range refs {
			out[r.name] = bus
		}
	}
	return out, err
}

// blockRef is one block device below a USB device: its name and its
// directory relative to the sysfs root.
type blockRef struct {
	name    string
	sysPath string
}

// blockIndex lists class/block and groups the block devices that sit
// below USB devices by owning bus path.
func (f FS) blockIndex(s *scanner) (map[string][]blockRef, error) {
	const classBlock = "class/block"
	d, err := openDir(f.path(classBlock))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	defer d.close()
	ents, err := d.entries(s.dirBuf, false)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var idx map[string][]blockRef
	var errs []error
	for _, e := range ents {
		target, err := d.readlink(e.name, s.linkBuf)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		rel, err := resolveLink(classBlock, target)
		if err != nil {
			errs = append(errs, fmt.Errorf("block device %s: %w", e.name, err))
			continue
		}
		bus, ok := ownerOf(rel)
		if !ok {
			continue
		}
		if idx == nil {
			idx = make(map[string][]blockRef)
		}
		idx[bus] = append(idx[bus], blockRef{name: e.name, sysPath: rel})
	}
	return idx, errors.Join(errs...)
}

// resolveLink resolves a sysfs symlink target found in directory dir
// (both relative to the sysfs root) and returns the target relative to
// the root. Targets that leave the root, or are absolute, are refused.
func resolveLink(dir, target string) (string, error) {
	if path.IsAbs(target) {
		return "", fmt.Errorf("absolute link target %q", target)
	}
	rel := path.Join(dir, target)
	if rel == ".." || strings.HasPrefix(rel, "../") || rel == "." {
		return "", fmt.Errorf("link target %q leaves the sysfs root", target)
	}
	return rel, nil
}

// scanner holds the buffers one goroutine reuses while reading devices.
type scanner struct {
	fs      FS
	cached  bool   // use the identity cache (full rescans only)
	buf     []byte // one attribute, plus one byte to detect larger files
	linkBuf []byte
	dirBuf  []byte
}

var scannerPool = sync.Pool{New: func() any {
	return &scanner{
		buf:     make([]byte, maxAttrSize+1),
		linkBuf: make([]byte, 4096),
		dirBuf:  make([]byte, 8192),
	}
}}

func newScanner(f FS) *scanner {
	s := scannerPool.Get().(*scanner)
	s.fs, s.cached = f, false
	return s
}

func (s *scanner) release() { scannerPool.Put(s) }

// device reads the device busPath. It returns an error wrapping errGone
// when the device disappeared.
func (s *scanner) device(busPath string, blocks map[string][]blockRef) (Device, error) {
	f := s.fs
	link := busDevicesDir + "/" + busPath
	target, err := os.Readlink(f.path(link))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Device{}, errGone
		}
		return Device{}, fmt.Errorf("usb device %s: %w", busPath, err)
	}
	sysPath, err := resolveLink(busDevicesDir, target)
	if err != nil {
		return Device{}, fmt.Errorf("usb device %s: %w", busPath, err)
	}
	dir, err := openDir(f.path(sysPath))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Device{}, errGone // a dangling link: unplugged
		}
		return Device{}, fmt.Errorf("usb device %s: %w", busPath, err)
	}
	defer dir.close()
	d, err := s.readDevice(dir, busPath, sysPath)
	if err != nil {
		// A device torn down under us fails on some attribute; tell
		// that apart from a broken one.
		if _, serr := os.Lstat(f.path(sysPath)); errors.Is(serr, fs.ErrNotExist) {
			return Device{}, errGone
		}
		// %v, not %w: an attribute missing from a directory that is
		// still there is a broken or half torn-down device, not a gone
		// one, and must not read as fs.ErrNotExist.
		return Device{}, fmt.Errorf("usb device %s: %v", busPath, err)
	}
	d.BlockDevices = s.blockDevices(blocks[busPath])
	return d, nil
}

// readDevice reads the attributes of the device whose directory is dir.
// Identity comes from the binary descriptors attribute when it parses
// (one read instead of six), else from idVendor, idProduct and friends.
// Only a device without a readable vendor and product id is an error.
func (s *scanner) readDevice(dir sysDir, busPath, sysPath string) (Device, error) {
	ino, inoOK := dir.ino()
	var id identity
	cached := false
	if s.cached && inoOK {
		id, cached = s.fs.ids.get(busPath, ino)
	}
	if !cached {
		var err error
		if id, err = s.readIdentity(dir, busPath, sysPath); err != nil {
			return id.dev, err
		}
		if inoOK {
			id.ino = ino
			s.fs.ids.put(busPath, id)
		}
	}
	d := id.dev
	if v, ok := s.text(dir, "authorized"); ok {
		switch v {
		case "1":
			d.Authorized = ptr(true)
		case "0":
			d.Authorized = ptr(false)
		}
	}
	ifaces, err := s.interfaces(dir, &d, &id.desc, id.haveDesc)
	if err != nil {
		return d, err
	}
	d.Interfaces = ifaces
	return d, nil
}

// readIdentity reads what a device keeps while attached: ids, class,
// strings, speed, device number, and its descriptors.
func (s *scanner) readIdentity(dir sysDir, busPath, sysPath string) (identity, error) {
	d := Device{
		Path:    busPath,
		SysPath: sysPath,
		BusNum:  busOf(busPath),
		Parent:  parentOf(busPath, sysPath),
	}

	var desc descriptors
	haveDesc := false
	if raw, err := dir.readAttr("descriptors", s.buf); err == nil {
		var derr error
		desc, derr = parseDescriptors(raw)
		haveDesc = desc.VendorID != ""
		_ = derr // a broken configuration: interfaces fall back to directories
	}
	if haveDesc {
		d.VendorID, d.ProductID, d.BCDDevice = desc.VendorID, desc.ProductID, desc.BCDDevice
		d.Class, d.SubClass, d.Protocol = desc.Class, desc.SubClass, desc.Protocol
	} else {
		var err error
		if d.VendorID, err = s.hexAttr(dir, "idVendor", 16); err != nil {
			return identity{dev: d}, err
		}
		if d.ProductID, err = s.hexAttr(dir, "idProduct", 16); err != nil {
			return identity{dev: d}, err
		}
		d.BCDDevice, _ = s.hexAttr(dir, "bcdDevice", 16)
		d.Class, _ = s.hexAttr(dir, "bDeviceClass", 8)
		d.SubClass, _ = s.hexAttr(dir, "bDeviceSubClass", 8)
		d.Protocol, _ = s.hexAttr(dir, "bDeviceProtocol", 8)
	}

	if v, ok := s.text(dir, "devnum"); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			d.DevNum = n
		}
	}
	if v, ok := s.raw(dir, "serial"); ok {
		sv := safe.String(v)
		d.Serial = &sv
	}
	if v, ok := s.raw(dir, "manufacturer"); ok {
		d.Manufacturer = safe.String(v)
	}
	if v, ok := s.raw(dir, "product"); ok {
		d.Product = safe.String(v)
	}
	if v, ok := s.text(dir, "speed"); ok && len(v) <= 16 {
		d.Speed = safe.String(v)
	}
	d.VendorName = usbids.Vendor(d.VendorID)
	d.ProductName = usbids.Product(d.VendorID, d.ProductID)
	return identity{dev: d, desc: desc, haveDesc: haveDesc}, nil
}

// interfaces returns the device's interfaces: one per interface of the
// active configuration (alternate setting 0, or the first listed), with
// the driver bound to its directory. Classes come from the descriptors
// when they were read (the directory shows the current alternate
// setting, not 0); an interface directory the descriptors do not list,
// or all of them when there are no descriptors, is read from its own
// attributes.
//
// The active configuration is the one the interface directories name,
// else bConfigurationValue. A device that is not configured
// (bConfigurationValue empty or 0) or not authorized (authorized 0: the
// kernel keeps it unconfigured) is judged by the configuration the
// kernel will set once it configures it, from the descriptors alone
// (chooseConfig, as usb_choose_configuration does), with no driver.
func (s *scanner) interfaces(dir sysDir, d *Device, desc *descriptors, haveDesc bool) ([]Interface, error) {
	busPath := d.Path
	ents, err := dir.entries(s.dirBuf, true)
	if err != nil {
		return nil, err
	}
	type ifDir struct {
		name     string
		cfg, num int
	}
	var dirs []ifDir
	for _, e := range ents {
		if !e.isDir() {
			continue
		}
		if cfg, num, ok := parseInterfaceName(e.name, busPath); ok {
			dirs = append(dirs, ifDir{e.name, cfg, num})
		}
	}

	var out []Interface
	if haveDesc {
		active := 0
		if len(dirs) > 0 {
			active = dirs[0].cfg // interface directories exist for the active configuration only
		} else if v, ok := s.text(dir, "bConfigurationValue"); ok {
			active, _ = strconv.Atoi(v)
		}
		i := -1
		if d.Authorized == nil || *d.Authorized || len(dirs) > 0 {
			i = desc.configIndex(active)
		}
		if i < 0 {
			i = desc.chooseConfig(s.busPower(dir, d))
		}
		out = desc.interfacesAt(i)
	}
	for _, id := range dirs {
		i := slices.IndexFunc(out, func(in Interface) bool { return in.Number == id.num })
		if i < 0 {
			in := s.interfaceFromDir(dir, id.name, id.num)
			out = append(out, in)
			i = len(out) - 1
		}
		if t, err := dir.readlink(id.name+"/driver", s.linkBuf); err == nil {
			out[i].Driver = safe.String(path.Base(t))
		}
	}
	slices.SortFunc(out, func(a, b Interface) int { return a.Number - b.Number })
	if out == nil {
		out = []Interface{}
	}
	return out, nil
}

// busPower returns what the device's port gives it, as hub_configure
// (drivers/usb/core/hub.c) sets udev->bus_mA: a port of a root hub or of
// a self-powered hub gives a full load (500 mA, 900 mA at SuperSpeed), a
// port of a bus-powered hub one unit load (100 mA, 150 mA). Sysfs does
// not show the hub's power status (GET_STATUS) nor a host controller's
// own power_budget, so the budget is a full load unless the parent hub's
// bmAttributes says it cannot be self-powered (bit 0x40 clear). A speed
// of 5000 Mbit/s or more counts bMaxPower in 8 mA units.
func (s *scanner) busPower(dir sysDir, d *Device) busPower {
	pw := busPower{BudgetMA: fullLoadMA}
	if n, err := strconv.ParseFloat(d.Speed, 64); err == nil && n >= 5000 {
		pw = busPower{SuperSpeed: true, BudgetMA: fullLoadSSMA}
	}
	if d.Parent == "" || strings.HasPrefix(d.Parent, "usb") || path.Base(path.Dir(d.SysPath)) != d.Parent {
		return pw // on a root hub, or the hub's directory is not the one above
	}
	if v, err := s.hexAttr(dir, "../bmAttributes", 8); err == nil {
		if n, err := strconv.ParseUint(v, 16, 8); err == nil && n&0x40 == 0 {
			pw.BudgetMA = unitLoadMA
			if pw.SuperSpeed {
				pw.BudgetMA = unitLoadSSMA
			}
		}
	}
	return pw
}

// interfaceFromDir reads an interface's class from its directory.
func (s *scanner) interfaceFromDir(dir sysDir, name string, num int) Interface {
	in := Interface{Number: num}
	if v, err := s.hexAttr(dir, name+"/bInterfaceNumber", 8); err == nil {
		if n, err := strconv.ParseUint(v, 16, 8); err == nil {
			in.Number = int(n)
		}
	}
	in.Class, _ = s.hexAttr(dir, name+"/bInterfaceClass", 8)
	in.SubClass, _ = s.hexAttr(dir, name+"/bInterfaceSubClass", 8)
	in.Protocol, _ = s.hexAttr(dir, name+"/bInterfaceProtocol", 8)
	return in
}

// blockDevices reads the block devices found below the device: size,
// read-only, removable (of the disk, for a partition too), and whether
// each is a partition.
func (s *scanner) blockDevices(refs []blockRef) []BlockDevice {
	out := []BlockDevice{}
	for _, r := range refs {
		dir, err := openDir(s.fs.path(r.sysPath))
		if err != nil {
			continue // gone since the index was read
		}
		b := BlockDevice{Name: r.name}
		if v, ok := s.text(dir, "size"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n <= (1<<63-1)/512 {
				b.Size = n * 512
			}
		}
		if v, ok := s.text(dir, "ro"); ok {
			b.ReadOnly = v == "1"
		}
		_, b.Partition = s.text(dir, "partition")
		removable := "removable"
		if b.Partition {
			removable = "../removable" // the disk's
		}
		if v, ok := s.text(dir, removable); ok {
			b.Removable = v == "1"
		}
		dir.close()
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b BlockDevice) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// raw reads attribute name as a string, with one trailing newline
// removed; ok is false when it cannot be read. A file over the size cap
// gives its first maxAttrSize bytes.
func (s *scanner) raw(dir sysDir, name string) (string, bool) {
	b, err := dir.readAttr(name, s.buf)
	if err != nil && !errors.Is(err, errTooLarge) {
		return "", false
	}
	if len(b) > maxAttrSize {
		b = b[:maxAttrSize]
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	return string(b), true
}

// text reads a short attribute with surrounding white space trimmed
// (the kernel pads some: "bNumInterfaces= 1"). ok is false when it
// cannot be read or exceeds the cap.
func (s *scanner) text(dir sysDir, name string) (string, bool) {
	b, err := dir.readAttr(name, s.buf)
	if err != nil {
		return "", false
	}
	return string(bytes.TrimSpace(b)), true
}

// hexAttr reads a hex attribute of at most bits bits and returns it
// lower-case with fixed width (bits/4 digits).
func (s *scanner) hexAttr(dir sysDir, name string, bits int) (string, error) {
	b, err := dir.readAttr(name, s.buf)
	if err != nil {
		return "", err
	}
	return parseHexAttr(b, bits)
}

// parseHexAttr parses a sysfs hex attribute ("05f3\n", "0x05F3", " 9")
// into bits/4 lower-case digits.
func parseHexAttr(b []byte, bits int) (string, error) {
	v := string(bytes.TrimSpace(b))
	digits := strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X")
	if digits == "" || len(digits) > bits/4 {
		return "", fmt.Errorf("hex value %q: want 1 to %d hex digits", safe.String(v), bits/4)
	}
	n, err := strconv.ParseUint(digits, 16, bits)
	if err != nil {
		return "", fmt.Errorf("hex value %q: not hex", safe.String(v))
	}
	if bits == 8 {
		return hex2(byte(n)), nil
	}
	return hex4(uint16(n)), nil
}

// isDeviceName reports whether name is a USB device's sysfs name:
// "usb<bus>" (root hub) or "<bus>-<port>[.<port>]..." (no interfaces,
// which carry ":<config>.<number>").
func isDeviceName(name string) bool {
	if rest, ok := strings.CutPrefix(name, "usb"); ok {
		return isDigits(rest)
	}
	bus, ports, ok := strings.Cut(name, "-")
	if !ok || !isDigits(bus) || ports == "" {
		return false
	}
	for p := range strings.SplitSeq(ports, ".") {
		if !isDigits(p) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseInterfaceName parses an interface directory name of device
// busPath: "<busPath>:<config>.<number>", where a root hub "usbN" names
// its interface "N-0:1.0".
func parseInterfaceName(name, busPath string) (cfg, num int, ok bool) {
	dev, rest, found := strings.Cut(name, ":")
	if !found {
		return 0, 0, false
	}
	if dev != busPath && !(strings.HasPrefix(busPath, "usb") && dev == busPath[3:]+"-0") {
		return 0, 0, false
	}
	c, n, found := strings.Cut(rest, ".")
	if !found || !isDigits(c) || !isDigits(n) {
		return 0, 0, false
	}
	cfg, _ = strconv.Atoi(c)
	num, _ = strconv.Atoi(n)
	return cfg, num, true
}

// busOf returns the bus number in a device name ("usb3", "3-1.2" → 3).
func busOf(name string) int {
	s := strings.TrimPrefix(name, "usb")
	if i := strings.IndexByte(s, '-'); i >= 0 {
		s = s[:i]
	}
	n, _ := strconv.Atoi(s)
	return n
}

// parentOf returns the hub a device hangs off: the directory above it
// when that is a USB device (sysfs nests devices below their hubs), else
// what the name says ("1-4.1" → "1-4", "1-4" → "usb1"); "" for a root
// hub.
func parentOf(busPath, sysPath string) string {
	if strings.HasPrefix(busPath, "usb") {
		return ""
	}
	if p := path.Base(path.Dir(sysPath)); isDeviceName(p) {
		return p
	}
	if i := strings.LastIndexByte(busPath, '.'); i >= 0 {
		return busPath[:i]
	}
	return "usb" + strconv.Itoa(busOf(busPath))
}

// comparePath orders bus paths by bus, root hub first, then by port
// numbers as numbers ("1-2" < "1-2.1" < "1-10").
func comparePath(a, b string) int {
	if c := cmp.Compare(busOf(a), busOf(b)); c != 0 {
		return c
	}
	ra, rb := strings.HasPrefix(a, "usb"), strings.HasPrefix(b, "usb")
	switch {
	case ra && !rb:
		return -1
	case rb && !ra:
		return 1
	}
	_, pa, _ := strings.Cut(a, "-")
	_, pb, _ := strings.Cut(b, "-")
	for pa != "" && pb != "" {
		var xa, xb string
		xa, pa, _ = strings.Cut(pa, ".")
		xb, pb, _ = strings.Cut(pb, ".")
		na, _ := strconv.Atoi(xa)
		nb, _ := strconv.Atoi(xb)
		if c := cmp.Compare(na, nb); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(len(pa), len(pb)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func ptr[T any](v T) *T { return &v }
