package svc

import (
	"fmt"
	"strings"

	"golang.org/x/sys/windows"
	winsvc "golang.org/x/sys/windows/svc"
)

// queryStart reads the service name's status from the service control
// manager: OpenSCManager (SC_MANAGER_CONNECT), OpenService
// (SERVICE_QUERY_STATUS), QueryServiceStatus; its state as waitStart tells
// them apart, and its Win32 and service-specific exit codes.
func queryStart(name string) (startStatus, error) {
	m, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return startStatus{}, fmt.Errorf("OpenSCManager: %w", err)
	}
	defer windows.CloseServiceHandle(m)
	n, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return startStatus{}, fmt.Errorf("service name %q: %w", name, err)
	}
	s, err := windows.OpenService(m, n, windows.SERVICE_QUERY_STATUS)
	if err != nil {
		return startStatus{}, fmt.Errorf("OpenService %s: %w", name, err)
	}
	defer windows.CloseServiceHandle(s)
	var st windows.SERVICE_STATUS
	if err := windows.QueryServiceStatus(s, &st); err != nil {
		return startStatus{}, fmt.Errorf("QueryServiceStatus %s: %w", name, err)
	}
	out := startStatus{win32: st.Win32ExitCode, specific: st.ServiceSpecificExitCode}
	switch winsvc.State(st.CurrentState) {
	case winsvc.Running:
		out.state = startRunning
	case winsvc.StartPending, winsvc.StopPending:
		out.state = startPending
	case winsvc.Stopped:
		out.state = startStopped
	}
	return out, nil
}

// win32Message is the system's message for a Win32 error code
// (FormatMessage, through syscall.Errno), on one line.
func win32Message(code uint32) string {
	return strings.Join(strings.Fields(windows.Errno(code).Error()), " ")
}
