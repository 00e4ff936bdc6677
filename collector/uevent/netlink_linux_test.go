package uevent

import (
	"bytes"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair returns a socket-pair Conn and its peer, closed at the end of t.
func pair(t *testing.T) (*Conn, int) {
	t.Helper()
	c, peer, err := SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		unix.Close(peer)
	})
	return c, peer
}

func send(t *testing.T, fd int, b []byte) {
	t.Helper()
	if _, err := unix.Write(fd, b); err != nil {
		t.Fatalf("write %d bytes: %v", len(b), err)
	}
}

// receive calls Receive with a deadline so that a broken test fails
// instead of hanging.
func receive(t *testing.T, c *Conn, d time.Duration) (Event, error) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	return c.Receive()
}

func TestSocketPairReceive(t *testing.T) {
	c, peer := pair(t)
	hid, err := os.ReadFile(logitechBin)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	send(t, peer, hid)
	ev, err := receive(t, c, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Action != "add" || ev.Subsystem != "hid" || ev.Seqnum != 4618 || ev.Env["HID_NAME"] != "Logitech USB Receiver" {
		t.Errorf("got %+v", ev)
	}
	if ev.Received.Before(before) || ev.Received.After(time.Now()) {
		t.Errorf("Received %v not between send and now", ev.Received)
	}

	// Every event of a recording, in order, through the socket.
	recs := readUdevEnv(t, android18d1)
	for _, r := range recs {
		send(t, peer, r.kernelDatagram())
	}
	for i, r := range recs {
		ev, err := receive(t, c, 5*time.Second)
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		if ev.Action != r.action || ev.DevPath != r.devpath || ev.Env["SEQNUM"] != r.env["SEQNUM"] {
			t.Errorf("#%d: got %s %s %d", i, ev.Action, ev.DevPath, ev.Seqnum)
		}
	}
	if s := c.Stats(); s.Events != uint64(1+len(recs)) || s.Malformed+s.Truncated+s.Foreign+s.Udev+s.Overruns != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestSocketPairBadDatagrams: each bad datagram costs one error or is
// skipped, and the next good one still arrives.
func TestSocketPairBadDatagrams(t *testing.T) {
	c, peer := pair(t)
	good := []byte("add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00SEQNUM=5\x00")

	tests := []struct {
		name string
		msg  []byte
		want error // nil: skipped silently
	}{
		{"malformed", []byte("add@/devices/x\x00ACTION=add\x00"), ErrMalformed},
		{"empty datagram", []byte{}, ErrMalformed},
		{"over MaxSize", append(bytes.Clone(good), append([]byte("X="), bytes.Repeat([]byte("a"), MaxSize)...)...), ErrMalformed},
		{"larger than the buffer", append(bytes.Clone(good), append([]byte("X="), bytes.Repeat([]byte("a"), 2*recvBufSize)...)...), ErrTruncated},
		{"libudev", []byte("libudev\x00\xfe\xed\xca\xfe\x28\x00\x00\x00ACTION=add\x00"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			send(t, peer, tt.msg)
			send(t, peer, good)
			ev, err := receive(t, c, 5*time.Second)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("first Receive: %v, want %v", err, tt.want)
				}
				if IsTerminal(err) {
					t.Errorf("IsTerminal(%v) = true", err)
				}
				ev, err = receive(t, c, 5*time.Second)
			}
			if err != nil || ev.Seqnum != 5 {
				t.Fatalf("good datagram after it: %+v, %v", ev, err)
			}
		})
	}
	want := Stats{Events: 5, Malformed: 3, Truncated: 1, Udev: 1}
	if s := c.Stats(); s != want {
		t.Errorf("Stats = %+v, want %+v", s, want)
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime(t *testing.T) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// testCloseUnblocks blocks a Receive on c, checks it burns no CPU while
// idle, then closes c and checks Receive returns ErrClosed promptly.
func testCloseUnblocks(t *testing.T, c *Conn) {
	type result struct {
		ev  Event
		err error
	}
	done := make(chan result, 1)
	go func() {
		for {
			ev, err := c.Receive()
			// A real socket may see unrelated uevents of this machine.
			if err == nil {
				continue
			}
			done <- result{ev, err}
			return
		}
	}()
	time.Sleep(50 * time.Millisecond) // let it block
	cpu0, wall0 := cpuTime(t), time.Now()
	time.Sleep(500 * time.Millisecond)
	if used, wall := cpuTime(t)-cpu0, time.Since(wall0); used > wall/5 {
		t.Errorf("blocked Receive used %v CPU in %v: busy polling?", used, wall)
	}
	select {
	case r := <-done:
		t.Fatalf("Receive returned before Close: %+v, %v", r.ev, r.err)
	default:
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if !errors.Is(r.err, ErrClosed) || !IsTerminal(r.err) {
			t.Errorf("Receive after Close: %v, want ErrClosed", r.err)
		}
		t.Logf("Receive returned %v after Close", time.Since(start))
	case <-time.After(2 * time.Second):
		t.Fatal("Receive still blocked 2 s after Close")
	}
	if _, err := c.Receive(); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive on a closed Conn: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSocketPairCloseUnblocksReceive(t *testing.T) {
	c, peer, err := SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(peer)
	testCloseUnblocks(t, c)
}

func TestReadDeadline(t *testing.T) {
	c, _ := pair(t)
	start := time.Now()
	_, err := receive(t, c, 100*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Receive past deadline: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("deadline of 100ms took %v", d)
	}
}

func listen(t *testing.T, opts ...Option) *Conn {
	t.Helper()
	c, err := Listen(opts...)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EAFNOSUPPORT) {
			t.Skipf("no NETLINK_KOBJECT_UEVENT socket here: %v", err)
		}
		t.Fatal(err)
	}
	return c
}

func TestListen(t *testing.T) {
	c := listen(t)
	defer c.Close()
	var sa unix.Sockaddr
	var serr error
	if err := c.rc.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok || nl.Groups != 1 || nl.Pid == 0 {
		t.Errorf("bound to %+v, want group 1 and a port id", sa)
	}
	t.Logf("receive buffer %d bytes (asked %d)", c.ReadBuffer(), DefaultReadBuffer)
	if os.Geteuid() == 0 && c.ReadBuffer() < DefaultReadBuffer {
		t.Errorf("as root (SO_RCVBUFFORCE), receive buffer %d < %d", c.ReadBuffer(), DefaultReadBuffer)
	}
}

func TestListenCloseUnblocksReceive(t *testing.T) {
	testCloseUnblocks(t, listen(t))
}

// TestForgedUnicastDropped: any process may unicast to the Conn's netlink
// port id; such datagrams must never come out of Receive.
func TestForgedUnicastDropped(t *testing.T) {
	c := listen(t)
	defer c.Close()
	var sa unix.Sockaddr
	var serr error
	if err := c.rc.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	port := sa.(*unix.SockaddrNetlink).Pid

	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	forged := []byte("add@/devices/forged\x00ACTION=add\x00DEVPATH=/devices/forged\x00SUBSYSTEM=usb\x00SEQNUM=1\x00")
	err = unix.Sendto(fd, forged, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: port})
	if errors.Is(err, unix.EPERM) {
		// Since Linux 3.x sending on this protocol needs CAP_NET_ADMIN (in
		// the socket's network namespace's user namespace): the port id
		// check is defence in depth against root-in-a-namespace.
		t.Skipf("unicast to port %d: %v", port, err)
	}
	if err != nil {
		t.Fatalf("unicast to port %d: %v", port, err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for {
		ev, err := receive(t, c, time.Until(deadline))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.DevPath == "/devices/forged" {
			t.Fatalf("forged unicast accepted: %+v", ev)
		}
	}
	if s := c.Stats(); s.Foreign != 1 {
		t.Errorf("Stats.Foreign = %d, want 1", s.Foreign)
	}
}

func TestIsTerminal(t *testing.T) {
	for err, want := range map[error]bool{
		nil:                        false,
		ErrOverrun:                 false,
		ErrTruncated:               false,
		ErrUdevMessage:             false,
		ErrClosed:                  true,
		syscall.EBADF:              true,
		os.ErrDeadlineExceeded:     false,
		errors.Join(ErrMalformed):  false,
		errors.New("socket broke"): true,
	} {
		if got := IsTerminal(err); got != want {
			t.Errorf("IsTerminal(%v) = %v, want %v", err, got, want)
		}
	}
}
