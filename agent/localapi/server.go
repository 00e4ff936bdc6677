package localapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"
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
	// Path is the socket's path (agent.local_socket).
	Path string
	// Group is the group whose members may read (agent.local_group): a
	// name or a numeric gid; "" lets root (and this user) only.
	Group string
	// Mode is the socket file's mode; zero means 0660 with a group, 0600
	// without. (Tests widen it to reach the peer-credential check.)
	Mode os.FileMode
	// Agent names the agent in the hello ("mamori 1.0").
	Agent string
	// Status answers a "status" request; nil answers an error.
	Status func() (*Status, error)
	// OnShown is told, on the watcher's reader goroutine, each "shown" a
	// watcher sends: who, the warning's id, and why it could not be
	// shown ("" when it was). It must not block for long.
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
	// when the system does not tell).
	UID, GID, PID int
	// Groups are its supplementary groups.
	Groups []int
	// Role is RoleAdmin or RoleReader.
	Role string
	// User is the user name of UID, "" when unknown.
	User string
}

// ErrRefused is wrapped by the errors of a refused connection: a peer
// neither root nor in the group (server side), or a client the server
// refused (client side).
var ErrRefused = errors.New("refused")

// Server serves the local API on a unix socket.
type Server struct {
	opts Options
	log  *slog.Logger
	ln   *net.UnixListener
	gid  int // -1: no group
	// remove deletes the socket file if it is still ours.
	remove func()

	mu       sync.Mutex
	closed   bool
	conns    map[net.Conn]struct{}
	watchers map[*watcher]struct{}
	// perUser counts the connections of each reader uid.
	perUser map[int]int
	wg      sync.WaitGroup
}

// watcher is one "watch" client.
type watcher struct {
	peer Peer
	conn net.Conn
	q    chan *Message
	once sync.Once
	done chan struct{}
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
// stale socket of ours, and a group that does not exist.
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
	gid := -1
	if opts.Group != "" {
		g, err := LookupGroup(opts.Group)
		if err != nil {
			return nil, fmt.Errorf("local API %s: %w", opts.Path, err)
		}
		gid = g
	}
	if opts.Mode == 0 {
		opts.Mode = 0o600
		if gid >= 0 {
			opts.Mode = 0o660
		}
	}
	s := &Server{opts: opts, log: opts.Logger, gid: gid, conns: map[net.Conn]struct{}{}, watchers: map[*watcher]struct{}{}, perUser: map[int]int{}}
	ln, remove, err := listen(opts.Path, opts.Mode, gid)
	if err != nil {
		return nil, fmt.Errorf("local API %s: %w", opts.Path, err)
	}
	s.ln, s.remove = ln, remove
	return s, nil
}

// LookupGroup returns the gid of group, a name or a number.
func LookupGroup(group string) (int, error) {
	if n, err := strconv.Atoi(group); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return -1, fmt.Errorf("group %q: %w", group, err)
	}
	n, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("group %q has gid %q, not a number", group, g.Gid)
	}
	return n, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.opts.Path }

// Serve accepts connections until Close. It returns nil after Close.
func (s *Server) Serve() error {
	for {
		c, err := s.ln.AcceptUnix()
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
			s.log.Warn("local API: accept failed", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed || len(s.conns) >= MaxConns {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
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
		case wt.q <- m:
			out = append(out, wt.peer)
		case <-wt.done:
		default:
			s.log.Warn("local API: notifier too slow, its queue is full; dropped (it reconnects)", "uid", wt.peer.UID, "pid", wt.peer.PID)
			delete(s.watchers, wt)
			wt.drop()
		}
	}
	return out
}

// handle serves one connection.
func (s *Server) handle(c *net.UnixConn) {
	defer c.Close()
	p, err := peerOf(c)
	if err != nil {
		s.log.Warn("local API: cannot read the peer's credentials; refused", "err", err)
		s.refuse(c, "cannot read your credentials")
		return
	}
	if p.Role = s.role(p); p.Role == "" {
		s.log.Warn("local API: connection refused", "uid", p.UID, "gid", p.GID, "pid", p.PID, "group", s.opts.Group)
		msg := fmt.Sprintf("uid %d is neither root nor in group %s", p.UID, s.opts.Group)
		if s.gid < 0 {
			msg = fmt.Sprintf("uid %d is not root, and the agent lets no group read (agent.local_group is empty)", p.UID)
		}
		s.refuse(c, msg)
		return
	}
	if p.Role != RoleAdmin {
		s.mu.Lock()
		n := s.perUser[p.UID]
		if n < MaxConnsPerUser {
			s.perUser[p.UID]++
		}
		s.mu.Unlock()
		if n >= MaxConnsPerUser {
			s.log.Warn("local API: too many connections of one user; refused", "uid", p.UID, "pid", p.PID)
			s.refuse(c, fmt.Sprintf("uid %d holds %d connections already", p.UID, n))
			return
		}
		defer func() {
			s.mu.Lock()
			if s.perUser[p.UID]--; s.perUser[p.UID] <= 0 {
				delete(s.perUser, p.UID)
			}
			s.mu.Unlock()
		}()
	}
	if u, err := user.LookupId(strconv.Itoa(p.UID)); err == nil && p.UID >= 0 {
		p.User = u.Username
	}
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
	switch req.Type {
	case TypeStatus:
		s.serveStatus(c)
	case TypeWatch:
		s.serveWatch(c, sc, p)
	default:
		s.write(c, &Message{Type: TypeError, Error: fmt.Sprintf("unknown request %q (status, watch)", req.Type)})
	}
}

// role returns the role of p, "" when refused.
func (s *Server) role(p Peer) string {
	if p.UID == 0 || p.UID == os.Geteuid() {
		return RoleAdmin
	}
	if p.UID < 0 {
		// The system does not tell credentials: the socket's mode and
		// group were the check.
		return RoleReader
	}
	if s.gid >= 0 {
		if p.GID == s.gid {
			return RoleReader
		}
		for _, g := range p.Groups {
			if g == s.gid {
				return RoleReader
			}
		}
	}
	return ""
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
		st.Notifiers = append(st.Notifiers, PeerStatus{UID: p.UID, User: p.User, PID: p.PID})
	}
	s.write(c, &Message{Type: TypeStatus, Status: st})
}

// serveWatch streams warnings to c until it goes or is dropped, and
// reads its "shown" lines.
func (s *Server) serveWatch(c net.Conn, sc *bufio.Scanner, p Peer) {
	w := &watcher{peer: p, conn: c, q: make(chan *Message, s.opts.QueueLen), done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	s.log.Info("local API: notifier connected", "uid", p.UID, "user", p.User, "pid", p.PID)
	if s.opts.OnWatch != nil {
		ws := s.opts.OnWatch(p)
		for _, wr := range ws[:min(len(ws), s.opts.QueueLen/2)] {
			select {
			case w.q <- &Message{Type: TypeWarning, Warning: wr}:
			default:
			}
		}
	}
	defer func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
		w.drop()
		s.log.Info("local API: notifier gone", "uid", p.UID, "pid", p.PID)
	}()
	go func() {
		// The reader: "shown" lines until the client goes.
		defer w.drop()
		for sc.Scan() {
			var m Message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Type != TypeShown {
				s.log.Warn("local API: notifier sent something else than \"shown\"; dropped", "uid", p.UID, "pid", p.PID)
				return
			}
			if s.opts.OnShown != nil && m.ID != "" {
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
			s.log.Warn("local API: write to notifier failed; dropped", "uid", p.UID, "pid", p.PID, "err", err)
			return
		}
	}
}
