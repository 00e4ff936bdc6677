package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/collector/uevent"
	"github.com/mamori-agent/mamori/collector/usb"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/internal/wintest"
	"github.com/mamori-agent/mamori/wire"
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

// notifierHelperArg, as the first argument, makes the test binary a
// notifier for the started-notifier tests: it reads the warning on
// standard input and answers as the second argument says ("shown",
// "fail"; "hang" never answers), writing its session and user on
// standard error.
const notifierHelperArg = "mamori-test-notifier"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == notifierHelperArg {
		os.Exit(testNotifier(os.Args[2]))
	}
	os.Exit(m.Run())
}

func testNotifier(mode string) int {
	var session uint32
	windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &session)
	sid := "?"
	if u, err := windows.GetCurrentProcessToken().GetTokenUser(); err == nil {
		sid = u.User.Sid.String()
	}
	fmt.Fprintf(os.Stderr, "notifier in session %d as %s\n", session, sid)
	if mode == "hang" {
		time.Sleep(time.Hour)
	}
	var m localapi.Message
	line, _ := bufio.NewReader(os.Stdin).ReadBytes('\n')
	if err := json.Unmarshal(line, &m); err != nil || m.Warning == nil {
		fmt.Fprintf(os.Stderr, "no warning on standard input: %q\n", line)
		return 2
	}
	ack := localapi.Message{Type: localapi.TypeShown, ID: m.Warning.ID}
	if mode != "shown" {
		ack.Error = "no desktop here"
	}
	b, _ := json.Marshal(ack)
	os.Stdout.Write(append(b, '\n'))
	if mode != "shown" {
		return 1
	}
	return 0
}

// TestWindowsStartVia: the notifier started in the session first; the
// message box when it could not show the warning; both reasons when
// neither could; the message box alone when no notifier is configured.
func TestWindowsStartVia(t *testing.T) {
	var ran, sent int
	var runErr error
	var runOut, runStderr string
	f := &wtsSessions{command: []string{`C:\mamori\mamori.exe`, "notify", "--once"}, timeout: time.Second, api: wtsAPI{
		send: func(id uint32, title, text string, style, timeout uint32) error { sent++; return nil },
		run: func(ctx context.Context, session uint32, argv []string, stdin []byte, timeout time.Duration) ([]byte, []byte, error) {
			ran++
			var m localapi.Message
			if session != 2 || len(argv) != 3 || timeout != time.Second || json.Unmarshal(stdin, &m) != nil || m.Warning == nil || m.Warning.ID != "w-1" || stdin[len(stdin)-1] != '\n' {
				t.Errorf("run(%d, %q, %q, %s)", session, argv, stdin, timeout)
			}
			return []byte(runOut), []byte(runStderr), runErr
		},
	}}
	s := session{UID: 2, User: "PC\\alice"}
	for _, tt := range []struct {
		name             string
		out, stderr      string
		runErr, sendErr  error
		wantVia, wantErr string
		wantSent         int
	}{
		{"shown", `{"type":"shown","id":"w-1"}` + "\n", "", nil, nil, wire.ViaStarted, "", 0},
		{"not shown", `{"type":"shown","id":"w-1","error":"unsupported operation"}` + "\n", "", errors.New("exit code 1"), nil, viaMessage, "", 1},
		{"another id", `{"type":"shown","id":"w-2"}` + "\n", "", nil, nil, viaMessage, "", 1},
		{"no token", "", "", errors.New("WTSQueryUserToken(session 2): A required privilege is not held by the client."), nil, viaMessage, "", 1},
		{"neither", "", "boom\n", errors.New("exit code 3"), errors.New("WTSSendMessageW: no"), "",
			"the notifier started in session 2 (PC\\alice): exit code 3: boom; then WTSSendMessageW: no", 1},
	} {
		ran, sent = 0, 0
		runOut, runStderr, runErr = tt.out, tt.stderr, tt.runErr
		f.api.send = func(uint32, string, string, uint32, uint32) error { sent++; return tt.sendErr }
		via, err := f.startVia(context.Background(), s, testWarning())
		if via != tt.wantVia || (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) || ran != 1 || sent != tt.wantSent {
			t.Errorf("%s: via %q, %v, ran %d, sent %d; want via %q, error %q, sent %d", tt.name, via, err, ran, sent, tt.wantVia, tt.wantErr, tt.wantSent)
		}
	}
	// No notifier: the message box alone.
	f.command = nil
	ran, sent = 0, 0
	f.api.send = func(uint32, string, string, uint32, uint32) error { sent++; return nil }
	if via, err := f.startVia(context.Background(), s, testWarning()); via != viaMessage || err != nil || ran != 0 || sent != 1 {
		t.Errorf("no notifier: via %q, %v, ran %d, sent %d", via, err, ran, sent)
	}
	// start, which the desktop sink calls and records as a message, is
	// the message box alone.
	f.command = []string{"x"}
	ran, sent = 0, 0
	if err := f.start(context.Background(), s, testWarning()); err != nil || ran != 0 || sent != 1 {
		t.Errorf("start: %v, ran %d, sent %d", err, ran, sent)
	}
}

