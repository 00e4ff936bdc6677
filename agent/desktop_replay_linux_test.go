package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/wire"
)

// lockedBuffer is a log destination the agent's goroutines share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var repeatsRe = regexp.MustCompile(`it stands for (\d+) more replays of this warning to uid \d+ not shown since`)

// repeatsOf is how many not-shown replays a record stands for besides
// itself (NotShownRepeats), which its reason must say too.
func repeatsOf(t *testing.T, r warningRecord) int {
	t.Helper()
	n := r.Warning.NotShownRepeats
	m := repeatsRe.FindStringSubmatch(r.Warning.Reason)
	if m == nil {
		if n != 0 {
			t.Fatalf("not_shown_repeats %d, and the reason %q does not say so", n, r.Warning.Reason)
		}
		return 0
	}
	if said, err := strconv.Atoi(m[1]); err != nil || said <= 0 || said != n {
		t.Fatalf("not_shown_repeats %d, the reason %q", n, r.Warning.Reason)
	}
	return n
}

// floodOnce is one round of the flood a group member can make: connect,
// watch, answer every warning replayed "not shown", close. It returns
// the keys of the warnings it answered. The replays are queued before
// the first ping: it closes after answering the two open violations, or
// after two pings (a replay not given: the last round's answer about it
// not taken yet), so that no replay given goes unanswered.
func floodOnce(t *testing.T, path string) []string {
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Errorf("dial: %v", err)
		return nil
	}
	defer c.Close()
	br := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadString('\n'); err != nil {
		return nil
	}
	b, _ := json.Marshal(localapi.Message{Type: localapi.TypeWatch, Protocol: localapi.ProtocolVersion})
	if _, err := c.Write(append(b, '\n')); err != nil {
		return nil
	}
	var keys []string
	pings := 0
	for len(keys) < 2 && pings < 2 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Errorf("flood read: %v", err)
			break
		}
		var m localapi.Message
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m.Type == localapi.TypePing {
			pings++
			continue
		}
		if m.Type != localapi.TypeWarning || m.Warning == nil {
			continue
		}
		b, _ := json.Marshal(localapi.Message{Type: localapi.TypeShown, ID: m.Warning.ID, Error: "no"})
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(append(b, '\n')); err != nil {
			break
		}
		keys = append(keys, m.Warning.Key)
	}
	return keys
}

