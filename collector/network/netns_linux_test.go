package network

import (
	"testing"

	"github.com/mamori-agent/mamori/internal/netnstest"
)

// testNetns is a network namespace made for one test and deleted when it
// ends (netnstest.NS), with this package's helper open.
type testNetns struct {
	*netnstest.NS
	t testing.TB
}

// newNetns makes a fresh network namespace and deletes it at the end of
// the test; it skips the test unless it runs as root with ip(8).
func newNetns(t testing.TB) *testNetns {
	t.Helper()
	return &testNetns{NS: netnstest.New(t, "mamori-t"), t: t}
}

// open opens a Monitor inside the namespace and closes it at the end of
// the test.
func (n *testNetns) open(opts Options) *Monitor {
	n.t.Helper()
	var m *Monitor
	if err := n.Do(func() (err error) { m, err = Open(opts); return err }); err != nil {
		n.t.Fatalf("Open in %s: %v", n.Name(), err)
	}
	n.t.Cleanup(func() { _ = m.Close() })
	return m
}
