package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/internal/safe"
	"github.com/mamori-agent/mamori/notify"
	"github.com/mamori-agent/mamori/wire"
)

// Warnings on Windows. The agent runs as a service in session 0, which
// has no desktop anyone sees. Two ways reach the desktop of the active
// console session (WTSGetActiveConsoleSessionId):
//
//   - the per-user notifier (startVia): `mamori notify --once` started
//     as the session's user, in that session, on its interactive desktop
//     (WTSQueryUserToken, CreateEnvironmentBlock, CreateProcessAsUserW
//     on winsta0\default), the warning on its standard input and its
//     answer read from its standard output, as the Linux fallback
//     notifier is started;
//   - falling back to a message box WTSSendMessageW shows there, with
//     the warning's title and text in both languages (notify.Compose, as
//     the Linux notifier shows them).
//
// What reached the console, or why nothing did, is recorded as on Linux:
// warning_shown (via "started" or "message", the session id as uid) or
// warning_not_shown. The desktop sink calls start, which shows the
// message box only (its record says via "message", finderVia); startVia
// tries the notifier first and says which way reached the desktop, for
// a sink that records it.

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

// maxStartedOutput bounds what is read of a started notifier's standard
// output and of its standard error, in bytes each.
const maxStartedOutput = 4096

// interactiveDesktop is the desktop a started notifier runs on: the
// session's interactive window station and its default desktop (the
// service's own, inherited otherwise, is not shown to anyone).
const interactiveDesktop = `winsta0\default`

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
	// run runs argv as the user logged on in session, in that session,
	// with stdin on its standard input, until it exits or timeout, and
	// returns its standard output and error (runInSession).
	run func(ctx context.Context, session uint32, argv []string, stdin []byte, timeout time.Duration) (stdout, stderr []byte, err error)
}

// wtsSessions is the session finder on Windows: the console session,
// warned by a notifier started there (startVia) or a message box.
type wtsSessions struct {
	api wtsAPI
	// command is the notifier startVia starts (nil: none); timeout
	// bounds it.
	command []string
	timeout time.Duration
}

