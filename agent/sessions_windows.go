package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/notify"
)

// Warnings on Windows, first version. The agent runs as a service in
// session 0, which has no desktop anyone sees. WTSSendMessageW shows a
// message box on the desktop of the active console session
// (WTSGetActiveConsoleSessionId), with the warning's title and text in
// both languages (notify.Compose, as the Linux notifier shows them). A
// per-user notifier started in the user's session (WTSQueryUserToken,
// CreateProcessAsUser) is to come. What reached the console, or why
// nothing did, is recorded as on Linux: warning_shown (via "message",
// the session id as uid) or warning_not_shown.

// viaMessage is WarningDesk.Via for a warning shown by WTSSendMessageW.
const viaMessage = "message"

// wtsMessageTimeout is how long the message box stays, in seconds, when
// nobody closes it: until the next warning of its kind may come
// (DefaultWarnInterval), at most an hour.
const wtsMessageTimeout = 3600

// Message box styles (winuser.h).
const (
	mbOK            = 0x0
	mbIconWarning   = 0x30
	mbSetForeground = 0x10000
	mbTopMost       = 0x40000
)

// wtsUserName is WTS_INFO_CLASS WTSUserName; wtsCurrentServer is
// WTS_CURRENT_SERVER_HANDLE (this machine).
const (
	wtsUserName      = 5
	wtsCurrentServer = 0
)

// noSession is what WTSGetActiveConsoleSessionId returns while no
// session is attached to the console (one is being switched).
const noSession = 0xFFFFFFFF

var (
	modWTSAPI32                     = windows.NewLazySystemDLL("wtsapi32.dll")
	procWTSSendMessageW             = modWTSAPI32.NewProc("WTSSendMessageW")
	procWTSQuerySessionInformationW = modWTSAPI32.NewProc("WTSQuerySessionInformationW")
)

// wtsAPI is what wtsSessions asks of Windows; tests replace parts.
type wtsAPI struct {
	// console returns the active console session's id (noSession when
	// none).
	console func() uint32
	// user returns the user logged on in a session ("" at the login
	// screen).
	user func(session uint32) (string, error)
	// send shows a message box in a session without waiting for it.
	send func(session uint32, title, text string, style, timeout uint32) error
}

// wtsSessions is the session finder on Windows: the console session,
// warned by a message box.
type wtsSessions struct{ api wtsAPI }

func newSessionFinder(o DesktopOptions, procfs string) sessionFinder {
	return &wtsSessions{api: wtsAPI{console: windows.WTSGetActiveConsoleSessionId, user: wtsSessionUser, send: wtsSendMessage}}
}

// via says how a warning reaches a session: a message box.
func (f *wtsSessions) via() string { return viaMessage }

// target names the message box for the record of a warning not shown.
func (f *wtsSessions) target(s session) string {
	return fmt.Sprintf("the message box (WTSSendMessageW) for console session %d (%s)", s.UID, s.User)
}

// sessions returns the active console session when someone is logged on
// there, with the session id as UID.
func (f *wtsSessions) sessions() ([]session, error) {
	id := f.api.console()
	if id == noSession {
		return nil, nil
	}
	name, err := f.api.user(id)
	if err != nil {
		return nil, fmt.Errorf("console session %d: %w", id, err)
	}
	if name == "" {
		return nil, nil // the login screen: nobody to warn
	}
	return []session{{UID: int(id), User: safe.String(name)}}, nil
}

// start shows w in session s as a message box: title and text in the
// configured language first, then the other.
func (f *wtsSessions) start(ctx context.Context, s session, w *localapi.Warning) error {
	title, text := wtsMessage(w)
	return f.api.send(uint32(s.UID), title, text, mbOK|mbIconWarning|mbSetForeground|mbTopMost, wtsMessageTimeout)
}

// wtsMessage is the title and text of w's message box: notify.Compose's
// summary and body as plain text, with Windows line ends.
func wtsMessage(w *localapi.Warning) (title, text string) {
	n := notify.Compose(w, false, nil)
	return n.Summary, strings.ReplaceAll(n.Body, "\n", "\r\n")
}

// wtsSessionUser asks WTSQuerySessionInformationW for the user name of a
// session.
func wtsSessionUser(session uint32) (string, error) {
	if err := procWTSQuerySessionInformationW.Find(); err != nil {
		return "", fmt.Errorf("WTSQuerySessionInformationW: %w", err)
	}
	var buf *uint16
	var n uint32
	r, _, err := procWTSQuerySessionInformationW.Call(wtsCurrentServer, uintptr(session),
		wtsUserName, uintptr(unsafe.Pointer(&buf)), uintptr(unsafe.Pointer(&n)))
	if r == 0 {
		return "", fmt.Errorf("WTSQuerySessionInformationW(WTSUserName): %w", err)
	}
	defer windows.WTSFreeMemory(uintptr(unsafe.Pointer(buf)))
	if buf == nil {
		return "", nil
	}
	return windows.UTF16PtrToString(buf), nil
}

// wtsSendMessage calls WTSSendMessageW without waiting for an answer
// (the box stays for timeout seconds unless closed). Lengths are in
// bytes, without the NUL.
func wtsSendMessage(session uint32, title, text string, style, timeout uint32) error {
	if err := procWTSSendMessageW.Find(); err != nil {
		return fmt.Errorf("WTSSendMessageW: %w", err)
	}
	t, err := windows.UTF16FromString(title)
	if err != nil {
		return fmt.Errorf("WTSSendMessageW: title: %w", err)
	}
	m, err := windows.UTF16FromString(text)
	if err != nil {
		return fmt.Errorf("WTSSendMessageW: text: %w", err)
	}
	var response uint32
	r, _, callErr := procWTSSendMessageW.Call(wtsCurrentServer, uintptr(session),
		uintptr(unsafe.Pointer(&t[0])), uintptr(2*(len(t)-1)), uintptr(unsafe.Pointer(&m[0])), uintptr(2*(len(m)-1)),
		uintptr(style), uintptr(timeout), uintptr(unsafe.Pointer(&response)), 0)
	if r == 0 {
		var errno windows.Errno
		if errors.As(callErr, &errno) && errno == 0 {
			return errors.New("WTSSendMessageW failed and set no error (Wine 8.0 has only a stub)")
		}
		return fmt.Errorf("WTSSendMessageW: %w", callErr)
	}
	return nil
}
