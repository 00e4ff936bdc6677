//go:build unix

package notify

import (
	"context"
	"strings"
	"testing"

	"github.com/mamori-agent/mamori/notify/notifytest"
)

// TestShowCleans: a notification whose strings hold a NUL, control
// characters, a bidirectional override and invalid UTF-8 (a device
// string someone chose) is shown on a real session bus all the same,
// those replaced by U+FFFD; the bus would refuse the NUL and the
// invalid UTF-8.
func TestShowCleans(t *testing.T) {
	bus := notifytest.StartBus(t, notifytest.BusOptions{})
	srv := notifytest.Serve(t, bus.Address)
	ctx := context.Background()
	d, err := OpenDesktop(ctx, bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	n := Notification{AppName: "mamori\x00", Summary: "Evil\x00Stick", Body: "port 1-2\x00\u202eevil\x1b[2J\xff\nnext", Urgency: UrgencyCritical,
		Category: "device.added\x00"}
	if _, err := d.Show(ctx, n); err != nil {
		t.Fatalf("not shown: %v", err)
	}
	got := srv.Received()
	if len(got) != 1 {
		t.Fatalf("received %d", len(got))
	}
	r := got[0]
	if r.AppName != "mamori\ufffd" || r.Summary != "Evil\ufffdStick" || r.Body != "port 1-2\ufffd\ufffdevil\ufffd[2J\ufffd\nnext" ||
		r.Hints["category"].Value() != "device.added\ufffd" {
		t.Errorf("received:\n%s", notifytest.Dump(got))
	}
	// And a warning composed from such texts, long ones, the same.
	w := sampleWarning("en")
	w.Texts[0].Subject = "Evil\x00Stick" + strings.Repeat("\u202e長", 5000)
	if _, err := d.Show(ctx, Compose(w, d.Markup(), nil)); err != nil {
		t.Fatalf("composed warning not shown: %v", err)
	}
	got = srv.Received()
	if len(got) != 2 || len(got[1].Body) > MaxText || strings.ContainsAny(got[1].Body, "\x00\u202e") || !strings.HasPrefix(got[1].Body, "Evil\ufffdStick\ufffd長") {
		t.Errorf("received:\n%s", notifytest.Dump(got))
	}
}
