package uevent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Real kernel uevents, made in a network namespace of the test's own: a
// NETLINK_KOBJECT_UEVENT socket opened in that namespace gets the uevents of
// the network devices created there (and the untagged uevents of the whole
// machine); no other namespace sees ours.

// netns is a fresh network namespace, held alive by the sockets and the
// sysfs mount made inside it.
type netns struct {
	rtnl  int    // NETLINK_ROUTE socket in the namespace
	sysfs string // sysfs mounted from inside it ("" if mounting failed)
	seq   uint32
}

// newNetns creates a network namespace on a throw-away OS thread, opens
// an rtnetlink socket and the Conns made by open inside it, and mounts a
// sysfs showing its network devices. It skips the test where namespaces
// cannot be made (not root, containers).
func newNetns(t *testing.T, open func() (*Conn, error)) (*netns, *Conn) {
	t.Helper()
	type result struct {
		ns   *netns
		c    *Conn
		err  error
		skip string
	}
	ch := make(chan result, 1)
	sysfs := t.TempDir()
	go func() {
		// Never unlocked: the thread, now in another namespace, exits
		// with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{skip: fmt.Sprintf("unshare(CLONE_NEWNET): %v", err)}
			return
		}
		c, err := open()
		if err != nil {
			ch <- result{skip: fmt.Sprintf("open uevent socket in new netns: %v", err)}
			return
		}
		rtnl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			c.Close()
			ch <- result{err: err}
			return
		}
		ns := &netns{rtnl: rtnl, sysfs: sysfs}
		// sysfs shows the network devices of the namespace of whoever
		// mounts it.
		if err := unix.Mount("sysfs", sysfs, "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			ns.sysfs = ""
		}
		ch <- result{ns: ns, c: c}
	}()
	r := <-ch
	if r.skip != "" {
		t.Skip(r.skip)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() {
		if r.ns.sysfs != "" {
			if err := unix.Unmount(r.ns.sysfs, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", r.ns.sysfs, err)
			}
		}
		r.c.Close()
		unix.Close(r.ns.rtnl)
	})
	return r.ns, r.c
}

// link creates (add) or deletes a bridge device named name through
// rtnetlink and waits for the kernel's acknowledgement.
func (ns *netns) link(add bool, name string) error {
	attr := func(typ uint16, data []byte) []byte {
		l := 4 + len(data)
		b := make([]byte, (l+3)&^3)
		binary.NativeEndian.PutUint16(b[0:], uint16(l))
		binary.NativeEndian.PutUint16(b[2:], typ)
		copy(b[4:], data)
		return b
	}
	body := make([]byte, unix.SizeofIfInfomsg) // AF_UNSPEC, any index
	body = append(body, attr(unix.IFLA_IFNAME, append([]byte(name), 0))...)
	typ, flags := uint16(unix.RTM_DELLINK), uint16(unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	if add {
		typ, flags = unix.RTM_NEWLINK, flags|unix.NLM_F_CREATE|unix.NLM_F_EXCL
		body = append(body, attr(unix.IFLA_LINKINFO, attr(unix.IFLA_INFO_KIND, []byte("bridge")))...)
	}
	ns.seq++
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags)
	binary.NativeEndian.PutUint32(msg[8:], ns.seq)
	msg = append(msg, body...)
	if err := unix.Sendto(ns.rtnl, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("rtnetlink send: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(ns.rtnl, buf, 0)
		if err != nil {
			return fmt.Errorf("rtnetlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != ns.seq || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if errno := -int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
				return fmt.Errorf("rtnetlink %s %s: %w", map[bool]string{true: "add", false: "delete"}[add], name, unix.Errno(errno))
			}
			return nil
		}
	}
}

// waitFor receives until an event for devpath with the given action
// arrives, skipping the machine's unrelated uevents.
func waitFor(t *testing.T, c *Conn, action, devpath string) Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ev, err := receive(t, c, time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for %s@%s: %v", action, devpath, err)
		}
		if ev.Action == action && ev.DevPath == devpath {
			return ev
		}
	}
}

