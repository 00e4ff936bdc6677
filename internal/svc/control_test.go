package svc

import (
	"strings"
	"testing"

	"github.com/kardianos/service"
)

// TestExitWords: how a Windows service that failed to start ended, in
// words: its own exit code for ERROR_SERVICE_SPECIFIC_ERROR, else the
// Win32 code (and on Windows its message).
func TestExitWords(t *testing.T) {
	for _, c := range []struct {
		win32, specific uint32
		want            string
	}{
		{errServiceSpecific, 2, "the program gave up while it started, with its own exit code 2 (service-specific error)"},
		{0, 0, "it stopped, with no exit code"},
		{1053, 0, "Win32 exit code 1053"},
	} {
		if got := exitWords(c.win32, c.specific); !strings.HasPrefix(got, c.want) {
			t.Errorf("exitWords(%d, %d) = %q, want %q", c.win32, c.specific, got, c.want)
		}
	}
	c := &Control{Name: "mamori", Service: fakePlatform(PlatformWindows)}
	err := c.startFailure("start", startStatus{state: startStopped, win32: errServiceSpecific, specific: 2})
	if want := "service mamori: start: it failed to start: the program gave up while it started, with its own exit code 2 (service-specific error); the reason is in the system log (the Application event log, source mamori)"; err.Error() != want {
		t.Errorf("startFailure = %q\nwant %q", err, want)
	}
	// Elsewhere "running" is no start under way: nothing to wait for.
	c.Service = fakePlatform(PlatformSystemd)
	if err := c.waitStart("start"); err != nil {
		t.Errorf("waitStart under systemd: %v", err)
	}
}

// platformOnly is a service.Service that only names its platform.
type platformOnly struct {
	service.Service
	platform string
}

func (p platformOnly) Platform() string { return p.platform }

func fakePlatform(p string) service.Service { return platformOnly{platform: p} }
