package agent

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/collector/uevent"
	"github.com/mamori-agent/mamori/internal/sysfstest"
	"github.com/mamori-agent/mamori/notify/notifytest"
	"github.com/mamori-agent/mamori/wire"
)

// The desktop warnings inside one process: a real agent judging fixture
// devices that arrive through its uevent path, its local API on a real
// socket, and a client of it standing in for the notifier (the notifier
// as a separate process, on a real session bus, is tested in
// cmd/mamori). The fallback test starts the real mamori binary as a real
// unprivileged user.

// openDir makes a directory only this user can change and everyone can
// enter (a socket's directory).
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mamori-desk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	return dir
}

// warningRecord is the part of a warning record the tests look at.
type warningRecord struct {
	Type    string              `json:"type"`
	Time    time.Time           `json:"time"`
	Message string              `json:"message"`
	Warning *wire.WarningRecord `json:"warning"`
}

func (e *testEnv) warningRecords() []warningRecord {
	e.t.Helper()
	var out []warningRecord
	for _, r := range readAuditLog[warningRecord](e.t, e.state) {
		if r.Warning != nil {
			out = append(out, r)
		}
	}
	return out
}

func (e *testEnv) waitWarnings(what string, n int) []warningRecord {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		rs := e.warningRecords()
		if len(rs) >= n {
			return rs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s: %d warning records of %d:\n%s", what, len(rs), n, dump(e.records()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// plug adds the card reader (unapproved storage) through sysfs and a
// uevent, as the kernel would; unplug removes it.
func plug(t *testing.T, e *testEnv, peer int, seq uint64) {
	t.Helper()
	sysfstest.Build(t, e.sysfs, reader)
	// Each plug-in gets a device number of its own, as from the kernel.
	devpath := findDevPath(t, e.sysfs, "8-1.4")
	devnum := strconv.Itoa(int(seq%100) + 10)
	if err := os.WriteFile(filepath.Join(e.sysfs, devpath, "devnum"), []byte(devnum+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ev := uevent.Event{Action: "add", DevPath: devpath, Subsystem: "usb", DevType: "usb_device", Seqnum: seq,
		Env: map[string]string{"PRODUCT": "58f/8468/100", "BUSNUM": "008", "DEVNUM": devnum}}
	writeUevent(t, peer, ev)
}

func unplug(t *testing.T, e *testEnv, peer int, seq uint64) {
	t.Helper()
	ev := uevent.Event{Action: "remove", DevPath: findDevPath(t, e.sysfs, "8-1.4"), Subsystem: "usb", DevType: "usb_device", Seqnum: seq}
	sysfstest.Remove(e.sysfs, "8-1.4")
	writeUevent(t, peer, ev)
}

func writeUevent(t *testing.T, peer int, ev uevent.Event) {
	t.Helper()
	b, err := ev.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(peer, b); err != nil {
		t.Fatal(err)
	}
}

// desktopEnv is an agent with its local API in a directory of its own,
// no desktop session to start a notifier in, and a uevent socket pair.
func desktopEnv(t *testing.T, interval time.Duration) (*testEnv, *running, int) {
	t.Helper()
	e := newEnv(t, testConfig, kbd)
	e.cfg.Agent.LocalSocket = filepath.Join(openDir(t), "agent.sock")
	e.cfg.Agent.LocalGroup = ""
	conn, peer, err := uevent.SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(peer) })
	r := e.start(Options{Uevents: conn, Desktop: DesktopOptions{WarnInterval: interval, AckTimeout: 2 * time.Second,
		RunUserDir: filepath.Join(t.TempDir(), "none"), Utmp: "-", NoStart: true, PingInterval: 100 * time.Millisecond}})
	t.Cleanup(func() { r.stop(t) })
	return e, r, peer
}

// watch connects a notifier stand-in: it answers each warning with
// answer's error (nil: shown) and passes it on.
func watch(t *testing.T, path string, answer func(*localapi.Warning) error) <-chan *localapi.Warning {
	t.Helper()
	c, err := localapi.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *localapi.Warning, 16)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Watch(ctx, 0, func(w *localapi.Warning) error { ch <- w; return answer(w) })
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ch
}

func next(t *testing.T, ch <-chan *localapi.Warning) *localapi.Warning {
	t.Helper()
	select {
	case w := <-ch:
		return w
	case <-time.After(15 * time.Second):
		t.Fatal("no warning")
		return nil
	}
}

// TestDesktopWarningThroughNotifier: a violation that arrives by uevent
// reaches the connected notifier as a bilingual warning; its answer is
// recorded as warning_shown; the status shows the device and the open
// violation.
func TestDesktopWarningThroughNotifier(t *testing.T) {
	e, r, peer := desktopEnv(t, time.Hour)
	path := e.cfg.Agent.LocalSocket
	ch := watch(t, path, func(*localapi.Warning) error { return nil })
	waitFor(t, "notifier connected", func() bool { return len(r.agent.statusNotifiers(t, path)) == 1 })

	plug(t, e, peer, 4711)
	w := next(t, ch)
	if w.Kind != KindStorageUnapproved || w.Device != "8-1.4" || w.Key != "usb_storage_unapproved|8-1.4" || w.Severity != "high" || w.Article != "6, 7" {
		t.Fatalf("warning %+v", w)
	}
	en, ja := w.Texts[0], w.Texts[1]
	if en.Lang != "en" || ja.Lang != "ja" || en.Title != "Unapproved USB storage" || ja.Title != "許可されていない USB 記憶媒体" ||
		en.Rule != "articles 6 and 7" || ja.Rule != "第6条・第7条" ||
		!strings.Contains(en.Subject, "058f:8468") || !strings.HasSuffix(en.Subject, "port 8-1.4") || !strings.Contains(ja.Subject, "ポート 8-1.4") ||
		!strings.Contains(en.Remedy, "情報政策課") || !strings.Contains(ja.Remedy, "情報政策課") {
		t.Errorf("texts %+v", w.Texts)
	}
	recs := e.waitWarnings("warning_shown", 1)
	rec := recs[0]
	if rec.Type != wire.TypeWarningShown || rec.Warning.ID != w.ID || rec.Warning.Kind != KindStorageUnapproved || rec.Warning.Device != "8-1.4" ||
		len(rec.Warning.Shown) != 1 || rec.Warning.Shown[0].UID != os.Geteuid() || rec.Warning.Shown[0].Via != wire.ViaNotifier {
		t.Fatalf("record %+v %+v", rec, rec.Warning)
	}

	st := r.agent.status(t, path)
	var found bool
	for _, d := range st.USB {
		if d.Path == "8-1.4" {
			found = d.Verdict == localapi.VerdictUnapproved && d.Storage
		}
	}
	if !found || len(st.Violations) != 1 || st.Violations[0].Kind != KindStorageUnapproved || st.Violations[0].Texts[0].Lang != "en" ||
		st.Agent.AssetID != "PC-TEST" || st.Audit.LastSeq == 0 || len(st.Notifiers) != 1 || st.Report != nil {
		t.Fatalf("status %+v", st)
	}
}

// TestDesktopWarningNotShown: a notifier that cannot show the warning
// says why, and that is recorded.
func TestDesktopWarningNotShown(t *testing.T) {
	e, r, peer := desktopEnv(t, time.Hour)
	path := e.cfg.Agent.LocalSocket
	watch(t, path, func(*localapi.Warning) error { return os.ErrDeadlineExceeded })
	waitFor(t, "notifier connected", func() bool { return len(r.agent.statusNotifiers(t, path)) == 1 })
	plug(t, e, peer, 4711)
	rec := e.waitWarnings("warning_not_shown", 1)[0]
	if rec.Type != wire.TypeWarningNotShown || len(rec.Warning.Shown) != 0 || !strings.Contains(rec.Warning.Reason, "could not show it: i/o timeout") {
		t.Fatalf("record %+v %+v", rec, rec.Warning)
	}
}

// TestDesktopRateLimit: a flapping port (the same stick unplugged and
// plugged again and again) gives one warning at once and one more, for
// all the others, when the interval is over; each warning shown is
// recorded, with what it stands for.
func TestDesktopRateLimit(t *testing.T) {
	const interval = 700 * time.Millisecond
	e, r, peer := desktopEnv(t, interval)
	path := e.cfg.Agent.LocalSocket
	ch := watch(t, path, func(*localapi.Warning) error { return nil })
	waitFor(t, "notifier connected", func() bool { return len(r.agent.statusNotifiers(t, path)) == 1 })
	start := time.Now()
	for i := range 4 {
		plug(t, e, peer, uint64(100+2*i))
		e.waitFor("violation", func(rs []record) bool { return count(rs, TypeViolation, "8-1.4", KindStorageUnapproved) == i+1 })
		unplug(t, e, peer, uint64(101+2*i))
		e.waitFor("removal", func(rs []record) bool { return count(rs, TypeDeviceRemoved, "8-1.4", "") == i+1 })
	}
	first := next(t, ch)
	if first.Held != 0 {
		t.Fatalf("first warning held %d", first.Held)
	}
	summary := next(t, ch)
	if summary.Held != 3 || summary.HeldSince == nil || time.Since(start) < interval-100*time.Millisecond {
		t.Fatalf("summary %+v after %v", summary, time.Since(start))
	}
	select {
	case w := <-ch:
		t.Fatalf("a third warning: %+v", w)
	case <-time.After(interval + 300*time.Millisecond):
	}
	recs := e.waitWarnings("two warning records", 2)
	if len(recs) != 2 || recs[0].Warning.Held != 0 || recs[1].Warning.Held != 3 || !strings.Contains(recs[1].Message, "standing for 3 held back by the rate limit") {
		t.Fatalf("records %+v", recs)
	}
}

// statusNotifiers and status ask the agent's local API.
func (a *Agent) statusNotifiers(t *testing.T, path string) []localapi.PeerStatus {
	return a.status(t, path).Notifiers
}

func (a *Agent) status(t *testing.T, path string) *localapi.Status {
	t.Helper()
	c, err := localapi.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestParseUtmp(t *testing.T) {
	rec := func(typ int16, pid int32, user string) []byte {
		b := make([]byte, utmpSize)
		binary.NativeEndian.PutUint16(b[0:], uint16(typ))
		binary.NativeEndian.PutUint32(b[4:], uint32(pid))
		copy(b[44:76], user)
		return b
	}
	var b []byte
	b = append(b, rec(2, 1, "reboot")...)                      // BOOT_TIME
	b = append(b, rec(7, 100, "alice")...)                     // alive
	b = append(b, rec(7, 200, "bob")...)                       // dead
	b = append(b, rec(8, 300, "carol")...)                     // DEAD_PROCESS
	b = append(b, rec(7, 400, "")...)                          // no name
	b = append(b, rec(7, 500, "a"+strings.Repeat("x", 40))...) // a full name field
	b = append(b, rec(7, 600, "dave")[:100]...)                // torn
	got := parseUtmp(b, func(pid int) bool { return pid != 200 })
	want := map[string]bool{"alice": true, "a" + strings.Repeat("x", 31): true}
	if len(got) != len(want) || !got["alice"] || !got["a"+strings.Repeat("x", 31)] {
		t.Fatalf("got %v", got)
	}
	if got := parseUtmp(nil, nil); len(got) != 0 {
		t.Fatalf("empty: %v", got)
	}
}

// writeUtmp writes a utmp file with one live login of user (this
// process stands for its session).
func writeUtmp(t *testing.T, path, user string) {
	t.Helper()
	b := make([]byte, utmpSize)
	binary.NativeEndian.PutUint16(b[0:], utmpUserProcess)
	binary.NativeEndian.PutUint32(b[4:], uint32(os.Getpid()))
	copy(b[8:40], ":0")
	copy(b[44:76], user)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildMamori builds the mamori binary where any user can run it.
func buildMamori(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(openDir(t), "mamori")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/mamori")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build mamori: %v\n%s", err, out)
	}
	return bin
}

// TestFallbackNotifierAsUser: no notifier is connected, and a real
// unprivileged user has a desktop session (a session bus in its runtime
// directory, a login in utmp): the agent starts the mamori binary as
// that user, with the warning on its standard input, and the warning
// reaches the notification service on that user's bus from a process
// running with the user's uid.
func TestFallbackNotifierAsUser(t *testing.T) {
	notifytest.RequireDaemon(t)
	u := notifytest.NewUser(t, "mamori-fb")
	runUser := filepath.Join(openDir(t), "run", "user")
	rt := filepath.Join(runUser, strconv.Itoa(u.UID))
	if err := os.MkdirAll(rt, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(rt, u.UID, u.GID)
	os.Chmod(rt, 0o700)
	bus := notifytest.StartBus(t, notifytest.BusOptions{Socket: filepath.Join(rt, "bus"), UID: u.UID, GID: u.GID})
	srv := notifytest.Serve(t, bus.Address)
	// A directory that is no session: not owned by its uid.
	must(t, os.Mkdir(filepath.Join(runUser, "4444"), 0o700))
	utmp := filepath.Join(t.TempDir(), "utmp")
	writeUtmp(t, utmp, u.Name)
	bin := buildMamori(t)

	e := newEnv(t, testConfig, kbd, reader)
	// The agent's procfs is a fixture: the utmp login's pid is checked
	// there.
	os.MkdirAll(filepath.Join(e.procfs, strconv.Itoa(os.Getpid())), 0o755)
	r := e.start(Options{Desktop: DesktopOptions{RunUserDir: runUser, Utmp: utmp, NotifyCommand: []string{bin, "notify", "--once"},
		AckTimeout: time.Second, StartTimeout: 30 * time.Second}})
	defer r.stop(t)

	got := srv.Wait(t, "the warning from the started notifier", 30*time.Second, func(rs []notifytest.Received) bool { return len(rs) >= 1 })
	n := got[0]
	if n.SenderUID != u.UID || n.ProcUID != u.UID || n.SenderPID <= 0 || n.SenderPID == os.Getpid() {
		t.Errorf("sent by uid %d (proc %d), pid %d; want the user's uid %d", n.SenderUID, n.ProcUID, n.SenderPID, u.UID)
	}
	if n.AppName != "mamori" || n.Urgency() != 2 || n.Summary != "Unapproved USB storage (articles 6 and 7)" ||
		!strings.Contains(n.Body, "port 8-1.4") || !strings.Contains(n.Body, "許可されていない USB 記憶媒体（第6条・第7条）\n") ||
		!strings.Contains(n.Body, "ポート 8-1.4") || !strings.Contains(n.Body, "情報政策課") {
		t.Errorf("notification:\n%s", notifytest.Dump(got))
	}
	recs := e.waitWarnings("warning_shown", 1)
	w := recs[0].Warning
	if recs[0].Type != wire.TypeWarningShown || len(w.Shown) != 1 || w.Shown[0].UID != u.UID || w.Shown[0].User != u.Name || w.Shown[0].Via != wire.ViaStarted || w.Reason != "" {
		t.Fatalf("record %+v %+v", recs[0], w)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDesktopReplayOnConnect: a stick plugged in before anyone logged in
// is warned about when the notifier connects, once per interval however
// often it connects; it is recorded like any warning shown.
func TestDesktopReplayOnConnect(t *testing.T) {
	e := newEnv(t, testConfig, kbd, reader, finger)
	e.cfg.Agent.LocalSocket = filepath.Join(openDir(t), "agent.sock")
	r := e.start(Options{Desktop: DesktopOptions{WarnInterval: time.Hour, AckTimeout: 2 * time.Second,
		RunUserDir: filepath.Join(t.TempDir(), "none"), Utmp: "-", NoStart: true}})
	defer r.stop(t)
	e.waitFor("violations at start", func(rs []record) bool { return count(rs, TypeViolation, "", "") == 2 })
	if n := len(e.warningRecords()); n != 0 {
		t.Fatalf("%d warning records with nobody to warn", n)
	}
	ch := watch(t, e.cfg.Agent.LocalSocket, func(*localapi.Warning) error { return nil })
	// The storage (high) before the expired fingerprint reader (medium).
	first, second := next(t, ch), next(t, ch)
	if !first.Replay || first.Kind != KindStorageUnapproved || second.Kind != KindApprovalExpired || !second.Replay || !first.Time.IsZero() {
		t.Fatalf("replayed %+v, %+v", first, second)
	}
	if second.Texts[0].Subject != "EgisTec EgisTec Touch Fingerprint Sensor, serial W700B41B, port 1-9" || !strings.Contains(second.Texts[0].Remedy, "renew the approval") {
		t.Errorf("expired approval texts %+v", second.Texts)
	}
	recs := e.waitWarnings("two warnings shown", 2)
	for _, rec := range recs {
		if rec.Type != wire.TypeWarningShown || !rec.Warning.Replay || len(rec.Warning.Shown) != 1 || !strings.Contains(rec.Message, "still open when the notifier connected") {
			t.Fatalf("record %+v %+v", rec, rec.Warning)
		}
	}
	// Connecting again within the interval: nothing repeated.
	ch2 := watch(t, e.cfg.Agent.LocalSocket, func(*localapi.Warning) error { return nil })
	select {
	case w := <-ch2:
		t.Fatalf("repeated to a notifier connecting again: %+v", w)
	case <-time.After(500 * time.Millisecond):
	}
}

// TestSessions: what counts as a desktop session: a runtime directory
// named by a uid from MinUID on, it and its bus socket owned by that
// uid, and, where utmp says, a live login. A uid the user database does
// not know (a directory user) still counts, with its directory's group.
func TestSessions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: gives directories to other uids")
	}
	runUser := t.TempDir()
	mk := func(name string, uid int, bus bool, busUID int) {
		t.Helper()
		dir := filepath.Join(runUser, name)
		must(t, os.Mkdir(dir, 0o700))
		must(t, os.Chown(dir, uid, uid+1))
		if bus {
			p := filepath.Join(dir, "bus")
			ln, err := net.Listen("unix", p)
			must(t, err)
			t.Cleanup(func() { ln.Close() })
			must(t, os.Chown(p, busUID, busUID))
		}
	}
	mk("4343", 4343, true, 4343)  // a session of an unknown uid
	mk("4444", 0, true, 4444)     // directory not the uid's
	mk("4545", 4545, true, 0)     // bus not the uid's
	mk("4646", 4646, false, 0)    // no bus
	mk("999", 999, true, 999)     // a system uid
	mk("04747", 4747, true, 4747) // not a uid as the kernel writes it
	mk("root", 4848, true, 4848)
	must(t, os.Symlink(filepath.Join(runUser, "4343"), filepath.Join(runUser, "4949")))
	f := newSessionFinder(DesktopOptions{RunUserDir: runUser, Utmp: "-", NoStart: true}, "/proc").(*linuxSessions)
	got, err := f.sessions()
	if err != nil {
		t.Fatal(err)
	}
	want := session{UID: 4343, GID: 4344, Home: "/", RuntimeDir: filepath.Join(runUser, "4343"), Bus: busAddress(filepath.Join(runUser, "4343", "bus"))}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("sessions %+v, want %+v", got, want)
	}
	// A missing runtime directory: no sessions, no error.
	f.runUser = filepath.Join(runUser, "none")
	if got, err := f.sessions(); err != nil || len(got) != 0 {
		t.Fatalf("no /run/user: %v, %v", got, err)
	}
	if got := busAddress("/run/user/1000/bus"); got != "unix:path=/run/user/1000/bus" {
		t.Errorf("bus address %q", got)
	}
	if got := busAddress("/tmp/a b,c"); got != "unix:path=/tmp/a%20b%2cc" {
		t.Errorf("bus address %q", got)
	}
}

// rawWatcher is a notifier written by hand: it watches, hands each
// warning's id to ids, and answers only what the test sends.
type rawWatcher struct {
	conn net.Conn
	ids  chan string
	mu   sync.Mutex
}

func rawWatch(t *testing.T, path string) *rawWatcher {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawWatcher{conn: c, ids: make(chan string, 256)}
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	r.send(localapi.Message{Type: localapi.TypeWatch, Protocol: localapi.ProtocolVersion})
	go func() {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			var m localapi.Message
			if json.Unmarshal([]byte(line), &m) == nil && m.Type == localapi.TypeWarning && m.Warning != nil {
				select {
				case r.ids <- m.Warning.ID:
				default:
				}
			}
		}
	}()
	return r
}

