package systemtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/report"
	"github.com/mamori-agent/mamori/hub"
	"github.com/mamori-agent/mamori/hub/store"
	"github.com/mamori-agent/mamori/hub/store/sqlstore"
	"github.com/mamori-agent/mamori/hub/store/sqlstore/pgtest"
	"github.com/mamori-agent/mamori/wire"
)

// agentBatch is the batch size the agent uses by default.
const agentBatch = 500

// inHub is an in-process hub (package hub's handler and server) on a
// loopback listener, over a real SQLite file or PostgreSQL database.
type inHub struct {
	URL    string
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// openStore opens a fresh store: "sqlite" (a file in a temp dir) or
// "postgres" (a database in the pgtest cluster).
func openStore(tb testing.TB, dialect string) *sqlstore.Store {
	tb.Helper()
	dsn := "sqlite://" + filepath.Join(tb.TempDir(), "hub.db")
	if dialect == "postgres" {
		dsn = pgtest.DSN(tb)
	}
	st, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// startInHub serves st on addr ("127.0.0.1:0" for any port) until the
// test ends or stop is called.
func startInHub(tb testing.TB, st store.Store, addr string) *inHub {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	h := &inHub{URL: "http://" + ln.Addr().String(), addr: ln.Addr().String(), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	cfg := &hub.Config{Listen: h.addr, SilentAfter: hub.DefaultSilentAfter}
	go func() { h.done <- hub.New(cfg, st, nil).Serve(ctx, ln) }()
	tb.Cleanup(h.stop)
	return h
}

func (h *inHub) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// addAgents creates n agents named prefix-0..n-1 in one transaction and
// returns their tokens.
func addAgents(tb testing.TB, st *sqlstore.Store, prefix string, n int) []string {
	tb.Helper()
	toks := make([]string, n)
	tx, err := st.DB().Begin()
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	q := `INSERT INTO agents (name, token_hash, created) VALUES (?, ?, ?)`
	if isPostgres(st) {
		q = `INSERT INTO agents (name, token_hash, created) VALUES ($1, $2, $3)`
	}
	now := time.Now().UnixNano()
	for i := range n {
		toks[i] = store.NewToken()
		if _, err := tx.Exec(q, fmt.Sprintf("%s-%d", prefix, i), store.HashToken(toks[i]), now); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return toks
}

// isPostgres reports whether st is on PostgreSQL (pgx's stdlib driver).
func isPostgres(st *sqlstore.Store) bool {
	return strings.HasPrefix(fmt.Sprintf("%T", st.DB().Driver()), "*stdlib.")
}

// storedEvent is one row of the hub's events table.
type storedEvent struct {
	ID   string
	Seq  uint64
	Hash string
}

// storedEvents lists an agent's events in the order the hub stored them.
func storedEvents(tb testing.TB, db *sql.DB, agent string, pg bool) []storedEvent {
	tb.Helper()
	q := `SELECT event_id, seq, hash FROM events WHERE agent = ? ORDER BY id`
	if pg {
		q = strings.Replace(q, "?", "$1", 1)
	}
	rows, err := db.Query(q, agent)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []storedEvent
	for rows.Next() {
		var e storedEvent
		var seq int64
		if err := rows.Scan(&e.ID, &seq, &e.Hash); err != nil {
			tb.Fatal(err)
		}
		e.Seq = uint64(seq)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// simAgent speaks the agent's wire protocol with its own token and a
// queue of events chained like the agent's audit records (seq, hash,
// prev_hash), sending them oldest first in batches and retrying with the
// agent's own backoff (report.Backoff: full jitter, Retry-After).
type simAgent struct {
	name, token string
	client      *http.Client
	prefix      string
	seq         uint64 // the last event made
	prevHash    string
	sent        uint64 // events the hub acknowledged: 1..sent
	events      [][]byte
	hashes      []string
	mu          sync.Mutex
}

func newSimAgent(name, token string, client *http.Client) *simAgent {
	sum := sha256.Sum256([]byte(name))
	return &simAgent{name: name, token: token, client: client, prefix: hex.EncodeToString(sum[:16])}
}

// eventJSON is a realistic event of the kind i: USB devices coming and
// going (with the device's facts), a violation in ten, a link change.
func eventJSON(i uint64, now time.Time) json.RawMessage {
	ts := now.UTC().Format(time.RFC3339Nano)
	serial := "SN" + strconv.FormatUint(i%97, 10)
	switch i % 10 {
	case 0:
		return json.RawMessage(`{"time":"` + ts + `","type":"violation","source":"usb","trigger":"uevent","asset_id":"PC-0001","path":"1-2.3","vendor_id":"0781","product_id":"5581","serial":"` + serial +
			`","violation":{"kind":"usb_unapproved","severity":"high","article":"4","device":"SanDisk Ultra (0781:5581)","message":"An unapproved USB storage device was connected.","message_ja":"承認されていないUSB記憶装置が接続されました。","message_en":"An unapproved USB storage device was connected."},"kind":"usb_unapproved"}`)
	case 9:
		return json.RawMessage(`{"time":"` + ts + `","type":"link_up","source":"network","trigger":"netlink","asset_id":"PC-0001","subject":"link:3","instance":"enp3s0","link":{"name":"enp3s0","index":3,"kind":"ethernet","mac":"52:54:00:12:34:56","admin_up":true,"oper_state":"up","carrier":true}}`)
	}
	typ := "device_added"
	if i%2 == 0 {
		typ = "device_removed"
	}
	return json.RawMessage(`{"time":"` + ts + `","type":"` + typ + `","source":"usb","trigger":"uevent","asset_id":"PC-0001","path":"1-2.3","vendor_id":"0781","product_id":"5581","serial":"` + serial +
		`","device":{"path":"1-2.3","busnum":1,"devnum":7,"vendor_id":"0781","product_id":"5581","bcd_device":"0100","serial":"` + serial + `","manufacturer":"SanDisk","product":"Ultra","class":"00","subclass":"00","protocol":"00","speed":"480","authorized":true,"parent":"1-2"},"decision":{"status":"unapproved"}}`)
}

// queue makes n more events.
func (a *simAgent) queue(n int) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for range n {
		a.seq++
		body := eventJSON(a.seq, now)
		hash := wire.RecordHash(a.seq, a.prevHash, body)
		be := wire.BatchEvent{ID: a.prefix + "-" + strconv.FormatUint(a.seq, 10), Seq: a.seq, Hash: hash, PrevHash: a.prevHash, Event: body}
		data, _ := json.Marshal(be)
		a.events = append(a.events, data)
		a.hashes = append(a.hashes, hash)
		a.prevHash = hash
	}
}

// batchBody is the next batch of at most max events: the wire.Batch JSON,
// made by concatenation (the events are marshalled once, when queued).
func (a *simAgent) batchBody(max int) ([]byte, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	first := int(a.sent)
	n := min(max, len(a.events)-first)
	var b bytes.Buffer
	b.WriteString(`{"schema":2,"asset_id":"PC-0001","events":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(a.events[first+i])
	}
	b.WriteString(`]}`)
	return b.Bytes(), n
}

func (a *simAgent) pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.events) - int(a.sent)
}

// answer is what became of one request.
type answer struct {
	status     int
	retryAfter time.Duration
	latency    time.Duration
	err        error
}

// post sends body to path with the agent's token.
func (a *simAgent) post(ctx context.Context, base, path string, body []byte, res any) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := a.client.Do(req)
	if err != nil {
		return answer{err: err, latency: time.Since(t0)}
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := answer{status: resp.StatusCode, latency: time.Since(t0), retryAfter: report.RetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if err == nil && resp.StatusCode == http.StatusOK && res != nil {
		err = json.Unmarshal(data, res)
	}
	out.err = err
	return out
}

// sendOnce posts the next batch; true when the hub acknowledged it.
func (a *simAgent) sendOnce(ctx context.Context, base string, max int) (bool, answer) {
	body, n := a.batchBody(max)
	var res wire.BatchResult
	ans := a.post(ctx, base, wire.PathEvents, body, &res)
	if ans.err != nil || ans.status != http.StatusOK {
		return false, ans
	}
	if res.Accepted+res.Duplicates != n {
		ans.err = fmt.Errorf("%s: batch of %d answered %d accepted, %d duplicates", a.name, n, res.Accepted, res.Duplicates)
		return false, ans
	}
	if res.ChainBroken {
		ans.err = fmt.Errorf("%s: the hub says the chain broke", a.name)
		return false, ans
	}
	a.mu.Lock()
	a.sent += uint64(n)
	a.mu.Unlock()
	return true, ans
}

// drain sends until the queue is empty, waiting as the agent does
// between failures; every answer goes to seen.
func (a *simAgent) drain(ctx context.Context, base string, max int, bo report.Backoff, seen func(answer)) error {
	attempt := 0
	for a.pending() > 0 {
		ok, ans := a.sendOnce(ctx, base, max)
		if seen != nil {
			seen(ans)
		}
		if ok {
			attempt = 0
			continue
		}
		if ans.err != nil && ans.status == http.StatusOK {
			return ans.err
		}
		if ans.status != 0 && ans.status != http.StatusServiceUnavailable && ans.status != http.StatusTooManyRequests && ans.status < 500 {
			return fmt.Errorf("%s: status %d", a.name, ans.status)
		}
		d := bo.Next(attempt, ans.retryAfter, false)
		attempt++
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return fmt.Errorf("%s: %d events still queued: %w", a.name, a.pending(), ctx.Err())
		}
	}
	return nil
}

// checkExactlyOnce compares what the hub stored for a with what a made:
// every event once, in a's order, with its seq and hash.
func (a *simAgent) checkExactlyOnce(tb testing.TB, got []storedEvent) {
	tb.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(got) != int(a.seq) {
		tb.Errorf("%s: the hub has %d events, the agent made %d", a.name, len(got), a.seq)
		return
	}
	for i, e := range got {
		want := uint64(i + 1)
		if e.Seq != want || e.Hash != a.hashes[i] || e.ID != a.prefix+"-"+strconv.FormatUint(want, 10) {
			tb.Errorf("%s: stored event %d is seq %d id %s, want seq %d in order", a.name, i, e.Seq, e.ID, want)
			return
		}
	}
}

// percentile is the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// newClient is an HTTP client like the agent's: its own connections,
// bounded timeouts.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:          2,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
	}}
}
