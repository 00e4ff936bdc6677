// Package svctest helps tests install real services under real service
// managers (the SysV init scripts of this machine, systemd where it runs)
// without colliding with each other or with a real install: Require skips
// a test that cannot (not root, no service manager commands), Lock
// serialises the service tests of every test binary, Name gives a service
// name no other test uses and removes, when the test ends, whatever a
// service of that name left (its daemon, init script, rc links, unit, log
// file), and ListenSyslog stands in for the system logger on /dev/log
// where none runs, so that a test can read what a service logged there.
//
// It is for tests only. The package builds on every system; its helpers
// exist on Linux only.
package svctest
