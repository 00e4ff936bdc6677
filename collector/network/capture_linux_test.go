package network

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mamori-agent/mamori/internal/netnstest"
)

// TestCapture records the rtnetlink bytes under testdata/ that the parse
// tests and the fuzz seeds decode. It only runs with MAMORI_CAPTURE=1, as
// root: MAMORI_CAPTURE=1 go test -run TestCapture ./collector/network/
// (see testdata/README.md).
func TestCapture(t *testing.T) {
	if os.Getenv("MAMORI_CAPTURE") != "1" {
		t.Skip("set MAMORI_CAPTURE=1 to capture testdata/*.bin again")
	}
	a, b := newNetns(t), newNetns(t)
	netnstest.VethPair(a.NS, "veth0", b.NS, "veth1")
	a.IP("link", "set", "veth0", "address", "02:AA:BB:CC:DD:01")
	b.IP("link", "set", "veth1", "address", "02:AA:BB:CC:DD:02")
	a.IP("addr", "add", "192.0.2.1/24", "dev", "veth0")
	a.IP("addr", "add", "2001:db8::1/64", "dev", "veth0", "nodad")
	b.IP("addr", "add", "192.0.2.2/24", "dev", "veth1")
	b.IP("addr", "add", "2001:db8::2/64", "dev", "veth1", "nodad")
	a.IP("link", "set", "veth0", "up")
	b.IP("link", "set", "veth1", "up")
	a.IP("route", "add", "default", "via", "192.0.2.254", "dev", "veth0", "metric", "100")
	a.IP("-6", "route", "add", "default", "via", "2001:db8::fe", "dev", "veth0", "metric", "1024")
	a.IP("route", "add", "198.51.100.0/24", "via", "192.0.2.254", "dev", "veth0")
	a.IP("route", "add", "default", "via", "192.0.2.253", "dev", "veth0", "table", "100")
	a.IP("link", "add", "br0", "type", "bridge")
	a.IP("link", "add", "ifb1", "type", "ifb")
	a.IP("link", "set", "ifb1", "master", "br0")
	a.IP("link", "set", "br0", "up")
	a.IP("link", "set", "ifb1", "up")
	a.IP("neigh", "add", "192.0.2.254", "lladdr", "02:00:00:00:00:FE", "dev", "veth0", "nud", "permanent")
	a.IP("neigh", "add", "192.0.2.99", "lladdr", "00:00:00:00:00:00", "dev", "veth0", "nud", "permanent")
	b.SendUDP("192.0.2.1:9") // a learns veth1's MAC for 192.0.2.2 from the ARP request
	time.Sleep(100 * time.Millisecond)

	var dumps = []struct {
		file   string
		typ    uint16
		hdrLen int
	}{
		{"dump_links.bin", rtmGetLink, sizeofIfInfomsg},
		{"dump_addrs.bin", rtmGetAddr, sizeofIfAddrmsg},
		{"dump_routes.bin", rtmGetRoute, sizeofRtMsg},
		{"dump_neighs.bin", rtmGetNeigh, sizeofNdMsg},
	}
	for _, d := range dumps {
		var out []byte
		err := a.Do(func() (err error) { out, err = rawDump(d.typ, d.hdrLen); return err })
		if err != nil {
			t.Fatalf("dump %s: %v", d.file, err)
		}
		writeCapture(t, d.file, out)
	}

	// Notifications, read on a raw socket subscribed to the Monitor's
	// groups while the namespace changes.
	var fd int
	if err := a.Do(func() (err error) { fd, err = subscribeRaw(); return err }); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	a.IP("link", "add", "ifb0", "type", "ifb")
	a.IP("link", "set", "ifb0", "up")
	a.IP("addr", "add", "203.0.113.5/24", "dev", "ifb0")
	a.IP("addr", "del", "203.0.113.5/24", "dev", "ifb0")
	a.IP("route", "replace", "default", "metric", "100",
		"nexthop", "via", "192.0.2.254", "dev", "veth0",
		"nexthop", "via", "192.0.2.253", "dev", "veth0")
	a.IP("route", "del", "default", "metric", "100")
	a.IP("neigh", "add", "192.0.2.77", "lladdr", "02:00:00:00:00:77", "dev", "veth0", "nud", "permanent")
	a.IP("neigh", "del", "192.0.2.77", "dev", "veth0")
	a.IP("link", "set", "ifb0", "master", "br0") // AF_BRIDGE port notification
	a.IP("link", "set", "ifb0", "nomaster")
	a.IP("link", "set", "veth0", "down")
	a.IP("link", "del", "ifb0")
	events, err := drainRaw(fd)
	if err != nil {
		t.Fatal(err)
	}
	writeCapture(t, "events.bin", events)

	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	t.Logf("captured on kernel %s", bytes.TrimRight(u.Release[:], "\x00"))
}

