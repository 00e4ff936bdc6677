package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/internal/fsguard"
)

// linuxSessions finds desktop sessions the way a desktop leaves them: a
// user's runtime directory RunUserDir/<uid> (made by logind or elogind)
// holding the session bus socket "bus", both owned by that user, for a
// user with a live login in utmp (a display manager records one for the
// graphical session). Where utmp cannot be read (missing, unreadable,
// larger than maxUtmpSize), the bus sockets alone count.
type linuxSessions struct {
	runUser, utmp, procfs string
	minUID                int
	command               []string
	timeout               time.Duration

	// log is told when utmp cannot be read, once per kind of failure.
	log     *slog.Logger
	mu      sync.Mutex
	utmpErr string
}

// setLogger sets where utmp failures are logged.
func (f *linuxSessions) setLogger(l *slog.Logger) { f.log = l }

// utmpFailed logs (once per kind of failure) that utmp could not be read.
func (f *linuxSessions) utmpFailed(err error) {
	msg := err.Error()
	f.mu.Lock()
	first := msg != f.utmpErr
	f.utmpErr = msg
	f.mu.Unlock()
	if first && f.log != nil {
		f.log.Warn("utmp cannot be read: every user's own session bus counts as a desktop session", "utmp", f.utmp, "err", err)
	}
}

