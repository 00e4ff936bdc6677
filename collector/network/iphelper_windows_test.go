package network

import (
	"errors"
	"testing"

	"golang.org/x/sys/windows"
)

// TestAdaptersFromBounds: an adapter list, or an adapter's address or
// gateway list, longer than its bound is an error, never a list cut short
// (an adapter or address past the cut would go unjudged).
func TestAdaptersFromBounds(t *testing.T) {
	chain := func(n int) *windows.IpAdapterAddresses {
		as := make([]windows.IpAdapterAddresses, n)
		for i := range as {
			as[i].IfIndex = uint32(i + 1)
			if i+1 < n {
				as[i].Next = &as[i+1]
			}
		}
		return &as[0]
	}
	got, err := adaptersFrom(chain(maxAdapters))
	if err != nil || len(got) != maxAdapters {
		t.Fatalf("%d adapters: %d, %v", maxAdapters, len(got), err)
	}
	if got, err := adaptersFrom(chain(maxAdapters + 1)); err == nil || !errors.Is(err, ErrWinTable) || got != nil {
		t.Errorf("%d adapters: %d read, %v; want an error and no list", maxAdapters+1, len(got), err)
	}

	addrs := make([]windows.IpAdapterUnicastAddress, maxAdapterAddrs+1)
	for i := range addrs[:len(addrs)-1] {
		addrs[i].Next = &addrs[i+1]
	}
	a := chain(1)
	a.FirstUnicastAddress = &addrs[1] // exactly maxAdapterAddrs
	if got, err := adaptersFrom(a); err != nil || len(got) != 1 {
		t.Errorf("%d addresses: %v", maxAdapterAddrs, err)
	}
	a.FirstUnicastAddress = &addrs[0]
	if _, err := adaptersFrom(a); !errors.Is(err, ErrWinTable) {
		t.Errorf("%d addresses: %v, want an error", maxAdapterAddrs+1, err)
	}
	a.FirstUnicastAddress = nil

	gws := make([]windows.IpAdapterGatewayAddress, maxAdapterGateways+1)
	for i := range gws[:len(gws)-1] {
		gws[i].Next = &gws[i+1]
	}
	a.FirstGatewayAddress = &gws[1]
	if _, err := adaptersFrom(a); err != nil {
		t.Errorf("%d gateways: %v", maxAdapterGateways, err)
	}
	a.FirstGatewayAddress = &gws[0]
	if _, err := adaptersFrom(a); !errors.Is(err, ErrWinTable) {
		t.Errorf("%d gateways: %v, want an error", maxAdapterGateways+1, err)
	}
}
