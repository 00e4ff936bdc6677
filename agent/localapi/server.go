package localapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/mamori-agent/mamori/internal/safe"
)

// DefaultQueueLen is each watcher's queue length when Options.QueueLen
// is zero.
const DefaultQueueLen = 64

// DefaultPingInterval is how often a watcher gets a ping when
// Options.PingInterval is zero: a notifier whose agent went away without
// closing the socket notices within about twice this.
const DefaultPingInterval = 30 * time.Second

// Options configures Listen.
type Options struct {
	// Path is the socket's path (agent.local_socket); on Windows the
	// named pipe's, \\.\pipe\NAME.
	Path string
	// Group is the group whose members may read (agent.local_group): a
	// name or a numeric gid (on Windows a group's account name, such as
	// "users" for BUILTIN\Users); "" lets root (and this user), on
	// Windows SYSTEM and the administrators, only.
	Group string
	// Mode is the socket file's mode; zero means 0660 with a group, 0600
	// without. (Tests widen it to reach the peer-credential check.)
	// Unused on Windows, where the pipe's DACL stands for it.
	Mode os.FileMode
	// Agent names the agent in the hello ("mamori 1.0").
	Agent string
	// Status answers a "status" request; nil answers an error.
	Status func() (*Status, error)
	// OnShown is told, on the watcher's reader goroutine, each "shown" a
	// watcher sends about a warning it was given (by Broadcast or
	// OnWatch), once per warning and connection: who (Peer.Conn the
	// connection), the warning's id, and why it could not be shown (""
	// when it was). Any other "shown" (an id the connection was not
	// given, a second one about the same warning) is ignored and logged
	// (throttled). It must not block for long.
	OnShown func(p Peer, id, errText string)
	// OnWatch is asked, when a watcher connects, for the warnings it is
	// to get first: the violations still open, recorded before it
	// connected (Warning.Replay). At most half its queue is taken.
	OnWatch func(p Peer) []*Warning
	// QueueLen is each watcher's queue (messages); zero means
	// DefaultQueueLen.
	QueueLen int
	// PingInterval is how often watchers are pinged; zero means
	// DefaultPingInterval.
	PingInterval time.Duration
	Logger       *slog.Logger
}

// Peer is a connected client as the kernel tells it.
type Peer struct {
	// UID, GID and PID are the peer's credentials at connect time (-1
	// when the system does not tell). On Windows UID is the peer's
	// session id (the desktop it runs on, from its token's
	// TokenSessionId; 0 is the services' session), GID is -1 and SID
	// names the user.
	UID, GID, PID int
	// Groups are its supplementary groups (none on Windows).
	Groups []int
	// SID is the peer's user SID ("S-1-5-21-...") on Windows, "" elsewhere.
	SID string
	// Role is RoleAdmin or RoleReader.
	Role string
	// User is the user name of UID ("DOMAIN\name" of SID on Windows),
	// "" when unknown.
	User string
	// Conn numbers the connection, from 1, unique for the server's
	// life: two connections of one user are told apart by it.
	Conn uint64
	// foreign says why the peer is refused whatever its uid and groups
	// ("" when it is not): on Linux, a process in another user
	// namespace than the agent's (peerOf).
	foreign string
}

// key is who the per-user limits and the log throttle count p as: its
// SID where the system names users so (Windows), else its uid.
func (p Peer) key() string {
	if p.SID != "" {
		return p.SID
	}
	return strconv.Itoa(p.UID)
}

// ErrRefused is wrapped by the errors of a refused connection: a peer
// neither root nor in the group (server side), or a client the server
// refused (client side).
var ErrRefused = errors.New("refused")

// Server serves the local API on a unix socket (a named pipe on
// Windows).
type Server struct {
	opts Options
	log  *slog.Logger
	ln   net.Listener
	// acc is who may connect: the group (access_unix.go,
	// access_windows.go).
	acc access
	// remove deletes the socket file if it is still ours.
	remove func()

	mu       sync.Mutex
	closed   bool
	conns    map[net.Conn]struct{}
	watchers map[*watcher]struct{}
	// perUser counts the connections of each reader (Peer.key).
	perUser map[string]int
	// nconn numbers the connections (Peer.Conn).
	nconn uint64
	wg    sync.WaitGroup

	logs     *logThrottle
	requests *rateLimit
}