func newSessionFinder(o DesktopOptions, procfs string) sessionFinder {
	f := &wtsSessions{api: wtsAPI{console: windows.WTSGetActiveConsoleSessionId, user: wtsSessionUser, send: wtsSendMessage, run: runInSession},
		command: o.NotifyCommand, timeout: o.StartTimeout}
	if f.timeout <= 0 {
		f.timeout = DefaultStartTimeout
	}
	if len(f.command) == 0 && !o.NoStart {
		if exe, err := os.Executable(); err == nil {
			f.command = []string{exe, "notify", "--once"}
		}
	}
	return f
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

// startVia shows w in session s: by the per-user notifier started there
// (wire.ViaStarted) when one is configured and it says it showed w,
// else by the message box (viaMessage, as start). The error, when
// neither reached the desktop, says why for each.
func (f *wtsSessions) startVia(ctx context.Context, s session, w *localapi.Warning) (string, error) {
	var notifierErr error
	if len(f.command) > 0 {
		if notifierErr = f.startNotifier(ctx, s, w); notifierErr == nil {
			return wire.ViaStarted, nil
		}
		if ctx.Err() != nil {
			return "", notifierErr
		}
	}
	if err := f.start(ctx, s, w); err != nil {
		if notifierErr != nil {
			return "", fmt.Errorf("%w; then %w", notifierErr, err)
		}
		return "", err
	}
	return viaMessage, nil
}

// startNotifier runs f.command in session s as its user with w on its
// standard input, within f.timeout, and reads its answer: nil when it
// says it showed w.
func (f *wtsSessions) startNotifier(ctx context.Context, s session, w *localapi.Warning) error {
	line, err := json.Marshal(localapi.Message{Type: localapi.TypeWarning, Warning: w})
	if err != nil {
		return err
	}
	stdout, stderr, runErr := f.api.run(ctx, uint32(s.UID), f.command, append(line, '\n'), f.timeout)
	return notifierAnswer(stdout, stderr, runErr, w.ID, fmt.Sprintf("the notifier started in session %d (%s)", s.UID, s.User))
}

// notifierAnswer reads a started notifier's answer about warning id from
// the first line of its standard output: nil when it says shown; its
// error text, what it wrote on standard error, or how it ended,
// otherwise. who names it.
func notifierAnswer(stdout, stderr []byte, runErr error, id, who string) error {
	first, _, _ := bytes.Cut(stdout, []byte("\n"))
	var ack localapi.Message
	if err := json.Unmarshal(bytes.TrimSpace(first), &ack); err == nil && ack.Type == localapi.TypeShown && ack.ID == id {
		if ack.Error != "" {
			return fmt.Errorf("%s: %s", who, ackText(ack.Error))
		}
		return nil
	}
	if runErr == nil {
		runErr = errors.New("no answer")
	}
	if msg := strings.TrimSpace(string(stderr)); msg != "" {
		return fmt.Errorf("%s: %w: %s", who, runErr, ackText(msg))
	}
	return fmt.Errorf("%s: %w", who, runErr)
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

// runInSession runs argv (argv[0] a full path) as the user logged on in
// session: their primary token (WTSQueryUserToken: the agent must run
// as LocalSystem), their environment (CreateEnvironmentBlock), on the
// session's interactive desktop (interactiveDesktop), without a console
// window (CREATE_NO_WINDOW). It inherits its three standard handles and
// nothing else (PROC_THREAD_ATTRIBUTE_HANDLE_LIST): stdin is written to
// its standard input, which is then closed; the first maxStartedOutput
// bytes of its standard output and error are returned. It is ended
// (TerminateProcess) when timeout passes or ctx is done. The error
// says which call failed, or how the process ended (its exit code when
// not 0).
func runInSession(ctx context.Context, session uint32, argv []string, stdin []byte, timeout time.Duration) (stdout, stderr []byte, err error) {
	if len(argv) == 0 {
		return nil, nil, errors.New("no notifier command")
	}
	var tok windows.Token
	if err := windows.WTSQueryUserToken(session, &tok); err != nil {
		return nil, nil, fmt.Errorf("WTSQueryUserToken(session %d): %w", session, err)
	}
	defer tok.Close()
	var env *uint16
	if err := windows.CreateEnvironmentBlock(&env, tok, false); err != nil {
		return nil, nil, fmt.Errorf("CreateEnvironmentBlock: %w", err)
	}
	defer windows.DestroyEnvironmentBlock(env)

	// The pipes: the child's ends inheritable, ours not.
	var p stdPipes
	defer p.close()
	if err := p.make(len(stdin)); err != nil {
		return nil, nil, err
	}
	attrs, err := windows.NewProcThreadAttributeList(1)
	if err != nil {
		return nil, nil, fmt.Errorf("NewProcThreadAttributeList: %w", err)
	}
	defer attrs.Delete()
	inherit := []windows.Handle{p.childIn, p.childOut, p.childErr}
	if err := attrs.Update(windows.PROC_THREAD_ATTRIBUTE_HANDLE_LIST, unsafe.Pointer(&inherit[0]), uintptr(len(inherit))*unsafe.Sizeof(inherit[0])); err != nil {
		return nil, nil, fmt.Errorf("UpdateProcThreadAttribute(handle list): %w", err)
	}
	desktop, err := windows.UTF16PtrFromString(interactiveDesktop)
	if err != nil {
		return nil, nil, err
	}
	app, err := windows.UTF16PtrFromString(argv[0])
	if err != nil {
		return nil, nil, fmt.Errorf("notifier %q: %w", argv[0], err)
	}
	cmdline, err := windows.UTF16PtrFromString(windows.ComposeCommandLine(argv))
	if err != nil {
		return nil, nil, fmt.Errorf("notifier command line: %w", err)
	}
	si := &windows.StartupInfoEx{
		StartupInfo: windows.StartupInfo{
			Cb: uint32(unsafe.Sizeof(windows.StartupInfoEx{})), Desktop: desktop,
			Flags: windows.STARTF_USESTDHANDLES | windows.STARTF_USESHOWWINDOW, ShowWindow: windows.SW_HIDE,
			StdInput: p.childIn, StdOutput: p.childOut, StdErr: p.childErr,
		},
		ProcThreadAttributeList: attrs.List(),
	}
	var pi windows.ProcessInformation
	flags := uint32(windows.CREATE_UNICODE_ENVIRONMENT | windows.EXTENDED_STARTUPINFO_PRESENT | windows.CREATE_NO_WINDOW)
	if err := windows.CreateProcessAsUser(tok, app, cmdline, nil, nil, true, flags, env, nil, &si.StartupInfo, &pi); err != nil {
		return nil, nil, fmt.Errorf("CreateProcessAsUserW %s in session %d: %w", argv[0], session, err)
	}
	windows.CloseHandle(pi.Thread)
	defer windows.CloseHandle(pi.Process)
	p.closeChildEnds()

	// Feed it (the pipe holds all of stdin: the write does not wait for
	// it to read), read it, wait for it.
	outBuf, errBuf := &boundedBuffer{max: maxStartedOutput}, &boundedBuffer{max: maxStartedOutput}
	var readers sync.WaitGroup
	in, out, errOut := os.NewFile(uintptr(p.in), "notifier stdin"), os.NewFile(uintptr(p.out), "notifier stdout"), os.NewFile(uintptr(p.err), "notifier stderr")
	p.in, p.out, p.err = 0, 0, 0 // the files own them now
	defer out.Close()
	defer errOut.Close()
	go func() { in.Write(stdin); in.Close() }()
	readers.Go(func() { outBuf.readFrom(out) })
	readers.Go(func() { errBuf.readFrom(errOut) })

	exited := make(chan error, 1)
	go func() {
		ev, err := windows.WaitForSingleObject(pi.Process, windows.INFINITE)
		if err == nil && ev != windows.WAIT_OBJECT_0 {
			err = fmt.Errorf("WaitForSingleObject: %#x", ev)
		}
		exited <- err
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var runErr error
	select {
	case err := <-exited:
		runErr = err
	case <-timer.C:
		windows.TerminateProcess(pi.Process, 1)
		<-exited
		runErr = fmt.Errorf("ended after %s", timeout)
	case <-ctx.Done():
		windows.TerminateProcess(pi.Process, 1)
		<-exited
		runErr = ctx.Err()
	}
	if runErr == nil {
		var code uint32
		if err := windows.GetExitCodeProcess(pi.Process, &code); err != nil {
			runErr = fmt.Errorf("GetExitCodeProcess: %w", err)
		} else if code != 0 {
			runErr = fmt.Errorf("exit code %d", code)
		}
	}
	// Its output ends with it, unless a process it started holds the
	// pipes: read for a second more at most (a read of a synchronous pipe
	// cannot be cut short: such readers are left to end with the pipe).
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	return outBuf.bytes(), errBuf.bytes(), runErr
}

// stdPipes are a started process's three standard handles: the child's
// ends (inheritable) and ours.
type stdPipes struct {
	childIn, childOut, childErr windows.Handle
	in, out, err                windows.Handle
}

// make creates the three pipes (CreatePipe; stdin's holding at least
// inSize bytes), the child's ends inheritable, ours not
// (SetHandleInformation).
func (p *stdPipes) make(inSize int) error {
	sa := &windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), InheritHandle: 1}
	for _, pp := range []struct {
		read, write *windows.Handle
		size        int
		name        string
	}{{&p.childIn, &p.in, max(inSize, 4096), "stdin"}, {&p.out, &p.childOut, 0, "stdout"}, {&p.err, &p.childErr, 0, "stderr"}} {
		if err := windows.CreatePipe(pp.read, pp.write, sa, uint32(pp.size)); err != nil {
			return fmt.Errorf("CreatePipe(%s): %w", pp.name, err)
		}
	}
	for _, h := range []windows.Handle{p.in, p.out, p.err} {
		if err := windows.SetHandleInformation(h, windows.HANDLE_FLAG_INHERIT, 0); err != nil {
			return fmt.Errorf("SetHandleInformation: %w", err)
		}
	}
	return nil
}

// closeChildEnds closes the child's ends (after it started: its copies
// stay).
func (p *stdPipes) closeChildEnds() {
	for _, h := range []*windows.Handle{&p.childIn, &p.childOut, &p.childErr} {
		if *h != 0 {
			windows.CloseHandle(*h)
			*h = 0
		}
	}
}

// close closes every handle still held.
func (p *stdPipes) close() {
	p.closeChildEnds()
	for _, h := range []*windows.Handle{&p.in, &p.out, &p.err} {
		if *h != 0 {
			windows.CloseHandle(*h)
			*h = 0
		}
	}
}

// boundedBuffer keeps the first max bytes read into it; safe to read
// (bytes) while readFrom runs.
type boundedBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

// readFrom reads r to its end (or an error), keeping the first max
// bytes.
func (b *boundedBuffer) readFrom(r io.Reader) {
	chunk := make([]byte, 1024)
	for {
		n, err := r.Read(chunk)
		b.mu.Lock()
		if keep := min(n, b.max-len(b.buf)); keep > 0 {
			b.buf = append(b.buf, chunk[:keep]...)
		}
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// bytes returns a copy of what was kept.
func (b *boundedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf)
}
