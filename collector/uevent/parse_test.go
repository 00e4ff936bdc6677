package uevent

import (
	"bufio"
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	logitechBin = "testdata/logitech-046d-c52b-hid-add.netlink.bin"
	android18d1 = "testdata/android-18d1-9025-msc-adb.udev-env.txt"
	android22d9 = "testdata/android-22d9-2774-remove.udev-env.txt"
)

// udevRecord is one block of `udevadm monitor --environment` output.
type udevRecord struct {
	action, devpath string
	env             map[string]string // all properties, udev ones included
}

// readUdevEnv reads `udevadm monitor --environment` text: a line
// "UDEV  [time] ACTION DEVPATH (SUBSYSTEM)" and KEY=VALUE lines up to a
// blank line.
func readUdevEnv(t testing.TB, path string) []udevRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []udevRecord
	var cur *udevRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "UDEV  [") || strings.HasPrefix(line, "KERNEL["):
			f := strings.Fields(line)
			if len(f) < 5 {
				t.Fatalf("%s: bad header %q", path, line)
			}
			out = append(out, udevRecord{action: f[2], devpath: f[3], env: map[string]string{}})
			cur = &out[len(out)-1]
		case line == "":
			cur = nil
		case cur != nil:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: bad property line %q", path, line)
			}
			cur.env[k] = v
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no records", path)
	}
	return out
}

// udevOnly reports whether a property is added by udev rules, not by the
// kernel.
func udevOnly(key string) bool {
	return strings.HasPrefix(key, ".") || strings.HasPrefix(key, "ID_") || key == "USEC_INITIALIZED" ||
		key == "DEVLINKS" || key == "TAGS" || key == "CURRENT_TAGS"
}

