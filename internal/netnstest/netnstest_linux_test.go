package netnstest

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netnsIno is the inode of the network namespace of the calling thread.
func netnsIno(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestNew checks that New makes namespaces with unique names and lo up,
// and deletes them when their test ends.
func TestNew(t *testing.T) {
	Require(t)
	var name string
	t.Run("ns", func(t *testing.T) {
		a, b := New(t, "mamori-nt"), New(t, "mamori-nt")
		name = a.Name()
		if a.Name() == b.Name() || !strings.HasPrefix(a.Name(), "mamori-nt-") {
			t.Errorf("names %q and %q: want two unique names starting mamori-nt-", a.Name(), b.Name())
		}
		if _, err := os.Stat("/var/run/netns/" + a.Name()); err != nil {
			t.Fatal(err)
		}
		if out := a.IP("link", "show", "lo"); !strings.Contains(out, ",UP") {
			t.Errorf("lo is not up: %s", out)
		}
	})
	if _, err := os.Stat("/var/run/netns/" + name); !os.IsNotExist(err) {
		t.Errorf("namespace %s still there after its test: %v", name, err)
	}
}

// TestDo checks that fn runs in the namespace and that the caller does
// not.
func TestDo(t *testing.T) {
	a := New(t, "mamori-nt")
	var st unix.Stat_t
	if err := unix.Stat("/var/run/netns/"+a.Name(), &st); err != nil {
		t.Fatal(err)
	}
	var inside uint64
	if err := a.Do(func() error {
		var s unix.Stat_t
		err := unix.Stat("/proc/thread-self/ns/net", &s)
		inside = s.Ino
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside != st.Ino {
		t.Errorf("fn ran in netns inode %d, want %s's %d", inside, a.Name(), st.Ino)
	}
	if outside := netnsIno(t); outside == st.Ino {
		t.Errorf("the caller's thread is in %s", a.Name())
	}
	if err := a.Do(func() error { return os.ErrExist }); err != os.ErrExist {
		t.Errorf("Do returned %v, want fn's error", err)
	}
}

// TestVethPairSendUDP links two namespaces and sends a datagram across.
func TestVethPairSendUDP(t *testing.T) {
	a, b := New(t, "mamori-nt"), New(t, "mamori-nt")
	VethPair(a, "veth0", b, "veth1")
	a.IP("addr", "add", "192.0.2.1/24", "dev", "veth0")
	b.IP("addr", "add", "192.0.2.2/24", "dev", "veth1")
	a.IP("link", "set", "veth0", "up")
	b.IP("link", "set", "veth1", "up")
	var c net.PacketConn
	if err := b.Do(func() (err error) { c, err = net.ListenPacket("udp", "192.0.2.2:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a.SendUDP(c.LocalAddr().String())
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := from.(*net.UDPAddr).IP.String(); got != "192.0.2.1" || string(buf[:n]) != "mamori test" {
		t.Errorf("got %q from %s, want %q from 192.0.2.1", buf[:n], got, "mamori test")
	}
}