// TestCaptureLower records testdata/dump_lower.bin: a link dump of a
// namespace with a macvlan on a veth whose peer is in another namespace,
// and a veth pair with both ends inside. It only runs with
// MAMORI_CAPTURE=1, as root, like TestCapture.
func TestCaptureLower(t *testing.T) {
	if os.Getenv("MAMORI_CAPTURE") != "1" {
		t.Skip("set MAMORI_CAPTURE=1 to capture testdata/*.bin again")
	}
	c, d := newNetns(t), newNetns(t)
	netnstest.VethPair(c.NS, "veth0", d.NS, "veth1")
	c.IP("link", "set", "veth0", "address", "02:AA:BB:CC:DD:01")
	c.IP("link", "add", "mv0", "link", "veth0", "type", "macvlan")
	c.IP("link", "set", "mv0", "address", "02:AA:BB:CC:DD:03")
	c.IP("link", "add", "vethA", "type", "veth", "peer", "name", "vethB")
	c.IP("link", "set", "vethA", "address", "02:AA:BB:CC:DD:0A")
	c.IP("link", "set", "vethB", "address", "02:AA:BB:CC:DD:0B")
	var out []byte
	if err := c.Do(func() (err error) { out, err = rawDump(rtmGetLink, sizeofIfInfomsg); return err }); err != nil {
		t.Fatal(err)
	}
	writeCapture(t, "dump_lower.bin", out)
}

// writeCapture writes testdata/<file> and its fuzz seed.
func writeCapture(t *testing.T, file string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join("testdata", file), b, 0o644); err != nil {
		t.Fatal(err)
	}
	seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
	dir := filepath.Join("testdata", "fuzz", "FuzzParseMessages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "captured_"+file[:len(file)-len(".bin")]), []byte(seed), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote testdata/%s (%d bytes)", file, len(b))
}

// rawDump sends one dump request for every family and returns the answer
// datagrams as read, NLMSG_DONE included.
func rawDump(typ uint16, hdrLen int) ([]byte, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	req := make([]byte, nlmsgHdrLen+hdrLen)
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], typ)
	binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:12], 1)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var out []byte
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, buf[:n]...)
		if n >= nlmsgHdrLen && lastIsDone(buf[:n]) {
			return out, nil
		}
	}
}

// lastIsDone reports whether a datagram holds NLMSG_DONE.
func lastIsDone(b []byte) bool {
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if binary.NativeEndian.Uint16(b[4:6]) == nlmsgDone {
			return true
		}
		if l < nlmsgHdrLen || l > len(b) {
			return false
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return false
}

// subscribeRaw opens a NETLINK_ROUTE socket subscribed to the Monitor's
// groups, with a short receive timeout.
func subscribeRaw() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return -1, err
	}
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR |
		unix.RTMGRP_IPV6_IFADDR | unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE | unix.RTMGRP_NEIGH}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	tv := unix.NsecToTimeval((300 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// drainRaw reads datagrams until none came for the receive timeout.
func drainRaw(fd int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, buf[:n]...)
	}
}
