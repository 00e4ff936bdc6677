package network

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseMessages feeds ParseMessages arbitrary bytes; the seeds under
// testdata/fuzz/FuzzParseMessages are the captured dumps and events. It
// must never panic, and an error must wrap ErrMalformed unless it is the
// kernel's (NLMSG_ERROR).
func FuzzParseMessages(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := ParseMessages(b)
		if err != nil && !errors.Is(err, ErrMalformed) && !strings.Contains(err.Error(), "(NLMSG_ERROR): kernel error") {
			t.Fatalf("error %v neither wraps ErrMalformed nor is an NLMSG_ERROR", err)
		}
		for _, c := range cs {
			switch c.Kind {
			case ChangeLink:
				if c.Link == nil {
					t.Fatal("link change without Link")
				}
			case ChangeAddr:
				if c.Addr == nil || !c.Addr.Prefix.IsValid() {
					t.Fatalf("address change %+v", c)
				}
			case ChangeRoute:
				if r := c.Route; r == nil || (r.Family != 4 && r.Family != 6) || !r.Dst.IsValid() ||
					r.Dst.Addr().Is4() != (r.Family == 4) || r.Table == rtTableLocal || r.Dst.Bits() != 0 && !r.Gateway.IsValid() {
					t.Fatalf("route change %+v (route %+v)", c, c.Route)
				}
			case ChangeNeighbour:
				if c.Neighbour == nil || !c.Neighbour.IP.IsValid() {
					t.Fatalf("neighbour change %+v", c)
				}
			case ChangeOverrun:
			default:
				t.Fatalf("change of kind %d", c.Kind)
			}
		}
	})
}