// TestDesktopReplayFlood: a notifier that connects, is given the open
// violations, answers each "not shown" and closes, over and over (what
// any member of agent.local_group can do), gets one warning_not_shown
// (and one WARN log line) per warning key at most once per warn
// interval; the records after the first say how many failures they
// stand for, and all the failures are counted once the interval is
// over. A notifier that works, connecting meanwhile, is still given the
// replays and shows them.
func TestDesktopReplayFlood(t *testing.T) {
	const interval = time.Second
	e := newEnv(t, testConfig, kbd, reader, finger)
	e.cfg.Agent.LocalSocket = filepath.Join(openDir(t), "agent.sock")
	var logs lockedBuffer
	r := e.start(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Desktop: DesktopOptions{WarnInterval: interval, AckTimeout: 2 * time.Second,
			RunUserDir: filepath.Join(t.TempDir(), "none"), Utmp: "-", NoStart: true, PingInterval: 20 * time.Millisecond}})
	defer r.stop(t)
	e.waitFor("violations at start", func(rs []record) bool { return count(rs, TypeViolation, "", "") == 2 })
	// Their live warnings went to nobody (none connected): the flood is
	// given replays only.
	waitFor(t, "the live warnings at start", func() bool { return strings.Count(logs.String(), `msg="no desktop to warn`) == 2 })
	path := e.cfg.Agent.LocalSocket

	const flood = 2500 * time.Millisecond
	answered := map[string]int{}
	rounds := 0
	start := time.Now()
	for time.Since(start) < flood {
		for _, k := range floodOnce(t, path) {
			answered[k]++
		}
		rounds++
	}
	floodEnd := time.Now()
	if len(answered) != 2 || answered["usb_storage_unapproved|8-1.4"] < 20 {
		t.Fatalf("the flood got few replays to answer in %d rounds: %v", rounds, answered)
	}
	t.Logf("%d rounds, answered not shown: %v", rounds, answered)

	// A notifier that works, within the interval of the flood's last
	// record: the replays still reach it.
	ch := watch(t, path, func(*localapi.Warning) error { return nil })
	got := map[string]bool{}
	for range 2 {
		w := next(t, ch)
		if !w.Replay {
			t.Fatalf("not a replay: %+v", w)
		}
		got[w.Key] = true
	}
	if len(got) != 2 {
		t.Fatalf("replayed to the working notifier: %v", got)
	}

	// Every failure is counted once the last interval is over: each
	// warning_not_shown stands for itself and the repeats it names.
	var recs []warningRecord
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs = e.warningRecords()
		counted := map[string]int{}
		for _, rec := range recs {
			if rec.Type == wire.TypeWarningNotShown {
				counted[rec.Warning.Kind+"|"+rec.Warning.Device] += 1 + repeatsOf(t, rec)
			}
		}
		// Every "no" is counted; a replay given just as a flood
		// connection closed (no answer) is counted too, so there may be
		// more.
		if counted["usb_storage_unapproved|8-1.4"] >= answered["usb_storage_unapproved|8-1.4"] &&
			counted["usb_approval_expired|1-9"] >= answered["usb_approval_expired|1-9"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("failures counted %v, answered %v", counted, answered)
		}
		time.Sleep(50 * time.Millisecond)
	}

	byKey := map[string][]warningRecord{}
	shown := 0
	for _, rec := range recs {
		switch rec.Type {
		case wire.TypeWarningNotShown:
			k := rec.Warning.Kind + "|" + rec.Warning.Device
			// "no", or a replay given as the flood's connection closed,
			// which no one answered.
			if !rec.Warning.Replay || !strings.Contains(rec.Warning.Reason, "could not show it: no") && !strings.Contains(rec.Warning.Reason, "did not answer within") {
				t.Errorf("record %+v", rec.Warning)
			}
			byKey[k] = append(byKey[k], rec)
		case wire.TypeWarningShown:
			if !rec.Warning.Replay || len(rec.Warning.Shown) != 1 {
				t.Errorf("record %+v", rec.Warning)
			}
			shown++
		}
	}
	if shown != 2 {
		t.Errorf("%d warning_shown records, want the 2 of the working notifier", shown)
	}
	// Records about an interval apart (the throttle decides at the
	// answer; a record's time is when it is written, later under load),
	// so at most span/interval+2 per key over the span they cover: the
	// flood answered hundreds.
	total := 0
	for k, rs := range byKey {
		total += len(rs)
		span := rs[len(rs)-1].Time.Sub(rs[0].Time)
		if bound := int(span/interval) + 2; len(rs) > bound {
			t.Errorf("%s: %d warning_not_shown records over %v (flood %v) with a %v interval (at most %d)", k, len(rs), span, floodEnd.Sub(start), interval, bound)
		}
		if repeatsOf(t, rs[0]) != 0 {
			t.Errorf("%s: the first failure not recorded at once: %s", k, rs[0].Warning.Reason)
		}
		withRepeats := 0
		for i, rec := range rs {
			if i > 0 && rec.Time.Sub(rs[i-1].Time) < interval/2 {
				t.Errorf("%s: records %s and %s %v apart", k, rs[i-1].Warning.ID, rec.Warning.ID, rec.Time.Sub(rs[i-1].Time))
			}
			if repeatsOf(t, rec) > 0 {
				withRepeats++
			}
		}
		if withRepeats == 0 {
			t.Errorf("%s: no record carries the failures left out", k)
		}
	}
	// The WARN log line goes with the record, no more often.
	lines := strings.Count(logs.String(), `msg="warning reached no desktop"`)
	if lines != total {
		t.Errorf("%d WARN lines for %d warning_not_shown records", lines, total)
	}
	if n := strings.Count(logs.String(), "left_out="); n == 0 {
		t.Errorf("no WARN line says how many were left out")
	}
}