func TestNetnsKernelUevents(t *testing.T) {
	host := listen(t) // in the test's own namespace: must not see ours
	defer host.Close()
	ns, c := newNetns(t, func() (*Conn, error) { return Listen() })
	const name = "mamoriue0"
	devpath := "/devices/virtual/net/" + name

	start := time.Now()
	if err := ns.link(true, name); err != nil {
		t.Skipf("cannot create a bridge device: %v", err)
	}
	ev := waitFor(t, c, "add", devpath)
	t.Logf("add@%s received %v after the rtnetlink request, SEQNUM %d", devpath, ev.Received.Sub(start), ev.Seqnum)
	if ev.Subsystem != "net" || ev.Env["INTERFACE"] != name || ev.Env["IFINDEX"] == "" || ev.Seqnum == 0 {
		t.Errorf("add event: %+v", ev)
	}
	if ev.Received.Before(start) || ev.Received.After(time.Now()) {
		t.Errorf("Received = %v, outside the test's window", ev.Received)
	}

	// A synthetic uevent: writing to the device's uevent file makes the
	// kernel send a real one, with the UUID and arguments given.
	if ns.sysfs == "" {
		t.Log("could not mount sysfs in the namespace: synthetic uevent not tested")
	} else {
		const uuid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
		file := filepath.Join(ns.sysfs, "class", "net", name, "uevent")
		if err := os.WriteFile(file, []byte("change "+uuid+" MAMORI=test"), 0); err != nil {
			t.Fatalf("synthetic uevent: %v", err)
		}
		ev = waitFor(t, c, "change", devpath)
		if ev.Env["SYNTH_UUID"] != uuid || ev.Env["SYNTH_ARG_MAMORI"] != "test" || ev.Subsystem != "net" {
			t.Errorf("synthetic change event: %+v", ev)
		}
		if err := os.WriteFile(file, []byte("add"), 0); err != nil {
			t.Fatalf("synthetic uevent: %v", err)
		}
		ev = waitFor(t, c, "add", devpath)
		if ev.Env["SYNTH_UUID"] != "0" {
			t.Errorf("synthetic add without UUID: SYNTH_UUID=%q, want 0", ev.Env["SYNTH_UUID"])
		}
	}

	if err := ns.link(false, name); err != nil {
		t.Fatal(err)
	}
	ev = waitFor(t, c, "remove", devpath)
	if ev.Env["INTERFACE"] != name {
		t.Errorf("remove event: %+v", ev)
	}
	for {
		ev, err := receive(t, host, 100*time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(ev.DevPath, devpath) {
			t.Errorf("socket of another namespace got %s@%s", ev.Action, ev.DevPath)
		}
	}
	if s := c.Stats(); s.Overruns+s.Malformed+s.Truncated+s.Foreign != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestNetnsOverrun makes the kernel overflow a tiny receive buffer with real
// uevents, and checks that Receive reports ErrOverrun once and the socket
// then goes on delivering events.
func TestNetnsOverrun(t *testing.T) {
	ns, c := newNetns(t, func() (*Conn, error) { return Listen(WithReadBuffer(1)) })
	t.Logf("receive buffer %d bytes", c.ReadBuffer())
	const n = 20
	for i := range n {
		if err := ns.link(true, fmt.Sprintf("mamoriov%d", i)); err != nil {
			t.Skipf("cannot create a bridge device: %v", err)
		}
	}
	_, err := receive(t, c, 5*time.Second)
	if !errors.Is(err, ErrOverrun) {
		t.Fatalf("Receive after %d devices added unread: %v, want ErrOverrun", n, err)
	}
	if IsTerminal(err) {
		t.Errorf("IsTerminal(%v) = true", err)
	}
	if s := c.Stats(); s.Overruns != 1 {
		t.Errorf("Stats.Overruns = %d, want 1", s.Overruns)
	}
	// What was queued before the overflow is still there; then the socket
	// works as before.
	queued := 0
	for {
		_, err := receive(t, c, 200*time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("after the overrun: %v", err)
		}
		queued++
	}
	t.Logf("%d events were queued before the overflow", queued)
	if queued >= n {
		t.Errorf("%d events queued: the buffer did not overflow", queued)
	}
	// One uevent at a time fits: a synthetic one (a device removal would
	// send several at once, enough to overflow this buffer again).
	if ns.sysfs == "" {
		t.Skip("could not mount sysfs in the namespace: recovery after the overrun not tested")
	}
	file := filepath.Join(ns.sysfs, "class", "net", "mamoriov0", "uevent")
	const devpath = "/devices/virtual/net/mamoriov0"
	// Other uevents of this machine (loop devices of a parallel test...)
	// can overflow so small a buffer again: then write again.
	deadline := time.Now().Add(5 * time.Second)
	for write := true; ; {
		if write {
			if err := os.WriteFile(file, []byte("change"), 0); err != nil {
				t.Fatalf("synthetic uevent: %v", err)
			}
		}
		ev, err := receive(t, c, time.Until(deadline))
		if errors.Is(err, ErrOverrun) {
			write = true
			continue
		}
		if err != nil {
			t.Fatalf("after the overrun: %v", err)
		}
		if ev.Action == "change" && ev.DevPath == devpath {
			break
		}
		write = false
	}
	if s := c.Stats(); s.Overruns < 1 || s.Events < uint64(queued+1) {
		t.Errorf("Stats = %+v, want an overrun and at least %d events", s, queued+1)
	}
}
