package usb

import (
	"fmt"
	"slices"
	"strconv"
)

// CompareDevices compares two device lists of the same machine, typically
// one read from sysfs (a) and one from libusb (b), and returns one line
// per difference, sorted; nil when they agree. Devices are matched by
// Path. It compares what both backends can see: bus and device numbers,
// ids, bcdDevice, serial (absent versus present, and its value),
// manufacturer and product strings, device class, subclass and protocol,
// parent, speed (only when both know it) and the interfaces' numbers,
// classes, subclasses and protocols. It ignores SysPath, drivers,
// Authorized, block devices and usb.ids names, which libusb cannot give.
func CompareDevices(a, b []Device) []string {
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }

	index := func(side string, list []Device) map[string]*Device {
		m := make(map[string]*Device, len(list))
		for i := range list {
			d := &list[i]
			if _, dup := m[d.Path]; dup {
				add("%s: listed twice in %s", d.Path, side)
				continue
			}
			m[d.Path] = d
		}
		return m
	}
	ma, mb := index("a", a), index("b", b)

	for path, da := range ma {
		db, ok := mb[path]
		if !ok {
			add("%s: only in a (%s:%s)", path, da.VendorID, da.ProductID)
			continue
		}
		field := func(name, va, vb string) {
			if va != vb {
				add("%s: %s: a %q, b %q", path, name, va, vb)
			}
		}
		field("busnum", strconv.Itoa(da.BusNum), strconv.Itoa(db.BusNum))
		field("devnum", strconv.Itoa(da.DevNum), strconv.Itoa(db.DevNum))
		field("idVendor", da.VendorID, db.VendorID)
		field("idProduct", da.ProductID, db.ProductID)
		field("bcdDevice", da.BCDDevice, db.BCDDevice)
		field("serial", serialText(da.Serial), serialText(db.Serial))
		field("manufacturer", da.Manufacturer, db.Manufacturer)
		field("product", da.Product, db.Product)
		field("class", da.Class, db.Class)
		field("subclass", da.SubClass, db.SubClass)
		field("protocol", da.Protocol, db.Protocol)
		field("parent", da.Parent, db.Parent)
		if da.Speed != "" && db.Speed != "" {
			field("speed", da.Speed, db.Speed)
		}
		field("interfaces", interfacesText(da.Interfaces), interfacesText(db.Interfaces))
	}
	for path, db := range mb {
		if _, ok := ma[path]; !ok {
			add("%s: only in b (%s:%s)", path, db.VendorID, db.ProductID)
		}
	}
	slices.Sort(diffs)
	return diffs
}

// serialText tells an absent serial from an empty one.
func serialText(s *string) string {
	if s == nil {
		return "<none>"
	}
	return strconv.Quote(*s)
}

// interfacesText renders interfaces as "0:08/06/50 1:03/01/01", sorted by
// number, without drivers.
func interfacesText(ifs []Interface) string {
	sorted := slices.Clone(ifs)
	slices.SortFunc(sorted, func(x, y Interface) int { return x.Number - y.Number })
	var out []byte
	for i, in := range sorted {
		if i > 0 {
			out = append(out, ' ')
		}
		out = fmt.Appendf(out, "%d:%s/%s/%s", in.Number, in.Class, in.SubClass, in.Protocol)
	}
	return string(out)
}
