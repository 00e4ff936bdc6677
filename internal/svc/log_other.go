//go:build !unix

package svc

import "github.com/kardianos/service"

// systemLog is the service manager's own log: the Event Log on Windows,
// with the event source that install registered.
func systemLog(s service.Service, _ string) (LineLogger, error) {
	return s.SystemLogger(nil)
}