func newSessionFinder(o DesktopOptions, procfs string) sessionFinder {
	f := &linuxSessions{runUser: o.RunUserDir, utmp: o.Utmp, procfs: procfs, minUID: o.MinUID,
		command: o.NotifyCommand, timeout: o.StartTimeout}
	if f.runUser == "" {
		f.runUser = DefaultRunUserDir
	}
	if f.utmp == "" {
		f.utmp = DefaultUtmp
	}
	if f.minUID <= 0 {
		f.minUID = DefaultMinSessionUID
	}
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

// sessions returns the desktop sessions found, by uid.
func (f *linuxSessions) sessions() ([]session, error) {
	entries, err := os.ReadDir(f.runUser)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.runUser, err)
	}
	logged, err := f.loggedIn()
	if err != nil {
		// Not a reason to warn nobody: the bus sockets alone count.
		f.utmpFailed(err)
		logged = nil
	}
	var out []session
	for _, e := range entries {
		uid, err := strconv.Atoi(e.Name())
		if err != nil || uid < f.minUID || strconv.Itoa(uid) != e.Name() {
			continue
		}
		dir := filepath.Join(f.runUser, e.Name())
		bus := filepath.Join(dir, "bus")
		dirGID, ok := ownedBy(dir, uid, fs.ModeDir)
		if _, busOK := ownedBy(bus, uid, fs.ModeSocket); !ok || !busOK {
			continue
		}
		s := session{UID: uid, GID: dirGID, Home: "/", RuntimeDir: dir, Bus: busAddress(bus)}
		// The user database as this process reads it (/etc/passwd and
		// /etc/group in a static build): a user it does not know (from
		// LDAP, say) still gets a notifier, with the group of the runtime
		// directory and no supplementary groups.
		if u, err := user.LookupId(e.Name()); err == nil {
			if logged != nil && !logged[u.Username] {
				continue
			}
			s.User, s.Home = u.Username, u.HomeDir
			if gid, err := strconv.Atoi(u.Gid); err == nil {
				s.GID = gid
			}
			if ids, err := u.GroupIds(); err == nil {
				for _, g := range ids {
					if n, err := strconv.ParseUint(g, 10, 32); err == nil {
						s.Groups = append(s.Groups, uint32(n))
					}
				}
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

// busAddress is the D-Bus address of the socket at path: every byte but
// [-0-9A-Za-z_/.\*] escaped as %XX (the D-Bus specification, Addresses).
func busAddress(path string) string {
	var b strings.Builder
	b.WriteString("unix:path=")
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("-_/.\\*", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

// ownedBy reports whether path (not followed) is of type typ and owned
// by uid, and returns its group.
func ownedBy(path string, uid int, typ fs.FileMode) (gid int, ok bool) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != typ {
		return 0, false
	}
	st, isStat := fi.Sys().(*syscall.Stat_t)
	if !isStat || int(st.Uid) != uid {
		return 0, false
	}
	return int(st.Gid), true
}

// utmp records (struct utmp of glibc on Linux, 64-bit and 32-bit alike:
// 384 bytes).
const (
	utmpSize        = 384
	utmpUserProcess = 7
	maxUtmpSize     = 4 << 20
)

// loggedIn returns the users with a live login in utmp (USER_PROCESS
// records whose process still runs), nil when utmp is not there or
// reading it is turned off ("-").
func (f *linuxSessions) loggedIn() (map[string]bool, error) {
	if f.utmp == "-" {
		return nil, nil
	}
	b, err := fsguard.ReadFile(f.utmp, maxUtmpSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseUtmp(b, func(pid int) bool {
		_, err := os.Stat(filepath.Join(f.procfs, strconv.Itoa(pid)))
		return err == nil
	}), nil
}

// parseUtmp returns the users of the USER_PROCESS records of b whose
// process alive says is running. A torn last record is ignored.
func parseUtmp(b []byte, alive func(pid int) bool) map[string]bool {
	out := map[string]bool{}
	for ; len(b) >= utmpSize; b = b[utmpSize:] {
		r := b[:utmpSize]
		if int16(binary.NativeEndian.Uint16(r[0:2])) != utmpUserProcess {
			continue
		}
		pid := int(int32(binary.NativeEndian.Uint32(r[4:8])))
		name := r[44:76]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if len(name) == 0 || pid <= 0 || !alive(pid) {
			continue
		}
		out[string(name)] = true
	}
	return out
}

// maxNotifierOutput bounds what is read of a started notifier's output.
const maxNotifierOutput = 4096

// start runs the notifier command as the session's user, with the
// session's bus, the warning on its standard input, and waits for its
// answer (a "shown" line) up to the start timeout.
func (f *linuxSessions) start(ctx context.Context, s session, w *localapi.Warning) error {
	if len(f.command) == 0 {
		return errors.New("no notifier command")
	}
	line, err := json.Marshal(localapi.Message{Type: localapi.TypeWarning, Warning: w})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.command[0], f.command[1:]...)
	cmd.Dir = "/"
	name := s.User
	if name == "" {
		name = strconv.Itoa(s.UID)
	}
	cmd.Env = []string{
		"HOME=" + s.Home, "USER=" + name, "LOGNAME=" + name,
		"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
		"XDG_RUNTIME_DIR=" + s.RuntimeDir, "DBUS_SESSION_BUS_ADDRESS=" + s.Bus,
	}
	cmd.Stdin = bytes.NewReader(append(line, '\n'))
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxNotifierOutput, maxNotifierOutput
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A session of its own, killed with the agent; the user's
	// credentials when the agent runs as another (root).
	attr := &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if s.UID != os.Geteuid() {
		groups := s.Groups
		if groups == nil {
			groups = []uint32{}
		}
		attr.Credential = &syscall.Credential{Uid: uint32(s.UID), Gid: uint32(s.GID), Groups: groups}
	}
	cmd.SysProcAttr = attr
	cmd.WaitDelay = time.Second
	runErr := cmd.Run()
	var ack localapi.Message
	first, _, _ := strings.Cut(stdout.String(), "\n")
	if err := json.Unmarshal([]byte(first), &ack); err == nil && ack.Type == localapi.TypeShown && ack.ID == w.ID {
		if ack.Error != "" {
			return fmt.Errorf("notifier for uid %d: %s", s.UID, ackText(ack.Error))
		}
		return nil
	}
	if runErr == nil {
		runErr = errors.New("no answer")
	}
	msg := strings.TrimSpace(stderr.String())
	if msg != "" {
		return fmt.Errorf("notifier for uid %d: %w: %s", s.UID, runErr, ackText(msg))
	}
	return fmt.Errorf("notifier for uid %d: %w", s.UID, runErr)
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