// watcher is one "watch" client.
type watcher struct {
	peer Peer
	conn net.Conn
	q    chan *Message
	once sync.Once
	done chan struct{}

	// given are the warnings queued to this watcher and not answered
	// yet, oldest first in order (at most maxUnanswered: the oldest is
	// forgotten beyond).
	mu    sync.Mutex
	given map[string]struct{}
	order []string
}

// maxUnanswered bounds the warnings a watcher may have been given and
// not answered: a notifier that never answers does not make the server
// remember without end (and the agent no longer waits for an answer
// that late).
const maxUnanswered = 256

// give queues m (a warning) to w without waiting, remembering that w was
// given it; false when its queue is full.
func (w *watcher) give(m *Message) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.q <- m:
	default:
		return false
	}
	id := m.Warning.ID
	if _, ok := w.given[id]; ok {
		return true
	}
	if len(w.order) >= maxUnanswered {
		delete(w.given, w.order[0])
		w.order = w.order[1:]
	}
	w.given[id] = struct{}{}
	w.order = append(w.order, id)
	return true
}

// answered takes the answer about id: true the first time for a warning
// w was given, false otherwise.
func (w *watcher) answered(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.given[id]; !ok {
		return false
	}
	delete(w.given, id)
	for i, g := range w.order {
		if g == id {
			w.order = append(w.order[:i], w.order[i+1:]...)
			break
		}
	}
	return true
}

func (w *watcher) drop() {
	w.once.Do(func() {
		close(w.done)
		w.conn.Close()
	})
}

// Listen creates the socket (see the package comment for how) and
// returns a server that is not serving yet: Serve serves it. It refuses
// a directory others can write, a path held by something that is not a
// stale socket of ours, and a group that does not exist; on Windows a
// path that is not \\.\pipe\NAME and a pipe that exists already.
func Listen(opts Options) (*Server, error) {
	if opts.Path == "" {
		return nil, errors.New("local API: no socket path")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = DefaultQueueLen
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	acc, err := newAccess(opts.Group)
	if err != nil {
		return nil, fmt.Errorf("local API %s: %w", opts.Path, err)
	}
	s := &Server{opts: opts, log: opts.Logger, acc: acc, conns: map[net.Conn]struct{}{}, watchers: map[*watcher]struct{}{}, perUser: map[string]int{},
		logs: newLogThrottle(LogInterval), requests: newRateLimit(RequestRate, RequestBurst)}
	ln, remove, err := listen(opts, acc)
	if err != nil {
		return nil, fmt.Errorf("local API %s: %w", opts.Path, err)
	}
	s.ln, s.remove = ln, remove
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.opts.Path }

// Serve accepts connections until Close. It returns nil after Close.
func (s *Server) Serve() error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and the like: wait a moment rather than spin.
			s.logThrottled(slog.LevelWarn, "accept", "", "local API: accept failed", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		// The credentials first (the kernel took them at connect time):
		// the last RootSlots connections are root's.
		p, perr := s.acc.peer(c)
		limit := MaxConns - RootSlots
		if perr == nil && p.Role == RoleAdmin {
			limit = MaxConns
		}
		s.mu.Lock()
		if s.closed || len(s.conns) >= limit {
			closed := s.closed
			s.mu.Unlock()
			if !closed {
				// Said, not only closed: a small message to a new
				// connection is taken by the socket buffer at once.
				s.refuse(c, fmt.Sprintf("all %d connections are taken; try again in a moment", MaxConns))
			}
			c.Close()
			if !closed {
				s.logThrottled(slog.LevelWarn, "full", p.key(), "local API: all connections taken; closed at once",
					peerAttrs(p, "max", MaxConns, "kept_for_root", RootSlots)...)
			}
			continue
		}
		s.nconn++
		p.Conn = s.nconn
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c, p, perr)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops serving, drops every client, waits for their goroutines
// and removes the socket file (if it is still the one it made).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	for w := range s.watchers {
		w.drop()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.remove()
	return err
}

