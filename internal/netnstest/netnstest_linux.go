package netnstest

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

// NS is a network namespace made for one test by New and deleted when the
// test ends.
type NS struct {
	t    testing.TB
	name string
}

// seq numbers the namespaces of this process: with the process id, it
// makes every name unique, even across test binaries running at once.
var seq atomic.Int64

// Require skips t unless it runs as root with ip(8). New calls it; a test
// calls it itself to skip before it builds anything else.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces (run the tests as root to cover them)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2 to build network namespaces: " + err.Error())
	}
}

// New makes a fresh network namespace with its loopback up, and deletes it
// when t and its subtests end (t.Cleanup: after the cleanups registered
// later, such as those closing sockets made in it). Its name is prefix,
// then the process id and a sequence number ("prefix-PID-N"); prefix must
// be a valid file name. New skips t unless it runs as root with ip(8),
// and fails it if the namespace cannot be made.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	Require(t)
	if prefix == "" || strings.ContainsRune(prefix, '/') {
		t.Fatalf("netnstest.New: prefix %q is not a file name", prefix)
	}
	n := &NS{t: t, name: fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", n.name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.name, err, out)
		}
	})
	n.IP("link", "set", "lo", "up")
	return n
}

// Name returns the namespace's name, as ip netns list shows it.
func (n *NS) Name() string { return n.name }

// IP runs ip -n NAME args... and returns its output. It fails the test,
// with that output, if ip fails.
func (n *NS) IP(args ...string) string {
	n.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.name}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("ip -n %s %s: %v: %s", n.name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Do runs fn on an OS thread moved into the namespace (setns) and returns
// its error, or the error of moving there. The thread is thrown away
// afterwards (its goroutine exits while locked to it), so no other code
// ever runs in the namespace by accident. Sockets fn makes stay in the
// namespace; so do the net sysctls under /proc/sys/net it opens. fn must
// not start goroutines that need the namespace: they run elsewhere.
func (n *NS) Do(fn func() error) error {
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

// SendUDP sends one UDP datagram from inside the namespace to addr
// ("host:port"), which must be an address inside a namespace the test
// made. It fails the test if the datagram cannot be sent.
func (n *NS) SendUDP(addr string) {
	n.t.Helper()
	err := n.Do(func() error {
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

// VethPair makes a veth pair: aName in a, its peer bName in b (both down).
// It fails a's test if ip fails.
func VethPair(a *NS, aName string, b *NS, bName string) {
	a.t.Helper()
	a.IP("link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.name)
}