// TestDesktopReplayFloodStop: the not-shown replays counted but not
// recorded yet (their interval, an hour here, not over) are recorded
// when the agent stops, before agent_stopped: the count is not lost.
func TestDesktopReplayFloodStop(t *testing.T) {
	e := newEnv(t, testConfig, kbd, reader, finger)
	e.cfg.Agent.LocalSocket = filepath.Join(openDir(t), "agent.sock")
	var logs lockedBuffer
	r := e.start(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Desktop: DesktopOptions{WarnInterval: time.Hour, AckTimeout: 2 * time.Second,
			RunUserDir: filepath.Join(t.TempDir(), "none"), Utmp: "-", NoStart: true, PingInterval: 20 * time.Millisecond}})
	e.waitFor("violations at start", func(rs []record) bool { return count(rs, TypeViolation, "", "") == 2 })
	waitFor(t, "the live warnings at start", func() bool { return strings.Count(logs.String(), `msg="no desktop to warn`) == 2 })
	answered := map[string]int{}
	for range 20 {
		for _, k := range floodOnce(t, e.cfg.Agent.LocalSocket) {
			answered[k]++
		}
	}
	// The last round's answers reach the agent's handler after the
	// client closed: give them a moment, then stop.
	time.Sleep(500 * time.Millisecond)
	r.stop(t)
	recs := e.warningRecords()
	counted := map[string]int{}
	for _, rec := range recs {
		if rec.Type == wire.TypeWarningNotShown {
			counted[rec.Warning.Kind+"|"+rec.Warning.Device] += 1 + repeatsOf(t, rec)
		}
	}
	if len(answered) != 2 || counted["usb_storage_unapproved|8-1.4"] != answered["usb_storage_unapproved|8-1.4"] ||
		counted["usb_approval_expired|1-9"] != answered["usb_approval_expired|1-9"] {
		t.Errorf("after the stop, failures counted %v, answered %v", counted, answered)
	}
	all := e.records()
	if last := all[len(all)-1]; last.Type != TypeAgentStopped {
		t.Errorf("the last record is %s, want agent_stopped after the warnings", last.Type)
	}
}

// TestDesktopReplayAfterDeadConnection: a notifier given the open
// violations' replays goes away without answering (it crashed); the
// user's next notifier, connecting at once, is given them at once, not
// only when the first one's answer times out (4 × AckTimeout) — nor
// never, as before, when it connected within that wait.
func TestDesktopReplayAfterDeadConnection(t *testing.T) {
	e := newEnv(t, testConfig, kbd, reader, finger)
	e.cfg.Agent.LocalSocket = filepath.Join(openDir(t), "agent.sock")
	var logs lockedBuffer
	r := e.start(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Desktop: DesktopOptions{WarnInterval: time.Hour, AckTimeout: 5 * time.Second,
			RunUserDir: filepath.Join(t.TempDir(), "none"), Utmp: "-", NoStart: true}})
	defer r.stop(t)
	e.waitFor("violations at start", func(rs []record) bool { return count(rs, TypeViolation, "", "") == 2 })
	waitFor(t, "the live warnings at start", func() bool { return strings.Count(logs.String(), `msg="no desktop to warn`) == 2 })
	path := e.cfg.Agent.LocalSocket

	// The first notifier: takes both replays, answers nothing, goes.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br.ReadString('\n') // hello
	b, _ := json.Marshal(localapi.Message{Type: localapi.TypeWatch, Protocol: localapi.ProtocolVersion})
	c.Write(append(b, '\n'))
	for given := 0; given < 2; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the first notifier: %v", err)
		}
		var m localapi.Message
		if json.Unmarshal([]byte(line), &m) == nil && m.Type == localapi.TypeWarning {
			given++
		}
	}
	c.Close()
	// The server sees the connection go before the next one watches.
	waitFor(t, "the first notifier gone", func() bool { return len(r.agent.desk.srv.Load().Watchers()) == 0 })

	start := time.Now()
	ch := watch(t, path, func(*localapi.Warning) error { return nil })
	got := map[string]bool{}
	for range 2 {
		select {
		case w := <-ch:
			got[w.Key] = w.Replay
		case <-time.After(3 * time.Second):
			t.Fatalf("the next notifier got %v within 3 s (the first one's answers time out after 20 s)", got)
		}
	}
	t.Logf("replayed again after %v", time.Since(start))
	for k, replay := range got {
		if !replay {
			t.Errorf("%s: not a replay", k)
		}
	}
}
