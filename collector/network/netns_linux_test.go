package network

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testNetns is a network namespace made for one test (ip netns add) and
// deleted when it ends.
type testNetns struct {
	t    testing.TB
	name string
}

var netnsSeq atomic.Int64

// requireNetns skips the test unless it runs as root with ip(8).
func requireNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces (run the tests as root to cover the Linux monitor)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2 to build network namespaces: " + err.Error())
	}
}

// newNetns makes a fresh network namespace and deletes it at the end of
// the test.
func newNetns(t testing.TB) *testNetns {
	t.Helper()
	requireNetns(t)
	n := &testNetns{t: t, name: fmt.Sprintf("mamori-t%d-%d", os.Getpid(), netnsSeq.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", n.name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.name, err, out)
		}
	})
	n.ip("link", "set", "lo", "up")
	return n
}

// ip runs ip -n <ns> args... and fails the test if it fails.
func (n *testNetns) ip(args ...string) string {
	n.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.name}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("ip -n %s %s: %v: %s", n.name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// do runs fn on a thread moved into the namespace; the thread is thrown
// away afterwards (the goroutine exits while locked), so no other code
// ever runs in the namespace by accident. Sockets fn makes stay in the
// namespace.
func (n *testNetns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open("/var/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", n.name, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// open opens a Monitor inside the namespace and closes it at the end of
// the test.
func (n *testNetns) open(opts Options) *Monitor {
	n.t.Helper()
	var m *Monitor
	if err := n.do(func() (err error) { m, err = Open(opts); return err }); err != nil {
		n.t.Fatalf("Open in %s: %v", n.name, err)
	}
	n.t.Cleanup(func() { _ = m.Close() })
	return m
}

// sendUDP sends one UDP datagram from inside the namespace to addr, which
// must be an address inside a namespace the test made.
func (n *testNetns) sendUDP(addr string) {
	n.t.Helper()
	err := n.do(func() error {
		c, err := net.DialTimeout("udp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("mamori test"))
		return err
	})
	if err != nil {
		n.t.Fatalf("send UDP from %s to %s: %v", n.name, addr, err)
	}
}

// vethPair makes a veth pair with a in n and b in peer.
func vethPair(n *testNetns, a string, peer *testNetns, b string) {
	n.t.Helper()
	n.ip("link", "add", a, "type", "veth", "peer", "name", b, "netns", peer.name)
}
