package sysfstest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// fwupdLog is the part of an fwupd emulation log ("fwupdtool
// emulation-save", plugins/*/tests/*-setup.json) that records sysfs.
type fwupdLog struct {
	UsbDevices []struct {
		BackendID string       `json:"BackendId"`
		Subsystem string       `json:"Subsystem"`
		Devtype   string       `json:"Devtype"`
		Events    []fwupdEvent `json:"Events"`
	} `json:"UsbDevices"`
}

type fwupdEvent struct {
	ID        string  `json:"Id"`
	Data      *string `json:"Data"`
	BackendID string  `json:"BackendId"`
}

// ParseFwupd turns an fwupd emulation log into a recording. fwupd logs
// each sysfs read its plugin made: "ReadAttr:Attr=x" with the value,
// "GetSymlinkTarget:Attr=driver" with the target's base name,
// "LoadDescriptor:basename=descriptors" in base64, and
// "GetBackendParent" naming the next device the events are about. A read
// without Data found nothing and leaves the attribute out.
//
// fwupd does not record busnum, devnum, idVendor and the like: they are
// derived here the way the kernel derives them (busnum and devnum from
// the uevent's BUSNUM and DEVNUM; ids, bcdDevice and class from the
// device descriptor; an interface's bInterface* from its uevent's
// INTERFACE and its name; a partition's "partition" from PARTN), so that
// the tree has what a real sysfs has for these devices and nothing the
// recording does not support.
func ParseFwupd(data []byte) (*Recording, error) {
	var lg fwupdLog
	if err := json.Unmarshal(data, &lg); err != nil {
		return nil, fmt.Errorf("fwupd log: %w", err)
	}
	r := &Recording{}
	idx := map[string]int{}
	dev := func(backendID string) (*Device, error) {
		p, err := cleanDevPath(backendID)
		if err != nil {
			return nil, err
		}
		if i, ok := idx[p]; ok {
			return &r.Devices[i], nil
		}
		r.Devices = append(r.Devices, Device{Path: p})
		idx[p] = len(r.Devices) - 1
		return &r.Devices[len(r.Devices)-1], nil
	}
	type linkInfo struct{ subsystem, driver string }
	links := map[string]*linkInfo{}
	for _, u := range lg.UsbDevices {
		cur, err := dev(u.BackendID)
		if err != nil {
			return nil, err
		}
		curPath := cur.Path
		if u.Subsystem != "" {
			links[curPath] = &linkInfo{subsystem: u.Subsystem}
		}
		for _, ev := range u.Events {
			kind, arg, _ := strings.Cut(ev.ID, ":")
			if kind == "GetBackendParent" {
				if ev.BackendID != "" {
					d, err := dev(ev.BackendID)
					if err != nil {
						return nil, err
					}
					curPath = d.Path
				}
				continue
			}
			if ev.Data == nil {
				continue
			}
			cur := &r.Devices[idx[curPath]]
			key, val, _ := strings.Cut(arg, "=")
			switch {
			case kind == "ReadAttr" && key == "Attr":
				if checkRelName(val) != nil {
					return nil, fmt.Errorf("%s: bad attribute %q", curPath, val)
				}
				cur.SetAttr(val, []byte(*ev.Data))
				if val == "uevent" {
					for line := range strings.SplitSeq(*ev.Data, "\n") {
						if k, v, ok := strings.Cut(line, "="); ok && cur.Prop(k) == "" {
							cur.Props = append(cur.Props, Prop{Key: k, Value: v})
						}
					}
				}
			case kind == "ReadProp" && key == "Key":
				if cur.Prop(val) == "" {
					cur.Props = append(cur.Props, Prop{Key: val, Value: *ev.Data})
				}
			case kind == "GetSymlinkTarget" && key == "Attr":
				li := links[curPath]
				if li == nil {
					li = &linkInfo{}
					links[curPath] = li
				}
				switch val {
				case "subsystem":
					li.subsystem = *ev.Data
				case "driver":
					li.driver = *ev.Data
				}
			case kind == "LoadDescriptor" && key == "basename":
				b, err := base64.StdEncoding.DecodeString(*ev.Data)
				if err != nil {
					return nil, fmt.Errorf("%s: %s: %w", curPath, val, err)
				}
				if checkRelName(val) != nil {
					return nil, fmt.Errorf("%s: bad descriptor name %q", curPath, val)
				}
				cur.SetAttr(val, b)
			}
		}
	}
	for i := range r.Devices {
		d := &r.Devices[i]
		li := links[d.Path]
		if li != nil && li.subsystem != "" {
			if d.Prop("SUBSYSTEM") == "" {
				d.Props = append(d.Props, Prop{Key: "SUBSYSTEM", Value: li.subsystem})
			}
			kind := "class"
			if busSubsystems[li.subsystem] {
				kind = "bus"
			}
			if li.driver != "" {
				d.Links = append(d.Links, Link{Name: "driver", Target: relTo(d.Path+"/driver", "/bus/"+li.subsystem+"/drivers/"+li.driver)})
			}
			d.Links = append(d.Links, Link{Name: "subsystem", Target: relTo(d.Path+"/subsystem", "/"+kind+"/"+li.subsystem)})
		}
		deriveAttrs(d)
	}
	return r, nil
}

// deriveAttrs adds the attributes the kernel computes from what the
// recording holds (see ParseFwupd).
func deriveAttrs(d *Device) {
	setIfMissing := func(name, v string) {
		if _, ok := d.Attr(name); !ok {
			d.SetAttr(name, []byte(v+"\n"))
		}
	}
	num := func(key string) (string, bool) {
		n, err := strconv.Atoi(d.Prop(key))
		if err != nil {
			return "", false
		}
		return strconv.Itoa(n), true
	}
	switch d.Prop("DEVTYPE") {
	case "usb_device":
		if v, ok := num("BUSNUM"); ok {
			setIfMissing("busnum", v)
		}
		if v, ok := num("DEVNUM"); ok {
			setIfMissing("devnum", v)
		}
		if b, ok := d.Attr("descriptors"); ok && len(b) >= 18 && b[1] == 1 {
			setIfMissing("bDeviceClass", fmt.Sprintf("%02x", b[4]))
			setIfMissing("bDeviceSubClass", fmt.Sprintf("%02x", b[5]))
			setIfMissing("bDeviceProtocol", fmt.Sprintf("%02x", b[6]))
			setIfMissing("idVendor", fmt.Sprintf("%04x", binary.LittleEndian.Uint16(b[8:])))
			setIfMissing("idProduct", fmt.Sprintf("%04x", binary.LittleEndian.Uint16(b[10:])))
			setIfMissing("bcdDevice", fmt.Sprintf("%04x", binary.LittleEndian.Uint16(b[12:])))
		}
	case "usb_interface":
		if f := strings.Split(d.Prop("INTERFACE"), "/"); len(f) == 3 {
			for i, name := range []string{"bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol"} {
				if n, err := strconv.ParseUint(f[i], 10, 8); err == nil {
					setIfMissing(name, fmt.Sprintf("%02x", n))
				}
			}
		}
		if _, rest, ok := strings.Cut(d.Name(), ":"); ok {
			if _, n, ok := strings.Cut(rest, "."); ok {
				if v, err := strconv.Atoi(n); err == nil {
					setIfMissing("bInterfaceNumber", fmt.Sprintf("%02x", v))
				}
			}
		}
	case "partition":
		if v, ok := num("PARTN"); ok {
			setIfMissing("partition", v)
		}
	}
}
