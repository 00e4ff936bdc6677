package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/collector/uevent"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/wintest"
)

// These run on Windows and under Wine 8.0 (make wine-test).

func testWarning() *localapi.Warning {
	return &localapi.Warning{ID: "w-1", Kind: KindStorageUnapproved, Severity: "high", Device: `USB\VID_0781&PID_5567\4C5300`,
		Key: "usb_storage_unapproved|x", Texts: []localapi.Text{
			{Lang: "ja", Title: "許可されていない USB 記憶媒体", Rule: "第6条・第7条", Subject: "SanDisk Cruzer Blade", Remedy: "直ちに取り外してください。"},
			{Lang: "en", Title: "Unapproved USB storage", Rule: "articles 6 and 7", Subject: "SanDisk Cruzer Blade", Remedy: "Remove it now."},
		}}
}

func TestWindowsWTSMessage(t *testing.T) {
	title, text := wtsMessage(testWarning())
	if title != "許可されていない USB 記憶媒体（第6条・第7条）" {
		t.Errorf("title %q", title)
	}
	for _, want := range []string{"SanDisk Cruzer Blade\r\n直ちに取り外してください。", "Unapproved USB storage (articles 6 and 7)\r\nSanDisk Cruzer Blade\r\nRemove it now."} {
		if !strings.Contains(text, want) {
			t.Errorf("text %q lacks %q", text, want)
		}
	}
	if strings.Contains(strings.ReplaceAll(text, "\r\n", ""), "\n") {
		t.Errorf("text %q has a bare line feed", text)
	}
}

func TestWindowsWTSSessions(t *testing.T) {
	var sent []string
	f := &wtsSessions{api: wtsAPI{
		console: func() uint32 { return 2 },
		user:    func(id uint32) (string, error) { return "alice\x1b[31m", nil },
		send: func(id uint32, title, text string, style, timeout uint32) error {
			sent = append(sent, title)
			if id != 2 || style&mbIconWarning == 0 || timeout != wtsMessageTimeout {
				t.Errorf("send(%d, style %#x, timeout %d)", id, style, timeout)
			}
			return nil
		},
	}}
	ss, err := f.sessions()
	if err != nil || len(ss) != 1 || ss[0].UID != 2 || strings.ContainsRune(ss[0].User, 0x1b) {
		t.Fatalf("sessions = %+v, %v", ss, err)
	}
	if err := f.start(context.Background(), ss[0], testWarning()); err != nil || len(sent) != 1 {
		t.Errorf("start: %v, sent %q", err, sent)
	}
	if finderVia(f) != viaMessage || !strings.Contains(finderTarget(f, ss[0]), "console session 2") {
		t.Errorf("via %q, target %q", finderVia(f), finderTarget(f, ss[0]))
	}

	f.api.console = func() uint32 { return noSession }
	if ss, err := f.sessions(); ss != nil || err != nil {
		t.Errorf("no console session: %+v, %v", ss, err)
	}
	f.api.console = func() uint32 { return 1 }
	f.api.user = func(uint32) (string, error) { return "", nil }
	if ss, err := f.sessions(); ss != nil || err != nil {
		t.Errorf("login screen: %+v, %v", ss, err)
	}
	f.api.user = func(uint32) (string, error) { return "", windows.ERROR_ACCESS_DENIED }
	if _, err := f.sessions(); !errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		t.Errorf("user name denied: %v", err)
	}
	f.api.send = func(uint32, string, string, uint32, uint32) error { return errors.New("no") }
	if err := f.start(context.Background(), session{UID: 1}, testWarning()); err == nil {
		t.Errorf("a failed send is no error")
	}
}

// TestWindowsWTSReal makes the calls: the console session and its user,
// then WTSSendMessageW. Wine 8.0 has only a stub that returns FALSE: the
// call is made and returns, and the error says so. On Windows the box
// shows for a second.
func TestWindowsWTSReal(t *testing.T) {
	f := newSessionFinder(DesktopOptions{}, "").(*wtsSessions)
	ss, err := f.sessions()
	if err != nil {
		t.Fatalf("sessions: %v", err)
	}
	if len(ss) == 0 {
		t.Skip("nobody is logged on at the console")
	}
	title, text := wtsMessage(testWarning())
	done := make(chan error, 1)
	go func() { done <- wtsSendMessage(uint32(ss[0].UID), "mamori test: "+title, text, mbOK|mbIconWarning, 1) }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("WTSSendMessageW did not return (it must not wait)")
	}
	if wintest.IsWine() {
		if err == nil || !strings.Contains(err.Error(), "WTSSendMessageW") {
			t.Errorf("under Wine: %v, want the stub's failure", err)
		}
		return
	}
	if err != nil {
		t.Errorf("WTSSendMessageW: %v", err)
	}
}

func TestWindowsHotplugEvent(t *testing.T) {
	at := time.Unix(1700000000, 0)
	for _, c := range []struct {
		in        usb.Change
		action    string
		subsystem string
	}{
		{usb.Change{Action: usb.ChangeArrived, Interface: "usb", Path: `\\?\USB#VID_0781&PID_5567#4C53#{a5dcbf10-6530-11d2-901f-00c04fb951ed}`}, "add", "usb"},
		{usb.Change{Action: usb.ChangeRemoved, Interface: "volume", Path: `\\?\STORAGE#Volume#x`}, "remove", "block"},
		{usb.Change{Action: usb.ChangeRescan}, "change", "usb"},
	} {
		ev := hotplugEvent(c.in, at)
		if ev.Action != c.action || ev.Subsystem != c.subsystem || ev.DevPath != c.in.Path || !ev.Received.Equal(at) {
			t.Errorf("hotplugEvent(%+v) = %+v", c.in, ev)
		}
	}
	// Every notification means a rescan: the backend maps none to a
	// device.
	b, err := newUSBBackend(config.Default(), Roots{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.OwnerOf(`\\?\USB#x`); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("OwnerOf: %v, want ErrUnsupported", err)
	}
	if b.Name() != "setupapi" || b.Numbered() {
		t.Errorf("backend %s, numbered %v", b.Name(), b.Numbered())
	}
	// Wine 8.0 has no CM_Register_Notification: the agent rescans.
	src, err := (&sources{usb: b}).listenDevices()
	if wintest.IsWine() {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("listenDevices under Wine: %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("listenDevices: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := src.Receive(); done <- err }()
	src.Close()
	if err := <-done; !errors.Is(err, uevent.ErrClosed) {
		t.Errorf("Receive after Close: %v", err)
	}
}
