package network

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestSourceStatesReady: Ready waits for every IP Helper source, either
// failed or heard from; Wi-Fi does not count; a source registered but
// silent keeps it open.
func TestSourceStatesReady(t *testing.T) {
	s := newSourceStates()
	s.failed(srcWlan, errors.New("no wlanapi"))
	s.gotInitial(srcInterface)
	s.failed(srcAddress, nil)
	s.settled()
	if isClosed(s.Ready()) {
		t.Fatal("ready with NotifyRouteChange2 registered and silent")
	}
	if err, initial := s.state(srcAddress); !errors.Is(err, errUnknownRegistration) || initial {
		t.Errorf("a failure without an error: %v, %v; want it counted as failed", err, initial)
	}
	s.gotInitial(srcRoute)
	if !isClosed(s.Ready()) {
		t.Fatal("not ready once every IP Helper source failed or called back")
	}
	s.gotInitial(srcRoute) // again, after ready: no second close
	s.settled()
	if err, initial := s.state(srcInterface); err != nil || !initial {
		t.Errorf("interface: %v, %v", err, initial)
	}
	if err, _ := s.state(srcWlan); err == nil || err.Error() != "no wlanapi" {
		t.Errorf("wlan: %v", err)
	}
}

// TestSourceStatesConcurrent runs Open's side (failures, settled) and
// the callbacks' side (initial notifications, from many goroutines as
// thread-pool threads call them) at once, with readers as EventSources:
// under -race any unsynchronised access fails the test; Ready must close
// exactly once, and only when every source is accounted for.
func TestSourceStatesConcurrent(t *testing.T) {
	for range 50 {
		s := newSourceStates()
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 8 {
			wg.Add(1)
			go func() { // callbacks
				defer wg.Done()
				<-start
				for i := range 100 {
					src := ipSource((g + i) % 2) // interface and address call back
					s.gotInitial(src)
				}
			}()
		}
		wg.Add(2)
		go func() { // Open
			defer wg.Done()
			<-start
			s.failed(srcRoute, errors.New("ERROR_NOT_SUPPORTED"))
			s.failed(srcWlan, errors.New("turned off"))
			s.settled()
		}()
		go func() { // EventSources
			defer wg.Done()
			<-start
			for range 100 {
				for src := srcInterface; src < numSources; src++ {
					s.state(src)
				}
				isClosed(s.Ready())
			}
		}()
		close(start)
		wg.Wait()
		select {
		case <-s.Ready():
		case <-time.After(5 * time.Second):
			t.Fatal("not ready after every source failed or called back")
		}
		for src := srcInterface; src < srcRoute; src++ {
			if err, initial := s.state(src); err != nil || !initial {
				t.Fatalf("%s: %v, %v", sourceNames[src], err, initial)
			}
		}
		if err, initial := s.state(srcRoute); err == nil || initial {
			t.Fatalf("route: %v, %v", err, initial)
		}
	}
}
