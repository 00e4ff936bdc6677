//go:build !windows

package svc

import "github.com/kardianos/service"

// Run runs the service s (with p, its program, as NewRunner made it)
// until the service manager stops it: kardianos/service's Run, which on
// Unix runs p until SIGTERM or SIGINT.
func Run(s service.Service, p service.Interface, name string) error { return s.Run() }
