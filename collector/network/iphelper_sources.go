package network

import (
	"errors"
	"sync"
)

// The Windows Monitor's notification sources and their state, shared
// between Open, which registers them one by one, and the callbacks, which
// Windows may call on thread-pool threads while Open is still registering
// the others (an initial notification comes as soon as its source is
// registered). Pure, so that the sharing is tested on every OS with the
// race detector.

// ipSource numbers the Windows Monitor's notification sources.
type ipSource int

const (
	srcInterface ipSource = iota // NotifyIpInterfaceChange
	srcAddress                   // NotifyUnicastIpAddressChange
	srcRoute                     // NotifyRouteChange2
	srcWlan                      // WlanRegisterNotification
	numSources
)

var sourceNames = [numSources]string{"NotifyIpInterfaceChange", "NotifyUnicastIpAddressChange", "NotifyRouteChange2", "WlanRegisterNotification"}

// sourceStates says, for each source, whether it could not be registered
// (and why) and whether it sent its initial notification, and closes
// Ready once every IP Helper source (srcInterface to srcRoute) either
// failed to register or sent its initial notification. It is safe for
// concurrent use; its lock is held only for a few loads and stores, never
// across a call out, so a callback never waits on Open's registering.
type sourceStates struct {
	mu      sync.Mutex
	regErr  [numSources]error
	initial [numSources]bool
	closed  bool
	ready   chan struct{}
}

func newSourceStates() *sourceStates { return &sourceStates{ready: make(chan struct{})} }

// failed records that src could not be registered, err saying why (nil
// is taken for an unknown reason: the source still counts as failed).
func (s *sourceStates) failed(src ipSource, err error) {
	if err == nil {
		err = errUnknownRegistration
	}
	s.mu.Lock()
	s.regErr[src] = err
	s.check()
	s.mu.Unlock()
}

// gotInitial records src's initial notification: what a callback calls.
func (s *sourceStates) gotInitial(src ipSource) {
	s.mu.Lock()
	s.initial[src] = true
	s.check()
	s.mu.Unlock()
}

// settled is called by Open once every source has been tried: a source
// still neither failed nor heard from is registered and silent.
func (s *sourceStates) settled() {
	s.mu.Lock()
	s.check()
	s.mu.Unlock()
}

// check closes ready once every IP Helper source failed or sent its
// initial notification. s.mu is held.
func (s *sourceStates) check() {
	if s.closed {
		return
	}
	for src := srcInterface; src < srcWlan; src++ {
		if s.regErr[src] == nil && !s.initial[src] {
			return
		}
	}
	s.closed = true
	close(s.ready)
}

// state returns why src could not be registered (nil when it was) and
// whether it sent its initial notification.
func (s *sourceStates) state(src ipSource) (regErr error, initial bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.regErr[src], s.initial[src]
}

// Ready is closed once every IP Helper source failed to register or sent
// its initial notification.
func (s *sourceStates) Ready() <-chan struct{} { return s.ready }

// errUnknownRegistration stands for a failure to register that came with
// no error.
var errUnknownRegistration = errors.New("registration failed for an unknown reason")