// Watchers returns the peers watching now.
func (s *Server) Watchers() []Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Peer, 0, len(s.watchers))
	for w := range s.watchers {
		out = append(out, w.peer)
	}
	return out
}

// Broadcast queues w to every watcher without waiting, and returns the
// peers it was queued to. A watcher whose queue is full is dropped (its
// notifier reconnects); it is not among them.
func (s *Server) Broadcast(w *Warning) []Peer {
	m := &Message{Type: TypeWarning, Warning: w}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Peer
	for wt := range s.watchers {
		select {
		case <-wt.done:
			continue
		default:
		}
		if wt.give(m) {
			out = append(out, wt.peer)
			continue
		}
		s.logThrottled(slog.LevelWarn, "slow", wt.peer.key(), "local API: notifier too slow, its queue is full; dropped (it reconnects)", peerAttrs(wt.peer)...)
		delete(s.watchers, wt)
		wt.drop()
	}
	return out
}

// peerAttrs are the log attributes naming p (uid, pid, the user name
// when known, the SID on Windows), then more.
func peerAttrs(p Peer, more ...any) []any {
	a := []any{"uid", p.UID, "pid", p.PID}
	if p.User != "" {
		a = append(a, "user", safe.String(p.User))
	}
	if p.SID != "" {
		a = append(a, "sid", p.SID)
	}
	return append(a, more...)
}

// handle serves one connection.
func (s *Server) handle(c net.Conn, p Peer, err error) {
	defer c.Close()
	if err != nil {
		s.logThrottled(slog.LevelWarn, "credentials", "", "local API: cannot read the peer's credentials; refused", "err", err)
		s.refuse(c, "cannot read your credentials")
		return
	}
	if p.Role == "" {
		s.logThrottled(slog.LevelWarn, "refused", p.key(), "local API: connection refused", peerAttrs(p, "gid", p.GID, "group", s.opts.Group)...)
		s.refuse(c, s.acc.refusal(p))
		return
	}
	if p.Role != RoleAdmin {
		k := p.key()
		s.mu.Lock()
		n := s.perUser[k]
		if n < MaxConnsPerUser {
			s.perUser[k]++
		}
		s.mu.Unlock()
		if n >= MaxConnsPerUser {
			s.logThrottled(slog.LevelWarn, "per-user", k, "local API: too many connections of one user; refused", peerAttrs(p, "max", MaxConnsPerUser)...)
			s.refuse(c, fmt.Sprintf("%s holds %d connections already", s.acc.name(p), n))
			return
		}
		defer func() {
			s.mu.Lock()
			if s.perUser[k]--; s.perUser[k] <= 0 {
				delete(s.perUser, k)
			}
			s.mu.Unlock()
		}()
	}
	// The name here, on the connection's goroutine: a slow user
	// database (NSS, a domain controller) holds up no other client.
	p.User = s.acc.userName(p)
	if err := s.write(c, &Message{Type: TypeHello, Protocol: ProtocolVersion, Agent: s.opts.Agent, Role: p.Role}); err != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(RequestTimeout))
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 512), MaxRequestLine)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			s.write(c, &Message{Type: TypeError, Error: "request: " + err.Error()})
		}
		return
	}
	var req Message
	if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
		s.write(c, &Message{Type: TypeError, Error: "request is not a JSON message: " + err.Error()})
		return
	}
	if req.Protocol != ProtocolVersion {
		s.write(c, &Message{Type: TypeError, Error: fmt.Sprintf("protocol %d not spoken: this agent speaks protocol %d", req.Protocol, ProtocolVersion)})
		return
	}
	c.SetReadDeadline(time.Time{})
	if (req.Type == TypeStatus || req.Type == TypeWatch) && p.Role != RoleAdmin && !s.requests.take(p.key()) {
		// A status costs the agent a look at everything, a watch the
		// replay of every open violation: both paced (a user who
		// connects, watches and hangs up again and again would make
		// the agent replay them as fast as it can).
		s.logThrottled(slog.LevelWarn, "rate", p.key(), "local API: too many requests of one user; closed",
			peerAttrs(p, "rate_per_second", RequestRate, "burst", RequestBurst)...)
		s.write(c, &Message{Type: TypeError, Error: fmt.Sprintf("too many requests: %s may make %d a second; try again in a moment", s.acc.name(p), RequestRate)})
		return
	}
	switch req.Type {
	case TypeStatus:
		s.serveStatus(c)
	case TypeWatch:
		s.serveWatch(c, sc, p)
	default:
		s.write(c, &Message{Type: TypeError, Error: fmt.Sprintf("unknown request %q (status, watch)", req.Type)})
	}
}