func (r *rawWatcher) send(m localapi.Message) {
	b, _ := json.Marshal(m)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conn.Write(append(b, '\n'))
}

// TestDesktopForgedAnswers: a notifier cannot answer for another's
// desktop: answering a warning it was given many times counts once
// (the other notifier's answer is still waited for and recorded), and
// answering a warning given to another connection alone (a replay; the
// ids are predictable) counts not at all.
func TestDesktopForgedAnswers(t *testing.T) {
	e, r, peer := desktopEnv(t, time.Hour)
	path := e.cfg.Agent.LocalSocket
	watch(t, path, func(*localapi.Warning) error {
		time.Sleep(300 * time.Millisecond)
		return errors.New("the victim's desktop has no notification service")
	})
	forger := rawWatch(t, path)
	waitFor(t, "two notifiers", func() bool { return len(r.agent.statusNotifiers(t, path)) == 2 })
	plug(t, e, peer, 4711)
	var id string
	select {
	case id = <-forger.ids:
	case <-time.After(10 * time.Second):
		t.Fatal("no warning to the forger")
	}
	for range 5 {
		forger.send(localapi.Message{Type: localapi.TypeShown, ID: id})
	}
	rec := e.waitWarnings("the first warning", 1)[0]
	if !strings.Contains(rec.Warning.Reason, "the victim's desktop has no notification service") {
		t.Errorf("the victim's answer not waited for: %+v %+v", rec, rec.Warning)
	}
	// The next ids are the replays to a notifier that connects now:
	// the forger answers them all, over and over, first.
	run, seqText, _ := strings.Cut(id, "-")
	seq, _ := strconv.Atoi(seqText)
	stop := make(chan struct{})
	var forging sync.WaitGroup
	forging.Go(func() {
		for {
			for i := 1; i <= 3; i++ {
				forger.send(localapi.Message{Type: localapi.TypeShown, ID: run + "-" + strconv.Itoa(seq+i)})
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	defer func() { close(stop); forging.Wait() }()
	watch(t, path, func(*localapi.Warning) error {
		time.Sleep(300 * time.Millisecond)
		return errors.New("the second desktop cannot show it either")
	})
	recs := e.waitWarnings("the replay", 2)
	rec = recs[1]
	if !rec.Warning.Replay || rec.Type != wire.TypeWarningNotShown || len(rec.Warning.Shown) != 0 ||
		!strings.Contains(rec.Warning.Reason, "the second desktop cannot show it either") {
		t.Errorf("replay record falsified: %+v %+v", rec, rec.Warning)
	}
}

// TestDesktopAnswerEscaped: the error a notifier sends is recorded
// escaped and cut short.
func TestDesktopAnswerEscaped(t *testing.T) {
	e, r, peer := desktopEnv(t, time.Hour)
	path := e.cfg.Agent.LocalSocket
	watch(t, path, func(*localapi.Warning) error {
		return errors.New("\u202eevil\x1b[2J\nwarning_shown forged" + strings.Repeat("x", 4000))
	})
	waitFor(t, "notifier connected", func() bool { return len(r.agent.statusNotifiers(t, path)) == 1 })
	plug(t, e, peer, 4711)
	rec := e.waitWarnings("warning_not_shown", 1)[0]
	reason := rec.Warning.Reason
	if strings.ContainsAny(reason, "\u202e\x1b\n") || !strings.Contains(reason, `\u{202e}evil\x1b[2J\x0awarning_shown forged`) || len(reason) > 400 {
		t.Errorf("reason not escaped and bounded (%d bytes): %q", len(reason), reason)
	}
	if strings.ContainsAny(rec.Message, "\u202e\x1b\n") {
		t.Errorf("message %q", rec.Message)
	}
}

// desktopOf returns the agent's desktop sink.
func desktopOf(t *testing.T, a *Agent) *desktop {
	t.Helper()
	for _, s := range a.opts.Sinks {
		if d, ok := s.(*desktop); ok {
			return d
		}
	}
	t.Fatal("no desktop sink")
	return nil
}

// TestDesktopSilentWatcher: a notifier that reads the warnings and never
// answers holds up no other warning: eight at once all reach the
// notifier that answers at once, without waiting for the ack timeout.
func TestDesktopSilentWatcher(t *testing.T) {
	e, r, _ := desktopEnv(t, time.Hour)
	path := e.cfg.Agent.LocalSocket
	rawWatch(t, path) // silent
	ch := watch(t, path, func(*localapi.Warning) error { return nil })
	waitFor(t, "two notifiers", func() bool { return len(r.agent.statusNotifiers(t, path)) == 2 })
	d := desktopOf(t, r.agent)
	const n = 8
	start := time.Now()
	go func() {
		for i := range n {
			d.deliverAsync(&localapi.Warning{ID: d.nextID(), Kind: KindStorageUnapproved, Device: "9-" + strconv.Itoa(i),
				Key: KindStorageUnapproved + "|9-" + strconv.Itoa(i), Texts: []localapi.Text{{Lang: "en"}, {Lang: "ja"}}})
		}
	}()
	for range n {
		next(t, ch)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("%d warnings took %v to reach the notifier that answers (the ack timeout is 2s)", n, took)
	}
	recs := e.waitWarnings("the records", n)
	for _, rec := range recs {
		if rec.Type != wire.TypeWarningShown || !strings.Contains(rec.Warning.Reason, "1 of 2 notifiers did not answer") {
			t.Errorf("record %+v %+v", rec, rec.Warning)
		}
	}
}

// TestDesktopFailedWarningKeepsSlot: a warning no desktop was shown
// does not take the rate limit's slot: the next one of its kind and
// device, a moment later, is shown at once (not after the interval).
func TestDesktopFailedWarningKeepsSlot(t *testing.T) {
	e, r, peer := desktopEnv(t, time.Hour)
	path := e.cfg.Agent.LocalSocket
	watch(t, path, func(*localapi.Warning) error { return errors.New("no notification service") })
	waitFor(t, "notifier connected", func() bool { return len(r.agent.statusNotifiers(t, path)) == 1 })
	plug(t, e, peer, 100)
	if rec := e.waitWarnings("warning_not_shown", 1)[0]; rec.Type != wire.TypeWarningNotShown {
		t.Fatalf("record %+v", rec)
	}
	// A notifier that works connects: the open violation is replayed
	// to it.
	ch := watch(t, path, func(*localapi.Warning) error { return nil })
	if w := next(t, ch); !w.Replay {
		t.Fatalf("first warning to the new notifier %+v", w)
	}
	unplug(t, e, peer, 101)
	plug(t, e, peer, 102)
	select {
	case w := <-ch:
		if w.Replay || w.Held != 0 || w.Device != "8-1.4" {
			t.Fatalf("warning %+v", w)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second plug-in held back by the rate limit though the first warning reached nobody")
	}
}

// TestSessionsUtmpTooLarge: a utmp that cannot be read (here larger
// than the read limit) leaves the bus sockets alone to count; it does
// not turn the sessions off.
func TestSessionsUtmpTooLarge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: gives directories to other uids")
	}
	runUser := t.TempDir()
	dir := filepath.Join(runUser, "4343")
	must(t, os.Mkdir(dir, 0o700))
	must(t, os.Chown(dir, 4343, 4343))
	ln, err := net.Listen("unix", filepath.Join(dir, "bus"))
	must(t, err)
	defer ln.Close()
	must(t, os.Chown(filepath.Join(dir, "bus"), 4343, 4343))
	utmp := filepath.Join(t.TempDir(), "utmp")
	f, err := os.Create(utmp)
	must(t, err)
	must(t, f.Truncate(maxUtmpSize+utmpSize))
	f.Close()
	finder := newSessionFinder(DesktopOptions{RunUserDir: runUser, Utmp: utmp, NoStart: true}, "/proc").(*linuxSessions)
	got, err := finder.sessions()
	if err != nil || len(got) != 1 || got[0].UID != 4343 {
		t.Fatalf("sessions %+v, %v; want uid 4343's", got, err)
	}
}

// TestFallbackSlowSession: two desktop sessions with no notifier
// connected, the first one's session bus taking connections and never
// answering: the notifiers are started in parallel, so the second
// user sees the warning at once; the record names the session that
// held it up, and the next warning skips that session instead of
// waiting for it again.
func TestFallbackSlowSession(t *testing.T) {
	notifytest.RequireDaemon(t)
	bad := notifytest.NewUser(t, "mamori-sl")
	good := notifytest.NewUser(t, "mamori-gd")
	if bad.UID > good.UID {
		bad, good = good, bad // the bad one first in uid order
	}
	runUser := filepath.Join(openDir(t), "run", "user")
	session := func(u notifytest.User) string {
		rt := filepath.Join(runUser, strconv.Itoa(u.UID))
		must(t, os.MkdirAll(rt, 0o755))
		must(t, os.Chown(rt, u.UID, u.GID))
		must(t, os.Chmod(rt, 0o700))
		return rt
	}
	// The bad session: a bus socket that takes connections and never
	// answers.
	badRT := session(bad)
	ln, err := net.Listen("unix", filepath.Join(badRT, "bus"))
	must(t, err)
	defer ln.Close()
	must(t, os.Chown(filepath.Join(badRT, "bus"), bad.UID, bad.GID))
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	goodRT := session(good)
	bus := notifytest.StartBus(t, notifytest.BusOptions{Socket: filepath.Join(goodRT, "bus"), UID: good.UID, GID: good.GID})
	srv := notifytest.Serve(t, bus.Address)
	bin := buildMamori(t)

	e := newEnv(t, testConfig, kbd)
	conn, peer, err := uevent.SocketPair()
	must(t, err)
	defer unix.Close(peer)
	r := e.start(Options{Uevents: conn, Desktop: DesktopOptions{RunUserDir: runUser, Utmp: "-", NotifyCommand: []string{bin, "notify", "--once"},
		WarnInterval: 100 * time.Millisecond, AckTimeout: time.Second}})
	defer r.stop(t)

	start := time.Now()
	plug(t, e, peer, 200)
	srv.Wait(t, "the first warning", 30*time.Second, func(rs []notifytest.Received) bool { return len(rs) >= 1 })
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Errorf("the good session's warning took %v: held up by the bad one", took)
	}
	rec := e.waitWarnings("the first record", 1)[0]
	w := rec.Warning
	if rec.Type != wire.TypeWarningShown || len(w.Shown) != 1 || w.Shown[0].UID != good.UID ||
		!strings.Contains(w.Reason, "the notifier started for uid "+strconv.Itoa(bad.UID)+" ("+bad.Name+") held it up for") {
		t.Fatalf("first record %+v %+v", rec, w)
	}
	// The next warning: the bad session skipped, and said so.
	unplug(t, e, peer, 201)
	time.Sleep(200 * time.Millisecond)
	start = time.Now()
	plug(t, e, peer, 202)
	recs := e.waitWarnings("the second record", 2)
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Errorf("the second warning took %v", took)
	}
	w = recs[1].Warning
	if recs[1].Type != wire.TypeWarningShown || len(w.Shown) != 1 || w.Shown[0].UID != good.UID ||
		!strings.Contains(w.Reason, "no notifier started for uid "+strconv.Itoa(bad.UID)+" ("+bad.Name+"): its notifier held warning") {
		t.Fatalf("second record %+v %+v", recs[1], w)
	}
}

// TestLocalAPIRetried: a local socket the agent cannot make at start (a
// file someone left at its path) is recorded once (local_api_unavailable,
// after agent_started, naming the path) and tried again; once the path
// is free the agent serves it without a restart.
func TestLocalAPIRetried(t *testing.T) {
	old := listenRetry
	listenRetry = 50 * time.Millisecond
	t.Cleanup(func() { listenRetry = old })
	e := newEnv(t, testConfig, kbd)
	path := filepath.Join(openDir(t), "agent.sock")
	if err := os.WriteFile(path, []byte("squatter"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.cfg.Agent.LocalSocket = path
	e.cfg.Agent.LocalGroup = ""
	r := e.start(Options{Desktop: DesktopOptions{WarnInterval: time.Hour, AckTimeout: 2 * time.Second,
		RunUserDir: filepath.Join(t.TempDir(), "none"), Utmp: "-", NoStart: true}})
	defer r.stop(t)
	time.Sleep(200 * time.Millisecond)
	if _, err := localapi.Dial(context.Background(), path); err == nil {
		t.Fatal("dialled a regular file")
	}
	recs := e.records()
	started := slices.IndexFunc(recs, func(r record) bool { return r.Type == TypeAgentStarted })
	at := slices.IndexFunc(recs, func(r record) bool { return r.Type == TypeLocalAPIUnavailable })
	if n := count(recs, TypeLocalAPIUnavailable, "", ""); n != 1 || at < started || !strings.Contains(recs[at].Message, path) {
		t.Errorf("want one local_api_unavailable naming %s after agent_started:\n%s", path, dump(recs))
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := localapi.Dial(context.Background(), path)
		if err == nil {
			st, err := c.Status(context.Background())
			c.Close()
			if err != nil || st.Agent.PID != os.Getpid() {
				t.Fatalf("status %+v, %v", st, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after the path was freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLocalAPIGroupMissing: an agent.local_group the system does not know
// serves the socket to root alone (failing closed), and that every
// user's notifier is refused is recorded, not only logged.
func TestLocalAPIGroupMissing(t *testing.T) {
	e := newEnv(t, testConfig, kbd)
	path := filepath.Join(openDir(t), "agent.sock")
	e.cfg.Agent.LocalSocket = path
	e.cfg.Agent.LocalGroup = "mamori-no-such-group"
	r := e.start(Options{Desktop: DesktopOptions{WarnInterval: time.Hour, AckTimeout: 2 * time.Second,
		RunUserDir: filepath.Join(t.TempDir(), "none"), Utmp: "-", NoStart: true}})
	defer r.stop(t)
	recs := e.records()
	at := slices.IndexFunc(recs, func(r record) bool { return r.Type == TypeLocalAPIUnavailable })
	if at < 0 || !strings.Contains(recs[at].Message, "served to root alone") || !strings.Contains(recs[at].Message, "mamori-no-such-group") {
		t.Fatalf("want local_api_unavailable naming the missing group:\n%s", dump(recs))
	}
	c, err := localapi.Dial(context.Background(), path)
	if err != nil {
		t.Fatalf("root cannot connect: %v", err)
	}
	c.Close()
}
