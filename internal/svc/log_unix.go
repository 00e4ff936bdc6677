//go:build unix

package svc

import (
	"fmt"
	"log/syslog"

	"github.com/kardianos/service"
)

// systemLog is syslog through /dev/log, facility daemon, tagged name.
// (kardianos/service's SystemLogger uses facility kern.)
func systemLog(_ service.Service, name string) (LineLogger, error) {
	w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, name)
	if err != nil {
		return nil, err
	}
	return syslogLines{w}, nil
}

type syslogLines struct{ w *syslog.Writer }

func (s syslogLines) Error(v ...any) error   { return s.w.Err(fmt.Sprint(v...)) }
func (s syslogLines) Warning(v ...any) error { return s.w.Warning(fmt.Sprint(v...)) }
func (s syslogLines) Info(v ...any) error    { return s.w.Info(fmt.Sprint(v...)) }