func (s *Server) refuse(c net.Conn, why string) {
	s.write(c, &Message{Type: TypeError, Error: "refused: " + why})
}

// write writes one message with the write deadline.
func (s *Server) write(c net.Conn, m *Message) error {
	b, err := encode(m)
	if err != nil {
		return err
	}
	c.SetWriteDeadline(time.Now().Add(WriteTimeout))
	_, err = c.Write(b)
	return err
}

func (s *Server) serveStatus(c net.Conn) {
	if s.opts.Status == nil {
		s.write(c, &Message{Type: TypeError, Error: "status not served"})
		return
	}
	st, err := s.opts.Status()
	if err != nil {
		s.write(c, &Message{Type: TypeError, Error: "status: " + err.Error()})
		return
	}
	st.Notifiers = []PeerStatus{}
	for _, p := range s.Watchers() {
		st.Notifiers = append(st.Notifiers, PeerStatus{UID: p.UID, User: p.User, PID: p.PID, SID: p.SID})
	}
	s.write(c, &Message{Type: TypeStatus, Status: st})
}

// serveWatch streams warnings to c until it goes or is dropped, and
// reads its "shown" lines.
func (s *Server) serveWatch(c net.Conn, sc *bufio.Scanner, p Peer) {
	w := &watcher{peer: p, conn: c, q: make(chan *Message, s.opts.QueueLen), done: make(chan struct{}), given: map[string]struct{}{}}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	s.logThrottled(slog.LevelInfo, "connected", p.key(), "local API: notifier connected", peerAttrs(p)...)
	if s.opts.OnWatch != nil {
		ws := s.opts.OnWatch(p)
		for _, wr := range ws[:min(len(ws), s.opts.QueueLen/2)] {
			w.give(&Message{Type: TypeWarning, Warning: wr})
		}
	}
	defer func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
		w.drop()
		s.logThrottled(slog.LevelInfo, "gone", p.key(), "local API: notifier gone", peerAttrs(p)...)
	}()
	go func() {
		// The reader: "shown" lines until the client goes.
		defer w.drop()
		for sc.Scan() {
			var m Message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Type != TypeShown {
				s.logThrottled(slog.LevelWarn, "not-shown-line", p.key(), "local API: notifier sent something else than \"shown\"; dropped", peerAttrs(p)...)
				return
			}
			if m.ID == "" || !w.answered(m.ID) {
				// Not a warning this connection was given, or answered
				// already: it says nothing about any desktop.
				s.logThrottled(slog.LevelWarn, "stray-shown", p.key(), "local API: notifier answered about a warning it was not given, or again; ignored",
					peerAttrs(p, "id", safeID(m.ID))...)
				continue
			}
			if s.opts.OnShown != nil {
				s.opts.OnShown(p, m.ID, m.Error)
			}
		}
	}()
	ping := time.NewTicker(s.opts.PingInterval)
	defer ping.Stop()
	for {
		var m *Message
		select {
		case <-w.done:
			return
		case m = <-w.q:
		case <-ping.C:
			m = &Message{Type: TypePing}
		}
		if err := s.write(c, m); err != nil {
			s.logThrottled(slog.LevelWarn, "write", p.key(), "local API: write to notifier failed; dropped", peerAttrs(p, "err", err)...)
			return
		}
	}
}

// safeID is a warning id a client sent, for the log: escaped, at most
// 64 bytes of it.
func safeID(id string) string {
	if len(id) > 64 {
		id = id[:64]
	}
	return safe.String(id)
}