// TestWindowsRunInSession starts this test binary as the notifier in the
// console session (WTSQueryUserToken, CreateProcessAsUserW on
// winsta0\default) and reads its answer. It needs LocalSystem on
// Windows (WTSQueryUserToken wants SeTcbPrivilege): skipped elsewhere.
// Under Wine 8.0 WTSQueryUserToken hands out the calling process's own
// token, so the notifier runs as this user.
func TestWindowsRunInSession(t *testing.T) {
	session := windows.WTSGetActiveConsoleSessionId()
	if session == noSession {
		t.Skip("no console session")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	line, _ := json.Marshal(localapi.Message{Type: localapi.TypeWarning, Warning: testWarning()})
	line = append(line, '\n')
	ctx := context.Background()
	stdout, stderr, err := runInSession(ctx, session, []string{exe, notifierHelperArg, "shown"}, line, 30*time.Second)
	if errors.Is(err, windows.ERROR_PRIVILEGE_NOT_HELD) && !wintest.IsWine() {
		t.Skipf("not LocalSystem: %v", err)
	}
	if err != nil {
		t.Fatalf("runInSession: %v\nstdout %q\nstderr %q", err, stdout, stderr)
	}
	if err := notifierAnswer(stdout, stderr, nil, "w-1", "the test notifier"); err != nil {
		t.Errorf("answer: %v (stdout %q)", err, stdout)
	}
	if want := fmt.Sprintf("notifier in session %d as ", session); !strings.Contains(string(stderr), want) {
		t.Errorf("stderr %q lacks %q", stderr, want)
	}
	t.Logf("notifier: %s", bytes.TrimSpace(stderr))

	// Not shown: its answer and its exit code.
	stdout, stderr, err = runInSession(ctx, session, []string{exe, notifierHelperArg, "fail"}, line, 30*time.Second)
	if err == nil || err.Error() != "exit code 1" {
		t.Errorf("a notifier that fails: %v", err)
	}
	if err := notifierAnswer(stdout, stderr, err, "w-1", "the test notifier"); err == nil || !strings.Contains(err.Error(), "no desktop here") {
		t.Errorf("answer of a notifier that fails: %v", err)
	}

	// One that never answers is ended at the timeout.
	start := time.Now()
	_, _, err = runInSession(ctx, session, []string{exe, notifierHelperArg, "hang"}, line, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "ended after 2s") || time.Since(start) > 20*time.Second {
		t.Errorf("a notifier that hangs: %v after %s", err, time.Since(start))
	}

	// A command that is not there.
	if _, _, err := runInSession(ctx, session, []string{`C:\no\such\mamori.exe`}, line, time.Second); err == nil || !strings.Contains(err.Error(), "CreateProcessAsUserW") {
		t.Errorf("a missing notifier: %v", err)
	}
}
