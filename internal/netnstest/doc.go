// Package netnstest gives tests network namespaces of their own. New makes
// one with ip(8) (ip netns add) under a name no other test uses, and
// deletes it when the test ends; IP runs ip -n in it; Do runs a function
// on a thread moved into it, so that the sockets the function makes live
// there; VethPair links two namespaces and SendUDP sends a datagram from
// one of them.
//
// It is for tests only: it needs root and ip(8) from iproute2, and skips
// the test without them. Its traffic only ever goes between namespaces
// the test made, never onto the host's network. The package builds on
// every system; its helpers exist on Linux only.
package netnstest