// kernelDatagram turns a udev record back into the kernel datagram it
// came from: header, kernel properties in the kernel's order (ACTION,
// DEVPATH, SUBSYSTEM first, SEQNUM last), each NUL-terminated.
func (r udevRecord) kernelDatagram() []byte {
	var b bytes.Buffer
	put := func(s string) { b.WriteString(s); b.WriteByte(0) }
	put(r.action + "@" + r.devpath)
	first := []string{"ACTION", "DEVPATH", "SUBSYSTEM"}
	for _, k := range first {
		if v, ok := r.env[k]; ok {
			put(k + "=" + v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.env)) {
		if udevOnly(k) || k == "SEQNUM" || k == "ACTION" || k == "DEVPATH" || k == "SUBSYSTEM" {
			continue
		}
		put(k + "=" + r.env[k])
	}
	if v, ok := r.env["SEQNUM"]; ok {
		put("SEQNUM=" + v)
	}
	return b.Bytes()
}

func TestParseNetlinkRecording(t *testing.T) {
	b, err := os.ReadFile(logitechBin)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	const devpath = "/devices/pci0000:00/0000:00:14.0/usb3/3-2/3-2:1.0/0003:046D:C52B.0026"
	if ev.Action != "add" || ev.DevPath != devpath || ev.Subsystem != "hid" || ev.DevType != "" || ev.Seqnum != 4618 {
		t.Errorf("got %q %q %q %q %d", ev.Action, ev.DevPath, ev.Subsystem, ev.DevType, ev.Seqnum)
	}
	want := map[string]string{
		"ACTION":    "add",
		"DEVPATH":   devpath,
		"SUBSYSTEM": "hid",
		"SEQNUM":    "4618",
		"HID_UNIQ":  "",
		"MODALIAS":  "hid:b0003g0000v0000046Dp0000C52B",
		"HID_ID":    "0003:0000046D:0000C52B",
		"HID_NAME":  "Logitech USB Receiver",
		"HID_PHYS":  "usb-0000:00:14.0-2/input0",
	}
	if !maps.Equal(ev.Env, want) {
		t.Errorf("Env:\n got %q\nwant %q", ev.Env, want)
	}
	if !ev.Received.IsZero() {
		t.Errorf("Received set by Parse: %v", ev.Received)
	}
	// The recording has no final NUL; the kernel sends one. Both parse alike.
	ev2, err := Parse(append(b, 0))
	if err != nil || !maps.Equal(ev2.Env, want) {
		t.Errorf("with trailing NUL: %v, %q", err, ev2.Env)
	}
}

// TestParseUdevRecordings parses every event of the udevadm recordings,
// turned back into kernel datagrams, and checks it against the text.
func TestParseUdevRecordings(t *testing.T) {
	for path, n := range map[string]int{android18d1: 6, android22d9: 2} {
		recs := readUdevEnv(t, path)
		if len(recs) != n {
			t.Errorf("%s: %d records, want %d", path, len(recs), n)
		}
		for i, r := range recs {
			ev, err := Parse(r.kernelDatagram())
			if err != nil {
				t.Errorf("%s #%d: %v", path, i, err)
				continue
			}
			if ev.Action != r.action || ev.DevPath != r.devpath || ev.Subsystem != r.env["SUBSYSTEM"] ||
				ev.DevType != r.env["DEVTYPE"] || ev.Env["SEQNUM"] != r.env["SEQNUM"] {
				t.Errorf("%s #%d: got %+v, want %+v", path, i, ev, r)
			}
			for k, v := range r.env {
				if udevOnly(k) {
					if _, ok := ev.Env[k]; ok {
						t.Errorf("%s #%d: udev key %s in kernel event", path, i, k)
					}
				} else if ev.Env[k] != v {
					t.Errorf("%s #%d: %s = %q, want %q", path, i, k, ev.Env[k], v)
				}
			}
		}
	}
}

// TestParseUdevRecordingValues checks the decoded values of a few events
// against what the recordings' udev properties say independently
// (ID_VENDOR_ID, ID_MODEL_ID, ID_REVISION, ID_USB_INTERFACES).
func TestParseUdevRecordingValues(t *testing.T) {
	recs := readUdevEnv(t, android18d1)
	tests := []struct {
		i                             int
		action, devtype               string
		seqnum                        uint64
		vid, pid, bcd                 string
		ifClass, ifSub, ifProto       string // from INTERFACE, "" for a device
		typeClass, typeSub, typeProto string
	}{
		{0, "remove", "usb_interface", 8566, "18d1", "9025", "0231", "ff", "42", "01", "00", "00", "00"},
		{1, "remove", "usb_interface", 8565, "18d1", "9025", "0231", "08", "06", "50", "00", "00", "00"},
		{2, "remove", "usb_device", 8567, "18d1", "9025", "0231", "", "", "", "00", "00", "00"},
		{3, "add", "usb_device", 8568, "18d1", "9025", "0231", "", "", "", "00", "00", "00"},
		{5, "add", "usb_interface", 8572, "18d1", "9025", "0231", "ff", "42", "01", "00", "00", "00"},
	}
	for _, tt := range tests {
		ev, err := Parse(recs[tt.i].kernelDatagram())
		if err != nil {
			t.Fatalf("#%d: %v", tt.i, err)
		}
		if ev.Action != tt.action || ev.DevType != tt.devtype || ev.Seqnum != tt.seqnum {
			t.Errorf("#%d: got %s %s %d", tt.i, ev.Action, ev.DevType, ev.Seqnum)
		}
		vid, pid, bcd, err := ParseProduct(ev.Env["PRODUCT"])
		if err != nil || vid != tt.vid || pid != tt.pid || bcd != tt.bcd {
			t.Errorf("#%d: ParseProduct(%q) = %s %s %s %v", tt.i, ev.Env["PRODUCT"], vid, pid, bcd, err)
		}
		// Cross-check against udev's own decoding in the recording.
		if id := recs[tt.i].env["ID_VENDOR_ID"]; id != "" && id != vid {
			t.Errorf("#%d: vendor %s, udev says %s", tt.i, vid, id)
		}
		if rev := recs[tt.i].env["ID_REVISION"]; rev != "" && rev != bcd {
			t.Errorf("#%d: bcd %s, udev says %s", tt.i, bcd, rev)
		}
		if tt.ifClass != "" {
			c, s, p, err := ParseInterface(ev.Env["INTERFACE"])
			if err != nil || c != tt.ifClass || s != tt.ifSub || p != tt.ifProto {
				t.Errorf("#%d: ParseInterface(%q) = %s %s %s %v", tt.i, ev.Env["INTERFACE"], c, s, p, err)
			}
			if ifs := recs[3].env["ID_USB_INTERFACES"]; !strings.Contains(ifs, ":"+c+s+p+":") {
				t.Errorf("#%d: interface %s%s%s not in udev's %s", tt.i, c, s, p, ifs)
			}
		}
		c, s, p, err := ParseType(ev.Env["TYPE"])
		if err != nil || c != tt.typeClass || s != tt.typeSub || p != tt.typeProto {
			t.Errorf("#%d: ParseType(%q) = %s %s %s %v", tt.i, ev.Env["TYPE"], c, s, p, err)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	good := "add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00SEQNUM=1\x00"
	tests := []struct {
		name, in string
		want     string // substring of the error
	}{
		{"empty", "", "empty datagram"},
		{"only NUL", "\x00", "no '@'"},
		{"no header @", "add/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00", "no '@'"},
		{"empty action", "@/devices/x\x00ACTION=\x00DEVPATH=/devices/x\x00", "header action"},
		{"upper-case action", "ADD@/devices/x\x00ACTION=ADD\x00DEVPATH=/devices/x\x00", "header action"},
		{"relative devpath", "add@devices/x\x00ACTION=add\x00DEVPATH=devices/x\x00", "does not start with '/'"},
		{"empty devpath", "add@\x00ACTION=add\x00DEVPATH=\x00", "does not start with '/'"},
		{"dotdot devpath", "add@/devices/../../etc\x00ACTION=add\x00DEVPATH=/devices/../../etc\x00", `".." component`},
		{"dot devpath", "add@/devices/./x\x00ACTION=add\x00DEVPATH=/devices/./x\x00", `"." component`},
		{"double slash", "add@/devices//x\x00ACTION=add\x00DEVPATH=/devices//x\x00", `"" component`},
		{"trailing slash", "add@/devices/x/\x00ACTION=add\x00DEVPATH=/devices/x/\x00", `"" component`},
		{"control in devpath", "add@/devices/x\n\x00ACTION=add\x00DEVPATH=/devices/x\n\x00", "control byte"},
		{"header only", "add@/devices/x\x00", "no ACTION key"},
		{"no ACTION", "add@/devices/x\x00DEVPATH=/devices/x\x00SEQNUM=1\x00", "no ACTION key"},
		{"no DEVPATH", "add@/devices/x\x00ACTION=add\x00SEQNUM=1\x00", "no DEVPATH key"},
		{"ACTION mismatch", "add@/devices/x\x00ACTION=remove\x00DEVPATH=/devices/x\x00", `header says "add"`},
		{"DEVPATH mismatch", "add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/y\x00", `header says "/devices/x"`},
		{"key without =", "add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00GARBAGE\x00", "no '='"},
		{"empty key", "add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00=v\x00", "key at byte 45: empty"},
		{"space in key", "add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00A B=v\x00", "key at byte"},
		{"empty field", "add@/devices/x\x00ACTION=add\x00\x00DEVPATH=/devices/x\x00", "empty field at byte 26"},
		{"repeated key", "add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00A=1\x00A=2\x00", "repeated"},
		{"repeated ACTION", "add@/devices/x\x00ACTION=add\x00ACTION=add\x00DEVPATH=/devices/x\x00", "repeated"},
		{"SEQNUM non-numeric", "add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00SEQNUM=12a\x00", "SEQNUM"},
		{"SEQNUM negative", "add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00SEQNUM=-1\x00", "not a decimal"},
		{"SEQNUM empty", "add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00SEQNUM=\x00", "SEQNUM"},
		{"SEQNUM overflow", "add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00SEQNUM=18446744073709551616\x00", "out of range"},
		{"oversize", good + "X=" + strings.Repeat("a", MaxSize) + "\x00", "more than the 8192"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error", tt.in, ev)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParseUdevMessage(t *testing.T) {
	// The start of a real libudev netlink message: magic, then a binary
	// header (prefix "libudev", magic 0xfeedcafe in network order, ...).
	msg := []byte("libudev\x00\xfe\xed\xca\xfe\x28\x00\x00\x00\x28\x00\x00\x00ACTION=add\x00")
	_, err := Parse(msg)
	if !errors.Is(err, ErrUdevMessage) {
		t.Fatalf("Parse(libudev message) error = %v, want ErrUdevMessage", err)
	}
	if errors.Is(err, ErrMalformed) {
		t.Errorf("ErrUdevMessage must be distinct from ErrMalformed")
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name, in string
		want     Event
	}{
		{"minimal, no SEQNUM", "change@/devices/virtual/net/lo\x00ACTION=change\x00DEVPATH=/devices/virtual/net/lo\x00",
			Event{Action: "change", DevPath: "/devices/virtual/net/lo"}},
		{"empty values, '=' in value, '@' in devpath", "bind@/devices/a@b\x00ACTION=bind\x00DEVPATH=/devices/a@b\x00DRIVER=\x00X=a=b\x00SEQNUM=0\x00",
			Event{Action: "bind", DevPath: "/devices/a@b"}},
		{"raw bytes in a value", "add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00HID_NAME=\x1b[31m\xff\x00SUBSYSTEM=hid\x00DEVTYPE=t\x00SEQNUM=18446744073709551615\x00",
			Event{Action: "add", DevPath: "/devices/x", Subsystem: "hid", DevType: "t", Seqnum: 18446744073709551615}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Action != tt.want.Action || ev.DevPath != tt.want.DevPath || ev.Subsystem != tt.want.Subsystem ||
				ev.DevType != tt.want.DevType || ev.Seqnum != tt.want.Seqnum {
				t.Errorf("got %+v, want %+v", ev, tt.want)
			}
		})
	}
	ev, _ := Parse([]byte("add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00HID_NAME=\x1b[31m\xff\x00"))
	if ev.Env["HID_NAME"] != "\x1b[31m\xff" {
		t.Errorf("raw value altered: %q", ev.Env["HID_NAME"])
	}
}

func TestParseProduct(t *testing.T) {
	tests := []struct {
		in            string
		vid, pid, bcd string
		bad           bool
	}{
		{in: "58f/6387/10b", vid: "058f", pid: "6387", bcd: "010b"},
		{in: "18d1/9025/231", vid: "18d1", pid: "9025", bcd: "0231"},
		{in: "0/0/0", vid: "0000", pid: "0000", bcd: "0000"},
		{in: "FFFF/ABcd/1", vid: "ffff", pid: "abcd", bcd: "0001"},
		{in: "", bad: true},
		{in: "58f/6387", bad: true},
		{in: "58f/6387/10b/1", bad: true},
		{in: "58f//10b", bad: true},
		{in: "10000/1/1", bad: true},
		{in: "g/1/1", bad: true},
		{in: "+1/1/1", bad: true},
		{in: "0x1/1/1", bad: true},
		{in: " 1/1/1", bad: true},
	}
	for _, tt := range tests {
		vid, pid, bcd, err := ParseProduct(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseProduct(%q) = %s %s %s, want error", tt.in, vid, pid, bcd)
			}
			continue
		}
		if err != nil || vid != tt.vid || pid != tt.pid || bcd != tt.bcd {
			t.Errorf("ParseProduct(%q) = %s %s %s %v, want %s %s %s", tt.in, vid, pid, bcd, err, tt.vid, tt.pid, tt.bcd)
		}
	}
}

func TestParseInterfaceAndType(t *testing.T) {
	tests := []struct {
		in      string
		a, b, c string
		bad     bool
	}{
		{in: "8/6/80", a: "08", b: "06", c: "50"},
		{in: "255/66/1", a: "ff", b: "42", c: "01"},
		{in: "239/2/1", a: "ef", b: "02", c: "01"},
		{in: "0/0/0", a: "00", b: "00", c: "00"},
		{in: "256/0/0", bad: true},
		{in: "ff/0/0", bad: true},
		{in: "-1/0/0", bad: true},
		{in: "8/6", bad: true},
		{in: "8/6/80/", bad: true},
		{in: "0008/6/80", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		for name, fn := range map[string]func(string) (string, string, string, error){"ParseInterface": ParseInterface, "ParseType": ParseType} {
			a, b, c, err := fn(tt.in)
			if tt.bad {
				if err == nil {
					t.Errorf("%s(%q) = %s %s %s, want error", name, tt.in, a, b, c)
				}
				continue
			}
			if err != nil || a != tt.a || b != tt.b || c != tt.c {
				t.Errorf("%s(%q) = %s %s %s %v, want %s %s %s", name, tt.in, a, b, c, err, tt.a, tt.b, tt.c)
			}
		}
	}
}

func TestMarshalBinary(t *testing.T) {
	b, err := os.ReadFile(logitechBin)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ev.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte("add@/devices/pci0000:00/0000:00:14.0/usb3/3-2/3-2:1.0/0003:046D:C52B.0026\x00ACTION=add\x00")) ||
		!bytes.HasSuffix(out, []byte("\x00SEQNUM=4618\x00")) {
		t.Errorf("MarshalBinary = %q", out)
	}
	ev2, err := Parse(out)
	if err != nil || !equalEvents(ev, ev2) {
		t.Errorf("round trip: %v\n got %+v\nwant %+v", err, ev2, ev)
	}

	// From fields only, the way a test synthesizes an event.
	syn := Event{Action: "add", DevPath: "/devices/pci0000:00/usb1/1-2", Subsystem: "usb", DevType: "usb_device", Seqnum: 7,
		Env: map[string]string{"PRODUCT": "46f4/1/0"}}
	out, err = syn.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := "add@/devices/pci0000:00/usb1/1-2\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/usb1/1-2\x00SUBSYSTEM=usb\x00DEVTYPE=usb_device\x00PRODUCT=46f4/1/0\x00SEQNUM=7\x00"
	if string(out) != want {
		t.Errorf("MarshalBinary:\n got %q\nwant %q", out, want)
	}

	for _, bad := range []Event{
		{Action: "add"},
		{Action: "add", DevPath: "/devices/../x"},
		{Action: "", DevPath: "/devices/x"},
		{Action: "add", DevPath: "/devices/x", Env: map[string]string{"A\x00B": "1"}},
		{Action: "add", DevPath: "/devices/x", Env: map[string]string{"K": "a\x00B"}},
	} {
		if out, err := bad.MarshalBinary(); err == nil {
			t.Errorf("MarshalBinary(%+v) = %q, want error", bad, out)
		}
	}
}

// equalEvents compares everything but Received and the spelling of SEQNUM.
func equalEvents(a, b Event) bool {
	if a.Action != b.Action || a.DevPath != b.DevPath || a.Subsystem != b.Subsystem || a.DevType != b.DevType || a.Seqnum != b.Seqnum {
		return false
	}
	ea, eb := maps.Clone(a.Env), maps.Clone(b.Env)
	delete(ea, "SEQNUM")
	delete(eb, "SEQNUM")
	return maps.Equal(ea, eb)
}

// fuzzSeeds are the recordings and a few malformed datagrams.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	b, err := os.ReadFile(logitechBin)
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, b)
	for _, path := range []string{android18d1, android22d9} {
		for _, r := range readUdevEnv(f, path) {
			seeds = append(seeds, r.kernelDatagram())
		}
	}
	for _, s := range []string{
		"", "\x00", "@", "add@", "add@/\x00ACTION=add\x00DEVPATH=/\x00",
		"libudev\x00\xfe\xed\xca\xfe",
		"add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00SEQNUM=99999999999999999999\x00",
		"add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00\x00",
		"remove@/devices/../x\x00ACTION=remove\x00DEVPATH=/devices/../x\x00",
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUdevMessage) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrUdevMessage", err)
			}
			return
		}
		if len(b) > MaxSize || ev.Action == "" || !strings.HasPrefix(ev.DevPath, "/") ||
			strings.Contains(ev.DevPath, "/../") || strings.HasSuffix(ev.DevPath, "/..") {
			t.Fatalf("accepted bad event %+v", ev)
		}
		if filepath.Clean(ev.DevPath) != ev.DevPath {
			t.Fatalf("DEVPATH %q not clean", ev.DevPath)
		}
		if ev.Env["ACTION"] != ev.Action || ev.Env["DEVPATH"] != ev.DevPath ||
			ev.Env["SUBSYSTEM"] != ev.Subsystem || ev.Env["DEVTYPE"] != ev.DevType {
			t.Fatalf("fields disagree with Env: %+v", ev)
		}
		out, err := ev.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of parsed %q: %v", b, err)
		}
		ev2, err := Parse(out)
		if err != nil || !equalEvents(ev, ev2) {
			t.Fatalf("round trip of %q: %v\n got %+v\nwant %+v", b, err, ev2, ev)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	usbDev := readUdevEnv(b, android18d1)[3].kernelDatagram() // add of a usb_device
	hid, err := os.ReadFile(logitechBin)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		msg  []byte
	}{{"usb_device", usbDev}, {"hid", hid}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.msg)))
			for b.Loop() {
				if _, err := Parse(bc.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzParseProduct(f *testing.F) {
	for _, s := range []string{"58f/6387/10b", "18d1/9025/231", "0/0/0", "FFFF/ABcd/1", "10000/1/1", "58f//10b", "+1/1/1", "1/1/1/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, p, b, err := ParseProduct(s)
		if err != nil {
			return
		}
		for _, x := range []string{v, p, b} {
			if len(x) != 4 || !isHex(x) || strings.ToLower(x) != x {
				t.Fatalf("ParseProduct(%q) = %q %q %q", s, v, p, b)
			}
		}
		if got := strings.TrimLeft(v, "0"); !strings.EqualFold(strings.TrimLeft(strings.Split(s, "/")[0], "0"), got) {
			t.Fatalf("ParseProduct(%q): vendor %q does not match the input", s, v)
		}
	})
}

func FuzzParseInterface(f *testing.F) {
	for _, s := range []string{"8/6/80", "255/66/1", "239/2/1", "256/0/0", "ff/0/0", "0008/6/80", "8/6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, sc, p, err := ParseInterface(s)
		c2, sc2, p2, err2 := ParseType(s)
		if (err == nil) != (err2 == nil) || c != c2 || sc != sc2 || p != p2 {
			t.Fatalf("ParseInterface and ParseType disagree on %q", s)
		}
		if err != nil {
			return
		}
		for _, x := range []string{c, sc, p} {
			if len(x) != 2 || !isHex(x) || strings.ToLower(x) != x {
				t.Fatalf("ParseInterface(%q) = %q %q %q", s, c, sc, p)
			}
		}
	})
}
